/**
 * The one place that reads the system's time. Everything else takes a `Clock`, so tests (and the guard in
 * test/pipeline/clock-guard.test.ts) can hold time still or move it on purpose.
 */
import type { Clock } from './ports.js';

export const systemClock: Clock = { now: () => new Date() };

/** Milliseconds since the epoch from a clock; a short name for the common case. */
export const epochMs = (clock: Clock): number => clock.now().getTime();
