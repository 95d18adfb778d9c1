/** POST /api/imports: builds Entra's import CSV now; `{ "reexport": [serials] }` exports named tokens again. */
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';

export async function buildImport(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const { serveHttp } = await import('../shared/app/context.js');
  return serveHttp('buildImport', request, context);
}

app.http('buildImport', { methods: ['POST'], route: 'imports', authLevel: 'function', handler: buildImport });
