/**
 * The vault as the services see it: every call paced inside the vault's budget and retried with backoff on
 * throttling and transient faults.
 *
 * Two lanes per budget. Bulk work (ingests, builds, programming) is paced by the shared ledger when there is one
 * (./vault-budget.ts: every instance claims its calls from one schedule), else by this process alone. A small
 * reserved share of each budget (interactiveShare) is paced apart for `interactive` calls, the ones a person waits
 * for (a verify's read, the health check), so they never queue behind a 100,000-token ingest.
 */
import { systemClock } from './clock.js';
import { TransientError } from './errors.js';
import { SlidingWindowLimiter, withRetry, type RetryOptions } from './rate-limit.js';
import { SharedSlotPacer, type Pacer, type VaultBudgetLedger } from './vault-budget.js';
import type { Clock, SecretStore, SecretValue, SetSecretOptions, SecretVersionInfo } from './ports.js';

/** batch: the `batch` tag of a secret found already there (which ingest stored it). */
export type EnsureOutcome = { outcome: 'created' | 'unchanged' | 'conflict'; version: string; batch?: string };

export interface VaultStats {
  creates: number;
  reads: number;
  retries: number;
  throttled: number;
}

export interface PacedVaultOptions {
  createBudget: number;
  readBudget: number;
  retry?: RetryOptions;
  /** The budget shared with every other instance; without it this process paces itself to the whole budget. */
  ledger?: VaultBudgetLedger;
  /** Share of each budget (0 to 0.5) reserved for interactive calls; 0: they share the bulk lanes. */
  interactiveShare?: number;
  /** For the shared pacers' slot times and waits (tests drive both). */
  clock?: Clock;
  sleep?: (ms: number) => Promise<void>;
}

interface Lanes {
  create: Pacer;
  read: Pacer;
}

const realSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The reserved share of a budget, at least one call per window when there is a share at all. */
export function interactiveBudget(budget: number, share: number): number {
  // A budget of one call has nothing to spare.
  return share > 0 && budget >= 2 ? Math.max(1, Math.floor(budget * share)) : 0;
}

export class PacedVault implements SecretStore {
  readonly stats: VaultStats;
  /** The same vault for calls a person waits for: paced by the reserved share, never behind bulk work. */
  readonly interactive: PacedVault;
  private readonly lanes: Lanes;

  constructor(
    private readonly inner: SecretStore,
    private readonly options: PacedVaultOptions,
    shared?: { lanes: Lanes; stats: VaultStats },
  ) {
    if (shared) {
      this.lanes = shared.lanes;
      this.stats = shared.stats;
      this.interactive = this;
      return;
    }
    this.stats = { creates: 0, reads: 0, retries: 0, throttled: 0 };
    const share = options.interactiveShare ?? 0;
    if (!(share >= 0 && share <= 0.5)) throw new RangeError('interactiveShare must be between 0 and 0.5');
    const reserved = { create: interactiveBudget(options.createBudget, share), read: interactiveBudget(options.readBudget, share) };
    const bulk = { create: options.createBudget - reserved.create, read: options.readBudget - reserved.read };
    // Tests drive time through the clock and sleep; in an app both are real.
    const local = (budget: number) =>
      new SlidingWindowLimiter({
        budget,
        ...(options.clock && { now: () => options.clock!.now().getTime() }),
        ...(options.sleep && { sleep: options.sleep }),
      });
    const pacer = (lane: 'create' | 'read'): Pacer =>
      options.ledger
        ? new SharedSlotPacer({
            ledger: options.ledger,
            lane,
            perWindow: bulk[lane],
            clock: options.clock ?? systemClock,
            sleep: options.sleep ?? realSleep,
          })
        : local(bulk[lane]);
    this.lanes = { create: pacer('create'), read: pacer('read') };
    const interactiveLanes =
      reserved.create > 0 && reserved.read > 0 ? { create: local(reserved.create), read: local(reserved.read) } : this.lanes;
    this.interactive = new PacedVault(inner, options, { lanes: interactiveLanes, stats: this.stats });
  }

  /** Calls granted so far per lane (bulk, or this view's), for the benchmark. */
  get granted(): { creates: number; reads: number } {
    return { creates: this.lanes.create.granted, reads: this.lanes.read.granted };
  }

  /** One call inside the budget; its slot is timed from the answer (see SlidingWindowLimiter.acquire). */
  private async paced<T>(limiter: Pacer, op: () => Promise<T>): Promise<T> {
    const done = await limiter.acquire();
    try {
      return await op();
    } finally {
      done();
    }
  }

  private run<T>(limiter: Pacer, op: () => Promise<T>): Promise<T> {
    return withRetry(() => this.paced(limiter, op), this.retryOptions([limiter]));
  }

  /**
   * Counts retries, and on a 429 pauses the lanes for the backoff: the vault
   * says the budget is spent (another client, another instance), so every caller
   * of this process slows down, not only the one that was refused.
   */
  private retryOptions(limiters: Pacer[]): RetryOptions {
    return {
      ...this.options.retry,
      onRetry: (err: TransientError, attempt, delay) => {
        this.stats.retries++;
        if (err.status === 429) {
          this.stats.throttled++;
          for (const limiter of limiters) limiter.pauseFor(delay);
        }
        this.options.retry?.onRetry?.(err, attempt, delay);
      },
    };
  }

  get(name: string, version?: string): Promise<SecretValue | undefined> {
    return this.run(this.lanes.read, () => {
      this.stats.reads++;
      return this.inner.get(name, version);
    });
  }

  set(name: string, value: string, options: SetSecretOptions): Promise<{ version: string }> {
    return this.run(this.lanes.create, () => {
      this.stats.creates++;
      return this.inner.set(name, value, options);
    });
  }

  /**
   * Stores value under name unless the vault already holds it. A write that
   * failed ambiguously (500, timeout) may still have landed, so every retry
   * starts again from the read: the secret never gets a second version.
   */
  ensureSecret(name: string, value: string, options: SetSecretOptions): Promise<EnsureOutcome> {
    return withRetry(
      async () => {
        const existing = await this.paced(this.lanes.read, () => {
          this.stats.reads++;
          return this.inner.get(name);
        });
        if (existing)
          return { outcome: existing.value === value ? 'unchanged' : 'conflict', version: existing.version, batch: existing.tags.batch };
        const { version } = await this.paced(this.lanes.create, () => {
          this.stats.creates++;
          return this.inner.set(name, value, options);
        });
        return { outcome: 'created', version };
      },
      this.retryOptions([this.lanes.read, this.lanes.create]),
    );
  }

  /**
   * Makes value the name's newest version, whatever the name held before. As with ensureSecret, every retry
   * starts from a read, so a write that landed but whose answer was lost does not become a second new version.
   */
  addVersion(name: string, value: string, options: SetSecretOptions): Promise<{ version: string }> {
    return withRetry(
      async () => {
        const existing = await this.paced(this.lanes.read, () => {
          this.stats.reads++;
          return this.inner.get(name);
        });
        if (existing?.value === value) return { version: existing.version };
        return this.paced(this.lanes.create, () => {
          this.stats.creates++;
          return this.inner.set(name, value, options);
        });
      },
      this.retryOptions([this.lanes.read, this.lanes.create]),
    );
  }

  /** An update, not a create: Key Vault counts it in the budget of every other operation. */
  disable(name: string, version: string): Promise<void> {
    return this.run(this.lanes.read, () => this.inner.disable(name, version));
  }

  recover(name: string): Promise<void> {
    return this.run(this.lanes.read, () => this.inner.recover(name));
  }

  /** A metadata read (one list call per page): counted in the read budget like a get. */
  listVersions(name: string): Promise<SecretVersionInfo[]> {
    return this.run(this.lanes.read, () => this.inner.listVersions(name));
  }
}
