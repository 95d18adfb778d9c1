/**
 * The few settings needed to register functions (trigger paths and source),
 * with the defaults of shared/config.ts but without validating them or
 * loading any SDK, so registration stays cheap; the full config is validated
 * by loadConfig on start (functions/index.ts).
 */
import { output, type InvocationContext } from '@azure/functions';
import { settingValue, STORAGE_CONNECTION_NAME } from '../config.js';
import { isBlobReference } from './blob-reference.js';

const env = process.env;

function triggerSource(): 'EventGrid' | 'LogsAndContainerScan' {
  return settingValue(env, 'SEED_TRIGGER_SOURCE') === 'EventGrid' ? 'EventGrid' : 'LogsAndContainerScan';
}

export const registration = {
  connection: STORAGE_CONNECTION_NAME,
  source: triggerSource(),
  seedsContainer: settingValue(env, 'SEEDS_CONTAINER'),
  assignmentsContainer: settingValue(env, 'ASSIGNMENTS_CONTAINER'),
  reconcileSchedule: settingValue(env, 'RECONCILE_SCHEDULE'),
  buildQueueSchedule: settingValue(env, 'BUILD_QUEUE_SCHEDULE'),
  resultsContainer: settingValue(env, 'RESULTS_CONTAINER'),
  ingestContinueQueue: settingValue(env, 'INGEST_CONTINUE_QUEUE'),
};

/** The blob name a blob trigger fired for: from the deferred binding's reference, else the `{name}` of its path. */
export function blobName(context: { triggerMetadata?: Record<string, unknown> }, trigger?: unknown): string {
  if (isBlobReference(trigger)) return trigger.name;
  const name = context.triggerMetadata?.name;
  return typeof name === 'string' ? name : '';
}

/**
 * The continuation queue's output binding: a seed file's ingest that used up its invocation budget is queued here
 * and picked up by functions/continueIngest.ts. The same binding object serves every function that hands off.
 */
export const ingestContinuation = output.storageQueue({ queueName: registration.ingestContinueQueue, connection: registration.connection });

/** A handOff for this invocation's services: each file handed on becomes one message of the continuation queue. */
export function handOffThrough(context: InvocationContext): (blobName: string) => void {
  const messages: { blob: string }[] = [];
  return (blob) => {
    messages.push({ blob });
    context.extraOutputs.set(ingestContinuation, messages);
  };
}
