/** Timer: runs the import build that blob triggers requested, once their ingests have settled (one at a time). */
import { app, type InvocationContext, type Timer } from '@azure/functions';
import { registration } from '../shared/app/registration.js';

export async function runDueBuild(_timer: Timer, context: InvocationContext): Promise<void> {
  const { getAppContext, services } = await import('../shared/app/context.js');
  const { invocationLogger } = await import('../shared/app/http.js');
  const svc = services(await getAppContext(), invocationLogger(context));
  await svc.buildQueue.runDue(() => svc.build.build());
}

app.timer('runDueBuild', { schedule: registration.buildQueueSchedule, handler: runDueBuild });
