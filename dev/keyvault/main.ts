/**
 * Runs the local Key Vault stand-in on its own:
 *   node --import tsx dev/keyvault/main.ts [--port 0] [--host 127.0.0.1] [--data dev/data/keyvault.jsonl]
 *     [--throttle] [--creates-per-10s 300] [--others-per-10s 4000] [--latency-ms 0]
 *     [--error-rate 0] [--timeout-rate 0] [--timeout-ms 30000]
 *     [--throttle-every-nth-create 0] [--error-every-nth 0] [--timeout-every-nth 0] [--verbose]
 * Prints "Key Vault stand-in listening on http://HOST:PORT" once ready; stops cleanly on SIGINT/SIGTERM.
 * The --data file holds secret values in plaintext: development only.
 */
import { parseArgs } from 'node:util';
import { COMMON_OPTIONS, commonRealism, commonStartOptions, numberOption, runStandIn } from '../stand-in/main.js';
import { startKeyVaultStandIn, type KeyVaultRealism } from './server.js';

const USAGE = `Usage: node --import tsx dev/keyvault/main.ts [options]
  --port <n>              port to listen on (0 = any free port; default 0)
  --host <addr>           address to bind (default 127.0.0.1)
  --data <file>           persist state to this journal file (PLAINTEXT secrets; dev only)
  --throttle              enforce the real vault's throttling (429 Throttled)
  --creates-per-10s <n>   create budget per 10 s when throttling (default 300)
  --others-per-10s <n>    budget of other operations per 10 s when throttling (default 4000)
  --latency-ms <n>        added latency per call
  --error-rate <0..1>     share of calls answered 500/503
  --timeout-rate <0..1>   share of calls never answered
  --timeout-ms <n>        how long an unanswered call is held before the connection drops (default 30000)
  --throttle-every-nth-create <n>  answer every nth create 429, whatever the rate (0 = off)
  --error-every-nth <n>   answer every nth call 503/500 (0 = off)
  --timeout-every-nth <n> leave every nth call unanswered (0 = off)
  --verbose               log one line per request to stderr
  --help`;

runStandIn('Key Vault stand-in', USAGE, async () => {
  const { values } = parseArgs({
    options: {
      ...COMMON_OPTIONS,
      'creates-per-10s': { type: 'string' },
      'others-per-10s': { type: 'string' },
      'throttle-every-nth-create': { type: 'string' },
      'error-every-nth': { type: 'string' },
      'timeout-every-nth': { type: 'string' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return undefined;
  }
  const realism: KeyVaultRealism = {
    ...commonRealism(values),
    createsPer10s: numberOption(values, 'creates-per-10s'),
    othersPer10s: numberOption(values, 'others-per-10s'),
    throttleEveryNthCreate: numberOption(values, 'throttle-every-nth-create'),
    errorEveryNth: numberOption(values, 'error-every-nth'),
    timeoutEveryNth: numberOption(values, 'timeout-every-nth'),
  };
  return startKeyVaultStandIn({ ...commonStartOptions(values, 0), realism });
});
