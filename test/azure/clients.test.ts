// The adapter factories: built from the app's own config, against Azurite and the Key Vault stand-in.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { BlobServiceClient } from '@azure/storage-blob';
import { TableServiceClient } from '@azure/data-tables';
import type { Azurite } from '../../dev/azurite.js';
import type { KeyVaultStandIn } from '../../dev/keyvault/server.js';
import {
  createAssignmentTable,
  createAzureAdapters,
  createBlobStore,
  createSecretStore,
  createTokenTable,
  ensureStorageResources,
} from '../../shared/azure/clients.js';
import type { PipelineConfig } from '../../shared/config.js';
import { TransientError } from '../../shared/pipeline/errors.js';
import type { TokenEntity } from '../../shared/pipeline/ports.js';
import { collect, startFailingServer, startTestAzurite, startTestVault, testConfig } from './helpers.js';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
let azurite: Azurite;
let vault: KeyVaultStandIn;
let config: PipelineConfig;

before(async () => {
  [azurite, vault] = await Promise.all([startTestAzurite(), startTestVault()]);
  config = testConfig(azurite.connectionString, vault.url, { SEEDS_CONTAINER: 'seed-files', TOKENS_TABLE: 'oathTokens' });
});

after(async () => {
  await Promise.all([azurite?.close(), vault?.close()]);
});

void test('ensureStorageResources creates every container and table, and is idempotent', async () => {
  await ensureStorageResources(config);
  await ensureStorageResources(config);
  const blobService = BlobServiceClient.fromConnectionString(azurite.connectionString);
  const containers: string[] = [];
  for await (const c of blobService.listContainers()) containers.push(c.name);
  assert.deepEqual(containers.sort(), Object.values(config.containers).sort());
  const tableService = TableServiceClient.fromConnectionString(azurite.connectionString, { allowInsecureConnection: true });
  const tables: string[] = [];
  for await (const t of tableService.listTables()) tables.push(t.name ?? '');
  assert.deepEqual(tables.sort(), ['assignments', 'oathTokens']);
});

void test('createAzureAdapters wires every port to the configured containers, tables and vault', async () => {
  await ensureStorageResources(config);
  const { blobs, secrets, tokens, assignments } = await createAzureAdapters(config, { secretTimeoutMs: 5_000 });

  await blobs.write(config.containers.seeds, 'batch.csv', 'serial,secret\n');
  assert.equal(Buffer.from((await blobs.read('seed-files', 'batch.csv'))!.bytes).toString(), 'serial,secret\n');

  const { version } = await secrets.set('oath-a1', 'seed', { contentType: 'text/plain', tags: { serial: 'a1' } });
  assert.equal((await secrets.get('oath-a1'))?.version, version);
  assert.equal(vault.stats().secrets, 1);

  const token: TokenEntity = {
    serial: 'A/1',
    state: 'stored',
    manufacturer: 'm',
    model: 'x',
    type: 'totp',
    algorithm: 'SHA1',
    digits: 6,
    period: 30,
    secretBytes: 20,
    secretName: 'oath-x-412f31',
    secretVersion: version,
    batch: 'b',
    createdAt: 't',
    updatedAt: 't',
    upn: null,
    buildId: null,
    exportFile: null,
    exportingSince: null,
    deviceId: null,
    userId: null,
    methodId: null,
    lastAcceptedStep: null,
    activatedBuildId: null,
    failedAttempts: 0,
    lockedUntil: null,
    lastVerifiedAt: null,
    driftSeconds: null,
    counter: null,
    history: '[]',
  };
  await tokens.insert('A/1', token);
  assert.deepEqual((await tokens.get('A/1'))?.value, token, 'token nulls read back as null');
  await assignments.insert('A/1', { serial: 'A/1', upn: 'ana@contoso.com', sourceFile: 'a.csv', line: 2, createdAt: 't' });

  // Fresh adapters over the same tables see the rows.
  const tokenTable = await createTokenTable(config);
  assert.deepEqual(
    (await collect(tokenTable.list({ state: 'stored' }))).map((t) => t.key),
    ['A/1'],
  );
  const assignmentTable = await createAssignmentTable(config);
  assert.deepEqual(
    (await collect(assignmentTable.list({ upn: 'ana@contoso.com' }))).map((a) => a.value.line),
    [2],
  );
});

void test('the granular factories work on their own; the secret store has SDK retries off', async () => {
  const secrets = await createSecretStore(config);
  vault.setRealism({ throttling: true, othersPer10s: 1 });
  const before = vault.stats().throttled;
  try {
    await secrets.get('oath-none').catch(() => undefined);
    await assert.rejects(secrets.get('oath-none'), (e: unknown) => e instanceof TransientError && e.status === 429);
    assert.equal(vault.stats().throttled - before, 1, 'a single request: the SDK did not retry');
  } finally {
    vault.setRealism({ throttling: false });
  }
  const blobs = await createBlobStore(config, { listPageSize: 1 });
  await ensureStorageResources(config);
  await blobs.write(config.containers.reports, 'r1', '1');
  await blobs.write(config.containers.reports, 'r2', '2');
  assert.deepEqual(
    (await collect(blobs.list(config.containers.reports))).map((b) => b.name),
    ['r1', 'r2'],
  );
});

void test('storage adapters give up after a few quick SDK retries with a TransientError', async (t) => {
  const failing = await startFailingServer(503);
  t.after(() => failing.close());
  const endpoint = `${failing.url}/devstoreaccount1`;
  const failingConfig = testConfig(
    azurite.connectionString
      .replace(/BlobEndpoint=[^;]+/, `BlobEndpoint=${endpoint}`)
      .replace(/TableEndpoint=[^;]+/, `TableEndpoint=${endpoint}`),
    vault.url,
  );
  const started = Date.now();
  await assert.rejects(
    (await createBlobStore(failingConfig)).properties('c', 'b'),
    (e: unknown) => e instanceof TransientError && e.status === 503,
  );
  assert.equal(failing.requests, 3, 'blob: 3 tries');
  await assert.rejects((await createTokenTable(failingConfig)).get('k'), (e: unknown) => e instanceof TransientError && e.status === 503);
  assert.equal(failing.requests, 6, 'table: 1 try + 2 retries');
  assert.ok(Date.now() - started < 10_000);
});

void test('building adapters touches no network: not the endpoints, not the identity endpoint; the first call does', async (t) => {
  // Every endpoint, and the managed identity endpoint (as App Service sets it), point at local servers that count
  // what they receive; they answer 400, which no client retries.
  const identityEndpoints = await startFailingServer(400);
  const keyEndpoints = await startFailingServer(400);
  const saved = { IDENTITY_ENDPOINT: process.env.IDENTITY_ENDPOINT, IDENTITY_HEADER: process.env.IDENTITY_HEADER };
  process.env.IDENTITY_ENDPOINT = `${identityEndpoints.url}/msi/token`;
  process.env.IDENTITY_HEADER = 'local-test';
  t.after(async () => {
    for (const [key, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
    await Promise.all([identityEndpoints.close(), keyEndpoints.close()]);
  });

  const at = `https://127.0.0.1:${identityEndpoints.port}`;
  const identityConfig: PipelineConfig = {
    ...config,
    storage: { blobServiceUri: `${at}/blob`, tableServiceUri: `${at}/table`, clientId: '00000000-0000-0000-0000-000000000001' },
    keyVaultUrl: `${at}/`,
    localVault: false,
  };
  const identityAdapters = await createAzureAdapters(identityConfig);
  await assert.rejects(createBlobStore({ ...identityConfig, storage: { tableServiceUri: `${at}/table` } }), /blobServiceUri/);

  const endpoint = `${keyEndpoints.url}/devstoreaccount1`;
  const keyConfig = testConfig(
    azurite.connectionString
      .replace(/BlobEndpoint=[^;]+/, `BlobEndpoint=${endpoint}`)
      .replace(/TableEndpoint=[^;]+/, `TableEndpoint=${endpoint}`),
    keyEndpoints.url,
  );
  const keyAdapters = await createAzureAdapters(keyConfig);

  // One first call per port: exactly one request each, so nothing else reached the server; these round trips
  // also give any connection started while building the time to show up.
  await keyAdapters.blobs.properties('c', 'b').catch(() => undefined);
  await keyAdapters.tokens.get('k').catch(() => undefined);
  await keyAdapters.secrets.get('oath-x').catch(() => undefined);
  assert.equal(keyEndpoints.requests, 3, 'one request per first call, none while building');
  assert.equal(identityEndpoints.connections, 0, 'building the identity-based adapters asked for no token and opened no connection');

  // The first call of an identity-based adapter asks for a token: the counting does see it.
  await identityAdapters.blobs.properties('c', 'b').catch(() => undefined);
  assert.ok(identityEndpoints.requests >= 1, 'the first call asked the identity endpoint for a token');
});

void test('importing the factories loads no Azure SDK; createSecretStore loads only the vault SDK', async () => {
  // A fresh process records every @azure/* module resolved.
  const script = `
    import { registerHooks } from 'node:module';
    const seen = new Set();
    registerHooks({ resolve(specifier, context, next) { if (specifier.startsWith('@azure/')) seen.add(specifier); return next(specifier, context); } });
    const clients = await import('./shared/azure/clients.ts');
    const atImport = [...seen];
    const { loadConfig } = await import('./shared/config.ts');
    await clients.createSecretStore(loadConfig({ PipelineStorage: 'UseDevelopmentStorage=true', KEY_VAULT_URL: 'http://127.0.0.1:1' }));
    console.log(JSON.stringify({ atImport, afterSecretStore: [...seen] }));
  `;
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: repoRoot,
  });
  const { atImport, afterSecretStore } = JSON.parse(stdout) as { atImport: string[]; afterSecretStore: string[] };
  assert.deepEqual(atImport, []);
  assert.ok(afterSecretStore.includes('@azure/keyvault-secrets'));
  for (const heavy of ['@azure/storage-blob', '@azure/data-tables', '@azure/identity'])
    assert.ok(!afterSecretStore.includes(heavy), `${heavy} was loaded`);
});
