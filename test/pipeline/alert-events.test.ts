// The structured events the Azure Monitor alert rules query (shared/pipeline/events.ts): each is logged
// where it happens, once, as `<event name> {json}`, and carries no secret.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { verifyAnswer } from '../../shared/app/http.js';
import { AssignmentService } from '../../shared/pipeline/assignments.js';
import { PipelineEvent, type PipelineEventName } from '../../shared/pipeline/events.js';
import { IngestService } from '../../shared/pipeline/ingest.js';
import type { AssignmentEntity, Logger, TokenEntity } from '../../shared/pipeline/ports.js';
import { Reconciler } from '../../shared/pipeline/reconcile.js';
import { PacedVault } from '../../shared/pipeline/vault.js';
import { VerifyService } from '../../shared/pipeline/verify.js';
import { ManualClock } from '../helpers/clock.js';
import { MemoryBlobStore, MemorySecretStore, MemoryTable } from '../helpers/memory-ports.js';

const S1 = 'CZU6XXGHCCGCOL6YO3WW472WEWB34FVJ';
const S2 = 'EZDOCQANJA5PGME5QRSZCR7GLUFJG4JG';
const HEADER = 'upn,serial number,secret key,time interval,manufacturer,model\n';
const containers = { seeds: 'seeds', assignments: 'assignments', imports: 'imports', reports: 'reports', quarantine: 'quarantine' };

/** Records lines exactly as the Functions logger writes them (shared/app/http.ts): message, space, JSON. */
class LineLog implements Logger {
  readonly lines: string[] = [];
  info(message: string, data?: Record<string, unknown>) {
    this.lines.push(data ? `${message} ${JSON.stringify(data)}` : message);
  }
  warn(message: string, data?: Record<string, unknown>) {
    this.info(message, data);
  }
  error(message: string, data?: Record<string, unknown>) {
    this.info(message, data);
  }
  /** The JSON data of every line that starts with the event name, as an alert query matches it. */
  events(name: PipelineEventName): Record<string, unknown>[] {
    return this.lines
      .filter((line) => line.startsWith(`${name} `))
      .map((line) => JSON.parse(line.slice(name.length + 1)) as Record<string, unknown>);
  }
}

function harness() {
  const clock = new ManualClock('2026-11-29T10:00:00Z');
  const blobs = new MemoryBlobStore(clock);
  const secrets = new MemorySecretStore();
  const vault = new PacedVault(secrets, { createBudget: 1000, readBudget: 1000, retry: { baseDelayMs: 1 } });
  const tokens = new MemoryTable<TokenEntity>();
  const log = new LineLog();
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
    assignments: new MemoryTable<AssignmentEntity>(),
    tokens,
    clock,
    log,
    containers,
    maxFileBytes: 1_000_000,
  });
  const reconciler = new Reconciler({ blobs, tokens, ingest, assignments, clock, log, containers, minAgeMinutes: 15 });
  const verify = new VerifyService({ tokens, secrets, clock, log, lockoutLimit: 3, lockoutMinutes: 15, lockoutMaxMinutes: 1440 });
  return { clock, blobs, secrets, tokens, log, ingest, reconciler, verify };
}

function assertNoSecret(lines: string[]) {
  for (const secret of [S1, S2]) {
    for (let i = 0; i + 12 <= secret.length; i++)
      assert.ok(!lines.join('\n').includes(secret.slice(i, i + 12)), 'a piece of a secret is in the log');
  }
}

describe('alert events', () => {
  it('SeedFileQuarantined: once per quarantined seed file, rows rejected or file rejected whole', async () => {
    const h = harness();
    await h.blobs.write('seeds', 'mixed.csv', `${HEADER},1001,${S1},30,T,M\n,1002,${S2},45,T,M\n`);
    const mixed = await h.ingest.ingest('mixed.csv');
    await h.blobs.write('seeds', 'broken.xml', '<KeyContainer');
    const broken = await h.ingest.ingest('broken.xml');
    await h.blobs.write('seeds', 'clean.csv', `${HEADER},1003,${S2},30,T,M\n`);
    await h.ingest.ingest('clean.csv');

    assert.deepEqual(h.log.events(PipelineEvent.SeedFileQuarantined), [
      { blob: 'mixed.csv', quarantinedAs: mixed.quarantinedAs, outcome: 'completed-with-problems' },
      { blob: 'broken.xml', quarantinedAs: broken.quarantinedAs, outcome: 'rejected' },
    ]);
    assertNoSecret(h.log.lines);
  });

  it('SeedFileQuarantined: also when the reconciler gives up on a stuck file', async () => {
    const h = harness();
    await h.blobs.write('seeds', 'stuck.xml', readFileSync(new URL('../fixtures/pskc/rfc6030-figure6.pskcxml', import.meta.url)), {
      metadata: { transportkeysecret: 'transport-x' },
    });
    h.clock.advance(20 * 60_000);
    h.secrets.get = () => Promise.reject(new Error('vault down'));
    for (let run = 0; run < 3; run++) await h.reconciler.run();
    const events = h.log.events(PipelineEvent.SeedFileQuarantined);
    assert.equal(events.length, 1);
    assert.equal(events[0]!['blob'], 'stuck.xml');
    assert.equal(events[0]!['outcome'], 'stuck');
    assert.ok(h.blobs.names('quarantine').includes(String(events[0]!['quarantinedAs'])));
  });

  it('VerifyLockout: once, by the answer that locks the token, not by the answers refused while locked', async () => {
    const h = harness();
    await h.blobs.write('seeds', 'a.csv', `${HEADER},1001,${S1},30,T,M\n`);
    await h.ingest.ingest('a.csv');
    const answers = [];
    // Deterministic (fixed seed and clock): none of these codes is within any window of this token.
    for (const code of ['000000', '111111', '222222', '333333', '444444'])
      answers.push(verifyAnswer(await h.verify.verify('1001', { code })).status);
    assert.deepEqual(answers, [200, 200, 200, 423, 423]);
    assert.deepEqual(h.log.events(PipelineEvent.VerifyLockout), [{ serial: '1001' }]);
    assertNoSecret(h.log.lines);
  });

  it('ImportWaiting: each reconciler run names every import CSV older than the minimum age, with its wait', async () => {
    const h = harness();
    await h.blobs.write('imports', 'entra-oath-old.csv', 'upn,serial number,secret key,time interval,manufacturer,model\n');
    h.clock.advance(3 * 60 * 60_000);
    await h.blobs.write('imports', 'entra-oath-new.csv', 'upn,serial number,secret key,time interval,manufacturer,model\n');
    await h.reconciler.run();
    assert.deepEqual(h.log.events(PipelineEvent.ImportWaiting), [{ file: 'entra-oath-old.csv', waitingMinutes: 180 }]);
    h.clock.advance(60 * 60_000);
    await h.reconciler.run();
    assert.deepEqual(h.log.events(PipelineEvent.ImportWaiting).slice(1), [
      { file: 'entra-oath-new.csv', waitingMinutes: 60 },
      { file: 'entra-oath-old.csv', waitingMinutes: 240 },
    ]);
  });
});
