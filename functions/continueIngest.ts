/** Queue trigger: the rest of a seed file's ingest, handed on by an invocation that used up its budget. */
import { app, type InvocationContext } from '@azure/functions';
import { handOffThrough, ingestContinuation, registration } from '../shared/app/registration.js';

/** The message names the seed file: `{ "blob": "<name in seeds>" }`. */
function seedBlobOf(message: unknown): string {
  const parsed: unknown = typeof message === 'string' ? JSON.parse(message) : message;
  const blob = (parsed as { blob?: unknown } | null)?.blob;
  if (typeof blob !== 'string' || blob === '') throw new Error('Continuation message names no seed file.');
  return blob;
}

export async function continueIngest(message: unknown, context: InvocationContext): Promise<void> {
  const { getAppContext, services } = await import('../shared/app/context.js');
  const { invocationLogger } = await import('../shared/app/http.js');
  const name = seedBlobOf(message);
  const svc = services(await getAppContext(), invocationLogger(context), { handOff: handOffThrough(context) });
  // The same ingest as the blob trigger's: it resumes from the file's checkpoint (gone: nothing left to do).
  await svc.buildQueue.inFlight(
    'seeds',
    name,
    () => svc.ingest.ingest(name),
    (r) => r.outcome === 'completed' || r.outcome === 'completed-with-problems',
    (r) => r.outcome === 'continued',
  );
}

app.storageQueue('continueIngest', {
  queueName: registration.ingestContinueQueue,
  connection: registration.connection,
  extraOutputs: [ingestContinuation],
  handler: continueIngest,
});
