/** POST /api/tokens/{serial}/retire (a function key held by administrators' tools, never the master key): takes a lost or broken token out of service. */
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';

export async function retireToken(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const { serveHttp } = await import('../shared/app/context.js');
  return serveHttp('retireToken', request, context);
}

app.http('retireToken', { methods: ['POST'], route: 'tokens/{serial}/retire', authLevel: 'function', handler: retireToken });
