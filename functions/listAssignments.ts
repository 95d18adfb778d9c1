/** GET /api/assignments: assignments with their token's state, by serial, UPN or state; paged. */
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';

export async function listAssignments(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const { serveHttp } = await import('../shared/app/context.js');
  return serveHttp('listAssignments', request, context);
}

app.http('listAssignments', { methods: ['GET'], route: 'assignments', authLevel: 'function', handler: listAssignments });
