/**
 * Key Vault's budget (300 creates and 4,000 other calls in any 10 seconds) belongs to the vault, not to one
 * instance: several instances each pacing themselves to the whole budget throttle the vault several times over.
 *
 * The shared budget is a ledger of time slices, kept in one small record in the `state` container. Time is cut
 * into one-second slices; each slice of a lane (creates, reads) holds a tenth of the lane's 10-second budget. An
 * instance that needs calls claims some of a slice (what is left of the one under way, in proportion to its time
 * left, or a coming one) with one conditional write (conditional-update.ts: read, add its count to the slice,
 * write under the ETag read; a lost race reads again), then makes its calls spread evenly across the slice,
 * locally, without touching the ledger again. The record is written once per
 * claim (at most a slice's worth of calls), not once per secret. Since the slices' counts never exceed their
 * share and every claimant spreads its calls across its slice, any 10 seconds (ten slices, or parts of eleven)
 * hold about one budget, whoever made the calls: each claimant can be a call or two over at the edges, which the
 * interactive reserve (vault.ts) absorbs.
 *
 * Why not one writer holding a lease on the vault: every instance would hand its secrets to that writer (a queue
 * and a second hop), an instance that died holding the lease would stop every ingest for the lease's length, and
 * the writer's instance would cap the throughput. Claims keep every instance writing its own secrets, and an
 * instance that dies loses at most the few slots it had claimed.
 */
import { epochMs } from './clock.js';
import { updateWithRetry, writeRow } from './conditional-update.js';
import type { Clock, Entity, RecordStore } from './ports.js';

export type BudgetLane = 'create' | 'read';

/** The ledger record: per lane, the latest slice anyone claimed from (slice number) and how much of it is claimed. */
export interface BudgetLedgerRecord extends Entity {
  createSlice: number;
  createClaimed: number;
  readSlice: number;
  readClaimed: number;
  updatedAt: string;
}

/** A run of calls: count of them, spread evenly across [startMs, endMs) (a slice, or what is left of it). */
export interface ClaimedSlots {
  startMs: number;
  endMs: number;
  count: number;
}

export const BUDGET_WINDOW_MS = 10_000;
export const SLICE_MS = 1_000;
/** Races on the ledger: each round lets one claimant through, so this covers many instances claiming at once. */
const CLAIM_ATTEMPTS = 25;

/** The calls slice `index` holds when a lane has perWindow per window: whole numbers that add up to the budget. */
export function sliceCapacity(index: number, perWindow: number): number {
  const perSlice = (perWindow * SLICE_MS) / BUDGET_WINDOW_MS;
  return Math.floor((index + 1) * perSlice) - Math.floor(index * perSlice);
}

export interface VaultBudgetLedgerDeps {
  records: RecordStore<BudgetLedgerRecord>;
  /** The ledger's record name (shared/pipeline/blob-names.ts vaultBudgetLedgerName). */
  key: string;
  clock: Clock;
}

export class VaultBudgetLedger {
  /** Writes of the ledger (successful claims), for tests and the benchmark. */
  claims = 0;

  constructor(private readonly deps: VaultBudgetLedgerDeps) {}

  /**
   * Claims up to `want` calls of `lane` (perWindow per window) in the first slice with room: what is left of the
   * slice under way, in proportion to the time left of it, else a coming slice.
   */
  claim(lane: BudgetLane, want: number, perWindow: number): Promise<ClaimedSlots> {
    const sliceField = lane === 'create' ? 'createSlice' : 'readSlice';
    const claimedField = lane === 'create' ? 'createClaimed' : 'readClaimed';
    return updateWithRetry(
      this.deps.records,
      this.deps.key,
      (row) => {
        const now = epochMs(this.deps.clock);
        const value: BudgetLedgerRecord = { createSlice: 0, createClaimed: 0, readSlice: 0, readClaimed: 0, updatedAt: '', ...row?.value };
        const current = Math.floor(now / SLICE_MS);
        let slice = Math.max(Number(value[sliceField]) || 0, current);
        let claimed = slice === (Number(value[sliceField]) || 0) ? Number(value[claimedField]) || 0 : 0;
        let startMs = slice * SLICE_MS;
        // The slice under way: only the share of its time still to come, less what others claimed of it.
        let room =
          slice === current
            ? Math.floor((sliceCapacity(slice, perWindow) * ((slice + 1) * SLICE_MS - now)) / SLICE_MS) - claimed
            : sliceCapacity(slice, perWindow) - claimed;
        if (slice === current) startMs = now;
        if (room < 1) {
          slice++;
          claimed = 0;
          startMs = slice * SLICE_MS;
          room = sliceCapacity(slice, perWindow);
        }
        const count = Math.max(1, Math.min(want, room));
        return writeRow({ ...value, [sliceField]: slice, [claimedField]: claimed + count, updatedAt: new Date(now).toISOString() }, () => {
          this.claims++;
          return { startMs, endMs: (slice + 1) * SLICE_MS, count };
        });
      },
      { attempts: CLAIM_ATTEMPTS },
    );
  }
}

/** What PacedVault paces each lane with: the local sliding window, or slots claimed from the shared ledger. */
export interface Pacer {
  /** Resolves when one more call may go out, with a callback for when it has been answered. */
  acquire(): Promise<() => void>;
  /** Holds every grant back for ms (a 429 says the vault's budget is spent). */
  pauseFor(ms: number): void;
  readonly granted: number;
}

export interface SharedSlotPacerOptions {
  ledger: VaultBudgetLedger;
  lane: BudgetLane;
  /** This app's share of the lane's budget per 10-second window (the budget less the interactive reserve). */
  perWindow: number;
  clock: Clock;
  sleep: (ms: number) => Promise<void>;
}

/**
 * Spends runs of calls claimed from the ledger, callers in order, each run spread evenly across its slice. A claim
 * asks for what the last one used (doubled when all of it went, so demand is found in a couple of slices) and at
 * least the callers waiting, at most a slice. A call whose time passed by more than the lateness allowance (the process
 * was busy, or nobody was waiting) is let go rather than made late: made late, it could crowd the next 10 seconds.
 */
export class SharedSlotPacer implements Pacer {
  granted = 0;
  /** Calls claimed but let go unused (late, or paused past). */
  dropped = 0;
  private run: ClaimedSlots = { startMs: 0, endMs: 0, count: 0 };
  private nextSlot = 0;
  private droppedInRun = 0;
  /** The run under way was claimed as the first after an idle spell. */
  private claimedAfterSpell = false;
  private waiting = 0;
  private pausedUntil = -Infinity;
  private chain: Promise<void> = Promise.resolve();
  private readonly maxClaim: number;

  constructor(private readonly options: SharedSlotPacerOptions) {
    if (!Number.isInteger(options.perWindow) || options.perWindow < 1) throw new RangeError('perWindow must be a positive integer');
    this.maxClaim = Math.max(1, Math.ceil((options.perWindow * SLICE_MS) / BUDGET_WINDOW_MS));
  }

  acquire(): Promise<() => void> {
    this.waiting++;
    const turn = this.chain.then(async () => {
      try {
        await this.takeSlot();
      } finally {
        this.waiting--;
      }
      this.granted++;
      return () => undefined;
    });
    this.chain = turn.then(
      () => undefined,
      () => undefined,
    );
    return turn;
  }

  pauseFor(ms: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, epochMs(this.options.clock) + ms);
  }

  private nextWant(): number {
    const used = this.run.count - this.droppedInRun;
    // A busy lane's idle spell (a large run mostly unused: an ingest between two invocations, say). The first claim
    // after it is made as a first claim is, since demand is unknown again: half a slice, so the lane is back to its
    // share at the next claim instead of doubling up from the few calls the spell left. Once only: a lane that
    // stays quiet then claims what it uses, and a lane whose runs were small never counts as busy.
    const firstAfterSpell = used * 2 < this.run.count && this.run.count * 2 >= this.maxClaim && !this.claimedAfterSpell;
    this.claimedAfterSpell = firstAfterSpell;
    if (this.run.count === 0 || firstAfterSpell) return Math.min(this.maxClaim, Math.max(this.waiting, Math.ceil(this.maxClaim / 2)));
    const grown = this.droppedInRun === 0 ? 2 * this.run.count : used;
    return Math.min(this.maxClaim, Math.max(1, this.waiting, grown));
  }

  private async takeSlot(): Promise<void> {
    const { clock, sleep } = this.options;
    for (;;) {
      const now = epochMs(clock);
      if (now < this.pausedUntil) {
        await sleep(this.pausedUntil - now);
        continue;
      }
      if (this.nextSlot >= this.run.count) {
        const want = this.nextWant();
        this.run = await this.options.ledger.claim(this.options.lane, want, this.options.perWindow);
        this.nextSlot = 0;
        this.droppedInRun = 0;
        continue;
      }
      const spacing = (this.run.endMs - this.run.startMs) / this.run.count;
      const at = this.run.startMs + this.nextSlot * spacing;
      // Timers fire a little late on a busy instance: a couple of calls' worth, or 100 ms, is still on time.
      if (now > at + Math.min(Math.max(2 * spacing, 100), SLICE_MS / 2)) {
        this.nextSlot++;
        this.droppedInRun++;
        this.dropped++;
        continue;
      }
      if (at > now) await sleep(at - now);
      // A 429 during the wait holds this call back too.
      if (epochMs(clock) < this.pausedUntil) continue;
      this.nextSlot++;
      return;
    }
  }
}
