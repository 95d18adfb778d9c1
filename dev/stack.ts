/**
 * The whole local Azure stack on one machine: Azurite (storage), the Key
 * Vault stand-in, the Microsoft Graph stand-in and the local Functions host
 * running the app, with the containers, tables and app settings the pipeline
 * needs.
 *
 * Data layout under `dataDir` (default dev/data, git-ignored):
 *   azurite/             Azurite's blobs, queues and tables
 *   keyvault.jsonl       the vault stand-in's state: SECRETS IN PLAINTEXT, development only
 *   graph.jsonl          the Graph stand-in's users and tokens: TOKEN SECRETS IN PLAINTEXT, development only
 *   graph-users.json     optional: users the Graph stand-in creates or updates at each start (you write it)
 *   local.settings.json  the app settings the host was started with
 *
 * The Functions host lives in this process, and a process hosts one app:
 * call startStack once per process (dev/start.ts, or a child process in tests).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BlobServiceClient } from '@azure/storage-blob';
import { ensureStorageResources } from '../shared/azure/clients.js';
import { loadConfig } from '../shared/config.js';
import { startAzurite, type Azurite } from './azurite.js';
import { startLocalHost, type LocalFunctionInfo, type LocalHost } from './host/host.js';
import { startKeyVaultStandIn, type KeyVaultRealism, type KeyVaultStandIn } from './keyvault/server.js';
import { DEFAULT_GRAPH_PORT, startGraphStandIn, type GraphRealism, type GraphStandIn } from './graph/server.js';

/** The folder with package.json above this file (also right when this file runs compiled from dist/dev/). */
function findRepoRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) return resolve(from, '..');
  }
}

export const repoRoot = findRepoRoot(dirname(fileURLToPath(import.meta.url)));
export const defaultDataDir = join(repoRoot, 'dev', 'data');
export const defaultEntry = join(repoRoot, 'dist', 'functions', 'index.js');

/** Fixed ports of `npm start` (ports: 'default'). */
export const defaultPorts = {
  blob: 10000,
  queue: 10001,
  table: 10002,
  keyVault: 10010,
  graph: DEFAULT_GRAPH_PORT,
  functions: 7071,
} as const;

/** The Graph stand-in's users file in the data folder. */
export const GRAPH_USERS_FILE = 'graph-users.json';

/** Where Event Grid puts events it could not deliver (infra/modules/storage.bicep); not the app's, so not in its config. */
const DEAD_LETTER_CONTAINER = 'deadletter';

export interface StackOptions {
  /** Data folder; dev/data by default. */
  dataDir?: string;
  /** 'default' = fixed ports (see defaultPorts), 'free' = ports picked by the OS. */
  ports?: 'default' | 'free';
  /** App entry module; dist/functions/index.js by default (built by `npm run build`). */
  entry?: string;
  /** Extra app settings, merged over the stack's own. */
  settings?: Record<string, string>;
  /** Azurite keeps its data in memory only (see AzuriteOptions.inMemory); on disk in the data folder by default. */
  azuriteInMemory?: boolean;
  /** Throttling, latency and faults of the vault stand-in. */
  kvRealism?: KeyVaultRealism;
  /** Throttling, latency and faults of the Graph stand-in. */
  graphRealism?: GraphRealism;
  /** Blob/queue polling interval of the host (ms). */
  pollIntervalMs?: number;
  /** host.json the host follows; the app root's by default (tests shrink functionTimeout with their own). */
  hostJson?: string;
  /** Log lines of all parts; console.log by default. */
  log?: (line: string) => void;
  /** Enforce function keys as in Azure (off by default, like `func start`); the console's roles are always enforced. */
  enforceAuth?: boolean;
  masterKey?: string;
  functionKeys?: Record<string, string>;
}

export interface Stack {
  dataDir: string;
  settingsPath: string;
  /** The app settings the host runs with (the Values of local.settings.json). */
  settings: Record<string, string>;
  azurite: Pick<Azurite, 'blobUrl' | 'queueUrl' | 'tableUrl' | 'connectionString' | 'pid'>;
  keyVault: Pick<KeyVaultStandIn, 'url' | 'port' | 'setRealism' | 'stats'>;
  graph: Pick<GraphStandIn, 'url' | 'port' | 'setRealism' | 'stats' | 'injectFaults' | 'seedUsers' | 'devices'>;
  functions: { url: string; port: number; list: LocalFunctionInfo[] };
  /** The console's address (development sign-in at /.auth/login/aad on the same host). */
  consoleUrl: string;
  /** Function keys are enforced (else key-less calls pass). */
  enforceAuth: boolean;
  /** Resolves when the host runs no invocation and has no blob or message pending. */
  idle(): Promise<void>;
  /** Stops the host (waiting for running invocations), then Graph, the vault, then Azurite. */
  close(): Promise<void>;
}

export function stackSettings(
  connectionString: string,
  keyVaultUrl: string,
  graphBaseUrl: string,
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    FUNCTIONS_WORKER_RUNTIME: 'node',
    AzureWebJobsStorage: connectionString,
    PipelineStorage: connectionString,
    KEY_VAULT_URL: keyVaultUrl,
    GRAPH_BASE_URL: graphBaseUrl,
    SEED_TRIGGER_SOURCE: 'LogsAndContainerScan',
    ...extra,
  };
}

/** The containers and tables the app's settings name (as the infrastructure creates them in Azure). */
async function createStorage(settings: Record<string, string>, connectionString: string): Promise<void> {
  await ensureStorageResources(loadConfig(settings));
  await BlobServiceClient.fromConnectionString(connectionString).getContainerClient(DEAD_LETTER_CONTAINER).createIfNotExists();
}

export async function startStack(opts: StackOptions = {}): Promise<Stack> {
  const log = opts.log ?? ((line: string) => console.log(line));
  const dataDir = resolve(opts.dataDir ?? defaultDataDir);
  const free = opts.ports === 'free';
  const entry = resolve(opts.entry ?? defaultEntry);
  if (!existsSync(entry)) throw new Error(`App entry ${entry} not found: run "npm run build" first.`);
  await mkdir(dataDir, { recursive: true });

  const stops: (() => Promise<void>)[] = [];
  const stopAll = async (): Promise<void> => {
    for (const stop of stops.splice(0).reverse()) {
      try {
        await stop();
      } catch (error) {
        log(`[stack] shutdown step failed: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  };

  try {
    const azurite = await startAzurite({
      dataDir: join(dataDir, 'azurite'),
      ports: free ? 'free' : 'default',
      inMemory: opts.azuriteInMemory,
    });
    stops.push(() => azurite.close());

    const vault = await startKeyVaultStandIn({
      port: free ? 0 : defaultPorts.keyVault,
      persistPath: join(dataDir, 'keyvault.jsonl'),
      realism: opts.kvRealism,
    });
    stops.push(() => vault.close());

    const graph = await startGraphStandIn({
      port: free ? 0 : defaultPorts.graph,
      persistPath: join(dataDir, 'graph.jsonl'),
      usersFile: join(dataDir, GRAPH_USERS_FILE),
      realism: opts.graphRealism,
    });
    stops.push(() => graph.close());

    const settings = stackSettings(azurite.connectionString, vault.url, graph.url, opts.settings);
    await createStorage(settings, azurite.connectionString);
    const settingsPath = join(dataDir, 'local.settings.json');
    await writeFile(settingsPath, JSON.stringify({ IsEncrypted: false, Values: settings }, null, 2) + '\n');

    const host: LocalHost = await startLocalHost({
      entry,
      port: free ? 0 : defaultPorts.functions,
      settings,
      storageConnectionString: azurite.connectionString,
      pollIntervalMs: opts.pollIntervalMs,
      ...(opts.hostJson && { hostJson: opts.hostJson }),
      log,
      enforceAuth: opts.enforceAuth,
      masterKey: opts.masterKey,
      functionKeys: opts.functionKeys,
      // The local stack plays App Service Authentication, so the console works without an Entra tenant.
      devSignIn: true,
    });
    stops.push(() => host.close());

    return {
      dataDir,
      settingsPath,
      settings,
      azurite: {
        blobUrl: azurite.blobUrl,
        queueUrl: azurite.queueUrl,
        tableUrl: azurite.tableUrl,
        connectionString: azurite.connectionString,
        pid: azurite.pid,
      },
      keyVault: { url: vault.url, port: vault.port, setRealism: (r) => vault.setRealism(r), stats: () => vault.stats() },
      graph: {
        url: graph.url,
        port: graph.port,
        setRealism: (r) => graph.setRealism(r),
        stats: () => graph.stats(),
        injectFaults: (f) => graph.injectFaults(f),
        seedUsers: (u) => graph.seedUsers(u),
        devices: () => graph.devices(),
      },
      functions: { url: host.url, port: host.port, list: host.functions },
      consoleUrl: `${host.url}/api/console`,
      enforceAuth: opts.enforceAuth ?? false,
      idle: () => host.idle(),
      close: stopAll,
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

/** Human-readable "where is everything" lines for the console. */
export function describeStack(stack: Stack): string[] {
  return [
    'Local Azure stack is running:',
    `  Functions host   ${stack.functions.url}/api/... (${stack.functions.list.length} functions, listed above)`,
    `  Azurite blob     ${stack.azurite.blobUrl}`,
    `  Azurite queue    ${stack.azurite.queueUrl}`,
    `  Azurite table    ${stack.azurite.tableUrl}`,
    `  Key Vault        ${stack.keyVault.url} (local stand-in)`,
    `  Microsoft Graph  ${stack.graph.url} (local stand-in, GRAPH_BASE_URL; ${stack.graph.stats().users} users: add them in ${GRAPH_USERS_FILE} in the data folder or with POST ${stack.graph.url}/_admin/users)`,
    `  Data folder      ${stack.dataDir}`,
    `  App settings     ${stack.settingsPath}`,
    `  Storage connection string (Azurite's well-known dev account): ${stack.azurite.connectionString}`,
    `  Function keys    ${stack.enforceAuth ? 'enforced (--enforce-auth): call the API with ?code= or x-functions-key' : 'not enforced: key-less API calls pass, as with func start (--enforce-auth to require them)'}`,
    `Console ${stack.consoleUrl}  (development sign-in: choose Helpdesk or Admin; local only, Entra ID signs people in in Azure)`,
    'WARNING: the local vault and Graph files (keyvault.jsonl, graph.jsonl in the data folder) hold secrets in PLAINTEXT.',
    '         They are for development only: never load real token seeds into them.',
    'Press Ctrl-C to stop.',
  ];
}
