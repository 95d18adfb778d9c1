/** POST /api/tokens/{serial}/verify: checks a code typed from the physical token. */
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';

export async function verifyActivationCode(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const { serveHttp } = await import('../shared/app/context.js');
  return serveHttp('verifyActivationCode', request, context);
}

app.http('verifyActivationCode', {
  methods: ['POST'],
  route: 'tokens/{serial}/verify',
  authLevel: 'function',
  handler: verifyActivationCode,
});
