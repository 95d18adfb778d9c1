/** POST /api/tokens/{serial}/unlock (a function key held by administrators' tools, never the master key): clears a lockout after too many wrong codes. */
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';

export async function unlockToken(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const { getAppContext, services } = await import('../shared/app/context.js');
  const { guarded, invocationLogger, json, serialFromRoute } = await import('../shared/app/http.js');
  return guarded(context, async () => {
    const route = serialFromRoute(request);
    if ('invalid' in route) return route.invalid;
    const svc = services(await getAppContext(), invocationLogger(context));
    const outcome = await svc.verify.unlock(route.serial);
    return json(outcome.status, outcome.body);
  });
}

app.http('unlockToken', { methods: ['POST'], route: 'tokens/{serial}/unlock', authLevel: 'function', handler: unlockToken });
