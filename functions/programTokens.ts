/**
 * POST /api/tokens/program: mints the secrets of programmable tokens straight into Key Vault and answers their
 * provisioning package (otpauth URI, QR code, base32, hex), once. Its own function, so that access to it can be
 * given with a key of this function alone.
 */
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';

export async function programTokens(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const { serveHttp } = await import('../shared/app/context.js');
  return serveHttp('programTokens', request, context);
}

app.http('programTokens', { methods: ['POST'], route: 'tokens/program', authLevel: 'function', handler: programTokens });
