/** Assignment lists: `upn,serial number` CSV files that say which user gets which token. */
import { FileError, sortProblems, type Problem } from '../core/problems.js';
import { checkSerial } from '../core/validate.js';
import { cell, detectDelimiter, findColumns, hasContent, misalignedRow, parseCsvRows } from './csv-table.js';
import { checkSize, decodeUtf8 } from './text.js';

export interface AssignmentRow {
  upn: string;
  serial: string;
  line: number;
}

/**
 * The rows that can be used, and one problem per row that cannot: cells that
 * do not line up with the header (a seed file dropped here would shift a
 * secret into the serial column) or a serial that fails the serial check.
 * Those problems quote no cell and carry no serial.
 */
export interface AssignmentList {
  rows: AssignmentRow[];
  problems: Problem[];
}

export const ASSIGNMENT_COLUMNS = {
  upn: ['upn', 'userprincipalname', 'user principal name'],
  serial: ['serial number', 'serialnumber', 'serial'],
} as const;

export const DEFAULT_MAX_ASSIGNMENT_FILE_BYTES = 10 * 1024 * 1024;

export function readAssignments(bytes: Uint8Array, fileName: string, maxBytes = DEFAULT_MAX_ASSIGNMENT_FILE_BYTES): AssignmentList {
  checkSize(fileName, bytes, maxBytes);
  const text = decodeUtf8(fileName, bytes);
  if (!hasContent(text)) throw new FileError('FILE_EMPTY', `${fileName}: the assignment list is empty.`);
  const rows = parseCsvRows(fileName, text, { delimiter: detectDelimiter(text) });
  // Only empty cells (",,,"): parseCsvRows drops them, so there is not even a header.
  const header = rows[0];
  if (!header) throw new FileError('FILE_EMPTY', `${fileName}: the assignment list holds only empty cells.`);
  const cols = findColumns(header, ASSIGNMENT_COLUMNS, fileName);
  if (cols.upn === undefined || cols.serial === undefined) {
    throw new FileError(
      'CSV_MISSING_COLUMN',
      `${fileName} line ${header.line}: the assignment list needs a header with "upn" and "serial number" columns (other columns are ignored).`,
      header.line,
    );
  }
  if (rows.length === 1) throw new FileError('FILE_EMPTY', `${fileName}: the assignment list has a header but no rows.`);
  const list: AssignmentList = { rows: [], problems: [] };
  const expected = { cells: header.cells.length, what: 'the header' };
  for (const row of rows.slice(1)) {
    const misaligned = misalignedRow(row, expected, cols.serial);
    if (misaligned) {
      list.problems.push(misaligned);
      continue;
    }
    const serial = cell(row, cols.serial);
    // An empty serial is the join's own rule (ASSIGNMENT_SERIAL_MISSING); any other failure stops here.
    const serialProblem = serial.length === 0 ? undefined : checkSerial(serial, row.line);
    if (serialProblem) list.problems.push(serialProblem);
    else list.rows.push({ upn: cell(row, cols.upn), serial, line: row.line });
  }
  list.problems = sortProblems(list.problems);
  return list;
}
