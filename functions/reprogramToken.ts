/**
 * POST /api/tokens/{serial}/reprogram (admin key): a new secret for a programmed token that is still `stored`
 * (its package was lost, or burning failed), the old version disabled; answers the new package, once.
 */
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';

export async function reprogramToken(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const { getAppContext, services } = await import('../shared/app/context.js');
  const { guarded, invocationLogger, serialFromRoute } = await import('../shared/app/http.js');
  const { reprogramAnswer } = await import('../shared/app/program-http.js');
  return guarded(context, async () => {
    const route = serialFromRoute(request);
    if ('invalid' in route) return route.invalid;
    const svc = services(await getAppContext(), invocationLogger(context));
    return reprogramAnswer(route.serial, await svc.program.reprogram(route.serial));
  });
}

app.http('reprogramToken', { methods: ['POST'], route: 'tokens/{serial}/reprogram', authLevel: 'admin', handler: reprogramToken });
