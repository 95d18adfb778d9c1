/** GET /api/tokens/{serial}: state, metadata and history of one token; never its secret. */
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';

export async function getToken(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const { getAppContext } = await import('../shared/app/context.js');
  const { errorResponse, guarded, json, serialFromRoute } = await import('../shared/app/http.js');
  const { publicTokenView } = await import('../shared/pipeline/inventory.js');
  return guarded(context, async () => {
    const route = serialFromRoute(request);
    if ('invalid' in route) return route.invalid;
    const { serial } = route;
    const row = await (await getAppContext()).tokens.get(serial);
    if (!row) return errorResponse(404, 'TOKEN_NOT_FOUND', `No token has serial ${JSON.stringify(serial)}.`);
    return json(200, publicTokenView(row.value));
  });
}

app.http('getToken', { methods: ['GET'], route: 'tokens/{serial}', authLevel: 'function', handler: getToken });
