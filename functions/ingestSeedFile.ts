/** Blob trigger: a seed file dropped in `seeds` goes into Key Vault; then an import build runs. */
import { app, type InvocationContext } from '@azure/functions';
import { blobName, registration } from '../shared/app/registration.js';

export async function ingestSeedFile(_blob: unknown, context: InvocationContext): Promise<void> {
  const { getAppContext, services } = await import('../shared/app/context.js');
  const { invocationLogger } = await import('../shared/app/http.js');
  const log = invocationLogger(context);
  const name = blobName(context);
  const svc = services(await getAppContext(), log);
  // Transient failures throw: the trigger retries, and the ingest is idempotent.
  const result = await svc.ingest.ingest(name);
  if (result.outcome === 'completed' || result.outcome === 'completed-with-problems') {
    await svc.build.build().catch((err: unknown) => log.warn('Import build after ingest failed; the reconciler or POST /api/imports will retry', { error: (err as Error).name }));
  }
}

app.storageBlob('ingestSeedFile', {
  path: `${registration.seedsContainer}/{name}`,
  connection: registration.connection,
  source: registration.source,
  handler: ingestSeedFile,
});
