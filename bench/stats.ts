/** Small statistics helpers for the benchmark figures. */

export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

/** Nearest-rank percentile (p in 0..100) of unsorted values. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

/**
 * Operations per second sustained, as the least-squares slope of the
 * cumulative count over time. A window limiter hands out its budget in
 * bursts, so "count over first-to-last" overstates the rate (five windows of
 * operations fit in four window lengths); the slope of the staircase is the
 * budget itself for a limiter that runs exactly at it, smooth or bursty.
 */
export function sustainedRatePerSecond(timestampsMs: readonly number[]): number {
  const n = timestampsMs.length;
  if (n < 2) return NaN;
  const t0 = timestampsMs[0]!;
  let meanT = 0;
  let meanI = 0;
  for (let i = 0; i < n; i++) {
    meanT += (timestampsMs[i]! - t0) / 1000;
    meanI += i;
  }
  meanT /= n;
  meanI /= n;
  let cov = 0;
  let varT = 0;
  for (let i = 0; i < n; i++) {
    const dt = (timestampsMs[i]! - t0) / 1000 - meanT;
    cov += dt * (i - meanI);
    varT += dt * dt;
  }
  return varT === 0 ? NaN : cov / varT;
}

/** (n - 1) operations over the time from the first to the last. */
export function firstToLastRatePerSecond(timestampsMs: readonly number[]): number {
  const n = timestampsMs.length;
  if (n < 2) return NaN;
  const span = (timestampsMs[n - 1]! - timestampsMs[0]!) / 1000;
  return span > 0 ? (n - 1) / span : NaN;
}

/** The most operations in any window of windowMs (stamps in (t - windowMs, t]), as the vault counts them. */
export function peakInWindow(timestampsMs: readonly number[], windowMs: number): number {
  const sorted = [...timestampsMs].sort((a, b) => a - b);
  let peak = 0;
  let head = 0;
  for (let i = 0; i < sorted.length; i++) {
    while (sorted[head]! <= sorted[i]! - windowMs) head++;
    peak = Math.max(peak, i - head + 1);
  }
  return peak;
}

export function round(value: number, digits = 2): number {
  if (!Number.isFinite(value)) return value;
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
