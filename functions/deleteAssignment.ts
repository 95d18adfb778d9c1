/** DELETE /api/assignments/{serial}: removes an assignment whose token is not yet on its way to Entra. */
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';

export async function deleteAssignment(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const { getAppContext, services } = await import('../shared/app/context.js');
  const { errorResponse, guarded, invocationLogger, json, serialFromRoute } = await import('../shared/app/http.js');
  return guarded(context, async () => {
    const route = serialFromRoute(request);
    if ('invalid' in route) return route.invalid;
    const { serial } = route;
    const svc = services(await getAppContext(), invocationLogger(context));
    const result = await svc.assignments.remove(serial);
    if (result.status === 'not-found') return errorResponse(404, 'ASSIGNMENT_NOT_FOUND', `No assignment exists for serial ${JSON.stringify(serial)}.`);
    if (result.status === 'refused') return errorResponse(409, 'TOKEN_STATE_INVALID', `The token is ${result.state}: its assignment can no longer be removed here.`);
    return json(200, { serial, deleted: true });
  });
}

app.http('deleteAssignment', { methods: ['DELETE'], route: 'assignments/{serial}', authLevel: 'function', handler: deleteAssignment });
