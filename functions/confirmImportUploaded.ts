/** POST /api/imports/{file}/uploaded: the CSV is in Entra; mark its tokens imported, then delete it. */
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';

export async function confirmImportUploaded(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const { serveHttp } = await import('../shared/app/context.js');
  return serveHttp('confirmImportUploaded', request, context);
}

app.http('confirmImportUploaded', {
  methods: ['POST'],
  route: 'imports/{file}/uploaded',
  authLevel: 'function',
  handler: confirmImportUploaded,
});
