/**
 * Input blobs whose names are near Azure's 1,024-character limit (issue 11, "Long blob names"): every blob the
 * pipeline derives from them (reports, quarantine copies) must still be a valid name, the plaintext seed file must
 * leave `seeds`, and one file that keeps failing must not stop the reconciler for the others. The memory blob
 * store refuses names past the limit as Azure does (400 OutOfRangeInput).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { AssignmentService } from '../../shared/pipeline/assignments.js';
import { IngestService } from '../../shared/pipeline/ingest.js';
import { secretNameForSerial } from '../../shared/pipeline/secret-names.js';
import type { AssignmentEntity, Logger, TokenEntity } from '../../shared/pipeline/ports.js';
import { Reconciler } from '../../shared/pipeline/reconcile.js';
import { PacedVault } from '../../shared/pipeline/vault.js';
import { ManualClock } from '../helpers/clock.js';
import { MemoryBlobStore, MemorySecretStore, MemoryTable } from '../helpers/memory-ports.js';

const S1 = 'CZU6XXGHCCGCOL6YO3WW472WEWB34FVJ';
const S2 = 'EZDOCQANJA5PGME5QRSZCR7GLUFJG4JG';
const HEADER = 'upn,serial number,secret key,time interval,manufacturer,model\n';
const containers = { seeds: 'seeds', assignments: 'assignments', imports: 'imports', reports: 'reports', quarantine: 'quarantine' };
const figure6 = () => readFileSync(new URL('../fixtures/pskc/rfc6030-figure6.pskcxml', import.meta.url));

/** Names at the edge of what Azure accepts as an input blob: 1,024 UTF-16 code units, deep folders, emoji. */
const LONG_NAMES = {
  ascii: `vendor/2026/${'x'.repeat(1024 - 'vendor/2026/'.length - '.csv'.length)}.csv`,
  emoji: `${'🔑'.repeat(510)}.csv`,
  cjk: `${'鍵'.repeat(1020)}.csv`,
  segments: `${'d/'.repeat(253)}f.csv`,
};

function harness() {
  const clock = new ManualClock('2026-11-29T10:00:00Z');
  const blobs = new MemoryBlobStore(clock);
  const secrets = new MemorySecretStore();
  const vault = new PacedVault(secrets, { createBudget: 1000, readBudget: 1000, retry: { baseDelayMs: 1 } });
  const tokens = new MemoryTable<TokenEntity>();
  const assignmentTable = new MemoryTable<AssignmentEntity>();
  const lines: string[] = [];
  const log: Logger = {
    info: (m, d) => lines.push(`${m} ${JSON.stringify(d ?? {})}`),
    warn: (m, d) => lines.push(`${m} ${JSON.stringify(d ?? {})}`),
    error: (m, d) => lines.push(`${m} ${JSON.stringify(d ?? {})}`),
  };
  const ingest = new IngestService({
    blobs,
    vault,
    tokens,
    clock,
    log,
    containers,
    transportKeyPrefix: 'transport-',
    maxSeedFileBytes: 1_000_000,
    recoverDeletedSecrets: false,
    leaseWaitMs: 200,
  });
  const assignments = new AssignmentService({
    blobs,
    assignments: assignmentTable,
    tokens,
    clock,
    log,
    containers,
    maxFileBytes: 1_000_000,
  });
  const reconciler = new Reconciler({ blobs, tokens, ingest, assignments, clock, log, containers, minAgeMinutes: 0 });
  return { clock, blobs, secrets, tokens, assignmentTable, lines, ingest, assignments, reconciler };
}

function assertValidNames(blobs: MemoryBlobStore, ...containerNames: string[]): void {
  for (const c of containerNames) {
    for (const name of blobs.names(c)) {
      assert.ok(name.length <= 1024, `${c}: a name of ${name.length} UTF-16 code units`);
      assert.ok(name.split('/').length <= 254, `${c}: a name of ${name.split('/').length} segments`);
    }
  }
}

describe('derived blob names of long input names', () => {
  for (const [kind, name] of Object.entries(LONG_NAMES)) {
    it(`ingests a seed file named at the limit (${kind}): reports written, seed file deleted`, async () => {
      assert.ok(name.length <= 1024 && name.split('/').length <= 254, 'the input name itself is valid in Azure');
      const h = harness();
      await h.blobs.write('seeds', name, `${HEADER},1001,${S1},30,T,M\n,1002,${S2},30,T,M\n`);
      const r = await h.ingest.ingest(name);
      assert.equal(r.outcome, 'completed');
      assert.deepEqual(h.blobs.names('seeds'), []);
      const report = JSON.parse(h.blobs.text('reports', r.reportName!)!) as { subject: string; counts: Record<string, number> };
      assert.equal(report.subject, `seeds/${name}`, 'the report names the input in full');
      assert.equal(report.counts.stored, 2);
      assert.equal(h.blobs.names('reports').length, 2);
      assertValidNames(h.blobs, 'reports');
    });

    it(`quarantines a seed file named at the limit (${kind}) next to its report`, async () => {
      const h = harness();
      await h.blobs.write('seeds', name, `${HEADER},1001,${S1},30,T,M\n,1002,MFRGG,30,T,M\n`);
      const r = await h.ingest.ingest(name);
      assert.equal(r.outcome, 'completed-with-problems');
      assert.deepEqual(h.blobs.names('seeds'), [], 'no plaintext seed file left in seeds');
      assert.ok(r.quarantinedAs && h.blobs.names('quarantine').includes(r.quarantinedAs));
      const folder = r.quarantinedAs.slice(0, r.quarantinedAs.lastIndexOf('/') + 1);
      assert.deepEqual(h.blobs.names('quarantine').sort(), [r.quarantinedAs, `${folder}report.json`].sort());
      assert.equal(h.blobs.text('quarantine', r.quarantinedAs), `${HEADER},1001,${S1},30,T,M\n,1002,MFRGG,30,T,M\n`);
      assertValidNames(h.blobs, 'reports', 'quarantine');
    });

    it(`processes an assignment list named at the limit (${kind})`, async () => {
      const h = harness();
      await h.blobs.write('assignments', name, 'upn,serial number\nhelga@contoso.com,1001\nnot-an-upn,1002\n');
      const r = await h.assignments.ingest(name);
      assert.equal(r.outcome, 'completed-with-problems');
      assert.deepEqual(h.blobs.names('assignments'), []);
      assert.ok(r.reportName && h.blobs.names('reports').includes(r.reportName));
      assert.equal(h.blobs.names('quarantine').length, 1);
      assertValidNames(h.blobs, 'reports', 'quarantine');
    });
  }

  it('gives two long names that differ only at the end different derived names', async () => {
    const h = harness();
    const a = `${'y'.repeat(1010)}-a.csv`;
    const b = `${'y'.repeat(1010)}-b.csv`;
    await h.blobs.write('seeds', a, `${HEADER},1001,${S1},30,T,M\n`, {});
    await h.blobs.write('seeds', b, `${HEADER},1002,${S2},30,T,M\n`, {});
    const ra = await h.ingest.ingest(a);
    const rb = await h.ingest.ingest(b);
    assert.notEqual(ra.reportName, rb.reportName);
    assert.equal(h.blobs.names('reports').length, 4);
  });

  it('keeps a quarantined file named report.json apart from its report', async () => {
    const h = harness();
    await h.blobs.write('seeds', 'in/report.json', 'not a seed file');
    const r = await h.ingest.ingest('in/report.json');
    assert.equal(r.outcome, 'rejected');
    assert.equal(h.blobs.text('quarantine', r.quarantinedAs!), 'not a seed file');
    assert.equal(h.blobs.names('quarantine').length, 2);
  });
});

describe('reconciler with a file that keeps failing', () => {
  it('quarantines a long-named seed file that always fails, and every run finishes', async () => {
    const h = harness();
    const name = LONG_NAMES.ascii;
    // A PSKC file whose transport key cannot be read: ingest throws every time.
    await h.blobs.write('seeds', name, figure6(), { metadata: { transportkeysecret: 'transport-x' } });
    const get = h.secrets.get.bind(h.secrets);
    h.secrets.get = (secret) => (secret === 'transport-x' ? Promise.reject(new Error('vault down')) : get(secret));
    const runs = [];
    for (let i = 0; i < 4; i++) runs.push(await h.reconciler.run());
    assert.deepEqual(
      runs.map((r) => r.seedsQuarantined),
      [0, 0, 1, 0],
    );
    assert.deepEqual(
      runs.map((r) => r.seedsFailed),
      [1, 1, 1, 0],
    );
    assert.deepEqual(h.blobs.names('seeds'), [], 'no plaintext seed file left in seeds');
    assert.equal(h.blobs.names('quarantine').length, 1);
    assertValidNames(h.blobs, 'quarantine');
  });

  it('isolates each file: one that cannot even be quarantined is logged and counted, the others proceed', async () => {
    const h = harness();
    await h.blobs.write('seeds', 'a-stuck.xml', figure6(), { metadata: { transportkeysecret: 'transport-x' } });
    await h.blobs.write('assignments', 'a-broken.csv', 'upn,serial number\nhelga@contoso.com,1001\n');
    const get = h.secrets.get.bind(h.secrets);
    h.secrets.get = (secret) => (secret === 'transport-x' ? Promise.reject(new Error('vault down')) : get(secret));
    // Storage refuses the quarantine copy of the stuck file; processing the broken assignment list always throws.
    const copy = h.blobs.copy.bind(h.blobs);
    h.blobs.copy = (from, name, to, toName) =>
      name === 'a-stuck.xml' ? Promise.reject(new Error('copy failed')) : copy(from, name, to, toName);
    const ingestList = h.assignments.ingest.bind(h.assignments);
    h.assignments.ingest = (name) => (name === 'a-broken.csv' ? Promise.reject(new Error('table down')) : ingestList(name));

    for (let i = 0; i < 2; i++) await h.reconciler.run();
    // Files arriving later (the trigger missed them) are still processed, run after run.
    await h.blobs.write('seeds', 'b-good.csv', `${HEADER},1001,${S1},30,T,M\n`);
    await h.blobs.write('assignments', 'b-good.csv', 'upn,serial number\nbob@contoso.com,1002\n');
    const third = await h.reconciler.run();
    assert.equal(third.seedsRetried, 1);
    assert.equal(third.seedsFailed, 1, 'the stuck file failed again and could not be quarantined');
    assert.equal(third.seedsQuarantined, 0);
    assert.equal(third.assignmentsRetried, 1);
    assert.equal(third.assignmentsFailed, 1);
    assert.equal((await h.secrets.get(secretNameForSerial('1001')))?.value, S1);
    assert.equal((await h.assignmentTable.get('1002'))?.value.upn, 'bob@contoso.com');
    assert.ok(h.lines.some((l) => l.startsWith('Reconciler could not quarantine seed file') && l.includes('a-stuck.xml')));
    assert.ok(h.lines.some((l) => l.startsWith('Reconciler could not process assignment list') && l.includes('a-broken.csv')));
  });
});
