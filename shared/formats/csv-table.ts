/**
 * The CSV plumbing every CSV reader shares: delimiter choice, csv-parse with
 * line numbers, and header lookup by column name.
 */
import { parse, CsvError } from 'csv-parse/sync';
import { FileError } from '../core/problems.js';

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
export function parseCsvRows(fileName: string, text: string, options: { delimiter: ',' | ';'; comments?: boolean }): CsvRow[] {
  try {
    const records = parse(text, {
      delimiter: options.delimiter,
      relax_column_count: true,
      skip_empty_lines: true,
      comment: options.comments ? '#' : '',
      comment_no_infix: true,
      info: true,
    }) as unknown as { record: string[]; info: { lines: number; invalid_field_length: number } }[];
    const rows: CsvRow[] = [];
    for (const { record, info } of records) {
      // Rows made only of empty cells (",,,") are padding that spreadsheets add.
      if (record.every((c) => c.trim().length === 0)) continue;
      rows.push({ cells: record, line: startLine(info.lines, record) });
    }
    return rows;
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

/** csv-parse reports the line a record ends on; quoted cells can span lines. */
function startLine(endLine: number, record: string[]): number {
  let breaks = 0;
  for (const cell of record) breaks += (cell.match(/\n/g) ?? []).length;
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

/** Finds each wanted column by any of its accepted names. */
export function findColumns<K extends string>(header: string[], names: Record<K, readonly string[]>): Record<K, number | undefined> {
  const normalized = header.map(normalizeHeader);
  const out = {} as Record<K, number | undefined>;
  for (const key of Object.keys(names) as K[]) {
    const idx = normalized.findIndex((h) => names[key].includes(h));
    out[key] = idx >= 0 ? idx : undefined;
  }
  return out;
}

export function cell(row: CsvRow, index: number | undefined): string {
  return index === undefined ? '' : (row.cells[index] ?? '').trim();
}
