/** GET /api/tokens?state=&batch=&pageSize=&continuationToken=: the inventory, paged. */
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';

export async function listTokens(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const { serveHttp } = await import('../shared/app/context.js');
  return serveHttp('listTokens', request, context);
}

app.http('listTokens', { methods: ['GET'], route: 'tokens', authLevel: 'function', handler: listTokens });
