/**
 * The whole local stack (dev/start.ts through test/helpers/stack.ts):
 * Azurite, the Key Vault and Graph stand-ins and the Functions host start,
 * serve, and stop cleanly twice in a row on the same data folder, leaving no process.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlobServiceClient } from '@azure/storage-blob';
import { TableServiceClient } from '@azure/data-tables';
import { createLocalSecretClient } from '../../../dev/keyvault/client.js';
import { isProcessAlive, startTestStack, type TestStack } from '../../helpers/stack.js';

const fixtureEntry = 'test/dev/host/fixtures/app/index.js';
const fixtureSettings = { FIXTURE_TICK_SCHEDULE: '0 0 0 1 1 *' };

const dataDirPromise = mkdtemp(join(tmpdir(), 'stack-test-'));
after(async () => rm(await dataDirPromise, { recursive: true, force: true }));

async function processedCount(stack: TestStack, prefix: string): Promise<number> {
  const processed = BlobServiceClient.fromConnectionString(stack.connectionString).getContainerClient('processed');
  if (!(await processed.exists())) return 0;
  let n = 0;
  for await (const _item of processed.listBlobsFlat({ prefix })) n += 1;
  return n;
}

const GRAPH_DEVICES = '/beta/directory/authenticationMethodDevices/hardwareOathDevices';

async function graphCall(stack: TestStack, method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
  const res = await fetch(stack.graphUrl + path, {
    method,
    headers: { authorization: 'Bearer local', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as unknown) : undefined };
}

async function graphSerials(stack: TestStack): Promise<string[]> {
  const res = await fetch(`${stack.graphUrl}/_admin/devices`);
  return ((await res.json()) as { devices: { serialNumber: string }[] }).devices.map((d) => d.serialNumber);
}

async function waitForCount(stack: TestStack, prefix: string, expected: number): Promise<void> {
  const deadline = Date.now() + 15000;
  while (Date.now() < deadline) {
    if ((await processedCount(stack, prefix)) >= expected) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`blob ${prefix} was not processed`);
}

void describe('local stack', () => {
  void it('starts and stops cleanly twice in a row on the same data folder, leaving no process', async (t) => {
    const dataDir = await dataDirPromise;

    // First run: everything is reachable and wired together; the Graph stand-in takes its users from the data folder.
    await writeFile(join(dataDir, 'graph-users.json'), JSON.stringify([{ userPrincipalName: 'stack.user@contoso.com' }]));
    const first = await startTestStack(t, { entry: fixtureEntry, dataDir, settings: fixtureSettings });
    const res = await fetch(`${first.functionsUrl}/api/defaultRoute`);
    assert.equal(res.status, 200);
    const vaultSetting = (await (await fetch(`${first.functionsUrl}/api/setting/KEY_VAULT_URL`)).json()) as { value: string };
    assert.equal(vaultSetting.value, first.keyVaultUrl);
    const sourceSetting = (await (await fetch(`${first.functionsUrl}/api/setting/SEED_TRIGGER_SOURCE`)).json()) as { value: string };
    assert.equal(sourceSetting.value, 'LogsAndContainerScan');

    const localSettings = JSON.parse(await readFile(join(dataDir, 'local.settings.json'), 'utf8')) as { Values: Record<string, string> };
    assert.equal(localSettings.Values.AzureWebJobsStorage, first.connectionString);
    assert.equal(localSettings.Values.PipelineStorage, first.connectionString);
    assert.equal(localSettings.Values.KEY_VAULT_URL, first.keyVaultUrl);
    assert.equal(localSettings.Values.GRAPH_BASE_URL, first.graphUrl);
    assert.equal((await graphCall(first, 'GET', '/v1.0/users/stack.user@contoso.com')).status, 200);
    const device = {
      serialNumber: 'STACK-1',
      manufacturer: 'Contoso',
      model: 'C200',
      secretKey: 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP',
      timeIntervalInSeconds: 30,
    };
    assert.equal((await graphCall(first, 'POST', GRAPH_DEVICES, device)).status, 201);
    assert.equal(localSettings.Values.FUNCTIONS_WORKER_RUNTIME, 'node');
    assert.equal(localSettings.Values.FIXTURE_TICK_SCHEDULE, '0 0 0 1 1 *');

    const blobs = BlobServiceClient.fromConnectionString(first.connectionString);
    const containers: string[] = [];
    for await (const c of blobs.listContainers()) containers.push(c.name);
    for (const name of ['seeds', 'assignments', 'imports', 'reports', 'quarantine', 'deadletter'])
      assert.ok(containers.includes(name), name);
    const tables: string[] = [];
    for await (const table of TableServiceClient.fromConnectionString(first.connectionString, {
      allowInsecureConnection: true,
    }).listTables()) {
      tables.push(table.name ?? '');
    }
    assert.deepEqual(tables.sort(), ['assignments', 'tokens']);

    const secrets = createLocalSecretClient(first.keyVaultUrl);
    await secrets.setSecret('stack-test', 'not-a-real-seed');
    const incoming = blobs.getContainerClient('incoming');
    await incoming.createIfNotExists();
    await incoming.getBlockBlobClient('stack.csv').upload('x', 1);
    await first.idle();
    assert.equal(await processedCount(first, 'stack.csv/'), 1);

    await first.stop();
    assert.match(first.output(), /\[stack\] stopped\./);
    assert.equal(isProcessAlive(first.pid), false);
    assert.equal(isProcessAlive(first.azuritePid), false);

    // Second run on the same folder: state is still there and the blob is not processed again.
    const second = await startTestStack(t, { entry: fixtureEntry, dataDir, settings: fixtureSettings });
    const again = createLocalSecretClient(second.keyVaultUrl);
    assert.equal((await again.getSecret('stack-test')).value, 'not-a-real-seed');
    assert.deepEqual(await graphSerials(second), ['STACK-1']);
    await BlobServiceClient.fromConnectionString(second.connectionString)
      .getContainerClient('incoming')
      .getBlockBlobClient('later.csv')
      .upload('y', 1);
    await waitForCount(second, 'later.csv/', 1);
    assert.equal(await processedCount(second, 'stack.csv/'), 1);

    await second.stop();
    assert.match(second.output(), /\[stack\] stopped\./);
    assert.equal(isProcessAlive(second.pid), false);
    assert.equal(isProcessAlive(second.azuritePid), false);
  });

  void it('comes back after a crash (SIGKILL) with its data', async (t) => {
    const stack = await startTestStack(t, { entry: fixtureEntry, settings: fixtureSettings });
    const blobs = BlobServiceClient.fromConnectionString(stack.connectionString);
    const seeds = blobs.getContainerClient('seeds');
    await seeds.getBlockBlobClient('kept.csv').upload('kept', 4);
    await createLocalSecretClient(stack.keyVaultUrl).setSecret('crash-test', 'value');
    const device = {
      serialNumber: 'CRASH-1',
      manufacturer: 'Contoso',
      model: 'C200',
      secretKey: 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP',
      timeIntervalInSeconds: 30,
    };
    assert.equal((await graphCall(stack, 'POST', GRAPH_DEVICES, device)).status, 201);

    const revived = await stack.restart({ crash: true });
    assert.equal(isProcessAlive(stack.pid), false);
    assert.equal(isProcessAlive(stack.azuritePid), false);
    const text = await BlobServiceClient.fromConnectionString(revived.connectionString)
      .getContainerClient('seeds')
      .getBlobClient('kept.csv')
      .downloadToBuffer();
    assert.equal(text.toString('utf8'), 'kept');
    assert.equal((await createLocalSecretClient(revived.keyVaultUrl).getSecret('crash-test')).value, 'value');
    assert.deepEqual(await graphSerials(revived), ['CRASH-1'], 'an acknowledged Graph write survives a kill -9');
  });

  void it('starts a second host of the same app against the same storage and stand-ins; a blob runs on one host only', async (t) => {
    const stack = await startTestStack(t, { entry: fixtureEntry, settings: fixtureSettings, extraHosts: 1 });
    assert.equal(stack.extraHosts.length, 1);
    const extra = stack.extraHosts[0]!;
    assert.notEqual(extra.url, stack.functionsUrl);
    const vaultSetting = (await (await fetch(`${extra.url}/api/setting/KEY_VAULT_URL`)).json()) as { value: string };
    assert.equal(vaultSetting.value, stack.keyVaultUrl);
    const third = await stack.startExtraHost();
    assert.equal(stack.extraHosts.length, 2);

    const incoming = BlobServiceClient.fromConnectionString(stack.connectionString).getContainerClient('incoming');
    await incoming.createIfNotExists();
    const names = ['one.csv', 'two.csv', 'three.csv', 'four.csv'];
    await Promise.all(names.map((name) => incoming.getBlockBlobClient(name).upload(name, name.length)));
    await stack.idleAll();
    for (const name of names) assert.equal(await processedCount(stack, `${name}/`), 1, name);
    const executed = (lines: string) => lines.split('\n').filter((l) => /Executed 'Functions\.recordBlob' \(Succeeded/.test(l)).length;
    const total = executed(stack.output()) + stack.extraHosts.reduce((sum, h) => sum + executed(h.logs().join('\n')), 0);
    assert.equal(total, names.length);

    await stack.stop();
    assert.equal(isProcessAlive(extra.pid), false);
    assert.equal(isProcessAlive(third.pid), false);
  });
});
