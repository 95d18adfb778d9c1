/** POST /api/tokens/{serial}/removed-from-entra: an imported token an administrator removed in Entra can be exported again. */
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';

export async function markRemovedFromEntra(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const { serveHttp } = await import('../shared/app/context.js');
  return serveHttp('markRemovedFromEntra', request, context);
}

app.http('markRemovedFromEntra', {
  methods: ['POST'],
  route: 'tokens/{serial}/removed-from-entra',
  authLevel: 'function',
  handler: markRemovedFromEntra,
});
