/**
 * The one way the pipeline changes a table row (or a shared record, ports.ts RecordStore) that other processes may change at the same time: read it, decide
 * from what it holds, write under the ETag read (or insert, when there was no row), and start again from a fresh
 * read when another writer got there first (412 on replace, 409 on insert). The decision is thus always taken on
 * the row as it is, never on a copy someone has since changed.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { quoteValue } from '../core/problems.js';
import { ConflictError, PreconditionFailedError, TransientError } from './errors.js';
import type { Entity, RecordStore, Versioned } from './ports.js';

/**
 * Attempts before a writer gives up on a row that keeps changing. Each round of a race lets at least one writer
 * through, so with k writers racing for one row every one of them is through within k attempts. A token row has
 * fewer writers than this (ingest, a build's claim and mark, the reconciler, an upload confirmation, retire, and a
 * handful of simultaneous verify checks of one token); a row still changing after ten rounds is being written in
 * a loop, and the caller says so rather than spin.
 */
export const ROW_UPDATE_ATTEMPTS = 10;

/** What the caller decided on the row it was shown. */
export type RowChange<T, R> = WriteRow<T, R> | LeaveRow<R>;
export interface WriteRow<T, R> {
  kind: 'write';
  value: T;
  result(written: Versioned<T>): R;
}
export interface LeaveRow<R> {
  kind: 'leave';
  result: R;
}

/** Write `value` (replacing the row shown, or inserting it when there was none); the update then returns result(the row as written). */
export function writeRow<T, R>(value: T, result: (written: Versioned<T>) => R): WriteRow<T, R> {
  return { kind: 'write', value, result };
}

/** Leave the row as it is; the update returns `result`. */
export function leaveRow<R>(result: R): LeaveRow<R> {
  return { kind: 'leave', result };
}

export interface RowUpdateOptions<T, R> {
  /** The row as the caller last read it: the first attempt decides on it instead of reading again. */
  current?: Versioned<T>;
  /** What to return (or throw) when every attempt lost its race; by default a TransientError (503 over HTTP). */
  onExhausted?: () => R | Promise<R>;
  /** ROW_UPDATE_ATTEMPTS unless a test needs another count. */
  attempts?: number;
}

/**
 * Read-modify-write of row `key`: `decide` is called with the row (undefined when absent) on every attempt; a lost
 * race calls it again on the newer row, so it changes nothing itself beyond what it returns (caching work that does
 * not depend on the row, such as a secret read, is fine).
 */
export async function updateWithRetry<T extends Entity, R>(
  table: Pick<RecordStore<T>, 'get' | 'insert' | 'replace'>,
  key: string,
  decide: (row: Versioned<T> | undefined) => RowChange<T, R> | Promise<RowChange<T, R>>,
  options: RowUpdateOptions<T, R> = {},
): Promise<R> {
  const attempts = options.attempts ?? ROW_UPDATE_ATTEMPTS;
  let known = options.current;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const row = known ?? (await table.get(key));
    known = undefined;
    const change = await decide(row);
    if (change.kind === 'leave') return change.result;
    try {
      const etag = row ? await table.replace(key, change.value, row.etag) : await table.insert(key, change.value);
      return change.result({ key, value: change.value, etag });
    } catch (err) {
      if (!(err instanceof PreconditionFailedError || (err instanceof ConflictError && !row))) throw err;
    }
    // Jitter spreads a burst of writers, so each round lets one through.
    if (attempt < attempts) await sleep(Math.floor(Math.random() * 5 * attempt));
  }
  if (options.onExhausted) return options.onExhausted();
  throw new TransientError(`Row ${quoteValue(key)} kept changing (${attempts} attempts); retry.`, 503);
}
