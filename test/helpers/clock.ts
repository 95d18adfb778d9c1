/** A clock for tests: time stands still until the test moves it. */
import type { Clock } from '../../shared/pipeline/ports.js';

export class ManualClock implements Clock {
  private ms: number;

  constructor(start: string | Date = '2026-11-29T10:00:00Z') {
    this.ms = new Date(start).getTime();
  }

  now(): Date {
    return new Date(this.ms);
  }

  advance(ms: number): void {
    this.ms += ms;
  }

  set(at: string | Date): void {
    this.ms = new Date(at).getTime();
  }
}

/**
 * Timers on a ManualClock, for code that waits (the vault's pacers): sleep(ms) resolves once run() has moved the
 * clock that far. run() lets everything that can run do so, then jumps the clock to the earliest sleeper, so a
 * minute of paced calls takes milliseconds and every figure comes from the clock, not the machine's speed.
 */
export class VirtualTimers {
  private sleepers: { at: number; resolve: () => void }[] = [];

  constructor(readonly clock: ManualClock) {}

  readonly sleep = (ms: number): Promise<void> =>
    new Promise<void>((resolve) => {
      this.sleepers.push({ at: this.clock.now().getTime() + Math.max(0, ms), resolve });
    });

  async run<T>(work: Promise<T>): Promise<T> {
    let settled = false;
    const watched = work.finally(() => {
      settled = true;
    });
    watched.catch(() => undefined);
    let realWaits = 0;
    while (!settled) {
      // Every promise callback that can run runs before setImmediate's.
      await new Promise<void>((r) => setImmediate(r));
      if (settled) break;
      if (this.sleepers.length === 0) {
        // Nothing asleep on the clock: the work waits on something real (a lost race's jitter): let it pass.
        if (++realWaits > 10_000) throw new Error('VirtualTimers: the work waits on nothing the clock can wake.');
        await new Promise<void>((r) => setTimeout(r, 1));
        continue;
      }
      realWaits = 0;
      this.sleepers.sort((a, b) => a.at - b.at);
      const next = this.sleepers[0]!.at;
      const now = this.clock.now().getTime();
      if (next > now) this.clock.advance(next - now);
      const due = this.sleepers.filter((s) => s.at <= next);
      this.sleepers = this.sleepers.filter((s) => s.at > next);
      for (const s of due) s.resolve();
    }
    return watched;
  }
}
