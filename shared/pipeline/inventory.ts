/** The token inventory's row shape and its small helpers. */
import type { OathToken } from '../core/token.js';
import { leaveRow, updateWithRetry, writeRow, type RowChange } from './conditional-update.js';
import type { EntityTable, TokenEntity } from './ports.js';

export const HISTORY_LIMIT = 50;

export interface HistoryEvent {
  at: string;
  event: string;
  detail?: string;
}

export function parseHistory(history: string): HistoryEvent[] {
  try {
    const parsed = JSON.parse(history) as unknown;
    return Array.isArray(parsed) ? (parsed as HistoryEvent[]) : [];
  } catch {
    return [];
  }
}

/** Appends an event, keeping the newest HISTORY_LIMIT. */
export function appendHistory(history: string, at: string, event: string, detail?: string): string {
  const events = parseHistory(history);
  events.push(detail === undefined ? { at, event } : { at, event, detail });
  return JSON.stringify(events.slice(-HISTORY_LIMIT));
}

export function newTokenEntity(token: OathToken, secretName: string, secretVersion: string, batch: string, now: string): TokenEntity {
  return {
    serial: token.serial,
    state: 'stored',
    manufacturer: token.manufacturer,
    model: token.model,
    type: token.type,
    algorithm: token.algorithm,
    digits: token.digits,
    period: token.period,
    counter: token.counter === undefined ? null : token.counter.toString(),
    secretBytes: token.secret.length,
    secretName,
    secretVersion,
    batch,
    createdAt: now,
    updatedAt: now,
    upn: null,
    buildId: null,
    exportFile: null,
    exportingSince: null,
    lastAcceptedStep: null,
    activatedBuildId: null,
    deviceId: null,
    userId: null,
    methodId: null,
    failedAttempts: 0,
    lockedUntil: null,
    lastVerifiedAt: null,
    driftSeconds: null,
    history: JSON.stringify([{ at: now, event: 'stored', detail: batch }]),
  };
}

/** A token handed back by an export that did not happen (released by its build or the reconciler): stored again, no user. */
export function releasedFromExport(row: TokenEntity, now: string, detail: string | undefined): TokenEntity {
  return {
    ...row,
    state: 'stored',
    buildId: null,
    exportFile: null,
    exportingSince: null,
    upn: null,
    updatedAt: now,
    history: appendHistory(row.history, now, 'export-released', detail),
  };
}

/** A token listed in import file `file`, which reached storage. */
export function exportedTo(row: TokenEntity, file: string, now: string, detail: string = file): TokenEntity {
  return {
    ...row,
    state: 'exported',
    exportFile: file,
    exportingSince: null,
    updatedAt: now,
    history: appendHistory(row.history, now, 'exported', detail),
  };
}

/** The inventory as the HTTP API shows it: metadata and history, never a secret. */
export function publicTokenView(entity: TokenEntity) {
  return {
    serial: entity.serial,
    state: entity.state,
    manufacturer: entity.manufacturer,
    model: entity.model,
    type: entity.type,
    algorithm: entity.algorithm,
    digits: entity.digits,
    period: entity.period,
    // Decimal text, exact over the whole 64-bit range; null when the file gave none (or the row predates the field).
    counter: entity.counter ?? null,
    batch: entity.batch,
    upn: entity.upn,
    buildId: entity.buildId,
    exportFile: entity.exportFile,
    deviceId: entity.deviceId ?? null,
    createdAt: entity.createdAt,
    updatedAt: entity.updatedAt,
    lastVerifiedAt: entity.lastVerifiedAt,
    driftSeconds: entity.driftSeconds,
    failedAttempts: entity.failedAttempts,
    lockedUntil: entity.lockedUntil,
    secretName: entity.secretName,
    secretVersion: entity.secretVersion,
    history: parseHistory(entity.history),
  };
}

export type RetireResult =
  | { status: 'retired' | 'already-retired'; secretName: string; secretVersion: string }
  | { status: 'not-found' }
  | { status: 'refused'; state: string };

/**
 * Takes a token out of service (lost, broken, replaced): verify answers 410 and
 * builds skip it. The caller then disables its secret version (InventoryService.retire); soft delete and purge
 * stay the vault owner's decision. A token in the middle of an export cannot be retired.
 */
export async function retireToken(tokens: EntityTable<TokenEntity>, serial: string, now: string, reason: string): Promise<RetireResult> {
  return updateWithRetry(tokens, serial, (row): RowChange<TokenEntity, RetireResult> => {
    if (!row) return leaveRow({ status: 'not-found' });
    if (row.value.state === 'retired')
      return leaveRow({ status: 'already-retired', secretName: row.value.secretName, secretVersion: row.value.secretVersion });
    if (row.value.state === 'exporting') return leaveRow({ status: 'refused', state: row.value.state });
    return writeRow(
      { ...row.value, state: 'retired', updatedAt: now, history: appendHistory(row.value.history, now, 'retired', reason || undefined) },
      () => ({
        status: 'retired',
        secretName: row.value.secretName,
        secretVersion: row.value.secretVersion,
      }),
    );
  });
}
