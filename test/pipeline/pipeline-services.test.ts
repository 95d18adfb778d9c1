import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parse } from 'csv-parse/sync';
import { AssignmentService } from '../../shared/pipeline/assignments.js';
import { BuildService } from '../../shared/pipeline/build.js';
import { IngestService } from '../../shared/pipeline/ingest.js';
import { publicTokenView } from '../../shared/pipeline/inventory.js';
import { secretNameForSerial } from '../../shared/pipeline/secret-names.js';
import type { AssignmentEntity, Logger, TokenEntity } from '../../shared/pipeline/ports.js';
import { Reconciler } from '../../shared/pipeline/reconcile.js';
import { UploadService } from '../../shared/pipeline/uploads.js';
import { PacedVault } from '../../shared/pipeline/vault.js';
import { MemoryBlobStore, MemorySecretStore, MemoryTable } from '../helpers/memory-ports.js';
import { ManualClock } from '../helpers/clock.js';
import { buildPskc, deterministicBytes } from '../fixtures/pskc/generate.js';

const S1 = 'CZU6XXGHCCGCOL6YO3WW472WEWB34FVJ';
const S2 = 'EZDOCQANJA5PGME5QRSZCR7GLUFJG4JG';
const S3 = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
const HEADER = 'upn,serial number,secret key,time interval,manufacturer,model\n';
const containers = { seeds: 'seeds', assignments: 'assignments', imports: 'imports', reports: 'reports', quarantine: 'quarantine' };

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
  const build = new BuildService({ blobs, vault, tokens, assignments: assignmentTable, clock, log, containers, maxRows: 0 });
  const reconciler = new Reconciler({
    blobs,
    tokens,
    ingest,
    assignments,
    clock: new ManualClock('2026-11-29T11:00:00Z'),
    log,
    containers,
    minAgeMinutes: 15,
  });
  return { blobs, secrets, vault, tokens, assignmentTable, lines, ingest, assignments, build, reconciler, clock, log };
}

describe('ingest service', () => {
  it('stores every secret, records the inventory, writes reports and deletes the seed file', async () => {
    const h = harness();
    await h.blobs.write('seeds', 'batch1.csv', `${HEADER},1001,${S1},30,Token2,C202\n,1002,${S2},60,Token2,C203\n`);
    const result = await h.ingest.ingest('batch1.csv');
    assert.equal(result.outcome, 'completed');
    assert.deepEqual(h.blobs.names('seeds'), []);
    assert.equal((await h.secrets.get(secretNameForSerial('1001')))?.value, S1);
    const row = await h.tokens.get('1002');
    assert.equal(row?.value.state, 'stored');
    assert.equal(row?.value.period, 60);
    assert.equal(row?.value.batch, result.batch);
    const report = JSON.parse(h.blobs.text('reports', result.reportName!)!) as { counts: Record<string, number>; problems: unknown[] };
    assert.equal(report.counts.stored, 2);
    assert.deepEqual(report.problems, []);
    assert.ok(h.blobs.names('reports').some((n) => n.endsWith('.html')));
    for (const n of h.blobs.names('reports'))
      for (const s of [S1, S2]) assert.ok(!h.blobs.text('reports', n)!.includes(s), `secret in ${n}`);
    assert.ok(!h.lines.join('\n').includes(S1));
  });

  it('is idempotent: the same file again writes no new secret version', async () => {
    const h = harness();
    await h.blobs.write('seeds', 'a.csv', `${HEADER},1001,${S1},30,T,M\n`);
    await h.ingest.ingest('a.csv');
    await h.blobs.write('seeds', 'a.csv', `${HEADER},1001,${S1},30,T,M\n`);
    const again = await h.ingest.ingest('a.csv');
    assert.equal(again.outcome, 'completed');
    assert.equal(again.counts?.unchanged, 1);
    assert.equal(h.secrets.versions(secretNameForSerial('1001')), 1);
  });

  it('reports a different secret for a known serial as a conflict and does not overwrite it', async () => {
    const h = harness();
    await h.blobs.write('seeds', 'a.csv', `${HEADER},1001,${S1},30,T,M\n`);
    await h.ingest.ingest('a.csv');
    await h.blobs.write('seeds', 'b.csv', `${HEADER},1001,${S2},30,T,M\n,1002,${S3},30,T,M\n`);
    const r = await h.ingest.ingest('b.csv');
    assert.equal(r.outcome, 'completed-with-problems');
    assert.equal((await h.secrets.get(secretNameForSerial('1001')))?.value, S1);
    assert.equal(h.secrets.versions(secretNameForSerial('1001')), 1);
    assert.ok(await h.tokens.get('1002'));
    assert.deepEqual(h.blobs.names('seeds'), []);
    assert.ok(r.quarantinedAs && h.blobs.names('quarantine').includes(r.quarantinedAs));
    const report = JSON.parse(h.blobs.text('reports', r.reportName!)!) as { problems: { code: string; serial: string }[] };
    assert.deepEqual(
      report.problems.map((p) => [p.code, p.serial]),
      [['VAULT_SECRET_CONFLICT', '1001']],
    );
  });

  it('quarantines a file with rejected rows after storing the valid ones', async () => {
    const h = harness();
    await h.blobs.write('seeds', 'mixed.csv', `${HEADER},1001,${S1},30,T,M\n,1002,MFRGG,30,T,M\n`);
    const r = await h.ingest.ingest('mixed.csv');
    assert.equal(r.outcome, 'completed-with-problems');
    assert.ok(await h.tokens.get('1001'));
    assert.equal(await h.tokens.get('1002'), undefined);
    assert.deepEqual(h.blobs.names('seeds'), []);
    assert.deepEqual(
      h.blobs.names('quarantine').sort(),
      [`mixed.csv-${r.batch!.split('@')[1]}/mixed.csv`, `mixed.csv-${r.batch!.split('@')[1]}/report.json`].sort(),
    );
  });

  it('quarantines a file that can never succeed, storing nothing', async () => {
    const h = harness();
    await h.blobs.write('seeds', 'amb.csv', `${HEADER},1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA,30,T,M\n`);
    const r = await h.ingest.ingest('amb.csv');
    assert.equal(r.outcome, 'rejected');
    assert.equal(h.secrets.sets, 0);
    assert.deepEqual(h.blobs.names('seeds'), []);
    const report = JSON.parse(h.blobs.text('reports', r.reportName!)!) as { problems: { code: string }[] };
    assert.deepEqual(
      report.problems.map((p) => p.code),
      ['ENCODING_AMBIGUOUS'],
    );
  });

  it('takes the secret encoding from blob metadata', async () => {
    const h = harness();
    await h.blobs.write('seeds', 'amb.csv', `${HEADER},1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA,30,T,M\n`, {
      metadata: { secretencoding: 'base32' },
    });
    assert.equal((await h.ingest.ingest('amb.csv')).outcome, 'completed');
  });

  it('refuses a transport key name outside the prefix', async () => {
    const h = harness();
    const figure6 = readFileSync(new URL('../fixtures/pskc/rfc6030-figure6.pskcxml', import.meta.url));
    await h.blobs.write('seeds', 'x.xml', figure6, { metadata: { transportkeysecret: secretNameForSerial('1001') } });
    const r = await h.ingest.ingest('x.xml');
    assert.equal(r.outcome, 'rejected');
    const report = JSON.parse(h.blobs.text('reports', r.reportName!)!) as { problems: { code: string }[] };
    assert.deepEqual(
      report.problems.map((p) => p.code),
      ['TRANSPORT_KEY_NOT_ALLOWED'],
    );
  });

  it('decrypts a PSKC file with the transport key named in metadata', async () => {
    const h = harness();
    await h.secrets.set('transport-vendor', '12345678901234567890123456789012', { contentType: 'text/plain', tags: {} });
    const figure6 = readFileSync(new URL('../fixtures/pskc/rfc6030-figure6.pskcxml', import.meta.url));
    await h.blobs.write('seeds', 'v.xml', figure6, { metadata: { transportkeysecret: 'transport-vendor' } });
    const r = await h.ingest.ingest('v.xml');
    // Figure 6 holds one 20-byte HOTP secret: stored in the vault (CSV import rules apply later).
    assert.equal(r.outcome, 'completed');
    assert.equal((await h.secrets.get(secretNameForSerial('987654321')))?.value, 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ');
  });

  it("keeps an HOTP token's counter exact above 2^53, from OATH CSV and PSKC to the inventory and its public view", async () => {
    const h = harness();
    // 2^53 + 1 and 2^64 - 1: a JS number would turn them into 2^53 and 2^64.
    const csvCounter = '9007199254740993';
    const pskcCounter = '18446744073709551615';
    await h.blobs.write(
      'seeds',
      'oath.csv',
      `# privacyIDEA OATH CSV\nH1, ${deterministicBytes('ingest/h1', 20).toString('hex')}, hotp, 6, ${csvCounter}\nT1, ${deterministicBytes('ingest/t1', 20).toString('hex')}, totp, 6, 30\n`,
    );
    const csv = await h.ingest.ingest('oath.csv');
    assert.equal(csv.outcome, 'completed');
    await h.blobs.write(
      'seeds',
      'keys.pskcxml',
      buildPskc({
        seed: 'ingest',
        keys: [
          { serial: 'P1', keyId: 'k1', type: 'hotp', digits: 6, secret: deterministicBytes('ingest/p1', 20), counter: BigInt(pskcCounter) },
        ],
      }),
    );
    assert.equal((await h.ingest.ingest('keys.pskcxml')).outcome, 'completed');

    const h1 = (await h.tokens.get('H1'))!.value;
    assert.equal(h1.counter, csvCounter);
    assert.equal(publicTokenView(h1).counter, csvCounter);
    assert.equal((await h.tokens.get('P1'))!.value.counter, pskcCounter);
    // A TOTP token has no counter; a row written before the column existed reads as none.
    const t1 = (await h.tokens.get('T1'))!.value;
    assert.equal(t1.counter, null);
    const { counter: _dropped, ...legacy } = t1;
    assert.equal(publicTokenView(legacy as TokenEntity).counter, null);
    // The decision the reader took is in the file's report, on the token's line.
    const report = JSON.parse(h.blobs.text('reports', csv.reportName!)!) as {
      problems: { code: string; severity: string; line?: number }[];
    };
    assert.deepEqual(
      report.problems.map((p) => [p.code, p.severity, p.line]),
      [['CELL_READING_DECIDED', 'info', 2]],
    );

    // Entra's CSV upload cannot take HOTP: a build reports it and exports only the TOTP token.
    await h.blobs.write('assignments', 'a.csv', 'upn,serial number\nhelga@contoso.com,H1\nbob@contoso.com,T1\n');
    await h.assignments.ingest('a.csv');
    const built = await h.build.build();
    const rows = parse<Record<string, string>>(h.blobs.text('imports', built.files[0]!)!, { columns: true });
    assert.deepEqual(
      rows.map((r) => r['serial number']),
      ['T1'],
    );
    const buildReport = JSON.parse(h.blobs.text('reports', built.report!)!) as { problems: { code: string; serial?: string }[] };
    assert.ok(
      buildReport.problems.some((p) => p.code === 'ENTRA_NOT_IMPORTABLE' && p.serial === 'H1'),
      JSON.stringify(buildReport.problems),
    );
    assert.equal((await h.tokens.get('H1'))!.value.state, 'stored');
  });

  it('handles the same blob delivered twice at once: one result, no duplicate versions', async () => {
    const h = harness();
    await h.blobs.write('seeds', 'dup.csv', `${HEADER},1001,${S1},30,T,M\n,1002,${S2},30,T,M\n`);
    const results = await Promise.all([h.ingest.ingest('dup.csv'), h.ingest.ingest('dup.csv')]);
    assert.deepEqual(results.map((r) => r.outcome).sort(), ['completed', 'gone']);
    assert.equal(h.secrets.versions(secretNameForSerial('1001')), 1);
    assert.equal(h.secrets.versions(secretNameForSerial('1002')), 1);
  });
});

describe('assignments and builds', () => {
  async function seeded() {
    const h = harness();
    await h.blobs.write('seeds', 's.csv', `${HEADER},1001,${S1},30,Token2,C202\n,1002,${S2},30,Token2,C202\n,1003,${S3},30,Token2,C202\n`);
    await h.ingest.ingest('s.csv');
    return h;
  }

  it('merges an assignment list, keeping existing assignments on conflict', async () => {
    const h = await seeded();
    await h.blobs.write('assignments', 'a.csv', 'upn,serial number\nhelga@contoso.com,1001\nbob@contoso.com,9999\n');
    const first = await h.assignments.ingest('a.csv');
    assert.equal(first.added, 2);
    await h.blobs.write('assignments', 'b.csv', 'upn,serial number\neve@contoso.com,1001\n');
    const second = await h.assignments.ingest('b.csv');
    assert.equal(second.outcome, 'rejected');
    assert.equal((await h.assignmentTable.get('1001'))?.value.upn, 'helga@contoso.com');
    assert.deepEqual(h.blobs.names('assignments'), []);
  });

  it('builds the import CSV, marks tokens exported, and confirms the upload', async () => {
    const h = await seeded();
    await h.blobs.write('assignments', 'a.csv', 'upn,serial number\nhelga@contoso.com,1001\nbob@contoso.com,1002\n');
    await h.assignments.ingest('a.csv');
    const result = await h.build.build();
    assert.equal(result.files.length, 1);
    const csv = h.blobs.text('imports', result.files[0]!)!;
    const rows = parse<Record<string, string>>(csv, { columns: true });
    assert.deepEqual(
      rows.map((r) => [r.upn, r['serial number'], r['secret key']]),
      [
        ['helga@contoso.com', '1001', S1],
        ['bob@contoso.com', '1002', S2],
      ],
    );
    assert.equal((await h.tokens.get('1001'))?.value.state, 'exported');
    assert.equal((await h.tokens.get('1003'))?.value.state, 'stored');
    const report = h.blobs.text('reports', result.report!)!;
    assert.ok(!report.includes(S1));
    // Nothing more to export.
    assert.deepEqual((await h.build.build()).files, []);
    const confirmed = await new UploadService({
      blobs: h.blobs,
      tokens: h.tokens,
      clock: h.clock,
      log: h.log,
      importsContainer: 'imports',
    }).confirm(result.files[0]!);
    assert.deepEqual(confirmed.imported, ['1001', '1002']);
    assert.deepEqual(h.blobs.names('imports'), []);
    assert.equal((await h.tokens.get('1002'))?.value.state, 'imported');
  });

  it('two builds racing never export a token twice', async () => {
    const h = await seeded();
    await h.blobs.write('assignments', 'a.csv', 'upn,serial number\na@contoso.com,1001\nb@contoso.com,1002\nc@contoso.com,1003\n');
    await h.assignments.ingest('a.csv');
    const [x, y] = await Promise.all([h.build.build(), h.build.build()]);
    const all = [...x.exported, ...y.exported].map((e) => e.serial).sort();
    assert.deepEqual(all, ['1001', '1002', '1003']);
    const listed = h.blobs
      .names('imports')
      .flatMap((f) => parse<Record<string, string>>(h.blobs.text('imports', f)!, { columns: true }).map((r) => r['serial number']));
    assert.deepEqual(listed.sort(), ['1001', '1002', '1003']);
  });

  it('re-exports named tokens on request', async () => {
    const h = await seeded();
    await h.blobs.write('assignments', 'a.csv', 'upn,serial number\na@contoso.com,1001\n');
    await h.assignments.ingest('a.csv');
    await h.build.build();
    const again = await h.build.build({ reexport: ['1001', '1003', 'nope'] });
    assert.deepEqual(
      again.exported.map((e) => e.serial),
      ['1001'],
    );
    assert.deepEqual(again.notExported.map((p) => [p.code, p.serial]).sort(), [
      ['TOKEN_NOT_FOUND', 'nope'],
      ['TOKEN_UNASSIGNED', '1003'],
    ]);
  });

  it('the reconciler settles an interrupted build from what reached storage', async () => {
    const h = await seeded();
    const now = '2026-11-29T10:00:00.000Z';
    for (const [serial, file] of [
      ['1001', 'present.csv'],
      ['1002', 'absent.csv'],
    ] as const) {
      const row = (await h.tokens.get(serial))!;
      await h.tokens.replace(
        serial,
        { ...row.value, state: 'exporting', buildId: 'b1', exportFile: file, exportingSince: now, upn: 'x@contoso.com' },
        row.etag,
      );
    }
    await h.blobs.write('imports', 'present.csv', 'upn,serial number\n');
    const r = await h.reconciler.run();
    assert.equal(r.exportsSettled, 1);
    assert.equal(r.exportsReleased, 1);
    assert.equal((await h.tokens.get('1001'))?.value.state, 'exported');
    assert.equal((await h.tokens.get('1002'))?.value.state, 'stored');
  });

  it('deletes an assignment only while its token is not on its way to Entra', async () => {
    const h = await seeded();
    await h.blobs.write('assignments', 'a.csv', 'upn,serial number\na@contoso.com,1001\nb@contoso.com,1002\n');
    await h.assignments.ingest('a.csv');
    assert.deepEqual(await h.assignments.remove('1002'), { status: 'deleted' });
    await h.build.build();
    assert.deepEqual(await h.assignments.remove('1001'), { status: 'refused', state: 'exported' });
    assert.deepEqual(await h.assignments.remove('nope'), { status: 'not-found' });
  });
});

describe('reconciler on stuck seed files', () => {
  it('processes a waiting seed file again, and quarantines one that keeps failing, counting on the blob itself', async () => {
    const h = harness();
    await h.blobs.write('seeds', 'late.csv', `${HEADER},1001,${S1},30,T,M\n`);
    const first = await h.reconciler.run();
    assert.equal(first.seedsRetried, 1);
    assert.deepEqual(h.blobs.names('seeds'), []);

    // A PSKC file whose transport key secret cannot be read fails every run (the vault read throws).
    await h.blobs.write('seeds', 'stuck.xml', readFileSync(new URL('../fixtures/pskc/rfc6030-figure6.pskcxml', import.meta.url)), {
      metadata: { transportkeysecret: 'transport-x' },
    });
    h.secrets.get = () => Promise.reject(new Error('vault down'));
    const runs = [];
    for (let i = 0; i < 3; i++) runs.push(await h.reconciler.run());
    assert.deepEqual(
      runs.map((r) => r.seedsQuarantined),
      [0, 0, 1],
    );
    assert.deepEqual(h.blobs.names('seeds'), []);
    assert.ok(h.blobs.names('quarantine').some((n) => n.endsWith('/stuck.xml')));
  });
});
