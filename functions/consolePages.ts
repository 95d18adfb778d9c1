/**
 * The console's pages for helpdesk staff and token administrators (/api/console/...), and their assets.
 * Anonymous at the Functions level, because people sign in through App Service Authentication (Entra ID) rather
 * than with function keys: every page checks the signed-in principal and its app role itself (shared/app/auth.ts).
 */
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';

export async function consolePages(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const { getAppContext, services } = await import('../shared/app/context.js');
  const { serveConsolePage } = await import('../shared/app/console/server.js');
  return serveConsolePage(request, context, { context: getAppContext, services });
}

app.http('consolePages', { methods: ['GET'], route: 'console/{*path}', authLevel: 'anonymous', handler: consolePages });
