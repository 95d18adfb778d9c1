/** POST /api/imports: builds Entra's import CSV now; `{ "reexport": [serials] }` exports named tokens again. */
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';

export async function buildImport(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const { getAppContext, services } = await import('../shared/app/context.js');
  const { errorResponse, guarded, invocationLogger, json, parseBuildRequest, readJsonBody } = await import('../shared/app/http.js');
  return guarded(context, async () => {
    const body = await readJsonBody(request);
    const parsed = body.ok ? parseBuildRequest(body.value) : undefined;
    if (!parsed) return errorResponse(400, 'REQUEST_INVALID', 'The body must be empty or { "reexport": ["serial", ...] }.');
    const svc = services(await getAppContext(), invocationLogger(context));
    const result = await svc.build.build(parsed);
    return json(200, { build: result.build, files: result.files, exported: result.exported, notExported: result.notExported, report: result.report });
  });
}

app.http('buildImport', { methods: ['POST'], route: 'imports', authLevel: 'function', handler: buildImport });
