/**
 * The console's JSON API (/api/console/api/...), called by its pages. Anonymous at the Functions level, like the
 * pages: each route checks the signed-in principal and its app role, and changes need the console's same-origin
 * header; then it answers through the same services and HTTP module as the key-protected API.
 */
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';

export async function consoleApi(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const { getAppContext, services } = await import('../shared/app/context.js');
  const { serveConsoleApi } = await import('../shared/app/console/api.js');
  return serveConsoleApi(request, context, { context: getAppContext, services });
}

app.http('consoleApi', { methods: ['GET', 'POST'], route: 'console/api/{*path}', authLevel: 'anonymous', handler: consoleApi });
