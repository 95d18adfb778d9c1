/** POST /api/tokens/{serial}/verify: checks a code typed from the physical token. */
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';

export async function verifyActivationCode(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const { getAppContext, services } = await import('../shared/app/context.js');
  const { errorResponse, guarded, invocationLogger, json, readJsonBody, serialFromRoute } = await import('../shared/app/http.js');
  return guarded(context, async () => {
    const route = serialFromRoute(request);
    if ('invalid' in route) return route.invalid;
    const body = await readJsonBody(request);
    if (!body.ok) return errorResponse(400, 'REQUEST_INVALID', 'The body must be JSON: { "code": "123456", "nextCode"?: "654321" }.');
    const svc = services(await getAppContext(), invocationLogger(context));
    const outcome = await svc.verify.verify(route.serial, body.value);
    return json(outcome.status, outcome.body);
  });
}

app.http('verifyActivationCode', { methods: ['POST'], route: 'tokens/{serial}/verify', authLevel: 'function', handler: verifyActivationCode });
