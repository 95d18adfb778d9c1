/** Blob trigger: a seed file dropped in `seeds` goes into Key Vault; then an import build runs. */
import { app, type InvocationContext } from '@azure/functions';
import { registerBlobReferenceFactory } from '../shared/app/blob-reference.js';
import { blobName, registration } from '../shared/app/registration.js';

export async function ingestSeedFile(blob: unknown, context: InvocationContext): Promise<void> {
  const { getAppContext, services } = await import('../shared/app/context.js');
  const { invocationLogger } = await import('../shared/app/http.js');
  const log = invocationLogger(context);
  const name = blobName(context, blob);
  const svc = services(await getAppContext(), log);
  // Transient failures throw: the trigger retries, and the ingest is idempotent.
  const result = await svc.ingest.ingest(name);
  if (result.outcome === 'completed' || result.outcome === 'completed-with-problems') {
    await svc.build.build().catch((err: unknown) => log.warn('Import build after ingest failed; the reconciler or POST /api/imports will retry', { error: (err as Error).name }));
  }
}

// The host passes a reference, not the content: the service reads the blob's properties (size) before any byte.
registerBlobReferenceFactory();
app.storageBlob('ingestSeedFile', {
  path: `${registration.seedsContainer}/{name}`,
  connection: registration.connection,
  source: registration.source,
  sdkBinding: true,
  handler: ingestSeedFile,
});
