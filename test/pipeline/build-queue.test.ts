import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AssignmentService } from '../../shared/pipeline/assignments.js';
import { BuildService } from '../../shared/pipeline/build.js';
import { BuildQueue } from '../../shared/pipeline/build-queue.js';
import { IngestService } from '../../shared/pipeline/ingest.js';
import type { AssignmentEntity, Logger, TokenEntity } from '../../shared/pipeline/ports.js';
import { PacedVault } from '../../shared/pipeline/vault.js';
import { ManualClock } from '../helpers/clock.js';
import { MemoryBlobStore, MemorySecretStore, MemoryTable } from '../helpers/memory-ports.js';

const S1 = 'CZU6XXGHCCGCOL6YO3WW472WEWB34FVJ';
const S2 = 'EZDOCQANJA5PGME5QRSZCR7GLUFJG4JG';
const S3 = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
const SEEDS = `upn,serial number,secret key,time interval,manufacturer,model\n,1001,${S1},30,T,M\n,1002,${S2},30,T,M\n,1003,${S3},30,T,M\n`;
const ASSIGNMENTS = 'upn,serial number\na@contoso.com,1001\nb@contoso.com,1002\nc@contoso.com,1003\n';
const containers = { seeds: 'seeds', assignments: 'assignments', imports: 'imports', reports: 'reports', quarantine: 'quarantine' };
const SETTLE = 30;

function harness() {
  const clock = new ManualClock('2026-11-29T10:00:00Z');
  const blobs = new MemoryBlobStore(clock);
  const vault = new PacedVault(new MemorySecretStore(), { createBudget: 1000, readBudget: 1000, retry: { baseDelayMs: 1 } });
  const tokens = new MemoryTable<TokenEntity>();
  const assignmentTable = new MemoryTable<AssignmentEntity>();
  const log: Logger = { info: () => undefined, warn: () => undefined, error: () => undefined };
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
  const queue = new BuildQueue({ blobs, clock, log, container: 'reports', settleSeconds: SETTLE });
  let builds = 0;
  const runDue = () =>
    queue.runDue(async () => {
      builds++;
      return build.build();
    });
  const seeds = async () => {
    await blobs.write('seeds', 'batch.csv', SEEDS);
    return queue.inFlight(
      'seeds',
      'batch.csv',
      () => ingest.ingest('batch.csv'),
      (r) => r.outcome === 'completed',
    );
  };
  const list = async () => {
    await blobs.write('assignments', 'list.csv', ASSIGNMENTS);
    return queue.inFlight(
      'assignments',
      'list.csv',
      () => assignments.ingest('list.csv'),
      (r) => r.added > 0,
    );
  };
  const csvRows = () => blobs.names('imports').map((n) => blobs.text('imports', n)!.trim().split('\n').length - 1);
  return { clock, blobs, queue, runDue, seeds, list, csvRows, builds: () => builds, build };
}

describe('build queue: one drop, one CSV', () => {
  for (const order of ['seeds first', 'assignments first'] as const) {
    it(`gives one CSV with every row when both files come within the settle period (${order})`, async () => {
      const h = harness();
      await (order === 'seeds first' ? h.seeds() : h.list());
      h.clock.advance(20_000);
      // The timer passes between the drops: the build is not due yet.
      assert.equal(await h.runDue(), 'waiting');
      await (order === 'seeds first' ? h.list() : h.seeds());
      h.clock.advance(SETTLE * 1000 - 1000);
      assert.equal(await h.runDue(), 'waiting', 'the second drop pushed the due time back');
      h.clock.advance(1000);
      assert.equal(await h.runDue(), 'built');
      assert.equal(await h.runDue(), 'none', 'the request was taken');
      assert.equal(h.builds(), 1);
      assert.deepEqual(h.csvRows(), [3]);
    });
  }

  it('waits for an ingest in flight, and builds once it is done', async () => {
    const h = harness();
    await h.list();
    h.clock.advance(SETTLE * 1000);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    await h.blobs.write('seeds', 'batch.csv', SEEDS);
    const ingesting = h.queue.inFlight(
      'seeds',
      'batch.csv',
      async () => {
        await gate;
        return 'done';
      },
      () => false,
    );
    await new Promise((r) => setImmediate(r));
    assert.equal(await h.queue.ingestsInFlight(), 1);
    assert.equal(await h.runDue(), 'ingest-in-flight');
    assert.equal(h.builds(), 0);
    release();
    await ingesting;
    assert.equal(await h.queue.ingestsInFlight(), 0);
    assert.equal(await h.runDue(), 'built');
  });

  it('ignores an in-flight mark not renewed for a settle period (its invocation died)', async () => {
    const h = harness();
    await h.queue.request('test');
    h.clock.advance(SETTLE * 1000);
    await h.blobs.write(
      'reports',
      'build-queue/in-flight/seeds-dead.json',
      JSON.stringify({ kind: 'seeds', since: h.clock.now().toISOString(), renewedAt: h.clock.now().toISOString() }),
    );
    h.clock.advance(SETTLE * 1000 - 1);
    assert.equal(await h.runDue(), 'ingest-in-flight');
    h.clock.advance(1);
    assert.equal(await h.runDue(), 'built');
  });

  it('runs one build at a time: a second runner finds the lock held', async () => {
    const h = harness();
    await h.queue.request('test');
    h.clock.advance(SETTLE * 1000);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const first = h.queue.runDue(() => gate);
    await new Promise((r) => setImmediate(r));
    await h.queue.request('another drop');
    h.clock.advance(SETTLE * 1000);
    assert.equal(await h.queue.runDue(() => Promise.resolve()), 'busy');
    release();
    assert.equal(await first, 'built');
    assert.equal(await h.queue.runDue(() => Promise.resolve()), 'built', 'the request made during the build survives it');
  });

  it('asks again after a failed build, and does nothing without a request', async () => {
    const h = harness();
    assert.equal(await h.runDue(), 'none');
    await h.queue.request('test');
    h.clock.advance(SETTLE * 1000);
    await assert.rejects(
      h.queue.runDue(() => Promise.reject(new Error('boom'))),
      /boom/,
    );
    assert.equal(await h.runDue(), 'waiting');
    h.clock.advance(SETTLE * 1000);
    assert.equal(await h.runDue(), 'built');
  });
});
