/** Blob trigger: a seed file dropped in `seeds` goes into Key Vault; then an import build is requested (see runDueBuild). */
import { app, type InvocationContext } from '@azure/functions';
import { registerBlobReferenceFactory } from '../shared/app/blob-reference.js';
import { blobName, handOffThrough, ingestContinuation, registration } from '../shared/app/registration.js';

export async function ingestSeedFile(blob: unknown, context: InvocationContext): Promise<void> {
  const { getAppContext, services } = await import('../shared/app/context.js');
  const { invocationLogger } = await import('../shared/app/http.js');
  const name = blobName(context, blob);
  // A file too large for one invocation is handed on through the continuation queue (functions/continueIngest.ts).
  const svc = services(await getAppContext(), invocationLogger(context), { handOff: handOffThrough(context) });
  // Transient failures throw: the trigger retries, and the ingest is idempotent. Marked in flight, so no build
  // starts half-way through it; the build it asks for runs once things settle (shared/pipeline/build-queue.ts).
  await svc.buildQueue.inFlight(
    'seeds',
    name,
    () => svc.ingest.ingest(name),
    (r) => r.outcome === 'completed' || r.outcome === 'completed-with-problems',
    (r) => r.outcome === 'continued',
  );
}

// The host passes a reference, not the content: the service reads the blob's properties (size) before any byte.
registerBlobReferenceFactory();
app.storageBlob('ingestSeedFile', {
  path: `${registration.seedsContainer}/{name}`,
  connection: registration.connection,
  source: registration.source,
  sdkBinding: true,
  extraOutputs: [ingestContinuation],
  handler: ingestSeedFile,
});
