/** POST /api/tokens/{serial}/activate-from-seed (administrators' key): Graph mode, only with GRAPH_ACTIVATE_FROM_SEED=true. */
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';

export async function activateFromSeed(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const { serveHttp } = await import('../shared/app/context.js');
  return serveHttp('activateFromSeed', request, context);
}

app.http('activateFromSeed', {
  methods: ['POST'],
  route: 'tokens/{serial}/activate-from-seed',
  authLevel: 'function',
  handler: activateFromSeed,
});
