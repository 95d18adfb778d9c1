/**
 * Key Vault's budget (300 creates and 4,000 other calls in any 10 seconds) belongs to the vault, not to one
 * instance: several instances each pacing themselves to the whole budget throttle the vault several times over.
 *
 * The shared budget is a schedule of call times, kept in one small record (the ledger) in the `state` container.
 * Each lane of the vault (creates, reads) is a stream of slots spaced window ÷ budget apart (33 ms for 300 creates
 * per 10 s); the ledger holds, per lane, the time of the first slot nobody has claimed yet. An instance that needs
 * calls claims a run of slots with one conditional write (shared/pipeline/conditional-update.ts: read, move the
 * time on by count × spacing, write under the ETag read; a lost race reads again) and then makes one call at each
 * slot's time, locally, without touching the ledger again. So the record is written once per run of slots (at
 * most one window's slice, a couple of seconds of calls), not once per secret, and since no two instances ever
 * hold the same slot, the calls of all instances together are spaced like one well-paced client: any 10 seconds
 * hold at most a budget's worth, whoever made them.
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

/** The ledger record: per lane, the first unclaimed slot (epoch ms). */
export interface BudgetLedgerRecord extends Entity {
  createNextMs: number;
  readNextMs: number;
  updatedAt: string;
}

export interface ClaimedSlots {
  firstMs: number;
  spacingMs: number;
  count: number;
}

export const BUDGET_WINDOW_MS = 10_000;
/** A claim covers at most this much of a lane's time: enough to keep the ledger's writes rare, little to lose. */
export const CLAIM_SLICE_MS = 2_000;
/** Races on the ledger: each round lets one claimant through, so this covers many instances claiming at once. */
const CLAIM_ATTEMPTS = 25;

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

  /** Claims `count` slots of `lane`, spaced for `perWindow` calls per 10-second window, from now or later. */
  claim(lane: BudgetLane, count: number, perWindow: number): Promise<ClaimedSlots> {
    const spacingMs = BUDGET_WINDOW_MS / perWindow;
    const field = lane === 'create' ? 'createNextMs' : 'readNextMs';
    return updateWithRetry(
      this.deps.records,
      this.deps.key,
      (row) => {
        const now = epochMs(this.deps.clock);
        const value: BudgetLedgerRecord = row?.value ?? { createNextMs: 0, readNextMs: 0, updatedAt: '' };
        const firstMs = Math.max(Number(value[field]) || 0, now);
        return writeRow({ ...value, [field]: firstMs + count * spacingMs, updatedAt: new Date(now).toISOString() }, () => {
          this.claims++;
          return { firstMs, spacingMs, count };
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
 * Spends slots claimed from the ledger, one call per slot, callers in order. A claim asks for as many slots as
 * callers are waiting (at most one CLAIM_SLICE_MS of the lane), so slots are seldom claimed for nobody. A slot
 * whose time has passed by more than the lateness allowance (the process was busy, or nobody was waiting) is let
 * go rather than spent late: spending it late could put more than a budget into some 10 seconds.
 */
export class SharedSlotPacer implements Pacer {
  granted = 0;
  /** Slots let go unused (late or paused past). */
  dropped = 0;
  private slots: ClaimedSlots = { firstMs: 0, spacingMs: 0, count: 0 };
  private nextSlot = 0;
  private waiting = 0;
  private pausedUntil = -Infinity;
  private chain: Promise<void> = Promise.resolve();
  private readonly maxClaim: number;
  private readonly latenessMs: number;

  constructor(private readonly options: SharedSlotPacerOptions) {
    if (!Number.isInteger(options.perWindow) || options.perWindow < 1) throw new RangeError('perWindow must be a positive integer');
    this.maxClaim = Math.max(1, Math.floor((options.perWindow * CLAIM_SLICE_MS) / BUDGET_WINDOW_MS));
    // Timers fire a little late on a busy instance; a few slots' worth of lateness stays inside the reserve.
    this.latenessMs = Math.max((2 * BUDGET_WINDOW_MS) / options.perWindow, 100);
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

  private async takeSlot(): Promise<void> {
    const { clock, sleep } = this.options;
    for (;;) {
      const now = epochMs(clock);
      if (now < this.pausedUntil) {
        await sleep(this.pausedUntil - now);
        continue;
      }
      if (this.nextSlot >= this.slots.count) {
        const count = Math.min(this.maxClaim, Math.max(1, this.waiting));
        this.slots = await this.options.ledger.claim(this.options.lane, count, this.options.perWindow);
        this.nextSlot = 0;
        continue;
      }
      const at = this.slots.firstMs + this.nextSlot * this.slots.spacingMs;
      if (now > at + this.latenessMs) {
        this.nextSlot++;
        this.dropped++;
        continue;
      }
      if (at > now) await sleep(at - now);
      // A 429 during the wait holds this slot back too.
      if (epochMs(clock) < this.pausedUntil) continue;
      this.nextSlot++;
      return;
    }
  }
}
