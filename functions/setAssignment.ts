/** PUT /api/assignments/{serial} `{ "upn" }`: creates or corrects an assignment; an exported token's import file is withdrawn first. */
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';

export async function setAssignment(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const { serveHttp } = await import('../shared/app/context.js');
  return serveHttp('setAssignment', request, context);
}

app.http('setAssignment', { methods: ['PUT'], route: 'assignments/{serial}', authLevel: 'function', handler: setAssignment });
