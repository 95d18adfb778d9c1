/** GET /api/health: configuration valid and storage and vault reachable. No secret, no key needed. */
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';

export async function health(_request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const { getAppContext } = await import('../shared/app/context.js');
  const { checkHealth } = await import('../shared/app/health.js');
  const { guarded, json } = await import('../shared/app/http.js');
  return guarded(context, async () => {
    const report = await checkHealth(await getAppContext());
    return json(report.status === 'ok' ? 200 : 503, report);
  });
}

app.http('health', { methods: ['GET'], route: 'health', authLevel: 'anonymous', handler: health });
