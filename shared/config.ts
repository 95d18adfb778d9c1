/**
 * Every app setting the pipeline reads, in one typed place. Validated once at
 * start: a bad value fails with a message that names the setting.
 */
import { otpauthIssuerFault } from './formats/otpauth.js';
import { TOKEN_SECRET_PREFIX, overlapsTokenSecretNames } from './pipeline/secret-names.js';
import { RECONCILE_MIN_AGE_FLOOR_MINUTES } from './pipeline/liveness.js';

export type TriggerSource = 'EventGrid' | 'LogsAndContainerScan';

export interface StorageConnection {
  /** A connection string (Azurite, or a user who chose keys), or identity-based service URIs. */
  connectionString?: string;
  blobServiceUri?: string;
  queueServiceUri?: string;
  tableServiceUri?: string;
  /** Client id of a user-assigned managed identity. */
  clientId?: string;
}

export type ImportMode = 'csv' | 'graph';

export interface PipelineConfig {
  /** Name of the app setting (prefix) that holds the pipeline's storage connection; the triggers bind to it. */
  storageConnectionName: string;
  storage: StorageConnection;
  keyVaultUrl: string;
  /** Client id of the user-assigned identity (DefaultAzureCredential), if any. */
  azureClientId?: string;
  triggerSource: TriggerSource;
  /** state: records every instance shares (the vault's budget ledger, ingest checkpoints); no secret. */
  containers: { seeds: string; assignments: string; imports: string; reports: string; quarantine: string; results: string; state: string };
  tables: { tokens: string; assignments: string };
  transportKeyPrefix: string;
  defaultTransportKeySecret?: string;
  /** Key Vault's budgets per 10-second window. */
  vaultCreateBudget: number;
  vaultReadBudget: number;
  /** Share of each vault budget kept for calls a person waits for (verify, health), 0 to 0.5. */
  vaultInteractiveShare: number;
  /** First backoff after a 429 or transient vault error; doubles up to 16x. */
  vaultRetryBaseMs: number;
  /** Deadline of one vault call; a call past it counts as transient and is retried (read first). */
  vaultTimeoutMs: number;
  lockoutLimit: number;
  /** The first lock's duration (0: until an administrator unlocks); each further lock lasts twice as long. */
  lockoutMinutes: number;
  /** The longest a lock lasts, however many came before. */
  lockoutMaxMinutes: number;
  importMaxRows: number;
  reconcileMinAgeMinutes: number;
  reconcileSchedule: string;
  /** A requested import build waits this long after the last request (and for ingests in flight). */
  buildSettleSeconds: number;
  /** Timer that runs a due build. */
  buildQueueSchedule: string;
  maxSeedFileBytes: number;
  /** An ingest invocation saves its checkpoint and hands the rest to a new one after this long (below functionTimeout). */
  ingestInvocationBudgetSeconds: number;
  /** Queue of ingest hand-offs (a message names the seed file to continue). */
  ingestContinueQueue: string;
  recoverDeletedSecrets: boolean;
  /** Issuer of the otpauth:// URIs of programmed tokens (what an app or burner shows). */
  otpauthIssuer: string;
  /** Most tokens, and most body bytes, one programming request may carry. */
  programMaxTokens: number;
  programMaxBodyBytes: number;
  /** True when the vault is the local stand-in (plain HTTP on loopback). */
  localVault: boolean;
  /** Microsoft Graph's origin (no version path), e.g. https://graph.microsoft.com. */
  graphBaseUrl: string;
  /** True when Graph is the local stand-in (plain HTTP on loopback). */
  localGraph: boolean;
  /** csv: the build writes Entra's import CSV; graph: it creates and assigns the tokens through Microsoft Graph. */
  importMode: ImportMode;
  /** Graph mode: assign tokens to holders of privileged directory roles too (refused by default). */
  graphAllowPrivilegedUsers: boolean;
  /** Graph mode: only members of this group (object id) get tokens; unset: anyone. */
  graphAllowedGroupId?: string;
  /** Graph mode: an administrator may activate a token with a code computed from its stored seed (off by default). */
  graphActivateFromSeed: boolean;
}

export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  constructor(
    readonly setting: string,
    message: string,
  ) {
    super(`App setting ${setting}: ${message}`);
    this.name = 'ConfigError';
  }
}

/**
 * host.json's functionTimeout is 30 minutes; an ingest hands off after 25, leaving room for its last calls, its
 * checkpoint and its report (test/config.test.ts holds the two together).
 */
export const INGEST_INVOCATION_BUDGET_DEFAULT_SECONDS = 25 * 60;

/** Setting names and defaults, also listed in the README. */
export const SETTINGS = {
  KEY_VAULT_URL: { required: true },
  SEED_TRIGGER_SOURCE: { default: 'LogsAndContainerScan' },
  SEEDS_CONTAINER: { default: 'seeds' },
  ASSIGNMENTS_CONTAINER: { default: 'assignments' },
  IMPORTS_CONTAINER: { default: 'imports' },
  REPORTS_CONTAINER: { default: 'reports' },
  QUARANTINE_CONTAINER: { default: 'quarantine' },
  RESULTS_CONTAINER: { default: 'results' },
  STATE_CONTAINER: { default: 'state' },
  TOKENS_TABLE: { default: 'tokens' },
  ASSIGNMENTS_TABLE: { default: 'assignments' },
  TRANSPORT_KEY_PREFIX: { default: 'transport-' },
  DEFAULT_TRANSPORT_KEY_SECRET: { default: '' },
  KEY_VAULT_CREATE_BUDGET: { default: '300' },
  KEY_VAULT_READ_BUDGET: { default: '4000' },
  KEY_VAULT_INTERACTIVE_PERCENT: { default: '5' },
  KEY_VAULT_RETRY_BASE_MS: { default: '1000' },
  KEY_VAULT_TIMEOUT_MS: { default: '15000' },
  VERIFY_LOCKOUT_LIMIT: { default: '10' },
  VERIFY_LOCKOUT_MINUTES: { default: '15' },
  VERIFY_LOCKOUT_MAX_MINUTES: { default: String(24 * 60) },
  IMPORT_MAX_ROWS: { default: '0' },
  RECONCILE_MIN_AGE_MINUTES: { default: '15' },
  RECONCILE_SCHEDULE: { default: '0 */5 * * * *' },
  BUILD_SETTLE_SECONDS: { default: '30' },
  BUILD_QUEUE_SCHEDULE: { default: '*/10 * * * * *' },
  MAX_SEED_FILE_BYTES: { default: String(20 * 1024 * 1024) },
  INGEST_INVOCATION_BUDGET_SECONDS: { default: String(INGEST_INVOCATION_BUDGET_DEFAULT_SECONDS) },
  INGEST_CONTINUE_QUEUE: { default: 'ingest-continue' },
  RECOVER_DELETED_SECRETS: { default: 'false' },
  OTPAUTH_ISSUER: { default: 'Entra ID' },
  PROGRAM_MAX_TOKENS: { default: '500' },
  PROGRAM_MAX_BODY_BYTES: { default: String(1024 * 1024) },
  AZURE_CLIENT_ID: { default: '' },
  GRAPH_BASE_URL: { default: 'https://graph.microsoft.com' },
  IMPORT_MODE: { default: 'csv' },
  GRAPH_ALLOW_PRIVILEGED_USERS: { default: 'false' },
  GRAPH_ALLOWED_GROUP_ID: { default: '' },
  GRAPH_ACTIVATE_FROM_SEED: { default: 'false' },
} as const;

export const STORAGE_CONNECTION_NAME = 'PipelineStorage';

type Env = Record<string, string | undefined>;

/** A setting's value as loadConfig reads it (trimmed, else its default), unvalidated: for function registration. */
export function settingValue(env: Env, name: keyof typeof SETTINGS): string {
  return text(env, name);
}

function text(env: Env, name: keyof typeof SETTINGS): string {
  const spec = SETTINGS[name] as { required?: boolean; default?: string };
  const value = env[name]?.trim();
  if (value) return value;
  if (spec.required) throw new ConfigError(name, 'is required but not set.');
  return spec.default ?? '';
}

function integer(env: Env, name: keyof typeof SETTINGS, min: number, max: number): number {
  const raw = text(env, name);
  if (!/^\d+$/.test(raw)) throw new ConfigError(name, `must be a whole number, got ${JSON.stringify(raw)}.`);
  const n = Number(raw);
  if (n < min || n > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${n}.`);
  return n;
}

function bool(env: Env, name: keyof typeof SETTINGS): boolean {
  const raw = text(env, name).toLowerCase();
  if (raw === 'true' || raw === '1') return true;
  if (raw === 'false' || raw === '0') return false;
  throw new ConfigError(name, `must be true or false, got ${JSON.stringify(raw)}.`);
}

/** Queue names: 3-63 lower-case letters, digits and single dashes, like containers. */
function queueName(env: Env, name: keyof typeof SETTINGS): string {
  const value = text(env, name);
  if (!/^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$/.test(value))
    throw new ConfigError(name, `${JSON.stringify(value)} is not a valid queue name.`);
  return value;
}

/** Container names: 3-63 lower-case letters, digits and single dashes. */
function containerName(env: Env, name: keyof typeof SETTINGS): string {
  const value = text(env, name);
  if (!/^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$/.test(value))
    throw new ConfigError(name, `${JSON.stringify(value)} is not a valid blob container name.`);
  return value;
}

function tableName(env: Env, name: keyof typeof SETTINGS): string {
  const value = text(env, name);
  if (!/^[A-Za-z][A-Za-z0-9]{2,62}$/.test(value)) throw new ConfigError(name, `${JSON.stringify(value)} is not a valid table name.`);
  return value;
}

export function storageConnection(env: Env, connectionName: string): StorageConnection {
  const direct = env[connectionName]?.trim();
  if (direct) {
    if (direct === 'UseDevelopmentStorage=true' || /AccountName=|BlobEndpoint=/i.test(direct)) return { connectionString: direct };
    throw new ConfigError(
      connectionName,
      'is set but is not a storage connection string; for identity-based connections set ' +
        `${connectionName}__blobServiceUri, __queueServiceUri and __tableServiceUri instead.`,
    );
  }
  const blob = env[`${connectionName}__blobServiceUri`]?.trim();
  const queue = env[`${connectionName}__queueServiceUri`]?.trim();
  const table = env[`${connectionName}__tableServiceUri`]?.trim();
  const account = env[`${connectionName}__accountName`]?.trim();
  const out: StorageConnection = {
    blobServiceUri: blob ?? (account ? `https://${account}.blob.core.windows.net` : undefined),
    queueServiceUri: queue ?? (account ? `https://${account}.queue.core.windows.net` : undefined),
    tableServiceUri: table ?? (account ? `https://${account}.table.core.windows.net` : undefined),
  };
  const clientId = env[`${connectionName}__clientId`]?.trim();
  if (clientId) out.clientId = clientId;
  for (const [key, value] of [
    ['blobServiceUri', out.blobServiceUri],
    ['tableServiceUri', out.tableServiceUri],
  ] as const) {
    if (!value) throw new ConfigError(`${connectionName}__${key}`, `is required (or set ${connectionName} to a connection string).`);
    try {
      new URL(value);
    } catch {
      throw new ConfigError(`${connectionName}__${key}`, `${JSON.stringify(value)} is not a URL.`);
    }
  }
  return out;
}

/**
 * A running build's heartbeat can be this old without the build being dead (shared/pipeline/liveness.ts); a
 * smaller age would let the reconciler take back the claims of a live build, and the token be exported twice.
 */
function reconcileMinAge(env: Env): number {
  const minutes = integer(env, 'RECONCILE_MIN_AGE_MINUTES', 0, 100_000);
  if (minutes < RECONCILE_MIN_AGE_FLOOR_MINUTES) {
    throw new ConfigError(
      'RECONCILE_MIN_AGE_MINUTES',
      `must be at least ${RECONCILE_MIN_AGE_FLOOR_MINUTES}, got ${minutes}: a running build may go that long between heartbeats, and a smaller age would let the reconciler release its claims (the same token exported twice).`,
    );
  }
  return minutes;
}

function otpauthIssuer(env: Env): string {
  const issuer = text(env, 'OTPAUTH_ISSUER');
  const fault = otpauthIssuerFault(issuer);
  if (fault) throw new ConfigError('OTPAUTH_ISSUER', `${JSON.stringify(issuer)} cannot be an otpauth issuer: ${fault}.`);
  return issuer;
}

export function isLoopbackUrl(url: URL): boolean {
  return url.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
}

/** Graph's origin: https, or plain http on loopback for the local stand-in; no path (the adapter adds /beta, /v1.0). */
function graphBaseUrl(env: Env): { url: URL; local: boolean } {
  const raw = text(env, 'GRAPH_BASE_URL');
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError('GRAPH_BASE_URL', `${JSON.stringify(raw)} is not a URL.`);
  }
  const local = isLoopbackUrl(url);
  if (url.protocol !== 'https:' && !local)
    throw new ConfigError('GRAPH_BASE_URL', 'must use https (plain http is accepted only for the local stand-in on loopback).');
  if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.hash) {
    throw new ConfigError(
      'GRAPH_BASE_URL',
      'must have no path, for example https://graph.microsoft.com (the app adds /beta and /v1.0 itself).',
    );
  }
  return { url, local };
}

function importMode(env: Env): ImportMode {
  const mode = text(env, 'IMPORT_MODE').toLowerCase();
  if (mode !== 'csv' && mode !== 'graph') throw new ConfigError('IMPORT_MODE', `must be csv or graph, got ${JSON.stringify(mode)}.`);
  return mode;
}

export function loadConfig(env: Env = process.env): PipelineConfig {
  const keyVaultUrl = text(env, 'KEY_VAULT_URL');
  let vaultUrl: URL;
  try {
    vaultUrl = new URL(keyVaultUrl);
  } catch {
    throw new ConfigError('KEY_VAULT_URL', `${JSON.stringify(keyVaultUrl)} is not a URL.`);
  }
  const localVault = isLoopbackUrl(vaultUrl);
  if (vaultUrl.protocol !== 'https:' && !localVault)
    throw new ConfigError('KEY_VAULT_URL', 'must use https (plain http is accepted only for the local stand-in on loopback).');
  if (vaultUrl.pathname !== '/' && vaultUrl.pathname !== '')
    throw new ConfigError('KEY_VAULT_URL', 'must have no path, for example https://my-vault.vault.azure.net.');

  const graph = graphBaseUrl(env);

  const triggerSource = text(env, 'SEED_TRIGGER_SOURCE');
  if (triggerSource !== 'EventGrid' && triggerSource !== 'LogsAndContainerScan') {
    throw new ConfigError('SEED_TRIGGER_SOURCE', `must be EventGrid or LogsAndContainerScan, got ${JSON.stringify(triggerSource)}.`);
  }
  const prefix = text(env, 'TRANSPORT_KEY_PREFIX');
  if (!/^[0-9a-zA-Z-]{1,40}$/.test(prefix))
    throw new ConfigError('TRANSPORT_KEY_PREFIX', 'must be 1-40 characters of 0-9, a-z, A-Z and -.');
  if (overlapsTokenSecretNames(prefix)) {
    throw new ConfigError(
      'TRANSPORT_KEY_PREFIX',
      `${JSON.stringify(prefix)} overlaps the token secrets' names (${JSON.stringify(TOKEN_SECRET_PREFIX)}...): neither may start with the other, or a seed file could name a token's secret as its transport key. Use a prefix such as "transport-".`,
    );
  }
  const defaultTransport = text(env, 'DEFAULT_TRANSPORT_KEY_SECRET');
  if (defaultTransport && !defaultTransport.toLowerCase().startsWith(prefix.toLowerCase())) {
    throw new ConfigError('DEFAULT_TRANSPORT_KEY_SECRET', `must start with the transport key prefix ${JSON.stringify(prefix)}.`);
  }

  const config: PipelineConfig = {
    storageConnectionName: STORAGE_CONNECTION_NAME,
    storage: storageConnection(env, STORAGE_CONNECTION_NAME),
    keyVaultUrl: vaultUrl.origin,
    triggerSource,
    containers: {
      seeds: containerName(env, 'SEEDS_CONTAINER'),
      assignments: containerName(env, 'ASSIGNMENTS_CONTAINER'),
      imports: containerName(env, 'IMPORTS_CONTAINER'),
      reports: containerName(env, 'REPORTS_CONTAINER'),
      quarantine: containerName(env, 'QUARANTINE_CONTAINER'),
      results: containerName(env, 'RESULTS_CONTAINER'),
      state: containerName(env, 'STATE_CONTAINER'),
    },
    tables: { tokens: tableName(env, 'TOKENS_TABLE'), assignments: tableName(env, 'ASSIGNMENTS_TABLE') },
    transportKeyPrefix: prefix,
    vaultCreateBudget: integer(env, 'KEY_VAULT_CREATE_BUDGET', 1, 100_000),
    vaultReadBudget: integer(env, 'KEY_VAULT_READ_BUDGET', 1, 1_000_000),
    vaultInteractiveShare: integer(env, 'KEY_VAULT_INTERACTIVE_PERCENT', 0, 50) / 100,
    vaultRetryBaseMs: integer(env, 'KEY_VAULT_RETRY_BASE_MS', 1, 60_000),
    vaultTimeoutMs: integer(env, 'KEY_VAULT_TIMEOUT_MS', 100, 300_000),
    lockoutLimit: integer(env, 'VERIFY_LOCKOUT_LIMIT', 1, 1000),
    lockoutMinutes: integer(env, 'VERIFY_LOCKOUT_MINUTES', 0, 100_000),
    lockoutMaxMinutes: integer(env, 'VERIFY_LOCKOUT_MAX_MINUTES', 1, 100_000),
    importMaxRows: integer(env, 'IMPORT_MAX_ROWS', 0, 1_000_000),
    reconcileMinAgeMinutes: reconcileMinAge(env),
    reconcileSchedule: text(env, 'RECONCILE_SCHEDULE'),
    buildSettleSeconds: integer(env, 'BUILD_SETTLE_SECONDS', 0, 3600),
    buildQueueSchedule: text(env, 'BUILD_QUEUE_SCHEDULE'),
    maxSeedFileBytes: integer(env, 'MAX_SEED_FILE_BYTES', 1, 1024 * 1024 * 1024),
    ingestInvocationBudgetSeconds: integer(env, 'INGEST_INVOCATION_BUDGET_SECONDS', 1, 24 * 60 * 60),
    ingestContinueQueue: queueName(env, 'INGEST_CONTINUE_QUEUE'),
    recoverDeletedSecrets: bool(env, 'RECOVER_DELETED_SECRETS'),
    otpauthIssuer: otpauthIssuer(env),
    programMaxTokens: integer(env, 'PROGRAM_MAX_TOKENS', 1, 10_000),
    programMaxBodyBytes: integer(env, 'PROGRAM_MAX_BODY_BYTES', 1024, 64 * 1024 * 1024),
    localVault,
    graphBaseUrl: graph.url.origin,
    localGraph: graph.local,
    importMode: importMode(env),
    graphAllowPrivilegedUsers: bool(env, 'GRAPH_ALLOW_PRIVILEGED_USERS'),
    graphActivateFromSeed: bool(env, 'GRAPH_ACTIVATE_FROM_SEED'),
  };
  const groupId = text(env, 'GRAPH_ALLOWED_GROUP_ID');
  if (groupId) {
    if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(groupId))
      throw new ConfigError('GRAPH_ALLOWED_GROUP_ID', `must be a group's object id (a GUID), got ${JSON.stringify(groupId)}.`);
    config.graphAllowedGroupId = groupId.toLowerCase();
  }
  if (config.lockoutMaxMinutes < config.lockoutMinutes) {
    throw new ConfigError(
      'VERIFY_LOCKOUT_MAX_MINUTES',
      `must be at least VERIFY_LOCKOUT_MINUTES (${config.lockoutMinutes}), got ${config.lockoutMaxMinutes}.`,
    );
  }
  if (defaultTransport) config.defaultTransportKeySecret = defaultTransport;
  const clientId = text(env, 'AZURE_CLIENT_ID');
  if (clientId) config.azureClientId = clientId;
  const fields = config.reconcileSchedule.split(/\s+/);
  if (fields.length !== 6)
    throw new ConfigError('RECONCILE_SCHEDULE', 'must be a six-field NCRONTAB expression, for example "0 */5 * * * *".');
  if (config.buildQueueSchedule.split(/\s+/).length !== 6)
    throw new ConfigError('BUILD_QUEUE_SCHEDULE', 'must be a six-field NCRONTAB expression, for example "*/10 * * * * *".');
  return config;
}
