/** GET /api/health: configuration valid and storage and vault reachable. No secret, no key needed. */
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';

export async function health(_request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const { getAppContext } = await import('../shared/app/context.js');
  const { guarded, json } = await import('../shared/app/http.js');
  return guarded(context, async () => {
    const ctx = await getAppContext();
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
    return json(ok ? 200 : 503, { status: ok ? 'ok' : 'degraded', checks, triggerSource: ctx.config.triggerSource, checkedAt: ctx.clock.now().toISOString() });
  });
}

app.http('health', { methods: ['GET'], route: 'health', authLevel: 'anonymous', handler: health });
