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

function numberOption(values: Record<string, unknown>, name: string): number | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (typeof raw !== 'string' || raw.trim() === '' || !Number.isFinite(n)) throw new Error(`--${name} must be a number`);
  return n;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      data: { type: 'string' },
      throttle: { type: 'boolean' },
      'creates-per-10s': { type: 'string' },
      'others-per-10s': { type: 'string' },
      'latency-ms': { type: 'string' },
      'error-rate': { type: 'string' },
      'timeout-rate': { type: 'string' },
      'timeout-ms': { type: 'string' },
      'throttle-every-nth-create': { type: 'string' },
      'error-every-nth': { type: 'string' },
      'timeout-every-nth': { type: 'string' },
      verbose: { type: 'boolean' },
      help: { type: 'boolean' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return;
  }
  const realism: KeyVaultRealism = {
    throttling: values.throttle ?? false,
    createsPer10s: numberOption(values, 'creates-per-10s'),
    othersPer10s: numberOption(values, 'others-per-10s'),
    latencyMs: numberOption(values, 'latency-ms'),
    errorRate: numberOption(values, 'error-rate'),
    timeoutRate: numberOption(values, 'timeout-rate'),
    timeoutMs: numberOption(values, 'timeout-ms'),
    throttleEveryNthCreate: numberOption(values, 'throttle-every-nth-create'),
    errorEveryNth: numberOption(values, 'error-every-nth'),
    timeoutEveryNth: numberOption(values, 'timeout-every-nth'),
  };
  const standIn = await startKeyVaultStandIn({
    port: numberOption(values, 'port') ?? 0,
    host: values.host,
    persistPath: values.data,
    realism,
    log: values.verbose ? (line) => process.stderr.write(line + '\n') : undefined,
  });
  process.stdout.write(`Key Vault stand-in listening on ${standIn.url}\n`);

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`Key Vault stand-in: ${signal}, stopping\n`);
    standIn.close().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`Key Vault stand-in: error while stopping: ${String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

main().catch((err: unknown) => {
  process.stderr.write(`Key Vault stand-in: ${err instanceof Error ? err.message : String(err)}\n${USAGE}\n`);
  process.exit(2);
});
