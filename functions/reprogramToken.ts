/**
 * POST /api/tokens/{serial}/reprogram (admin key): a new secret for a programmed token that is still `stored`
 * (its package was lost, or burning failed), the old version disabled; answers the new package, once.
 */
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';

export async function reprogramToken(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const { serveHttp } = await import('../shared/app/context.js');
  return serveHttp('reprogramToken', request, context);
}

app.http('reprogramToken', { methods: ['POST'], route: 'tokens/{serial}/reprogram', authLevel: 'function', handler: reprogramToken });
