/**
 * The vault's budget shared across instances (shared/pipeline/vault-budget.ts): two app instances, each with its
 * own PacedVault, claim their calls from one ledger. Time is virtual (ManualClock + VirtualTimers): the figures
 * come from the clock, never from this machine's speed.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TransientError } from '../../shared/pipeline/errors.js';
import { mapPool } from '../../shared/pipeline/map-pool.js';
import type { Clock, SecretStore, SecretValue, SecretVersionInfo, SetSecretOptions } from '../../shared/pipeline/ports.js';
import { PacedVault } from '../../shared/pipeline/vault.js';
import {
  BUDGET_WINDOW_MS,
  SLICE_MS,
  sliceCapacity,
  SharedSlotPacer,
  VaultBudgetLedger,
  type BudgetLedgerRecord,
} from '../../shared/pipeline/vault-budget.js';
import { ManualClock, VirtualTimers } from '../helpers/clock.js';
import { MemoryRecordStore, MemorySecretStore } from '../helpers/memory-ports.js';

const CREATES = 300;
const READS = 4000;
const options = { contentType: 'text/plain', tags: {} };

/** Key Vault as the throttling guidance describes it: a sliding 10 s budget per lane, 429 past it, refusals not counted. */
class ThrottlingVault implements SecretStore {
  readonly inner = new MemorySecretStore();
  readonly createTimes: number[] = [];
  readonly readTimes: number[] = [];
  throttled = 0;

  constructor(
    private readonly clock: Clock,
    private readonly creates = CREATES,
    private readonly reads = READS,
  ) {}

  private admit(times: number[], budget: number): void {
    const now = this.clock.now().getTime();
    let inWindow = 0;
    for (let i = times.length - 1; i >= 0 && times[i]! > now - BUDGET_WINDOW_MS; i--) inWindow++;
    if (inWindow >= budget) {
      this.throttled++;
      throw new TransientError('Throttled', 429);
    }
    times.push(now);
  }

  get(name: string, version?: string): Promise<SecretValue | undefined> {
    this.admit(this.readTimes, this.reads);
    return this.inner.get(name, version);
  }

  set(name: string, value: string, setOptions: SetSecretOptions): Promise<{ version: string }> {
    this.admit(this.createTimes, this.creates);
    return this.inner.set(name, value, setOptions);
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

/** The most calls in any 10-second span. */
function peakPerWindow(times: readonly number[]): number {
  const sorted = [...times].sort((a, b) => a - b);
  let peak = 0;
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while (sorted[i]! - sorted[j]! >= BUDGET_WINDOW_MS) j++;
    peak = Math.max(peak, i - j + 1);
  }
  return peak;
}

function world() {
  const clock = new ManualClock('2026-12-01T08:00:00Z');
  const timers = new VirtualTimers(clock);
  const vault = new ThrottlingVault(clock);
  const ledgerRecords = new MemoryRecordStore<BudgetLedgerRecord>();
  const instance = (shared: boolean) =>
    new PacedVault(vault, {
      createBudget: CREATES,
      readBudget: READS,
      interactiveShare: 0.05,
      clock,
      sleep: timers.sleep,
      retry: { sleep: timers.sleep, baseDelayMs: 1000 },
      ...(shared && { ledger: new VaultBudgetLedger({ records: ledgerRecords, key: 'vault-budget/test.json', clock }) }),
    });
  return { clock, timers, vault, ledgerRecords, instance };
}

/** n secrets stored by one instance, as an ingest does (read, then create), 32 at a time. */
function ingest(vault: PacedVault, prefix: string, n: number) {
  return mapPool(
    Array.from({ length: n }, (_, i) => `${prefix}-${i}`),
    32,
    (name) => vault.ensureSecret(name, `value-${name}`, options),
  );
}

void describe('vault budget shared across instances', () => {
  void it('two instances ingesting at once stay inside one budget in every 10 s, and use at least 90% of it', async () => {
    const w = world();
    const [a, b] = [w.instance(true), w.instance(true)];
    const start = w.clock.now().getTime();
    await w.timers.run(Promise.all([ingest(a, 'a', 600), ingest(b, 'b', 600)]));
    const seconds = (w.clock.now().getTime() - start) / 1000;

    assert.equal(w.vault.createTimes.length, 1200);
    assert.ok(peakPerWindow(w.vault.createTimes) <= CREATES, `peak ${peakPerWindow(w.vault.createTimes)} creates in 10 s`);
    assert.equal(w.vault.throttled, 0, 'no call was refused');
    const floorSeconds = 1200 / (CREATES / 10);
    const ratio = floorSeconds / seconds;
    assert.ok(ratio >= 0.9 && ratio <= 1, `ratio ${ratio.toFixed(3)} (${seconds} s for a ${floorSeconds} s floor)`);
    // Claimed in runs, not per secret: the ledger is written far less often than the vault.
    assert.ok(w.ledgerRecords.writes * 10 < 1200 + 1200, `${w.ledgerRecords.writes} ledger writes`);
    // Both instances moved together rather than one after the other.
    const halfway = start + (seconds * 1000) / 2;
    const byA = (await Promise.all(Array.from({ length: 600 }, (_, i) => w.vault.inner.get(`a-${i}`)))).length;
    assert.equal(byA, 600);
    const earlyCreates = w.vault.createTimes.filter((t) => t < halfway).length;
    assert.ok(earlyCreates > 500 && earlyCreates < 700, `${earlyCreates} creates in the first half`);
  });

  void it('without the ledger the same two instances throttle the vault (what the ledger prevents)', async () => {
    const w = world();
    const [a, b] = [w.instance(false), w.instance(false)];
    await w.timers.run(Promise.all([ingest(a, 'a', 600), ingest(b, 'b', 600)]));
    assert.ok(w.vault.throttled > 0, 'each instance paced itself to the whole budget');
    // Still, the 429s were retried: every secret is stored, once.
    assert.equal(w.vault.createTimes.length, 1200);
  });

  void it('keeps a reserved lane: an interactive read does not wait behind a bulk queue', async () => {
    const w = world();
    const vault = w.instance(true);
    // A build reading 6,000 secrets: a bulk read queue more than a window long.
    for (let i = 0; i < 10; i++) await w.vault.inner.set(`s-${i}`, 'x', options);
    const bulkStart = w.clock.now().getTime();
    let interactiveMs = -1;
    let bulkProbeMs = -1;
    const bulk = mapPool(
      Array.from({ length: 6000 }, (_, i) => `s-${i % 10}`),
      3000,
      (name) => vault.get(name),
    );
    const probes = (async () => {
      await w.timers.sleep(3000);
      const asked = w.clock.now().getTime();
      await Promise.all([
        vault.interactive.get('s-1').then(() => (interactiveMs = w.clock.now().getTime() - asked)),
        vault.get('s-2').then(() => (bulkProbeMs = w.clock.now().getTime() - asked)),
      ]);
    })();
    await w.timers.run(Promise.all([bulk, probes]));
    assert.ok(interactiveMs >= 0 && interactiveMs < 50, `interactive read waited ${interactiveMs} ms`);
    assert.ok(bulkProbeMs > 1000, `a bulk read asked at the same moment waited ${bulkProbeMs} ms`);
    assert.equal(w.vault.throttled, 0);
    assert.ok(peakPerWindow(w.vault.readTimes) <= READS);
    assert.ok(w.clock.now().getTime() - bulkStart >= ((6000 - READS) / READS) * 10_000);
  });

  void it('retries throttled answers past the fault limit, after their Retry-After, and never fails the call', async () => {
    const clock = new ManualClock('2026-12-01T08:00:00Z');
    const timers = new VirtualTimers(clock);
    const inner = new MemorySecretStore();
    let refusals = 12;
    const waits: number[] = [];
    const stubborn: SecretStore = {
      get: (n, v) => inner.get(n, v),
      set: (n, v, o) => (refusals-- > 0 ? Promise.reject(new TransientError('Throttled', 429, 2000)) : inner.set(n, v, o)),
      disable: (n, v) => inner.disable(n, v),
      recover: (n) => inner.recover(n),
      listVersions: (n) => inner.listVersions(n),
    };
    const vault = new PacedVault(stubborn, {
      createBudget: CREATES,
      readBudget: READS,
      clock,
      sleep: timers.sleep,
      retry: { maxAttempts: 3, baseDelayMs: 100, maxDelayMs: 400, sleep: (ms) => (waits.push(ms), timers.sleep(ms)) },
    });
    const outcome = await timers.run(vault.ensureSecret('s', 'v', options));
    assert.equal(outcome.outcome, 'created');
    assert.equal(inner.versions('s'), 1);
    assert.equal(vault.stats.throttled, 12);
    assert.ok(
      waits.every((ms) => ms >= 2000),
      'each wait honours Retry-After',
    );
  });

  void it('claims fill slices up to their share, the one under way only in proportion to the time left of it', async () => {
    const clock = new ManualClock('2026-12-01T08:00:00.400Z');
    const records = new MemoryRecordStore<BudgetLedgerRecord>();
    const ledgers = [0, 1, 2].map(() => new VaultBudgetLedger({ records, key: 'k', clock }));
    const claims = await Promise.all(ledgers.flatMap((l) => [l.claim('create', 10, 300), l.claim('create', 25, 300)]));
    const perSlice = new Map<number, number>();
    for (const c of claims) perSlice.set(c.startMs, (perSlice.get(c.startMs) ?? 0) + c.count);
    const now = clock.now().getTime();
    for (const [startMs, count] of perSlice) {
      const slice = Math.floor(startMs / SLICE_MS);
      // The slice under way offers only the share of its time still to come (60% of 30).
      const room = startMs === now ? 18 : sliceCapacity(slice, 300);
      assert.ok(startMs >= now, 'no claim reaches into the past');
      assert.ok(count <= room, `slice at ${startMs}: ${count} calls`);
    }
    assert.equal(perSlice.get(now), 18, 'the rest of the slice under way is filled first');
    assert.equal(perSlice.get(Math.ceil(now / SLICE_MS) * SLICE_MS), 30, 'then the next one');
    assert.equal(records.writes, 6);
    // Capacities add up to the budget: ten slices hold exactly one window's worth.
    assert.equal(
      Array.from({ length: 10 }, (_, i) => sliceCapacity(i + 7, 285)).reduce((a, b) => a + b, 0),
      285,
    );
  });

  void it('after an idle spell (an ingest between two invocations) a busy lane is back to its share at the next claim', async () => {
    const clock = new ManualClock('2026-12-01T08:00:00Z');
    const timers = new VirtualTimers(clock);
    const ledger = new VaultBudgetLedger({ records: new MemoryRecordStore<BudgetLedgerRecord>(), key: 'k', clock });
    const pacer = new SharedSlotPacer({ ledger, lane: 'create', perWindow: 285, clock, sleep: timers.sleep });
    const granted = async (n: number) => {
      for (let i = 0; i < n; i++) await pacer.acquire();
    };
    // Busy: runs grow to a whole slice; the invocation ends a few calls into its last run.
    await timers.run(granted(75));
    await timers.run(timers.sleep(3000));
    // The next invocation's callers arrive one at a time (each waits for the one before), as they do at its start.
    const resumed = clock.now().getTime();
    await timers.run(granted(60));
    const seconds = (clock.now().getTime() - resumed) / 1000;
    // Half a slice at the first claim, then whole ones: 2.5 s of virtual time here. Doubling up from the few calls
    // the spell left (the pacer before this rule) took 3.7 s.
    assert.ok(seconds <= 3, `60 calls took ${seconds} s after the spell`);
  });

  void it('a lane that stays quiet after its spell claims what it uses: half a slice once, then single calls', async () => {
    const clock = new ManualClock('2026-12-01T08:00:00Z');
    const timers = new VirtualTimers(clock);
    const ledger = new VaultBudgetLedger({ records: new MemoryRecordStore<BudgetLedgerRecord>(), key: 'k', clock });
    const claimed: number[] = [];
    const claim = ledger.claim.bind(ledger);
    ledger.claim = async (...args) => {
      const slots = await claim(...args);
      claimed.push(slots.count);
      return slots;
    };
    const pacer = new SharedSlotPacer({ ledger, lane: 'create', perWindow: 285, clock, sleep: timers.sleep });
    for (let i = 0; i < 75; i++) await timers.run(pacer.acquire());
    const busyClaims = claimed.length;
    // Then one call every 3 s: each finds the run before it unused but for that one call.
    for (let i = 0; i < 6; i++) {
      await timers.run(timers.sleep(3000));
      await timers.run(pacer.acquire());
    }
    const quiet = claimed.slice(busyClaims);
    assert.equal(quiet[0], 15, `the first claim after the spell is half a slice: ${quiet.join()}`);
    assert.ok(
      quiet.slice(1).every((n) => n <= 2),
      `then what is used: ${quiet.join()}`,
    );
  });
});
