/** GET /api/tokens?state=&batch=&pageSize=&continuationToken=: the inventory, paged. */
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';

export async function listTokens(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const { getAppContext } = await import('../shared/app/context.js');
  const { errorResponse, guarded, json } = await import('../shared/app/http.js');
  const { listInventoryPage } = await import('../shared/pipeline/inventory-query.js');
  return guarded(context, async () => {
    const q = request.query;
    const page = await listInventoryPage((await getAppContext()).tokens, {
      state: q.get('state') ?? undefined,
      batch: q.get('batch') ?? undefined,
      pageSize: q.get('pageSize') ?? undefined,
      continuationToken: q.get('continuationToken') ?? undefined,
    });
    if ('error' in page) return errorResponse(400, 'REQUEST_INVALID', page.error);
    return json(200, page);
  });
}

app.http('listTokens', { methods: ['GET'], route: 'tokens', authLevel: 'function', handler: listTokens });
