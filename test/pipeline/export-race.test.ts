/**
 * A build racing the reconciler (issue 11, "the same token can be exported twice"), played out step by step with
 * the in-memory ports: a vault read is held on a promise the test resolves, time moves only when the test moves
 * the clock (and the build's heartbeat timer with it), and the reconciler runs in between.
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { parse } from 'csv-parse/sync';
import { AssignmentService } from '../../shared/pipeline/assignments.js';
import { BuildService, type BuildResult } from '../../shared/pipeline/build.js';
import { TransientError } from '../../shared/pipeline/errors.js';
import { IngestService } from '../../shared/pipeline/ingest.js';
import { secretNameForSerial } from '../../shared/pipeline/secret-names.js';
import type {
  AssignmentEntity,
  BlobStore,
  EntityTable,
  Logger,
  SecretStore,
  SecretValue,
  SetSecretOptions,
  TokenEntity,
  SecretVersionInfo,
} from '../../shared/pipeline/ports.js';
import { Reconciler } from '../../shared/pipeline/reconcile.js';
import { UploadService } from '../../shared/pipeline/uploads.js';
import { PacedVault } from '../../shared/pipeline/vault.js';
import { ManualClock } from '../helpers/clock.js';
import { MemoryBlobStore, MemorySecretStore, MemoryTable } from '../helpers/memory-ports.js';

const HEADER = 'upn,serial number,secret key,time interval,manufacturer,model\n';
const SEEDS: Record<string, string> = {
  '1001': 'CZU6XXGHCCGCOL6YO3WW472WEWB34FVJ',
  '1002': 'EZDOCQANJA5PGME5QRSZCR7GLUFJG4JG',
  '1003': 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP',
};
const SERIALS = Object.keys(SEEDS).sort();
const containers = { seeds: 'seeds', assignments: 'assignments', imports: 'imports', reports: 'reports', quarantine: 'quarantine' };
const MIN_AGE_MINUTES = 15;
const HEARTBEAT_MS = 30_000;

/** The vault, except that a read the test holds waits until the test releases it. */
class HeldReads implements SecretStore {
  private readonly holds = new Map<string, { reached: () => void; gate: Promise<void> }>();

  constructor(private readonly inner: SecretStore) {}

  hold(name: string): { reached: Promise<void>; release: () => void } {
    let release!: () => void;
    let reached!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const reachedPromise = new Promise<void>((resolve) => (reached = resolve));
    this.holds.set(name, { reached, gate });
    return { reached: reachedPromise, release };
  }

  async get(name: string, version?: string): Promise<SecretValue | undefined> {
    const held = this.holds.get(name);
    if (held) {
      this.holds.delete(name);
      held.reached();
      await held.gate;
    }
    return this.inner.get(name, version);
  }

  set(name: string, value: string, options: SetSecretOptions): Promise<{ version: string }> {
    return this.inner.set(name, value, options);
  }

  disable(name: string, version: string): Promise<void> {
    return this.inner.disable(name, version);
  }

  recover(name: string): Promise<void> {
    return this.inner.recover(name);
  }

  listVersions(name: string): Promise<SecretVersionInfo[]> {
    return this.inner.listVersions(name);
  }
}

async function harness() {
  const clock = new ManualClock('2026-11-29T10:00:00Z');
  const blobs = new MemoryBlobStore(clock);
  const held = new HeldReads(new MemorySecretStore());
  const vault = new PacedVault(held, { createBudget: 1000, readBudget: 1000, retry: { baseDelayMs: 1 } });
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
  const reconcilerOn = (store: BlobStore) =>
    new Reconciler({ blobs: store, tokens, ingest, assignments, clock, log, containers, minAgeMinutes: MIN_AGE_MINUTES });
  const reconciler = reconcilerOn(blobs);
  const builder = (store: BlobStore = blobs) =>
    new BuildService({
      blobs: store,
      vault,
      tokens,
      assignments: assignmentTable,
      clock,
      log,
      containers,
      maxRows: 0,
      heartbeatMs: HEARTBEAT_MS,
    });

  await blobs.write('seeds', 's.csv', HEADER + SERIALS.map((s) => `,${s},${SEEDS[s]},30,Token2,C202\n`).join(''));
  assert.equal((await ingest.ingest('s.csv')).outcome, 'completed');
  await blobs.write('assignments', 'a.csv', 'upn,serial number\n' + SERIALS.map((s) => `user${s}@contoso.com,${s}\n`).join(''));
  assert.equal((await assignments.ingest('a.csv')).added, SERIALS.length);
  return { clock, blobs, held, tokens, reconciler, reconcilerOn, builder, log, lines };
}

type Harness = Awaited<ReturnType<typeof harness>>;

/** Every row of every import CSV, with its file. */
function csvRows(h: Harness): { file: string; serial: string; secret: string }[] {
  return h.blobs.names('imports').flatMap((file) =>
    parse<Record<string, string>>(h.blobs.text('imports', file)!, { columns: true }).map((r) => ({
      file,
      serial: r['serial number']!,
      secret: r['secret key']!,
    })),
  );
}

/** The invariant: each token in exactly one CSV, once, and its inventory row says exported to that file. */
async function assertEachTokenExportedOnce(h: Harness): Promise<void> {
  const rows = csvRows(h);
  assert.deepEqual(rows.map((r) => r.serial).sort(), SERIALS, 'every token listed exactly once across all import CSVs');
  for (const r of rows) {
    const token = (await h.tokens.get(r.serial))!.value;
    assert.equal(token.state, 'exported', `${r.serial} is listed in ${r.file} but is ${token.state}`);
    assert.equal(token.exportFile, r.file, `${r.serial} is listed in ${r.file} but its row names ${token.exportFile}`);
    assert.equal(r.secret, SEEDS[r.serial]);
  }
}

function reportOf(h: Harness, result: BuildResult) {
  return JSON.parse(h.blobs.text('reports', result.report!)!) as {
    counts: Record<string, number>;
    items: { serial: string }[];
    problems: { code: string; serial?: string }[];
  };
}

/** Lets the time pass for the test's clock and for the build's timers alike, one heartbeat at a time. */
async function elapse(t: TestContext, h: Harness, ms: number): Promise<void> {
  for (let done = 0; done < ms; done += HEARTBEAT_MS) {
    h.clock.advance(HEARTBEAT_MS);
    t.mock.timers.tick(HEARTBEAT_MS);
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
  }
}

describe('a build racing the reconciler', () => {
  it('the reconciler leaves the claims of a live build alone, however long its vault reads take', async (t) => {
    t.mock.timers.enable({ apis: ['setInterval'] });
    const h = await harness();
    const read = h.held.hold(secretNameForSerial('1002'));
    const running = h.builder().build();
    await read.reached;

    // 20 minutes in one vault read (429 back-off, a low read budget): older than the reconciler's minimum age.
    await elapse(t, h, 20 * 60_000);
    const reconciled = await h.reconciler.run();
    assert.equal(reconciled.exportsReleased, 0, 'the reconciler released claims of a live build');
    assert.equal(reconciled.exportsSettled, 0);
    assert.equal(reconciled.exportsOfLiveBuilds, SERIALS.length);
    for (const serial of SERIALS) assert.equal((await h.tokens.get(serial))!.value.state, 'exporting');

    read.release();
    const result = await running;
    assert.deepEqual(
      result.exported.map((e) => e.serial),
      SERIALS,
    );
    assert.deepEqual(result.notExported, []);
    await assertEachTokenExportedOnce(h);
    assert.deepEqual((await h.builder().build()).exported, [], 'nothing is left to export');
    assert.deepEqual(
      h.blobs.names('reports').filter((n) => n.includes('heartbeat')),
      [],
      'the build removes its heartbeat when done',
    );
  });

  it('a build that renews its heartbeat while the reconciler is deciding is left alone', async (t) => {
    t.mock.timers.enable({ apis: ['setInterval'] });
    const h = await harness();
    const read = h.held.hold(secretNameForSerial('1001'));
    const running = h.builder().build();
    await read.reached;
    h.clock.advance(20 * 60_000);
    // The reconciler has read a stale heartbeat; the build's timer fires just before the reconciler deletes it.
    let raced = false;
    const racing: BlobStore = Object.assign(Object.create(h.blobs) as MemoryBlobStore, {
      delete: async (container: string, name: string, options?: Parameters<BlobStore['delete']>[2]) => {
        if (container === 'reports' && name.endsWith('.heartbeat') && !raced) {
          raced = true;
          t.mock.timers.tick(HEARTBEAT_MS);
          for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
        }
        return h.blobs.delete(container, name, options);
      },
    });
    const reconciled = await h.reconcilerOn(racing).run();
    assert.ok(raced);
    assert.equal(reconciled.exportsReleased, 0, 'the reconciler released claims of a build that had just renewed its heartbeat');
    assert.equal(reconciled.exportsOfLiveBuilds, SERIALS.length);
    read.release();
    assert.deepEqual(
      (await running).exported.map((e) => e.serial),
      SERIALS,
    );
    await assertEachTokenExportedOnce(h);
  });

  it('a build presumed dead (no heartbeat past the minimum age) lists none of the tokens the reconciler released', async (t) => {
    t.mock.timers.enable({ apis: ['setInterval'] });
    const h = await harness();
    const read = h.held.hold(secretNameForSerial('1002'));
    const stalled = h.builder().build();
    await read.reached;

    // The build's process stops for 20 minutes (its timers do not run): the reconciler takes its claims back.
    h.clock.advance(20 * 60_000);
    const reconciled = await h.reconciler.run();
    assert.equal(reconciled.exportsReleased, SERIALS.length);
    const second = await h.builder().build();
    assert.deepEqual(
      second.exported.map((e) => e.serial),
      SERIALS,
    );

    // The first build wakes up: its claims are gone, so it writes no CSV and says so.
    read.release();
    const first = await stalled;
    assert.deepEqual(first.exported, [], 'the stalled build claims tokens it no longer holds');
    assert.deepEqual(first.files, []);
    assert.deepEqual(
      first.notExported.map((p) => [p.code, p.serial]).sort(),
      SERIALS.map((s) => ['EXPORT_CLAIM_LOST', s]),
    );
    const report = reportOf(h, first);
    assert.equal(report.counts.exported, 0);
    assert.deepEqual(report.items, []);
    assert.deepEqual(
      report.problems.map((p) => [p.code, p.serial]).sort(),
      SERIALS.map((s) => ['EXPORT_CLAIM_LOST', s]),
    );

    await assertEachTokenExportedOnce(h);
    assert.deepEqual(new Set(csvRows(h).map((r) => r.file)), new Set(second.files));
    assert.deepEqual((await h.builder().build()).exported, [], 'nothing is exported a second time');
  });

  it('a token whose claim is taken after the CSV is written leaves the CSV, the result and the report', async () => {
    const h = await harness();
    // Another writer (an operator's script, an older reconciler) sets 1002 back to stored right after the CSV lands.
    let tampered = false;
    const tampering: BlobStore = Object.assign(Object.create(h.blobs) as MemoryBlobStore, {
      write: async (container: string, name: string, content: string | Uint8Array, options?: Parameters<BlobStore['write']>[3]) => {
        const written = await h.blobs.write(container, name, content, options);
        if (container === 'imports' && !tampered) {
          tampered = true;
          const row = (await h.tokens.get('1002'))!;
          await h.tokens.replace(
            '1002',
            { ...row.value, state: 'stored', buildId: null, exportFile: null, exportingSince: null, upn: null },
            row.etag,
          );
        }
        return written;
      },
    });
    const result = await h.builder(tampering).build();
    assert.ok(tampered);
    assert.deepEqual(
      result.exported.map((e) => e.serial),
      ['1001', '1003'],
      'markExported failed silently: 1002 is reported exported',
    );
    assert.deepEqual(
      result.notExported.map((p) => [p.code, p.serial]),
      [['EXPORT_CLAIM_LOST', '1002']],
    );
    const report = reportOf(h, result);
    assert.equal(report.counts.exported, 2);
    assert.deepEqual(
      report.items.map((i) => i.serial),
      ['1001', '1003'],
    );
    assert.deepEqual(
      csvRows(h)
        .map((r) => r.serial)
        .sort(),
      ['1001', '1003'],
      'the CSV still lists a token the build no longer holds',
    );

    const next = await h.builder().build();
    assert.deepEqual(
      next.exported.map((e) => e.serial),
      ['1002'],
    );
    await assertEachTokenExportedOnce(h);
  });
});

describe('confirming an upload', () => {
  async function built() {
    const h = await harness();
    const result = await h.builder().build();
    assert.equal(result.files.length, 1);
    return { h, file: result.files[0]! };
  }

  /** The tokens table, with a hook that runs before a replace of the given key (once). */
  function interceptReplace(table: MemoryTable<TokenEntity>, key: string, before: () => Promise<void>): EntityTable<TokenEntity> {
    let armed = true;
    return Object.assign(Object.create(table) as MemoryTable<TokenEntity>, {
      replace: async (k: string, value: TokenEntity, etag: string) => {
        if (armed && k === key) {
          armed = false;
          await before();
        }
        return table.replace(k, value, etag);
      },
    });
  }

  it('marks the tokens imported before it deletes the CSV; a failure part-way keeps the file and a retry finishes', async () => {
    const { h, file } = await built();
    const failing = interceptReplace(h.tokens, '1002', () => Promise.reject(new Error('table storage failed')));
    const first = await new UploadService({
      blobs: h.blobs,
      tokens: failing,
      clock: h.clock,
      log: h.log,
      importsContainer: 'imports',
    }).confirm(file);
    assert.equal(first.complete, false);
    assert.deepEqual(h.blobs.names('imports'), [file], 'the CSV was deleted before its tokens were marked imported');
    assert.equal((await h.tokens.get('1002'))!.value.state, 'exported');

    const again = await new UploadService({
      blobs: h.blobs,
      tokens: h.tokens,
      clock: h.clock,
      log: h.log,
      importsContainer: 'imports',
    }).confirm(file);
    assert.equal(again.complete, true);
    assert.deepEqual(again.imported, SERIALS);
    assert.deepEqual(h.blobs.names('imports'), []);
    for (const serial of SERIALS) assert.equal((await h.tokens.get(serial))!.value.state, 'imported');
  });

  it('retries storage hiccups itself and re-reads a row changed under it (412)', async () => {
    const { h, file } = await built();
    let hiccups = 0;
    // A verify check touches 1002 between the listing and the update; 1003's update first meets a busy table.
    const touched = interceptReplace(h.tokens, '1002', async () => {
      const row = (await h.tokens.get('1002'))!;
      await h.tokens.replace('1002', { ...row.value, lastVerifiedAt: h.clock.now().toISOString(), failedAttempts: 1 }, row.etag);
    });
    const busy = interceptReplace(touched as MemoryTable<TokenEntity>, '1003', () => {
      hiccups++;
      return Promise.reject(new TransientError('table busy', 503));
    });
    const confirmed = await new UploadService({
      blobs: h.blobs,
      tokens: busy,
      clock: h.clock,
      log: h.log,
      importsContainer: 'imports',
    }).confirm(file);
    assert.equal(hiccups, 1);
    assert.equal(confirmed.complete, true);
    assert.deepEqual(confirmed.imported, SERIALS);
    assert.deepEqual(h.blobs.names('imports'), []);
    const row = (await h.tokens.get('1002'))!.value;
    assert.equal(row.state, 'imported');
    assert.equal(row.failedAttempts, 1, 'the concurrent change is kept');
  });
});
