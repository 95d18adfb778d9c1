/**
 * The deep health check behind GET /api/health: storage, the tokens table and the vault reachable.
 *
 * The endpoint is anonymous, and every vault call spends the process's shared read budget, so the deep check is
 * cached: at most one run per HEALTH_PROBE_INTERVAL_MS of the context's clock, however many requests arrive.
 * Concurrent requests share the run in flight; a failed run is kept as long, so an outage is not hammered.
 */
import type { AppContext } from './context.js';

export const HEALTH_PROBE_INTERVAL_MS = 30_000;

export interface HealthReport {
  status: 'ok' | 'degraded';
  checks: Record<string, 'ok' | 'failed'>;
  triggerSource: string;
  /** When the deep check ran (the answer may come from the cache). */
  checkedAt: string;
}

const lastRun = new WeakMap<AppContext, { startedMs: number; report: Promise<HealthReport> }>();

export function checkHealth(ctx: AppContext): Promise<HealthReport> {
  const nowMs = ctx.clock.now().getTime();
  const cached = lastRun.get(ctx);
  if (cached && nowMs - cached.startedMs < HEALTH_PROBE_INTERVAL_MS) return cached.report;
  const report = probe(ctx);
  lastRun.set(ctx, { startedMs: nowMs, report });
  return report;
}

async function probe(ctx: AppContext): Promise<HealthReport> {
  const checkedAt = ctx.clock.now().toISOString();
  const checks: Record<string, 'ok' | 'failed'> = {};
  const run = async (name: string, fn: () => Promise<unknown>) => {
    try {
      await fn();
      checks[name] = 'ok';
    } catch {
      checks[name] = 'failed';
    }
  };
  await run('storage', async () => {
    for await (const _ of ctx.blobs.list(ctx.config.containers.reports, '__health__')) break;
  });
  await run('tokensTable', async () => ctx.tokens.get('__health__'));
  await run('keyVault', async () => ctx.vault.interactive.get('health-probe'));
  const ok = Object.values(checks).every((c) => c === 'ok');
  return { status: ok ? 'ok' : 'degraded', checks, triggerSource: ctx.config.triggerSource, checkedAt };
}
