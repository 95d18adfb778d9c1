/** GET /api/audit/secrets?batch=...: where each token's secret of a batch is (vault, version, enabled) and its state. */
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';

export async function auditSecrets(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const { serveHttp } = await import('../shared/app/context.js');
  return serveHttp('auditSecrets', request, context);
}

app.http('auditSecrets', { methods: ['GET'], route: 'audit/secrets', authLevel: 'function', handler: auditSecrets });
