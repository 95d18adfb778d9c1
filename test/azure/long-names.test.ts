// Long input names through the real blob adapter (@azure/storage-blob against Azurite). Azurite accepts names past
// Azure's limit, so the test checks every derived name against the limit itself (issue 11, "Long blob names").
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { BlobServiceClient } from '@azure/storage-blob';
import type { Azurite } from '../../dev/azurite.js';
import { AzureBlobStore } from '../../shared/azure/blob-store.js';
import { IngestService } from '../../shared/pipeline/ingest.js';
import type { Logger, TokenEntity } from '../../shared/pipeline/ports.js';
import { PacedVault } from '../../shared/pipeline/vault.js';
import { ManualClock } from '../helpers/clock.js';
import { MemorySecretStore, MemoryTable } from '../helpers/memory-ports.js';
import { collect, startTestAzurite, uniqueName } from './helpers.js';

const S1 = 'CZU6XXGHCCGCOL6YO3WW472WEWB34FVJ';
const HEADER = 'upn,serial number,secret key,time interval,manufacturer,model\n';

let azurite: Azurite;
let service: BlobServiceClient;
let store: AzureBlobStore;

before(async () => {
  azurite = await startTestAzurite();
  service = BlobServiceClient.fromConnectionString(azurite.connectionString);
  store = new AzureBlobStore(service);
});

after(async () => {
  await azurite?.close();
});

async function harness() {
  const containers = { seeds: uniqueName('seeds'), reports: uniqueName('reports'), quarantine: uniqueName('quarantine') };
  for (const c of Object.values(containers)) await service.getContainerClient(c).create();
  const log: Logger = { info: () => undefined, warn: () => undefined, error: () => undefined };
  const vault = new PacedVault(new MemorySecretStore(), { createBudget: 1000, readBudget: 1000, retry: { baseDelayMs: 1 } });
  const ingest = new IngestService({
    blobs: store,
    vault,
    tokens: new MemoryTable<TokenEntity>(),
    clock: new ManualClock(),
    log,
    containers,
    transportKeyPrefix: 'transport-',
    maxSeedFileBytes: 1_000_000,
    recoverDeletedSecrets: false,
  });
  const names = async (container: string) => (await collect(store.list(container))).map((b) => b.name);
  return { containers, ingest, names };
}

function assertWithinLimits(names: string[]): void {
  for (const name of names) {
    assert.ok(name.length <= 1024, `a name of ${name.length} characters`);
    assert.ok(Buffer.byteLength(name) <= 1024, `a name of ${Buffer.byteLength(name)} UTF-8 bytes`);
  }
}

void describe('derived names of long seed file names in Azure storage', () => {
  void test('a 1,024-character seed file name: reports within the limit, seed file deleted', async () => {
    const h = await harness();
    const name = `in/${'s'.repeat(1024 - 'in/'.length - '.csv'.length)}.csv`;
    await store.write(h.containers.seeds, name, `${HEADER},1001,${S1},30,T,M\n`);
    const r = await h.ingest.ingest(name);
    assert.equal(r.outcome, 'completed');
    assert.deepEqual(await h.names(h.containers.seeds), []);
    const reports = await h.names(h.containers.reports);
    assert.equal(reports.length, 2);
    assertWithinLimits(reports);
    const report = JSON.parse(Buffer.from((await store.read(h.containers.reports, r.reportName!))!.bytes).toString('utf8')) as {
      subject: string;
    };
    assert.equal(report.subject, `${h.containers.seeds}/${name}`);
  });

  void test('a rejected seed file with a long non-ASCII name moves to quarantine whole', async () => {
    const h = await harness();
    const name = `${'ключ'.repeat(255)}.csv`;
    await store.write(h.containers.seeds, name, 'not a seed file at all');
    const r = await h.ingest.ingest(name);
    assert.equal(r.outcome, 'rejected');
    assert.deepEqual(await h.names(h.containers.seeds), []);
    const quarantined = await h.names(h.containers.quarantine);
    assert.equal(quarantined.length, 2);
    assertWithinLimits([...quarantined, ...(await h.names(h.containers.reports))]);
    assert.equal(
      Buffer.from((await store.read(h.containers.quarantine, r.quarantinedAs!))!.bytes).toString('utf8'),
      'not a seed file at all',
    );
  });
});
