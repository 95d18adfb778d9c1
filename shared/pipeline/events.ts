/**
 * The structured log events the Azure Monitor alert rules (infra/modules/alerts.bicep) look for, named in
 * this one place. `logEvent` writes each as one line, the event name then one JSON object
 * (`SeedFileQuarantined {"blob":"a.pskc","reason":"rejected"}`), so a log query matches the name as the
 * line's prefix and parses the rest. test/infra checks that every alert query names one of these and that
 * the app logs each of them. The data holds names, counts and codes only: never a secret or file content.
 */
import type { Logger } from './ports.js';

export const PipelineEvent = {
  /** A seed file was moved to the quarantine container (rejected whole, rows rejected, or stuck). */
  SeedFileQuarantined: 'SeedFileQuarantined',
  /** Verification of a token was locked after too many answers that were not acceptances. */
  VerifyLockout: 'VerifyLockout',
  /** An import CSV is still in `imports`, its upload not yet confirmed (each reconciler run logs its age). */
  ImportWaiting: 'ImportWaiting',
} as const;

export type PipelineEventName = (typeof PipelineEvent)[keyof typeof PipelineEvent];

export function logEvent(log: Logger, level: 'info' | 'warn' | 'error', event: PipelineEventName, data: Record<string, unknown>): void {
  log[level](event, data);
}
