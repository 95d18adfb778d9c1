/**
 * The few settings needed to register functions (trigger paths and source).
 * Read without loading anything else, so registration stays cheap; the full
 * config is validated by loadConfig on start (functions/index.ts).
 */
import { STORAGE_CONNECTION_NAME } from '../config.js';

const env = process.env;

export const registration = {
  connection: STORAGE_CONNECTION_NAME,
  source: (env.SEED_TRIGGER_SOURCE === 'EventGrid' ? 'EventGrid' : 'LogsAndContainerScan') as 'EventGrid' | 'LogsAndContainerScan',
  seedsContainer: env.SEEDS_CONTAINER || 'seeds',
  assignmentsContainer: env.ASSIGNMENTS_CONTAINER || 'assignments',
  reconcileSchedule: env.RECONCILE_SCHEDULE || '0 */5 * * * *',
};
