/** Assignment lists: `upn,serial number` CSV files that say which user gets which token. */
import { FileError } from '../core/problems.js';
import { cell, detectDelimiter, findColumns, hasContent, parseCsvRows } from './csv-table.js';
import { checkSize, decodeUtf8 } from './text.js';

export interface AssignmentRow {
  upn: string;
  serial: string;
  line: number;
}

export const ASSIGNMENT_COLUMNS = {
  upn: ['upn', 'userprincipalname', 'user principal name'],
  serial: ['serial number', 'serialnumber', 'serial'],
} as const;

export const DEFAULT_MAX_ASSIGNMENT_FILE_BYTES = 10 * 1024 * 1024;

export function readAssignments(bytes: Uint8Array, fileName: string, maxBytes = DEFAULT_MAX_ASSIGNMENT_FILE_BYTES): AssignmentRow[] {
  checkSize(fileName, bytes, maxBytes);
  const text = decodeUtf8(fileName, bytes);
  if (!hasContent(text)) throw new FileError('FILE_EMPTY', `${fileName}: the assignment list is empty.`);
  const rows = parseCsvRows(fileName, text, { delimiter: detectDelimiter(text) });
  // Only empty cells (",,,"): parseCsvRows drops them, so there is not even a header.
  const header = rows[0];
  if (!header) throw new FileError('FILE_EMPTY', `${fileName}: the assignment list holds only empty cells.`);
  const cols = findColumns(header.cells, ASSIGNMENT_COLUMNS);
  if (cols.upn === undefined || cols.serial === undefined) {
    throw new FileError(
      'CSV_MISSING_COLUMN',
      `${fileName} line ${header.line}: the assignment list needs a header with "upn" and "serial number" columns (other columns are ignored).`,
      header.line,
    );
  }
  if (rows.length === 1) throw new FileError('FILE_EMPTY', `${fileName}: the assignment list has a header but no rows.`);
  return rows.slice(1).map((row) => ({ upn: cell(row, cols.upn), serial: cell(row, cols.serial), line: row.line }));
}
