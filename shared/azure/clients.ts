/**
 * Builds the Azure adapters from the pipeline's config. SDK modules are loaded on first use with dynamic imports:
 * importing this file costs nothing at a function app's cold start, and a function that only needs the vault never
 * loads the storage SDKs.
 */
import { epochMs, systemClock } from '../pipeline/clock.js';
import type { TokenCredential } from '@azure/identity';
import type { PipelineConfig } from '../config.js';
import type { AssignmentEntity, BlobStore, EntityTable, HardwareOathDirectory, SecretStore, TokenEntity } from '../pipeline/ports.js';
import type { GraphDirectoryOptions } from './graph-directory.js';
import type { NullableKeys } from './entity-table.js';

export interface AzureAdapters {
  blobs: BlobStore;
  secrets: SecretStore;
  tokens: EntityTable<TokenEntity>;
  assignments: EntityTable<AssignmentEntity>;
}

export interface SecretStoreFactoryOptions {
  /** Deadline of each Key Vault call in ms (default 15 s). */
  secretTimeoutMs?: number;
}

export interface TableFactoryOptions {
  /** Page size of list() (tests use small pages). */
  listPageSize?: number;
}

export interface BlobStoreFactoryOptions {
  listPageSize?: number;
}

/** The RowKey of every row of each table (its PartitionKey is the row's key). */
export const TOKENS_ROW_KIND = 'token';
export const ASSIGNMENTS_ROW_KIND = 'assignment';

/** Every nullable field of TokenEntity; the type makes the compiler flag a field added to TokenEntity but not here. */
const TOKEN_NULLABLE_FIELDS: Record<NullableKeys<TokenEntity>, true> = {
  upn: true,
  buildId: true,
  exportFile: true,
  exportingSince: true,
  deviceId: true,
  userId: true,
  methodId: true,
  lastAcceptedStep: true,
  activatedBuildId: true,
  lockedUntil: true,
  lastVerifiedAt: true,
  driftSeconds: true,
  counter: true,
};

const ONE_HOUR_MS = 60 * 60 * 1000;

/**
 * Storage calls: a few quick SDK retries for blips, then a TransientError for the pipeline's own backoff. The SDK
 * defaults (4 tries, delays up to 2 minutes) could hold a function invocation for minutes.
 */
export const BLOB_RETRY_OPTIONS = { maxTries: 3, retryDelayInMs: 500, maxRetryDelayInMs: 4_000 };
export const TABLE_RETRY_OPTIONS = { maxRetries: 2, retryDelayInMs: 500, maxRetryDelayInMs: 4_000 };

/** The loopback stand-ins (Key Vault, Graph) accept any bearer token. */
const localStandInCredential: TokenCredential = {
  getToken: () => Promise.resolve({ token: 'local-stand-in', expiresOnTimestamp: epochMs(systemClock) + ONE_HOUR_MS }),
};

// One credential per identity: DefaultAzureCredential caches its tokens, so reuse it across clients and calls.
const credentials = new Map<string, Promise<TokenCredential>>();

function azureCredential(clientId: string | undefined): Promise<TokenCredential> {
  const key = clientId ?? '';
  let credential = credentials.get(key);
  if (!credential) {
    credential = import('@azure/identity').then(
      ({ DefaultAzureCredential }) => new DefaultAzureCredential(clientId ? { managedIdentityClientId: clientId } : {}),
    );
    credentials.set(key, credential);
  }
  return credential;
}

function isHttpConnectionString(connectionString: string): boolean {
  return (
    connectionString === 'UseDevelopmentStorage=true' ||
    /(BlobEndpoint|TableEndpoint)=http:\/\//i.test(connectionString) ||
    /DefaultEndpointsProtocol=http;/i.test(connectionString)
  );
}

/** With a single user-assigned identity, the storage and vault client ids are the same; either setting serves both. */
function storageClientId(config: PipelineConfig): string | undefined {
  return config.storage.clientId ?? config.azureClientId;
}

function vaultClientId(config: PipelineConfig): string | undefined {
  return config.azureClientId ?? config.storage.clientId;
}

function requireUri(value: string | undefined, setting: string): string {
  if (!value) throw new Error(`Storage connection is missing ${setting}.`);
  return value;
}

async function blobServiceClient(config: PipelineConfig) {
  const { BlobServiceClient } = await import('@azure/storage-blob');
  const { storage } = config;
  const options = { retryOptions: BLOB_RETRY_OPTIONS };
  if (storage.connectionString) return BlobServiceClient.fromConnectionString(storage.connectionString, options);
  return new BlobServiceClient(
    requireUri(storage.blobServiceUri, `${config.storageConnectionName}__blobServiceUri`),
    await azureCredential(storageClientId(config)),
    options,
  );
}

export async function createBlobStore(config: PipelineConfig, options: BlobStoreFactoryOptions = {}): Promise<BlobStore> {
  const [service, { AzureBlobStore }] = await Promise.all([blobServiceClient(config), import('./blob-store.js')]);
  return new AzureBlobStore(service, { listPageSize: options.listPageSize });
}

export async function createSecretStore(config: PipelineConfig, options: SecretStoreFactoryOptions = {}): Promise<SecretStore> {
  const [{ SecretClient }, { KeyVaultSecretStore }] = await Promise.all([import('@azure/keyvault-secrets'), import('./secret-store.js')]);
  // SDK retries off: the pipeline's rate limiter and backoff must see, and count, every throttled call.
  const retryOptions = { maxRetries: 0 };
  const client = config.localVault
    ? new SecretClient(config.keyVaultUrl, localStandInCredential, {
        retryOptions,
        allowInsecureConnection: true,
        disableChallengeResourceVerification: true,
      })
    : new SecretClient(config.keyVaultUrl, await azureCredential(vaultClientId(config)), { retryOptions });
  return new KeyVaultSecretStore(client, { timeoutMs: options.secretTimeoutMs });
}

/**
 * Microsoft Graph for Graph mode, with the app's identity (the same one as the vault), or the loopback stand-in's
 * any-token credential when GRAPH_BASE_URL is local.
 */
export async function createHardwareOathDirectory(
  config: PipelineConfig,
  options: Omit<GraphDirectoryOptions, 'baseUrl' | 'credential'> = {},
): Promise<HardwareOathDirectory> {
  const [{ GraphHardwareOathDirectory }, credential] = await Promise.all([
    import('./graph-directory.js'),
    config.localGraph ? Promise.resolve(localStandInCredential) : azureCredential(vaultClientId(config)),
  ]);
  return new GraphHardwareOathDirectory({ ...options, baseUrl: config.graphBaseUrl, credential });
}

async function tableClient(config: PipelineConfig, tableName: string) {
  const { TableClient } = await import('@azure/data-tables');
  const { storage } = config;
  if (storage.connectionString) {
    return TableClient.fromConnectionString(storage.connectionString, tableName, {
      retryOptions: TABLE_RETRY_OPTIONS,
      allowInsecureConnection: isHttpConnectionString(storage.connectionString),
    });
  }
  return new TableClient(
    requireUri(storage.tableServiceUri, `${config.storageConnectionName}__tableServiceUri`),
    tableName,
    await azureCredential(storageClientId(config)),
    {
      retryOptions: TABLE_RETRY_OPTIONS,
    },
  );
}

export async function createTokenTable(config: PipelineConfig, options: TableFactoryOptions = {}): Promise<EntityTable<TokenEntity>> {
  const [client, { AzureEntityTable }] = await Promise.all([tableClient(config, config.tables.tokens), import('./entity-table.js')]);
  return new AzureEntityTable<TokenEntity>(client, TOKENS_ROW_KIND, {
    nullableFields: Object.keys(TOKEN_NULLABLE_FIELDS) as NullableKeys<TokenEntity>[],
    listPageSize: options.listPageSize,
  });
}

export async function createAssignmentTable(
  config: PipelineConfig,
  options: TableFactoryOptions = {},
): Promise<EntityTable<AssignmentEntity>> {
  const [client, { AzureEntityTable }] = await Promise.all([tableClient(config, config.tables.assignments), import('./entity-table.js')]);
  return new AzureEntityTable<AssignmentEntity>(client, ASSIGNMENTS_ROW_KIND, { listPageSize: options.listPageSize });
}

export async function createAzureAdapters(config: PipelineConfig, options: SecretStoreFactoryOptions = {}): Promise<AzureAdapters> {
  const [blobs, secrets, tokens, assignments] = await Promise.all([
    createBlobStore(config),
    createSecretStore(config, options),
    createTokenTable(config),
    createAssignmentTable(config),
  ]);
  return { blobs, secrets, tokens, assignments };
}

/**
 * Creates the pipeline's containers and tables when missing. For the local stack and tests; in Azure the
 * infrastructure creates them.
 */
export async function ensureStorageResources(config: PipelineConfig): Promise<void> {
  const blobService = await blobServiceClient(config);
  await Promise.all(Object.values(config.containers).map((name) => blobService.getContainerClient(name).createIfNotExists()));
  for (const name of new Set(Object.values(config.tables))) {
    // createTable treats "already exists" as success.
    await (await tableClient(config, name)).createTable();
  }
}
