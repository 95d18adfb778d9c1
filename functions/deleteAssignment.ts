/** DELETE /api/assignments/{serial}: removes an assignment whose token is not yet on its way to Entra. */
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';

export async function deleteAssignment(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const { serveHttp } = await import('../shared/app/context.js');
  return serveHttp('deleteAssignment', request, context);
}

app.http('deleteAssignment', { methods: ['DELETE'], route: 'assignments/{serial}', authLevel: 'function', handler: deleteAssignment });
