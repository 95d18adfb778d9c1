/** POST /api/tokens/{serial}/retire (a function key held by administrators' tools, never the master key): takes a lost or broken token out of service. */
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';

export async function retireToken(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const { getAppContext } = await import('../shared/app/context.js');
  const { errorResponse, guarded, invocationLogger, json, readJsonBody, serialFromRoute } = await import('../shared/app/http.js');
  const inventory = await import('../shared/pipeline/inventory.js');
  return guarded(context, async () => {
    const route = serialFromRoute(request);
    if ('invalid' in route) return route.invalid;
    const { serial } = route;
    const body = await readJsonBody(request);
    const reason = body.ok && typeof (body.value as { reason?: unknown } | undefined)?.reason === 'string' ? (body.value as { reason: string }).reason.slice(0, 200) : '';
    const ctx = await getAppContext();
    const result = await inventory.retireToken(ctx.tokens, serial, ctx.clock.now().toISOString(), reason);
    if (result.status === 'not-found') return errorResponse(404, 'TOKEN_NOT_FOUND', `No token has serial ${JSON.stringify(serial)}.`);
    if (result.status === 'refused') return errorResponse(409, 'TOKEN_STATE_INVALID', `The token is ${result.state}; retire it once the export has settled.`);
    invocationLogger(context).info('Token retired', { serial });
    return json(200, { serial, state: 'retired', changed: result.status === 'retired' });
  });
}

app.http('retireToken', { methods: ['POST'], route: 'tokens/{serial}/retire', authLevel: 'function', handler: retireToken });
