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
