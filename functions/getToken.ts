/** GET /api/tokens/{serial}: state, metadata and history of one token; never its secret. */
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';

export async function getToken(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const { serveHttp } = await import('../shared/app/context.js');
  return serveHttp('getToken', request, context);
}

app.http('getToken', { methods: ['GET'], route: 'tokens/{serial}', authLevel: 'function', handler: getToken });
