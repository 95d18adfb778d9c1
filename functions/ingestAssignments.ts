/** Blob trigger: an assignment list dropped in `assignments` updates the table; then an import build runs. */
import { app, type InvocationContext } from '@azure/functions';
import { registerBlobReferenceFactory } from '../shared/app/blob-reference.js';
import { blobName, registration } from '../shared/app/registration.js';

export async function ingestAssignments(blob: unknown, context: InvocationContext): Promise<void> {
  const { getAppContext, services } = await import('../shared/app/context.js');
  const { invocationLogger } = await import('../shared/app/http.js');
  const { requestBuild } = await import('../shared/app/build-trigger.js');
  const log = invocationLogger(context);
  const svc = services(await getAppContext(), log);
  const result = await svc.assignments.ingest(blobName(context, blob));
  if (result.added > 0) await requestBuild(svc, log, 'assignment list');
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
