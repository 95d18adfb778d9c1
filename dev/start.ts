/**
 * `npm start`: the local Azure stack (Azurite, Key Vault stand-in, Microsoft
 * Graph stand-in, Functions host with the built app) until Ctrl-C.
 *
 *   node --import tsx dev/start.ts [--data-dir dev/data] [--ports default|free] [--entry dist/functions/index.js]
 *     [--setting NAME=VALUE ...] [--poll-interval-ms 1000] [--host-json path] [--kv-realism '{"throttling":true}']
 *     [--graph-realism '{"throttling":true,"requestsPer10s":20}'] [--enforce-auth [--master-key K] [--function-key name=K ...]] [--json]
 *
 * With --json, one line `{"ready":true,...}` with every URL is printed once
 * everything is up (for tests and scripts that start the stack).
 */
import { parseArgs } from 'node:util';
import type { KeyVaultRealism } from './keyvault/server.js';
import type { GraphRealism } from './graph/server.js';
import { describeStack, startStack, type Stack } from './stack.js';

const { values } = parseArgs({
  options: {
    'data-dir': { type: 'string' },
    ports: { type: 'string', default: 'default' },
    entry: { type: 'string' },
    setting: { type: 'string', multiple: true },
    'poll-interval-ms': { type: 'string' },
    'host-json': { type: 'string' },
    'kv-realism': { type: 'string' },
    'graph-realism': { type: 'string' },
    'enforce-auth': { type: 'boolean', default: false },
    'master-key': { type: 'string' },
    'function-key': { type: 'string', multiple: true },
    json: { type: 'boolean', default: false },
  },
});

async function main(): Promise<void> {
  if (values.ports !== 'default' && values.ports !== 'free') throw new Error('--ports must be "default" or "free"');
  const settings: Record<string, string> = {};
  for (const pair of values.setting ?? []) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new Error(`--setting expects NAME=VALUE, got "${pair}"`);
    settings[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  // `IMPORT_MODE=graph npm start`: Graph mode's settings pass from the environment to the host (--setting wins).
  for (const name of ['IMPORT_MODE', 'GRAPH_ALLOW_PRIVILEGED_USERS', 'GRAPH_ALLOWED_GROUP_ID', 'GRAPH_ACTIVATE_FROM_SEED']) {
    const value = process.env[name];
    if (value && settings[name] === undefined) settings[name] = value;
  }
  const functionKeys: Record<string, string> = {};
  for (const pair of values['function-key'] ?? []) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new Error(`--function-key expects NAME=KEY, got "${pair}"`);
    functionKeys[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  if (values['enforce-auth'] && !values['master-key'] && Object.keys(functionKeys).length === 0) {
    throw new Error('--enforce-auth needs --master-key K or --function-key NAME=K: otherwise no key opens the API.');
  }
  const kvRealism = values['kv-realism'] ? (JSON.parse(values['kv-realism']) as KeyVaultRealism) : undefined;
  const graphRealism = values['graph-realism'] ? (JSON.parse(values['graph-realism']) as GraphRealism) : undefined;

  let stack: Stack | undefined = undefined;
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) {
      console.log(`[stack] ${signal} again: exiting now.`);
      process.exit(130);
    }
    stopping = true;
    console.log(`[stack] ${signal}: stopping...`);
    // Still starting: main() closes the stack as soon as it is up.
    if (!stack) return;
    void stack.close().then(
      () => {
        console.log('[stack] stopped.');
        process.exit(0);
      },
      (error: unknown) => {
        console.error(`[stack] stop failed: ${error instanceof Error ? error.message : String(error)}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));

  stack = await startStack({
    dataDir: values['data-dir'],
    ports: values.ports,
    entry: values.entry,
    settings,
    kvRealism,
    graphRealism,
    pollIntervalMs: values['poll-interval-ms'] === undefined ? undefined : Number(values['poll-interval-ms']),
    hostJson: values['host-json'],
    enforceAuth: values['enforce-auth'],
    masterKey: values['master-key'],
    functionKeys,
  });
  if (stopping) {
    await stack.close();
    console.log('[stack] stopped.');
    process.exit(0);
  }
  if (values.json) {
    console.log(
      JSON.stringify({
        ready: true,
        pid: process.pid,
        dataDir: stack.dataDir,
        settingsPath: stack.settingsPath,
        settings: stack.settings,
        blobUrl: stack.azurite.blobUrl,
        queueUrl: stack.azurite.queueUrl,
        tableUrl: stack.azurite.tableUrl,
        connectionString: stack.azurite.connectionString,
        azuritePid: stack.azurite.pid,
        keyVaultUrl: stack.keyVault.url,
        graphUrl: stack.graph.url,
        functionsUrl: stack.functions.url,
        consoleUrl: stack.consoleUrl,
        functions: stack.functions.list,
      }),
    );
  } else {
    for (const line of describeStack(stack)) console.log(line);
  }
}

main().catch((error: unknown) => {
  console.error(`[stack] could not start: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
