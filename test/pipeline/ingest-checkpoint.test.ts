/**
 * Checkpointed ingest (shared/pipeline/ingest-checkpoint.ts): a file too large for one invocation is finished by
 * several, a crash costs only the work since the last save, and every secret gets exactly one version.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { toCanonicalBase32 } from '../../shared/core/encoding.js';
import { describe, it } from 'node:test';
import { ingestCheckpointName } from '../../shared/pipeline/blob-names.js';
import { IngestService, type IngestDeps } from '../../shared/pipeline/ingest.js';
import type { IngestCheckpointRecord } from '../../shared/pipeline/ingest-checkpoint.js';
import type { AssignmentEntity, Logger, SetSecretOptions, TokenEntity } from '../../shared/pipeline/ports.js';
import { AssignmentService } from '../../shared/pipeline/assignments.js';
import { Reconciler } from '../../shared/pipeline/reconcile.js';
import { secretNameForSerial } from '../../shared/pipeline/secret-names.js';
import { PacedVault } from '../../shared/pipeline/vault.js';
import { ManualClock } from '../helpers/clock.js';
import { MemoryBlobStore, MemoryRecordStore, MemorySecretStore, MemoryTable } from '../helpers/memory-ports.js';
import { leakHits, piecesOf, secretForms } from '../helpers/secret-scan.js';

const containers = { seeds: 'seeds', assignments: 'assignments', imports: 'imports', reports: 'reports', quarantine: 'quarantine' };
const HEADER = 'upn,serial number,secret key,time interval,manufacturer,model\n';
const TOKENS = 30;

/** A 20-byte seed per token, derived from its number (not random: the test is repeatable). */
function seedOf(i: number): Buffer {
  return createHash('sha256').update(`checkpoint-test/${i}`).digest().subarray(0, 20);
}

function secretOf(i: number): string {
  return toCanonicalBase32(seedOf(i));
}

const file =
  HEADER + Array.from({ length: TOKENS }, (_, i) => `,CK${String(i).padStart(4, '0')},${secretOf(i)},30,Token2,C202`).join('\n') + '\n';

/** The vault: each create takes a second of the clock, so an invocation's budget runs out part-way. */
class SlowVault extends MemorySecretStore {
  crashAfter = Infinity;
  onCrash = () => {};
  constructor(private readonly clock: ManualClock) {
    super();
  }
  override set(name: string, value: string, options: SetSecretOptions): Promise<{ version: string }> {
    if (this.sets >= this.crashAfter) {
      this.onCrash();
      return Promise.reject(new Error('the instance went away'));
    }
    this.clock.advance(1000);
    return super.set(name, value, options);
  }
}

/** Checkpoint records that stop taking writes when the instance "dies", as a killed process saves nothing more. */
class MortalRecords extends MemoryRecordStore<IngestCheckpointRecord> {
  dead = false;
  override replace(key: string, value: IngestCheckpointRecord, etag: string): Promise<string> {
    return this.dead ? Promise.reject(new Error('the instance went away')) : super.replace(key, value, etag);
  }
}

function harness() {
  const clock = new ManualClock('2026-12-01T08:00:00Z');
  const blobs = new MemoryBlobStore(clock);
  const secrets = new SlowVault(clock);
  const tokens = new MemoryTable<TokenEntity>();
  const checkpoints = new MortalRecords();
  const lines: string[] = [];
  const log: Logger = {
    info: (m, d) => lines.push(`${m} ${JSON.stringify(d ?? {})}`),
    warn: (m, d) => lines.push(`${m} ${JSON.stringify(d ?? {})}`),
    error: (m, d) => lines.push(`${m} ${JSON.stringify(d ?? {})}`),
  };
  const handedOff: string[] = [];
  /** One invocation: a fresh service (and vault pacer), as a new instance would build. */
  const invocation = (extra: Partial<IngestDeps> = {}) =>
    new IngestService({
      blobs,
      vault: new PacedVault(secrets, { createBudget: 100_000, readBudget: 100_000, retry: { baseDelayMs: 1 } }),
      tokens,
      clock,
      log,
      containers,
      transportKeyPrefix: 'transport-',
      maxSeedFileBytes: 1_000_000,
      recoverDeletedSecrets: false,
      leaseWaitMs: 200,
      concurrency: 4,
      checkpoints,
      invocationBudgetMs: 10_000,
      checkpointEvery: 5,
      handOff: (name) => handedOff.push(name),
      ...extra,
    });
  return { clock, blobs, secrets, tokens, checkpoints, lines, handedOff, invocation };
}

function assertOneVersionEach(secrets: MemorySecretStore): void {
  for (let i = 0; i < TOKENS; i++) assert.equal(secrets.versions(secretNameForSerial(`CK${String(i).padStart(4, '0')}`)), 1, `token ${i}`);
}

void describe('checkpointed ingest', () => {
  void it('hands the rest of a file to new invocations when its budget runs out, and finishes with one version per secret', async () => {
    const h = harness();
    await h.blobs.write('seeds', 'big.csv', file);
    const etag = (await h.blobs.properties('seeds', 'big.csv'))!.etag.replace(/"/g, '');
    const first = await h.invocation().ingest('big.csv');
    assert.equal(first.outcome, 'continued');
    assert.deepEqual(h.handedOff, ['big.csv']);
    assert.ok(
      first.counts!.confirmed! >= 10 && first.counts!.confirmed! < TOKENS,
      `${first.counts!.confirmed} confirmed in the first invocation`,
    );
    assert.deepEqual(h.blobs.names('seeds'), ['big.csv'], 'the file stays until every token is in');
    assert.deepEqual(h.blobs.names('reports'), [], 'no report yet');
    const saved = (await h.checkpoints.get(ingestCheckpointName('big.csv', etag)))!.value;
    assert.equal(saved.outcomes.replace(/\./g, '').length, first.counts!.confirmed);

    const readsBefore = h.secrets.gets;
    let last = first;
    let invocations = 1;
    while (last.outcome === 'continued') {
      last = await h.invocation().ingest('big.csv');
      invocations++;
    }
    assert.ok(invocations >= 3, `${invocations} invocations`);
    assert.equal(last.outcome, 'completed');
    assert.equal(h.handedOff.length, invocations - 1);
    assertOneVersionEach(h.secrets);
    assert.equal(h.secrets.sets, TOKENS, 'one create per token, across every invocation');
    // Resumed invocations never read a token confirmed before them.
    assert.equal(h.secrets.gets - readsBefore, TOKENS - first.counts!.confirmed!);
    assert.equal(last.counts!.stored, TOKENS);
    assert.deepEqual(h.blobs.names('seeds'), []);
    assert.deepEqual(h.checkpoints.keys(), [], 'the checkpoint goes with the file');
    const report = JSON.parse(h.blobs.text('reports', last.reportName!)!) as {
      counts: Record<string, number>;
      items: { result: string }[];
    };
    assert.equal(report.items.length, TOKENS);
    assert.ok(report.items.every((item) => item.result === 'stored'));
    // No seed in the checkpoint records, the logs or the report.
    const everything = [h.lines.join('\n'), h.blobs.text('reports', last.reportName!)!].join('\n');
    for (let i = 0; i < TOKENS; i++) assert.deepEqual(leakHits(piecesOf(secretForms(seedOf(i))), everything), []);
  });

  void it('after a crash, continues from the last save: tokens stored since are found, not stored again, and still count as stored', async () => {
    const h = harness();
    await h.blobs.write('seeds', 'crash.csv', file);
    h.secrets.crashAfter = 17;
    // The instance dies at the 18th create: nothing it would save afterwards reaches storage.
    h.secrets.onCrash = () => (h.checkpoints.dead = true);
    await assert.rejects(h.invocation({ handOff: undefined }).ingest('crash.csv'), /went away/);
    h.secrets.crashAfter = Infinity;
    h.checkpoints.dead = false;
    const etag = (await h.blobs.properties('seeds', 'crash.csv'))!.etag.replace(/"/g, '');
    const savedConfirmed = (await h.checkpoints.get(ingestCheckpointName('crash.csv', etag)))!.value.outcomes.replace(/\./g, '').length;
    assert.ok(savedConfirmed >= 10 && savedConfirmed <= 17, `${savedConfirmed} confirmed before the crash`);

    const readsBefore = h.secrets.gets;
    const resumed = await h.invocation({ handOff: undefined }).ingest('crash.csv');
    assert.equal(resumed.outcome, 'completed');
    assertOneVersionEach(h.secrets);
    assert.equal(h.secrets.sets, TOKENS);
    assert.equal(h.secrets.gets - readsBefore, TOKENS - savedConfirmed, 'saved tokens are not read again');
    assert.equal(resumed.counts!.stored, TOKENS, 'stored by this batch before the crash: still "stored"');
    assert.equal(resumed.counts!.unchanged, 0);
  });

  void it('the reconciler leaves a file whose checkpoint moved recently alone, and resumes one whose checkpoint went quiet', async () => {
    const h = harness();
    await h.blobs.write('seeds', 'slow.csv', file);
    // The file has waited 16 minutes (past the reconciler's minimum age) when its ingest starts and hands off.
    h.clock.advance(16 * 60_000);
    assert.equal((await h.invocation().ingest('slow.csv')).outcome, 'continued');
    const quiet = { info() {}, warn() {}, error() {} };
    const reconciler = () =>
      new Reconciler({
        blobs: h.blobs,
        tokens: h.tokens,
        ingest: h.invocation({ handOff: undefined }),
        assignments: new AssignmentService({
          blobs: h.blobs,
          assignments: new MemoryTable<AssignmentEntity>(),
          tokens: h.tokens,
          clock: h.clock,
          log: quiet,
          containers,
          maxFileBytes: 1000,
        }),
        clock: h.clock,
        log: quiet,
        containers,
        minAgeMinutes: 15,
        checkpoints: h.checkpoints,
      });
    const busy = await reconciler().run();
    assert.deepEqual([busy.seedsInProgress, busy.seedsRetried], [1, 0], 'its continuation is at work: left alone');
    assert.deepEqual(h.blobs.names('seeds'), ['slow.csv']);
    // The continuation message was lost: the checkpoint goes quiet, and the reconciler finishes the file.
    h.clock.advance(20 * 60_000);
    const resumed = await reconciler().run();
    assert.deepEqual([resumed.seedsInProgress, resumed.seedsRetried], [0, 1]);
    assert.deepEqual(h.blobs.names('seeds'), []);
    assertOneVersionEach(h.secrets);
    assert.equal(h.secrets.sets, TOKENS);
  });
});
