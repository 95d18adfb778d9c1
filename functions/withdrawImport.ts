/** POST /api/imports/{file}/withdraw: an import file that was not uploaded is deleted and its tokens are stored again. */
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';

export async function withdrawImport(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const { serveHttp } = await import('../shared/app/context.js');
  return serveHttp('withdrawImport', request, context);
}

app.http('withdrawImport', { methods: ['POST'], route: 'imports/{file}/withdraw', authLevel: 'function', handler: withdrawImport });
