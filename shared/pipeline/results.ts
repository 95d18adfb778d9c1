/**
 * Entra's failure file (`Failures_<file>.csv`, offered after an upload) dropped in `results`: each listed token
 * that was exported becomes `importFailed`, with Entra's reason in its history, so the admin can fix it and
 * export it again (POST /api/imports { "reexport": [...] }). Its columns are undocumented, so they are found by
 * name; a column that may carry a secret is never read, and a reason is kept only as sanitised, capped text.
 */
import { FileError, problem, quoteValue, type Problem } from '../core/problems.js';
import { cell, detectDelimiter, hasContent, misalignedRow, normalizeHeader, parseCsvRows } from '../formats/csv-table.js';
import { resultsFileBlobNames } from './blob-names.js';
import { leaveRow, updateWithRetry, writeRow, type RowChange } from './conditional-update.js';
import { appendHistory } from './inventory.js';
import type { BlobStore, Clock, EntityTable, Logger, TokenEntity } from './ports.js';
import { writeRunReport, type RunReport } from './report.js';
import { checkBlobSize } from './size-limit.js';

export interface ResultsDeps {
  blobs: BlobStore;
  tokens: EntityTable<TokenEntity>;
  clock: Clock;
  log: Logger;
  containers: { results: string; reports: string };
  maxFileBytes: number;
}

export interface ResultsIngestResult {
  outcome: RunReport['outcome'] | 'gone';
  failed: string[];
  report?: string;
}

/** Longest reason kept in a token's history. */
export const REASON_MAX_CHARS = 200;

/** Header names compared without case or spaces ("Serial Number", "serialnumber"). */
const compact = (header: string) => normalizeHeader(header).replace(/[\s_-]/g, '');
const SERIAL_HEADERS = new Set(['serialnumber', 'serial', 'serialno', 'tokenserialnumber']);
const REASON_HEADERS = [
  'reason',
  'failurereason',
  'error',
  'errormessage',
  'errordetails',
  'statusmessage',
  'status',
  'message',
  'details',
  'result',
];
/** A column whose name suggests key material is never read. */
const SECRET_HEADER = /secret|seed|key|password|psk/;

/**
 * Entra's reason as history text: printable, at most REASON_MAX_CHARS, and with every long run of key-alphabet
 * characters (base32, hex, base64, or base32 in groups of four) blanked: Entra's texts are short words, and a
 * reason column that echoed a secret must not carry it into the inventory.
 */
export function sanitiseReason(raw: string): string {
  const printable = raw
    .replace(/[\p{Cc}\p{Cf}]+/gu, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  const blanked = printable
    .replace(/[A-Za-z0-9+/=_-]{16,}/g, '[redacted]')
    // Grouped base32 ("JBSW Y3DP EHPK"), told from words by a digit or capitals throughout.
    .replace(/\b(?:[A-Za-z2-7]{4}[ -]){2,}[A-Za-z2-7]{1,4}\b/g, (run) =>
      /[2-7]/.test(run) || run === run.toUpperCase() ? '[redacted]' : run,
    );
  const text = blanked.length > REASON_MAX_CHARS ? `${blanked.slice(0, REASON_MAX_CHARS - 1)}…` : blanked;
  return text || 'no reason given';
}

interface FailureRow {
  serial: string;
  reason: string;
  line: number;
}

/** Reads the failure file's rows by column name; throws FileError when it has no serial column. */
export function readFailureFile(bytes: Uint8Array, fileName: string): { rows: FailureRow[]; problems: Problem[] } {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes).replace(/^\uFEFF/, '');
  } catch {
    throw new FileError('FILE_NOT_TEXT', `${fileName}: the file is not UTF-8 text. Download it again from the Entra admin center.`);
  }
  if (!hasContent(text)) throw new FileError('FILE_EMPTY', `${fileName}: the file is empty.`);
  const [header, ...body] = parseCsvRows(fileName, text, { delimiter: detectDelimiter(text) });
  const names = header!.cells.map(compact);
  const serialIndex = names.findIndex((h) => SERIAL_HEADERS.has(h) && !SECRET_HEADER.test(h));
  if (serialIndex < 0)
    throw new FileError(
      'CSV_MISSING_COLUMN',
      `${fileName}: no serial number column (for example "Serial Number") in the header. Drop the failure file exactly as Entra offers it.`,
    );
  let reasonIndex: number | undefined;
  for (const wanted of REASON_HEADERS) {
    const i = names.findIndex((h) => h === wanted || (h.includes(wanted) && !SECRET_HEADER.test(h)));
    if (i >= 0 && i !== serialIndex) {
      reasonIndex = i;
      break;
    }
  }
  const rows: FailureRow[] = [];
  const problems: Problem[] = [];
  for (const row of body) {
    // A shifted row could put a secret where the serial or reason is read: none of its cells is used.
    const misaligned = misalignedRow(row, { cells: header!.cells.length, what: 'the header' }, serialIndex);
    if (misaligned) {
      problems.push({ ...misaligned, message: `${fileName} line ${row.line}: ${misaligned.message}` });
      continue;
    }
    const serial = cell(row, serialIndex);
    if (!serial) continue;
    rows.push({ serial, reason: sanitiseReason(cell(row, reasonIndex)), line: row.line });
  }
  return { rows, problems };
}

export class ResultsService {
  constructor(private readonly deps: ResultsDeps) {}

  async ingest(name: string): Promise<ResultsIngestResult> {
    const { blobs, containers, clock, log } = this.deps;
    const startedAt = clock.now().toISOString();
    const props = await blobs.properties(containers.results, name);
    if (!props) return { outcome: 'gone', failed: [] };
    const problems: Problem[] = [];
    const items: RunReport['items'] = [];
    const failed: string[] = [];
    let version = props.etag;
    let outcome: RunReport['outcome'];
    let summary: string;
    try {
      checkBlobSize(name, props.contentLength, this.deps.maxFileBytes);
      const blob = await blobs.read(containers.results, name, { maxBytes: this.deps.maxFileBytes });
      if (!blob) return { outcome: 'gone', failed: [] };
      version = blob.etag;
      checkBlobSize(name, blob.contentLength, this.deps.maxFileBytes);
      const file = readFailureFile(blob.bytes, name);
      problems.push(...file.problems);
      const known = new Map<string, TokenEntity>();
      for (const row of file.rows) {
        const token = (await this.deps.tokens.get(row.serial))?.value;
        if (token) known.set(row.serial, token);
      }
      if (known.size === 0) {
        problems.push(
          problem(
            'RESULTS_NO_KNOWN_SERIAL',
            'error',
            `${name}: none of its ${file.rows.length} serial number(s) is in the inventory, so it is not a failure file for tokens of this pipeline; nothing was changed.`,
          ),
        );
        outcome = 'rejected';
        summary = 'Refused: the file names no serial number the inventory knows.';
      } else {
        for (const row of file.rows) {
          if (!known.has(row.serial)) {
            problems.push(
              problem(
                'RESULTS_SERIAL_UNKNOWN',
                'warning',
                `${name} line ${row.line}: serial ${quoteValue(row.serial)} is not in the inventory; skipped.`,
                { serial: row.serial, line: row.line },
              ),
            );
            items.push({ serial: row.serial, result: 'unknown' });
            continue;
          }
          const state = await this.markFailed(row, name);
          if (state === 'importFailed') {
            failed.push(row.serial);
            items.push({ serial: row.serial, result: 'importFailed' });
          } else {
            problems.push(
              problem(
                'RESULTS_TOKEN_NOT_EXPORTED',
                'warning',
                `${name} line ${row.line}: serial ${quoteValue(row.serial)} is ${state ?? 'gone'}, not exported; left as it is.`,
                { serial: row.serial, line: row.line },
              ),
            );
            items.push({ serial: row.serial, result: `unchanged (${state ?? 'gone'})` });
          }
        }
        outcome = problems.length > 0 ? 'completed-with-problems' : 'completed';
        summary = `${failed.length} token(s) marked importFailed. Fix each (assignment, user), then export them again with POST /api/imports { "reexport": [...] }.`;
      }
    } catch (err) {
      if (!(err instanceof FileError)) throw err;
      problems.push(problem(err.code, 'error', err.message));
      outcome = 'rejected';
      summary = 'Refused: the file could not be read as a failure file; nothing was changed.';
    }
    const report: RunReport = {
      kind: 'import-results',
      subject: `${containers.results}/${name}`,
      startedAt,
      finishedAt: clock.now().toISOString(),
      outcome,
      summary,
      counts: { importFailed: failed.length, rows: items.length, problems: problems.length },
      items,
      problems,
    };
    const reportName = await writeRunReport(blobs, containers.reports, resultsFileBlobNames(name, version), report);
    log.info('Import failure file processed', { blob: name, outcome, importFailed: failed.length });
    return { outcome, failed, report: reportName };
  }

  /** The token's state after: importFailed when it was exported (or imported) and now is. */
  private markFailed(row: FailureRow, fileName: string): Promise<string | undefined> {
    return updateWithRetry(
      this.deps.tokens,
      row.serial,
      (current): RowChange<TokenEntity, string | undefined> => {
        if (!current) return leaveRow(undefined);
        const t = current.value;
        if (t.state !== 'exported' && t.state !== 'imported') return leaveRow(t.state);
        const now = this.deps.clock.now().toISOString();
        const value: TokenEntity = {
          ...t,
          state: 'importFailed',
          updatedAt: now,
          history: appendHistory(t.history, now, 'import-failed', `${fileName}: ${row.reason}`),
        };
        return writeRow(value, () => 'importFailed');
      },
      { onExhausted: () => undefined },
    );
  }
}
