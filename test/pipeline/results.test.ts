import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AssignmentService } from '../../shared/pipeline/assignments.js';
import { BuildService } from '../../shared/pipeline/build.js';
import { IngestService } from '../../shared/pipeline/ingest.js';
import { listInventoryPage } from '../../shared/pipeline/inventory-query.js';
import { parseHistory } from '../../shared/pipeline/inventory.js';
import type { AssignmentEntity, Logger, TokenEntity } from '../../shared/pipeline/ports.js';
import { REASON_MAX_CHARS, ResultsService } from '../../shared/pipeline/results.js';
import { PacedVault } from '../../shared/pipeline/vault.js';
import { ManualClock } from '../helpers/clock.js';
import { MemoryBlobStore, MemorySecretStore, MemoryTable } from '../helpers/memory-ports.js';
import { leakHits, piecesOf, secretForms } from '../helpers/secret-scan.js';
import { decodeBase32 } from '../../shared/core/encoding.js';

const S1 = 'CZU6XXGHCCGCOL6YO3WW472WEWB34FVJ';
const S2 = 'EZDOCQANJA5PGME5QRSZCR7GLUFJG4JG';
const S3 = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
const pieces = piecesOf([S1, S2, S3].flatMap((s) => secretForms(decodeBase32(s)!)));
const containers = {
  seeds: 'seeds',
  assignments: 'assignments',
  imports: 'imports',
  reports: 'reports',
  quarantine: 'quarantine',
  results: 'results',
};

/** Three tokens stored, assigned and exported in one CSV. */
async function exportedBatch() {
  const clock = new ManualClock('2026-11-29T10:00:00Z');
  const blobs = new MemoryBlobStore(clock);
  const vault = new PacedVault(new MemorySecretStore(), { createBudget: 1000, readBudget: 1000, retry: { baseDelayMs: 1 } });
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
  const build = new BuildService({ blobs, vault, tokens, assignments: assignmentTable, clock, log, containers, maxRows: 0 });
  const results = new ResultsService({ blobs, tokens, clock, log, containers, maxFileBytes: 1_000_000 });
  await blobs.write(
    'seeds',
    'b.csv',
    `upn,serial number,secret key,time interval,manufacturer,model\n,1001,${S1},30,T,M\n,1002,${S2},30,T,M\n,1003,${S3},30,T,M\n`,
  );
  await ingest.ingest('b.csv');
  await blobs.write('assignments', 'a.csv', 'upn,serial number\na@contoso.com,1001\nb@contoso.com,1002\nc@contoso.com,1003\n');
  await assignments.ingest('a.csv');
  const first = await build.build();
  assert.equal(first.exported.length, 3);
  clock.advance(60_000);
  const drop = async (name: string, text: string) => {
    await blobs.write('results', name, text);
    return results.ingest(name);
  };
  const state = async (serial: string) => (await tokens.get(serial))?.value.state;
  const everything = () =>
    [
      lines.join('\n'),
      ...blobs.names('reports').map((n) => blobs.text('reports', n)!),
      ...[...tokens.rows.values()].map((r) => JSON.stringify(r)),
    ].join('\n');
  return { clock, blobs, tokens, build, results, drop, state, lines, everything };
}

describe("Entra's failure file", () => {
  it('marks each listed token importFailed with the reason, leaves the others and writes a report', async () => {
    const h = await exportedBatch();
    const r = await h.drop('Failures_entra-oath.csv', 'Serial Number,UPN,Failure reason\n1002,b@contoso.com,User not found in tenant\n');
    assert.equal(r.outcome, 'completed');
    assert.deepEqual(r.failed, ['1002']);
    assert.equal(await h.state('1002'), 'importFailed');
    assert.equal(await h.state('1001'), 'exported');
    assert.equal(await h.state('1003'), 'exported');
    const last = parseHistory((await h.tokens.get('1002'))!.value.history).at(-1)!;
    assert.equal(last.event, 'import-failed');
    assert.match(last.detail!, /User not found in tenant/);
    assert.ok(r.report?.startsWith('results/'), r.report);
    const report = JSON.parse(h.blobs.text('reports', r.report!)!) as {
      counts: { importFailed: number };
      items: { serial: string; result: string }[];
    };
    assert.equal(report.counts.importFailed, 1);
    assert.deepEqual(report.items, [{ serial: '1002', result: 'importFailed' }]);
    const page = await listInventoryPage(h.tokens, { state: 'importFailed', pageSize: 100 });
    assert.deepEqual(
      page.items.map((t) => t.serial),
      ['1002'],
    );
  });

  it('finds the columns whatever their case and spacing, and reads the reason from Error or Status message', async () => {
    for (const [header, row] of [
      ['serialnumber;Error', '1001;Duplicate token'],
      ['Serial number,Status message', '1001,Duplicate token'],
      ['"UPN","SERIAL NUMBER","Reason"', 'a@contoso.com,1001,Duplicate token'],
    ] as const) {
      const h = await exportedBatch();
      const r = await h.drop('Failures_x.csv', `${header}\n${row}\n`);
      assert.deepEqual(r.failed, ['1001'], header);
      assert.match(parseHistory((await h.tokens.get('1001'))!.value.history).at(-1)!.detail!, /Duplicate token/, header);
    }
  });

  it('never reads a secret column, redacts a secret in the reason, caps its length and skips misaligned rows', async () => {
    const h = await exportedBatch();
    const text = [
      'upn,serial number,secret key,time interval,manufacturer,model,reason',
      `a@contoso.com,1001,${S1},30,T,M,Secret ${S1} refused`,
      // A missing cell shifts the secret towards the serial column: no cell of the row is read.
      `b@contoso.com,${S2},30,T,M,bad`,
      `c@contoso.com,1003,${S3},30,T,M,${'long reason '.repeat(50)}`,
    ].join('\n');
    const r = await h.drop('Failures_secret.csv', text);
    assert.deepEqual(r.failed.sort(), ['1001', '1003']);
    assert.equal(await h.state('1002'), 'exported');
    const detail = parseHistory((await h.tokens.get('1003'))!.value.history).at(-1)!.detail!;
    assert.ok(detail.length <= 'Failures_secret.csv: '.length + REASON_MAX_CHARS, `${detail.length}`);
    assert.deepEqual(leakHits(pieces, h.everything()), []);
    const report = JSON.parse(h.blobs.text('reports', r.report!)!) as { problems: { code: string }[] };
    assert.ok(
      report.problems.some((p) => p.code === 'CSV_ROW_MISALIGNED'),
      JSON.stringify(report.problems),
    );
  });

  it('refuses a file that names no serial the inventory knows, and says why', async () => {
    const h = await exportedBatch();
    const r = await h.drop('Failures_other.csv', 'Serial Number,Reason\n9998,User not found\n9999,User not found\n');
    assert.equal(r.outcome, 'rejected');
    assert.deepEqual(r.failed, []);
    for (const s of ['1001', '1002', '1003']) assert.equal(await h.state(s), 'exported');
    const report = JSON.parse(h.blobs.text('reports', r.report!)!) as { summary: string; problems: { code: string; message: string }[] };
    assert.deepEqual(
      report.problems.map((p) => p.code),
      ['RESULTS_NO_KNOWN_SERIAL'],
    );
    assert.match(report.problems[0]!.message, /none of its 2 serial number/);
  });

  it('refuses a file without a serial number column', async () => {
    const h = await exportedBatch();
    const r = await h.drop('Failures_bad.csv', 'User,Reason\na@contoso.com,nope\n');
    assert.equal(r.outcome, 'rejected');
    const report = JSON.parse(h.blobs.text('reports', r.report!)!) as { problems: { code: string }[] };
    assert.deepEqual(
      report.problems.map((p) => p.code),
      ['CSV_MISSING_COLUMN'],
    );
  });

  it('lets exactly the failed tokens be exported again', async () => {
    const h = await exportedBatch();
    await h.drop('Failures_entra.csv', 'Serial Number,Reason\n1002,User not found\n1003,User not found\n');
    const again = await h.build.build({ reexport: ['1002', '1003'] });
    assert.deepEqual(again.notExported, []);
    assert.deepEqual(
      again.exported.map((e) => e.serial),
      ['1002', '1003'],
    );
    assert.equal(again.files.length, 1);
    assert.equal(await h.state('1002'), 'exported');
    // Without naming them, a build leaves importFailed tokens alone.
    await h.drop('Failures_entra2.csv', 'Serial Number,Reason\n1001,User not found\n');
    const plain = await h.build.build();
    assert.deepEqual(plain.exported, []);
    assert.equal(await h.state('1001'), 'importFailed');
  });
});
