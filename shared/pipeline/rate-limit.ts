/**
 * Key Vault's budget is per vault per 10-second window (300 creates, 4,000 other
 * operations). A sliding-window limiter keeps every 10-second span at or under
 * the budget, so the pipeline runs just under the line instead of into 429s;
 * grants are also spaced evenly (window / budget apart), so the budget is spent
 * as a steady stream rather than one burst at the start of each window.
 */
import { TransientError } from './errors.js';
import type { Pacer } from './vault-budget.js';

export interface RateLimiterOptions {
  /** Operations allowed per window. */
  budget: number;
  windowMs?: number;
  /** Added to the window so requests that leave at the edge still land inside it on the server. */
  marginMs?: number;
  /** Space grants evenly across the window (default true); false hands out each window's budget at once. */
  smooth?: boolean;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class SlidingWindowLimiter implements Pacer {
  private readonly grants: number[];
  private next = 0;
  private chain: Promise<void> = Promise.resolve();
  private readonly windowMs: number;
  private readonly spacingMs: number;
  private lastGrant = -Infinity;
  private pausedUntil = -Infinity;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  /** Grants handed out, for the benchmark. */
  granted = 0;

  constructor(readonly options: RateLimiterOptions) {
    if (!Number.isInteger(options.budget) || options.budget < 1) throw new RangeError('budget must be a positive integer');
    this.grants = new Array<number>(options.budget).fill(-Infinity);
    this.windowMs = (options.windowMs ?? 10_000) + (options.marginMs ?? 50);
    this.spacingMs = options.smooth === false ? 0 : this.windowMs / options.budget;
    this.now = options.now ?? Date.now;
    this.sleep = options.sleep ?? defaultSleep;
  }

  /**
   * Resolves when one more operation fits in the window, with a `done` callback to call when that
   * operation has finished. Callers are served in order.
   *
   * The vault counts a call when it arrives, somewhere between our grant and its answer. Reusing a
   * slot one window after its grant is safe only while every call takes about as long to arrive
   * (a burst, an auth challenge or a slow socket breaks that); reusing it one window after the
   * answer is safe whatever the latency, so `done()` moves the slot's time to the answer.
   */
  acquire(): Promise<() => void> {
    const turn = this.chain.then(async () => {
      const slot = this.next;
      this.next = (slot + 1) % this.grants.length;
      // The slot holds the grant made `budget` grants ago; its done() may move it on while we sleep.
      const waitFor = () => Math.max(this.grants[slot]! + this.windowMs, this.lastGrant + this.spacingMs, this.pausedUntil) - this.now();
      for (let wait = waitFor(); wait > 0; wait = waitFor()) await this.sleep(wait);
      this.grants[slot] = this.lastGrant = this.now();
      this.granted++;
      return () => {
        this.grants[slot] = Math.max(this.grants[slot]!, this.now());
      };
    });
    this.chain = turn.then(() => undefined);
    return turn;
  }

  /** Holds every grant back for ms (a 429 says the budget is spent elsewhere too). */
  pauseFor(ms: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, this.now() + ms);
  }
}

export interface RetryOptions {
  /** Tries of a call that fails transiently (5xx, timeout); a 429 is counted apart (maxThrottledAttempts). */
  maxAttempts?: number;
  /**
   * Tries of a call the vault keeps throttling. A 429 is the vault asking to wait, not a fault: it is retried after
   * its Retry-After (or the backoff) far longer than a fault, so a busy vault slows an ingest down rather than
   * failing it; only a vault that refuses for many minutes on end makes the call fail.
   */
  maxThrottledAttempts?: number;
  /** First backoff; doubles each time (1, 2, 4, 8, 16 s by default, as Key Vault's guidance says). */
  baseDelayMs?: number;
  maxDelayMs?: number;
  sleep?: (ms: number) => Promise<void>;
  onRetry?: (err: TransientError, attempt: number, delayMs: number) => void;
}

/** Retries TransientError with exponential backoff and jitter; other errors pass through at once. */
export async function withRetry<T>(operation: () => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const maxAttempts = options.maxAttempts ?? 8;
  const maxThrottled = options.maxThrottledAttempts ?? 40;
  const base = options.baseDelayMs ?? 1000;
  const max = options.maxDelayMs ?? 16_000;
  const sleep = options.sleep ?? defaultSleep;
  let faults = 0;
  let throttled = 0;
  for (let attempt = 1; ; attempt++) {
    try {
      return await operation();
    } catch (err) {
      if (!(err instanceof TransientError)) throw err;
      const isThrottle = err.status === 429;
      if (isThrottle ? ++throttled >= maxThrottled : ++faults >= maxAttempts) throw err;
      const backoff = Math.min(max, base * 2 ** ((isThrottle ? throttled : faults) - 1));
      const delay = Math.max(err.retryAfterMs ?? 0, backoff * (0.75 + Math.random() * 0.5));
      options.onRetry?.(err, attempt, delay);
      await sleep(delay);
    }
  }
}
