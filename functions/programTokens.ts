/**
 * POST /api/tokens/program: mints the secrets of programmable tokens straight into Key Vault and answers their
 * provisioning package (otpauth URI, QR code, base32, hex), once. Its own function, so that access to it can be
 * given with a key of this function alone.
 */
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';

export async function programTokens(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const { getAppContext, services } = await import('../shared/app/context.js');
  const { errorResponse, guarded, invocationLogger } = await import('../shared/app/http.js');
  const { programAnswer, readBoundedJson } = await import('../shared/app/program-http.js');
  const { parseProgramRequest } = await import('../shared/pipeline/program.js');
  return guarded(context, async () => {
    const ctx = await getAppContext();
    const body = await readBoundedJson(request, ctx.config.programMaxBodyBytes);
    if (!body.ok) return errorResponse(body.status, body.code, body.message);
    const parsed = parseProgramRequest(body.value, ctx.config.programMaxTokens);
    if (!parsed.ok) return errorResponse(parsed.problem.status, parsed.problem.code, parsed.problem.message);
    return programAnswer(await services(ctx, invocationLogger(context)).program.program(parsed.request));
  });
}

app.http('programTokens', { methods: ['POST'], route: 'tokens/program', authLevel: 'function', handler: programTokens });
