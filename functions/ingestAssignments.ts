/** Blob trigger: an assignment list dropped in `assignments` updates the table; then an import build is requested (see runDueBuild). */
import { app, type InvocationContext } from '@azure/functions';
import { registerBlobReferenceFactory } from '../shared/app/blob-reference.js';
import { blobName, registration } from '../shared/app/registration.js';

export async function ingestAssignments(blob: unknown, context: InvocationContext): Promise<void> {
  const { getAppContext, services } = await import('../shared/app/context.js');
  const { invocationLogger } = await import('../shared/app/http.js');
  const svc = services(await getAppContext(), invocationLogger(context));
  const name = blobName(context, blob);
  await svc.buildQueue.inFlight(
    'assignments',
    name,
    () => svc.assignments.ingest(name),
    (r) => r.added > 0,
  );
}

// The host passes a reference, not the content: the service reads the blob's properties (size) before any byte.
registerBlobReferenceFactory();
app.storageBlob('ingestAssignments', {
  path: `${registration.assignmentsContainer}/{name}`,
  connection: registration.connection,
  source: registration.source,
  sdkBinding: true,
  handler: ingestAssignments,
});
