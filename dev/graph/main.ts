/**
 * Runs the local Microsoft Graph stand-in on its own:
 *   node --import tsx dev/graph/main.ts [--port 10011] [--host 127.0.0.1] [--data dev/data/graph.jsonl]
 *     [--users dev/data/graph-users.json] [--throttle] [--requests-per-10s 100] [--retry-after-seconds 0]
 *     [--latency-ms 0] [--error-rate 0] [--timeout-rate 0] [--timeout-ms 30000] [--verbose]
 * Prints "Graph stand-in listening on http://HOST:PORT" once ready; stops cleanly on SIGINT/SIGTERM.
 * The --data file holds token secrets in plaintext: development only.
 */
import { parseArgs } from 'node:util';
import { COMMON_OPTIONS, commonRealism, commonStartOptions, numberOption, runStandIn } from '../stand-in/main.js';
import { DEFAULT_GRAPH_PORT, startGraphStandIn, type GraphRealism } from './server.js';

const USAGE = `Usage: node --import tsx dev/graph/main.ts [options]
  --port <n>                 port to listen on (0 = any free port; default ${DEFAULT_GRAPH_PORT})
  --host <addr>              address to bind (default 127.0.0.1)
  --data <file>              persist state to this journal file (PLAINTEXT token secrets; dev only)
  --users <file>             JSON array of users to create or update at start
  --throttle                 enforce a request budget (429 with Retry-After past it)
  --requests-per-10s <n>     the budget when throttling (default 100)
  --retry-after-seconds <n>  Retry-After of a 429 (default 0: until the window has room)
  --latency-ms <n>           added latency per call
  --error-rate <0..1>        share of calls answered 500/503
  --timeout-rate <0..1>      share of calls never answered
  --timeout-ms <n>           how long an unanswered call is held before the connection drops (default 30000)
  --verbose                  log one line per request to stderr (method, path, status; never bodies)
  --help`;

runStandIn('Graph stand-in', USAGE, async () => {
  const { values } = parseArgs({
    options: {
      ...COMMON_OPTIONS,
      users: { type: 'string' },
      'requests-per-10s': { type: 'string' },
      'retry-after-seconds': { type: 'string' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return undefined;
  }
  const realism: GraphRealism = { ...commonRealism(values) };
  const requestsPer10s = numberOption(values, 'requests-per-10s');
  if (requestsPer10s !== undefined) realism.requestsPer10s = requestsPer10s;
  const retryAfterSeconds = numberOption(values, 'retry-after-seconds');
  if (retryAfterSeconds !== undefined) realism.retryAfterSeconds = retryAfterSeconds;
  return startGraphStandIn({ ...commonStartOptions(values, DEFAULT_GRAPH_PORT), usersFile: values.users, realism });
});
