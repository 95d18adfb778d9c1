/** GET /api/health: configuration valid and storage and vault reachable. No secret, no key needed. */
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';

export async function health(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const { serveHttp } = await import('../shared/app/context.js');
  return serveHttp('health', request, context);
}

app.http('health', { methods: ['GET'], route: 'health', authLevel: 'anonymous', handler: health });
