/**
 * Optional realism of the stand-in: the vault's throttling (Key Vault throttling guidance: a sliding 10-second
 * budget for creates and one for everything else, 429 `Throttled`, rejected calls not counted), added latency and
 * injected faults (500/503 answers, requests held unanswered).
 *
 * Faults and throttling come two ways: by rate (as a real vault or network would, random or against the clock),
 * and by count ("every Nth"), which gives tests an exact, machine-independent number of faults.
 *
 * Time comes from the injected `Clock` and waits go through the injected `Wait`, so a test can drive the
 * throttling window and the latency without sleeping.
 */
import { epochMs } from '../../shared/pipeline/clock.js';
import type { Clock } from '../../shared/pipeline/ports.js';
import type { Wait } from '../stand-in/http.js';
import { KeyVaultError, type KeyVaultOperation } from './rest.js';

export interface KeyVaultRealism {
  /** Rate throttling as the real vault does it. */
  throttling?: boolean;
  createsPer10s?: number;
  othersPer10s?: number;
  latencyMs?: number;
  errorRate?: number /*0..1 share of 500/503*/;
  timeoutRate?: number /*0..1*/;
  timeoutMs?: number;
  /** Answer every Nth create with 429 Throttled, whatever the rate (0 = off). */
  throttleEveryNthCreate?: number;
  /** Answer every Nth request with 503, then 500, alternately (0 = off). */
  errorEveryNth?: number;
  /** Hold every Nth request unanswered for timeoutMs (0 = off). */
  timeoutEveryNth?: number;
}

export const DEFAULT_REALISM: Required<KeyVaultRealism> = {
  throttling: false,
  createsPer10s: 300,
  othersPer10s: 4000,
  latencyMs: 0,
  errorRate: 0,
  timeoutRate: 0,
  timeoutMs: 30_000,
  throttleEveryNthCreate: 0,
  errorEveryNth: 0,
  timeoutEveryNth: 0,
};

export const REALISM_KEYS = Object.keys(DEFAULT_REALISM) as (keyof KeyVaultRealism)[];

const THROTTLE_WINDOW_MS = 10_000;

export function validateRealism(r: KeyVaultRealism): void {
  const isRate = (x: unknown): boolean => typeof x === 'number' && x >= 0 && x <= 1;
  const isPositiveInt = (x: unknown): boolean => typeof x === 'number' && Number.isInteger(x) && x >= 1;
  const isCount = (x: unknown): boolean => typeof x === 'number' && Number.isInteger(x) && x >= 0;
  const isNonNegative = (x: unknown): boolean => typeof x === 'number' && Number.isFinite(x) && x >= 0;
  if (r.throttling !== undefined && typeof r.throttling !== 'boolean') throw new TypeError('throttling must be a boolean');
  if (r.createsPer10s !== undefined && !isPositiveInt(r.createsPer10s)) throw new TypeError('createsPer10s must be an integer >= 1');
  if (r.othersPer10s !== undefined && !isPositiveInt(r.othersPer10s)) throw new TypeError('othersPer10s must be an integer >= 1');
  if (r.latencyMs !== undefined && !isNonNegative(r.latencyMs)) throw new TypeError('latencyMs must be >= 0');
  if (r.timeoutMs !== undefined && !isNonNegative(r.timeoutMs)) throw new TypeError('timeoutMs must be >= 0');
  if (r.errorRate !== undefined && !isRate(r.errorRate)) throw new TypeError('errorRate must be between 0 and 1');
  if (r.timeoutRate !== undefined && !isRate(r.timeoutRate)) throw new TypeError('timeoutRate must be between 0 and 1');
  for (const key of ['throttleEveryNthCreate', 'errorEveryNth', 'timeoutEveryNth'] as const) {
    if (r[key] !== undefined && !isCount(r[key])) throw new TypeError(`${key} must be an integer >= 0 (0 = off)`);
  }
}

/** Settings from an admin request body; unknown keys are refused rather than ignored. */
export function pickRealism(input: Record<string, unknown>): KeyVaultRealism {
  const unknownKeys = Object.keys(input).filter((k) => !(REALISM_KEYS as string[]).includes(k));
  if (unknownKeys.length > 0) throw new TypeError(`unknown realism setting(s): ${unknownKeys.join(', ')}`);
  return input;
}

/** Sliding 10-second window of accepted calls; rejected (429) calls are never recorded. */
class SlidingWindow {
  private stamps: number[] = [];
  private head = 0;

  tryTake(now: number, limit: number): boolean {
    while (this.head < this.stamps.length && (this.stamps[this.head] ?? 0) <= now - THROTTLE_WINDOW_MS) this.head++;
    if (this.head > 1024 && this.head * 2 > this.stamps.length) {
      this.stamps = this.stamps.slice(this.head);
      this.head = 0;
    }
    if (this.stamps.length - this.head >= limit) return false;
    this.stamps.push(now);
    return true;
  }

  clear(): void {
    this.stamps = [];
    this.head = 0;
  }
}

export type Fault = 'timeout' | 'status500' | 'status503';

const everyNth = (count: number, n: number): boolean => n > 0 && count % n === 0;

export class VaultRealism {
  private current: Required<KeyVaultRealism> = { ...DEFAULT_REALISM };
  private readonly createWindow = new SlidingWindow();
  private readonly otherWindow = new SlidingWindow();
  /** Requests that reached the fault decision, and creates that reached the throttling decision. */
  private requestsSeen = 0;
  private countedErrors = 0;
  private createsSeen = 0;

  constructor(
    private readonly clock: Clock,
    readonly wait: Wait,
  ) {}

  get settings(): Required<KeyVaultRealism> {
    return { ...this.current };
  }

  /** Applies the given settings over the current ones; all or nothing. */
  set(r: KeyVaultRealism): void {
    validateRealism(r);
    const next = { ...this.current };
    for (const key of REALISM_KEYS) {
      const value = r[key];
      if (value !== undefined) (next as Record<string, unknown>)[key] = value;
    }
    if (next.errorRate + next.timeoutRate > 1) throw new TypeError('errorRate + timeoutRate must not exceed 1');
    this.current = next;
  }

  /** Empties the throttling windows and restarts the "every Nth" counts. */
  reset(): void {
    this.createWindow.clear();
    this.otherWindow.clear();
    this.requestsSeen = 0;
    this.countedErrors = 0;
    this.createsSeen = 0;
  }

  /** The added latency of one call; rejects when `signal` aborts. */
  async delay(signal: AbortSignal): Promise<void> {
    if (this.current.latencyMs > 0) await this.wait(this.current.latencyMs, signal);
  }

  /** The fault to inject into this request, if any: decided before the vault does anything. */
  pickFault(): Fault | undefined {
    const r = this.current;
    const seen = ++this.requestsSeen;
    if (everyNth(seen, r.timeoutEveryNth)) return 'timeout';
    if (everyNth(seen, r.errorEveryNth)) return this.countedErrors++ % 2 === 0 ? 'status503' : 'status500';
    const roll = Math.random();
    if (roll < r.timeoutRate) return 'timeout';
    if (roll < r.timeoutRate + r.errorRate) return Math.random() < 0.5 ? 'status503' : 'status500';
    return undefined;
  }

  /** The 429 to answer instead of running `op`, if any; an accepted call uses budget, a rejected one does not. */
  throttle(op: KeyVaultOperation): KeyVaultError | undefined {
    const r = this.current;
    const isCreate = op === 'setSecret';
    if (isCreate && everyNth(++this.createsSeen, r.throttleEveryNthCreate)) {
      return throttled(`Secret create operations exceeded the injected limit (every ${r.throttleEveryNthCreate}th create is refused).`);
    }
    if (!r.throttling) return undefined;
    const now = epochMs(this.clock);
    const accepted = isCreate ? this.createWindow.tryTake(now, r.createsPer10s) : this.otherWindow.tryTake(now, r.othersPer10s);
    if (accepted) return undefined;
    return throttled(
      isCreate
        ? `Secret create operations exceeded ${r.createsPer10s} per 10 seconds for this vault.`
        : `Vault transactions exceeded ${r.othersPer10s} per 10 seconds for this vault.`,
    );
  }
}

function throttled(reason: string): KeyVaultError {
  return new KeyVaultError(429, 'Throttled', `Request was not processed because too many requests were received. Reason: ${reason}`);
}
