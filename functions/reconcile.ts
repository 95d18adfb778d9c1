/** Timer: reprocesses files that triggers missed and settles interrupted builds. */
import { app, type InvocationContext, type Timer } from '@azure/functions';
import { handOffThrough, ingestContinuation, registration } from '../shared/app/registration.js';

export async function reconcile(_timer: Timer, context: InvocationContext): Promise<void> {
  const { getAppContext, services } = await import('../shared/app/context.js');
  const { invocationLogger } = await import('../shared/app/http.js');
  // A stuck seed file it resumes may be handed on like any ingest.
  const svc = services(await getAppContext(), invocationLogger(context), { handOff: handOffThrough(context) });
  const result = await svc.reconciler.run();
  if (result.seedsRetried + result.assignmentsRetried + result.exportsReleased > 0) await svc.buildQueue.request('reconciler');
}

app.timer('reconcile', { schedule: registration.reconcileSchedule, extraOutputs: [ingestContinuation], handler: reconcile });
