/** POST /api/tokens/{serial}/unlock (a function key held by administrators' tools, never the master key): clears a lockout after too many wrong codes. */
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';

export async function unlockToken(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const { serveHttp } = await import('../shared/app/context.js');
  return serveHttp('unlockToken', request, context);
}

app.http('unlockToken', { methods: ['POST'], route: 'tokens/{serial}/unlock', authLevel: 'function', handler: unlockToken });
