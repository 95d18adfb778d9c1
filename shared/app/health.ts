/**
 * The deep health check behind GET /api/health: storage, the tokens table and the vault reachable.
 */
import type { AppContext } from './context.js';

export interface HealthReport {
  status: 'ok' | 'degraded';
  checks: Record<string, 'ok' | 'failed'>;
  triggerSource: string;
  checkedAt: string;
}

export async function checkHealth(ctx: AppContext): Promise<HealthReport> {
  const checks: Record<string, 'ok' | 'failed'> = {};
  const probe = async (name: string, fn: () => Promise<unknown>) => {
    try {
      await fn();
      checks[name] = 'ok';
    } catch {
      checks[name] = 'failed';
    }
  };
  await probe('storage', async () => {
    for await (const _ of ctx.blobs.list(ctx.config.containers.reports, '__health__')) break;
  });
  await probe('tokensTable', async () => ctx.tokens.get('__health__'));
  await probe('keyVault', async () => ctx.vault.get('health-probe'));
  const ok = Object.values(checks).every((c) => c === 'ok');
  return { status: ok ? 'ok' : 'degraded', checks, triggerSource: ctx.config.triggerSource, checkedAt: ctx.clock.now().toISOString() };
}
