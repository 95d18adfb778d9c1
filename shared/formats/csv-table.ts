/**
 * The CSV plumbing every CSV reader shares: delimiter choice, csv-parse with
 * line numbers, header lookup by column name, and the check that a row's
 * cells line up with the columns before any cell is read.
 */
import { parse, CsvError, type Options } from 'csv-parse/sync';
import { decodeBase32, decodeHex } from '../core/encoding.js';
import { FileError, problem, quoteValue, type Problem } from '../core/problems.js';
import { MIN_SECRET_BYTES } from '../core/token.js';

export interface CsvRow {
  cells: string[];
  /** 1-based line where the record starts. */
  line: number;
}

function firstContentLine(text: string, skipComments: boolean): string {
  for (const raw of text.split(/\r?\n/, 200)) {
    const line = raw.trim();
    if (line.length === 0) continue;
    if (skipComments && line.startsWith('#')) continue;
    return raw;
  }
  return '';
}

/**
 * Excel in some locales saves with `;`. Decide from the first content line:
 * `;` when it has semicolons and no commas outside quotes, `,` otherwise.
 */
export function detectDelimiter(text: string, skipComments = false): ',' | ';' {
  const line = firstContentLine(text, skipComments).replace(/"[^"]*"/g, '');
  return line.includes(';') && !line.includes(',') ? ';' : ',';
}

export function hasContent(text: string): boolean {
  return /\S/.test(text);
}

/** Parses the whole text into rows with their starting line numbers; empty lines are skipped. */
export function parseCsvRows(fileName: string, text: string | Uint8Array, options: { delimiter: ',' | ';'; comments?: boolean }): CsvRow[] {
  const rows: CsvRow[] = [];
  forEachCsvRow(fileName, text, options, (row) => void rows.push(row));
  return rows;
}

/**
 * Parses in one pass, handing each row to `onRow` as csv-parse emits it; csv-parse itself keeps
 * nothing, so a reader holds only what it keeps of each row. `input` is the text, or its UTF-8
 * bytes (already checked, BOM removed), which spares a copy of the whole file. An error thrown by
 * `onRow` ends the parse and is thrown as is.
 */
export function forEachCsvRow(
  fileName: string,
  input: string | Uint8Array,
  options: { delimiter: ',' | ';'; comments?: boolean },
  onRow: (row: CsvRow) => void,
): void {
  try {
    const rowOptions: Options = {
      delimiter: options.delimiter,
      // Rows of the wrong length are one row error each (misalignedRow), not a failure of the whole file.
      relax_column_count: true,
      skip_empty_lines: true,
      comment: options.comments ? '#' : '',
      comment_no_infix: true,
      on_record: (record: string[], info) => {
        // Rows made only of empty cells (",,,") are padding that spreadsheets add.
        if (!isBlankRecord(record)) onRow({ cells: record, line: startLine(info.lines, record) });
        return null;
      },
    };
    parse(typeof input === 'string' ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength), rowOptions);
  } catch (err) {
    if (err instanceof CsvError) {
      const line = (err as CsvError & { lines?: number }).lines;
      throw new FileError(
        'CSV_MALFORMED',
        `${fileName}${line ? ` line ${line}` : ''}: the CSV cannot be parsed (${describeCsvError(err.code)}). Fix that line and try again.`,
        line,
      );
    }
    throw err;
  }
}

function isBlankRecord(record: string[]): boolean {
  for (const c of record) if (c.trim().length > 0) return false;
  return true;
}

/** csv-parse reports the line a record ends on; quoted cells can span lines. */
function startLine(endLine: number, record: string[]): number {
  let breaks = 0;
  for (const cell of record) {
    for (let at = cell.indexOf('\n'); at !== -1; at = cell.indexOf('\n', at + 1)) breaks++;
  }
  return endLine - breaks;
}

function describeCsvError(code: string): string {
  switch (code) {
    case 'CSV_QUOTE_NOT_CLOSED':
      return 'a quoted field is never closed';
    case 'CSV_INVALID_CLOSING_QUOTE':
      return 'a quote closes a field but other characters follow it';
    case 'CSV_NON_TRIMABLE_CHAR_AFTER_CLOSING_QUOTE':
      return 'characters follow a closing quote';
    case 'CSV_MAX_RECORD_SIZE':
      return 'a record is too large';
    default:
      return code.toLowerCase().replace(/_/g, ' ');
  }
}

export function normalizeHeader(cell: string): string {
  return cell.trim().toLowerCase().replace(/\s+/g, ' ');
}

/**
 * Finds each wanted column by any of its accepted names. A header naming one column twice (`algorithm` and
 * `hash`, two `secret key`) is refused: reading the first would drop the other's value without a word, and which
 * one holds the truth cannot be known. Only header names are quoted, never a row's cell.
 */
export function findColumns<K extends string>(
  header: CsvRow,
  names: Record<K, readonly string[]>,
  fileName: string,
): Record<K, number | undefined> {
  const normalized = header.cells.map(normalizeHeader);
  const out = {} as Record<K, number | undefined>;
  for (const key of Object.keys(names) as K[]) {
    const found = normalized.flatMap((h, i) => (names[key].includes(h) ? [i] : []));
    if (found.length > 1) {
      const [a, b] = [found[0]!, found[1]!];
      throw new FileError(
        'CSV_DUPLICATE_COLUMN',
        `${fileName} line ${header.line}: columns ${a + 1} and ${b + 1} (${quoteValue(normalized[a]!)} and ${quoteValue(normalized[b]!)}) both name the ${names[key][0]} column, so which one holds the value cannot be known. Keep one of them and drop the file again.`,
        header.line,
      );
    }
    out[key] = found[0];
  }
  return out;
}

export function cell(row: CsvRow, index: number | undefined): string {
  return index === undefined ? '' : (row.cells[index] ?? '').trim();
}

/** Text that decodes, as base32 or hex, to at least a minimum-length secret: never a serial. */
export function looksLikeSecret(text: string): boolean {
  if (text.length < 26) return false;
  const bytes = decodeBase32(text) ?? decodeHex(text);
  return bytes !== undefined && bytes.length >= MIN_SECRET_BYTES;
}

/**
 * A row whose cells do not line up with the columns: a cell missing or one too
 * many shifts a secret into another column, so no cell of such a row is
 * quoted or read. `expected` is the header's cell count, or the range a
 * header-less format allows; `serialIndex` points at the serial column, which
 * must not hold what looks like a secret (a shift that kept the count).
 */
export function misalignedRow(
  row: CsvRow,
  expected: { cells: number; what: string } | { min: number; max: number; what: string },
  serialIndex: number | undefined,
): Problem | undefined {
  const count = row.cells.length;
  const fits = 'cells' in expected ? count === expected.cells : count >= expected.min && count <= expected.max;
  let why: string | undefined;
  if (!fits) {
    const wanted = 'cells' in expected ? `${expected.cells}` : `${expected.min} to ${expected.max}`;
    why = `the row has ${count} cell${count === 1 ? '' : 's'} but ${expected.what} has ${wanted}`;
  } else if (looksLikeSecret(cell(row, serialIndex))) {
    why = 'the serial number cell holds what looks like a secret key, so the cells are shifted';
  }
  return why === undefined ? undefined : misalignedProblem(row.line, why);
}

/** The one problem of a misaligned row: its line and why, no cell and no serial. */
export function misalignedProblem(line: number, why: string): Problem {
  return problem(
    'CSV_ROW_MISALIGNED',
    'error',
    `Line ${line}: ${why}. The row is not read and none of its cells is shown (one may be a secret). Look for an unquoted delimiter inside a cell or a dropped empty cell, fix the row and drop the file again.`,
    { line },
  );
}
