/** POST /api/tokens/{serial}/unlock (admin key): clears a lockout after too many wrong codes. */
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';

export async function unlockToken(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const { serveHttp } = await import('../shared/app/context.js');
  return serveHttp('unlockToken', request, context);
}

app.http('unlockToken', { methods: ['POST'], route: 'tokens/{serial}/unlock', authLevel: 'admin', handler: unlockToken });
