/**
 * Runs one local Functions host in this process (one app per process).
 *
 *   node --import tsx dev/host/cli.ts --entry dist/functions/index.js \
 *     [--settings local.settings.json] [--setting NAME=VALUE ...] [--storage <AzureWebJobsStorage>] [--port 7071]
 *     [--poll-interval-ms 1000] [--enforce-auth --master-key K --function-key name=K] [--dev-sign-in] [--host-id id]
 *     [--host-json path/to/host.json] [--receipt-lease-seconds 15] [--json]
 *
 * The storage connection string comes from --storage, else from the
 * AzureWebJobsStorage setting. --setting values win over the settings file.
 * host.json comes from --host-json, else from the app root. With --json, one JSON line
 * `{"ready":true,"url":...,"port":...,"functions":[...]}` is printed when the
 * host is ready and every log line is printed as `{"log":"..."}`.
 */
import { parseArgs } from 'node:util';
import { startLocalHost } from './host.js';
import { readLocalSettings } from './settings.js';

const { values } = parseArgs({
  options: {
    entry: { type: 'string' },
    settings: { type: 'string' },
    setting: { type: 'string', multiple: true },
    'host-json': { type: 'string' },
    'receipt-lease-seconds': { type: 'string' },
    storage: { type: 'string' },
    port: { type: 'string' },
    'poll-interval-ms': { type: 'string' },
    'enforce-auth': { type: 'boolean', default: false },
    'master-key': { type: 'string' },
    'function-key': { type: 'string', multiple: true },
    'dev-sign-in': { type: 'boolean', default: false },
    'host-id': { type: 'string' },
    json: { type: 'boolean', default: false },
  },
});

async function main(): Promise<void> {
  if (!values.entry) throw new Error('--entry <app entry module> is required');
  const settings = values.settings ? await readLocalSettings(values.settings) : {};
  for (const pair of values.setting ?? []) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new Error(`--setting expects NAME=VALUE, got "${pair}"`);
    settings[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  const storage = values.storage ?? settings.AzureWebJobsStorage ?? process.env.AzureWebJobsStorage;
  if (!storage) throw new Error('No storage connection string: give --storage or set AzureWebJobsStorage.');
  const functionKeys: Record<string, string> = {};
  for (const pair of values['function-key'] ?? []) {
    const eq = pair.indexOf('=');
    if (eq > 0) functionKeys[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  const json = values.json;
  const host = await startLocalHost({
    entry: values.entry,
    port: values.port === undefined ? 7071 : Number(values.port),
    settings,
    storageConnectionString: storage,
    pollIntervalMs: values['poll-interval-ms'] === undefined ? undefined : Number(values['poll-interval-ms']),
    enforceAuth: values['enforce-auth'],
    masterKey: values['master-key'],
    functionKeys,
    devSignIn: values['dev-sign-in'],
    hostId: values['host-id'],
    hostJson: values['host-json'],
    receiptLeaseSeconds: values['receipt-lease-seconds'] === undefined ? undefined : Number(values['receipt-lease-seconds']),
    log: json ? (line) => process.stdout.write(JSON.stringify({ log: line }) + '\n') : undefined,
  });
  if (json)
    process.stdout.write(
      JSON.stringify({ ready: true, pid: process.pid, url: host.url, port: host.port, functions: host.functions, config: host.config }) +
        '\n',
    );

  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    void host.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : String(error));
  process.exit(1);
});
