/** Blob trigger: Entra's failure file dropped in `results` marks the tokens it lists importFailed. */
import { app, type InvocationContext } from '@azure/functions';
import { registerBlobReferenceFactory } from '../shared/app/blob-reference.js';
import { blobName, registration } from '../shared/app/registration.js';

export async function ingestResults(blob: unknown, context: InvocationContext): Promise<void> {
  const { getAppContext, services } = await import('../shared/app/context.js');
  const { invocationLogger } = await import('../shared/app/http.js');
  const svc = services(await getAppContext(), invocationLogger(context));
  // Idempotent: a retry finds the tokens already importFailed and leaves them.
  await svc.results.ingest(blobName(context, blob));
}

// The host passes a reference, not the content: the service reads the blob's properties (size) before any byte.
registerBlobReferenceFactory();
app.storageBlob('ingestResults', {
  path: `${registration.resultsContainer}/{name}`,
  connection: registration.connection,
  source: registration.source,
  sdkBinding: true,
  handler: ingestResults,
});
