/**
 * The vault as the services see it: every call paced by the shared budget
 * limiters and retried with backoff on throttling and transient faults.
 */
import { TransientError } from './errors.js';
import { SlidingWindowLimiter, withRetry, type RetryOptions } from './rate-limit.js';
import type { SecretStore, SecretValue, SetSecretOptions, SecretVersionInfo } from './ports.js';

export type EnsureOutcome = { outcome: 'created' | 'unchanged' | 'conflict'; version: string };

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
}

export class PacedVault implements SecretStore {
  readonly stats: VaultStats = { creates: 0, reads: 0, retries: 0, throttled: 0 };
  private readonly createLimiter: SlidingWindowLimiter;
  private readonly readLimiter: SlidingWindowLimiter;

  constructor(
    private readonly inner: SecretStore,
    private readonly options: PacedVaultOptions,
  ) {
    this.createLimiter = new SlidingWindowLimiter({ budget: options.createBudget });
    this.readLimiter = new SlidingWindowLimiter({ budget: options.readBudget });
  }

  /** One call inside the budget; its slot is timed from the answer (see SlidingWindowLimiter.acquire). */
  private async paced<T>(limiter: SlidingWindowLimiter, op: () => Promise<T>): Promise<T> {
    const done = await limiter.acquire();
    try {
      return await op();
    } finally {
      done();
    }
  }

  private run<T>(limiter: SlidingWindowLimiter, op: () => Promise<T>): Promise<T> {
    return withRetry(
      () => this.paced(limiter, op),
      this.retryOptions([limiter]),
    );
  }

  /**
   * Counts retries, and on a 429 pauses the limiters for the backoff: the vault
   * says the budget is spent (another client, another instance), so every caller
   * of this process slows down, not only the one that was refused.
   */
  private retryOptions(limiters: SlidingWindowLimiter[]): RetryOptions {
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
    return this.run(this.readLimiter, () => {
      this.stats.reads++;
      return this.inner.get(name, version);
    });
  }

  set(name: string, value: string, options: SetSecretOptions): Promise<{ version: string }> {
    return this.run(this.createLimiter, () => {
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
        const existing = await this.paced(this.readLimiter, () => {
          this.stats.reads++;
          return this.inner.get(name);
        });
        if (existing) return existing.value === value ? { outcome: 'unchanged', version: existing.version } : { outcome: 'conflict', version: existing.version };
        const { version } = await this.paced(this.createLimiter, () => {
          this.stats.creates++;
          return this.inner.set(name, value, options);
        });
        return { outcome: 'created', version };
      },
      this.retryOptions([this.readLimiter, this.createLimiter]),
    );
  }

  /**
   * Makes value the name's newest version, whatever the name held before. As with ensureSecret, every retry
   * starts from a read, so a write that landed but whose answer was lost does not become a second new version.
   */
  addVersion(name: string, value: string, options: SetSecretOptions): Promise<{ version: string }> {
    return withRetry(
      async () => {
        const existing = await this.paced(this.readLimiter, () => {
          this.stats.reads++;
          return this.inner.get(name);
        });
        if (existing?.value === value) return { version: existing.version };
        return this.paced(this.createLimiter, () => {
          this.stats.creates++;
          return this.inner.set(name, value, options);
        });
      },
      this.retryOptions([this.readLimiter, this.createLimiter]),
    );
  }

  /** An update, not a create: Key Vault counts it in the budget of every other operation. */
  disable(name: string, version: string): Promise<void> {
    return this.run(this.readLimiter, () => this.inner.disable(name, version));
  }

  recover(name: string): Promise<void> {
    return this.run(this.readLimiter, () => this.inner.recover(name));
  }

  /** A metadata read (one list call per page): counted in the read budget like a get. */
  listVersions(name: string): Promise<SecretVersionInfo[]> {
    return this.run(this.readLimiter, () => this.inner.listVersions(name));
  }
}
