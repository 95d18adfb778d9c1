/**
 * CSV seed files: the header family (Entra's own layout, Token2, Deepnet and
 * similar, columns found by name) and privacyIDEA's and LinOTP's header-less
 * "OATH CSV" (oath-csv.ts). The layout is chosen from the first row that is
 * neither a comment nor a lone value, never from the first line alone.
 */
import { type SecretEncoding } from '../core/encoding.js';
import { FileError, problem, type Problem } from '../core/problems.js';
import { parseHashAlgorithm, type HashAlgorithm, type TokenType } from '../core/token.js';
import { checkSerial } from '../core/validate.js';
import { cell, detectDelimiter, findColumns, hasContent, misalignedRow, normalizeHeader, parseCsvRows, type CsvRow } from './csv-table.js';
import { finish, rowWhere, type CsvRowOutcome } from './csv-tokens.js';
import { blankIndentedComments, looksLikeOathRow, oathCsvVersion, readOathCsv } from './oath-csv.js';
import { checkSize, decodeUtf8 } from './text.js';
import { DEFAULT_MAX_SEED_FILE_BYTES, type ReadOptions, type SeedReadResult } from './types.js';

export const SEED_COLUMNS = {
  upn: ['upn'],
  serial: ['serial number', 'serialnumber', 'serial'],
  secret: ['secret key', 'secretkey', 'secret'],
  interval: ['time interval', 'timeinterval', 'time step', 'timestep', 'period'],
  manufacturer: ['manufacturer'],
  model: ['model'],
  // Not in Entra's layout; read when a vendor's file has them, so a SHA-256 or 8-digit token is not taken for SHA-1 / 6.
  algorithm: ['algorithm', 'hash', 'hash algorithm', 'hashlib'],
  digits: ['digits', 'otp length', 'code length'],
  // Not a bare "type": vendors use that for the device model.
  type: ['token type', 'otp type'],
  // An HOTP token's moving factor; 64-bit, kept exact.
  counter: ['counter', 'event counter', 'moving factor'],
} as const;

/** Time steps a file may carry on an HOTP row without a word (the usual filler of a time interval column). */
const HOTP_FILLER_PERIODS: readonly number[] = [30, 60];

const DEFAULT_PERIOD = 30;

/** True when the first content line is a header naming a serial column. */
function isHeaderRow(cells: string[]): boolean {
  const names = cells.map(normalizeHeader);
  return names.some((n) => (SEED_COLUMNS.serial as readonly string[]).includes(n)) || names.some((n) => (SEED_COLUMNS.secret as readonly string[]).includes(n));
}

/** A header line is short; a long first line (a hostile 5 MB one) is not parsed twice to find out. */
function firstLineIsHeader(fileName: string, line: string, delimiter: ',' | ';'): boolean {
  if (line.length > 4096) return false;
  try {
    const first = parseCsvRows(fileName, line, { delimiter })[0];
    return first !== undefined && isHeaderRow(first.cells);
  } catch (err) {
    if (err instanceof FileError) return false;
    throw err;
  }
}

export function readCsvSeed(bytes: Uint8Array, opts: ReadOptions): SeedReadResult {
  const fileName = opts.fileName;
  checkSize(fileName, bytes, opts.maxBytes ?? DEFAULT_MAX_SEED_FILE_BYTES);
  const text = decodeUtf8(fileName, bytes);
  if (!hasContent(text)) throw new FileError('FILE_EMPTY', `${fileName}: the file is empty. Check that the vendor sent the right file.`);

  // Comments (#) exist only in OATH CSV files; a header file never starts with one.
  // The first content line is the one holding the first non-blank character (no split of the whole file).
  const firstContent = text.search(/\S/);
  const lineEnd = text.indexOf('\n', firstContent);
  const firstLine = text.slice(text.lastIndexOf('\n', firstContent) + 1, lineEnd === -1 ? text.length : lineEnd);
  const startsWithComment = firstLine.trim().startsWith('#');
  const delimiter = detectDelimiter(text, startsWithComment);

  // The usual case, a file whose first line is the header, is parsed once: without comments, as it
  // is read. Anything else (including a file that only parses with comments) takes the probe below.
  let rows: CsvRow[] | undefined;
  if (!startsWithComment && firstLineIsHeader(fileName, firstLine, delimiter)) {
    try {
      rows = parseCsvRows(fileName, text, { delimiter });
    } catch (err) {
      if (!(err instanceof FileError)) throw err;
    }
    if (rows?.[0] && isHeaderRow(rows[0].cells)) return readHeaderCsv(fileName, rows, opts.secretEncoding);
  }

  const probe = parseCsvRows(fileName, blankIndentedComments(text), { delimiter, comments: true });
  if (probe.length === 0) throw new FileError('FILE_EMPTY', `${fileName}: the file holds only comments or empty lines.`);
  const first = probe[0]!;

  if (!startsWithComment && isHeaderRow(first.cells)) {
    return readHeaderCsv(fileName, rows ?? parseCsvRows(fileName, text, { delimiter }), opts.secretEncoding);
  }
  // privacyIDEA and LinOTP skip lines holding a single value; the layout is judged on the first row they would read.
  const version = oathCsvVersion(text);
  if (version !== 1 && version !== 2) {
    throw new FileError('CSV_UNKNOWN_LAYOUT', `${fileName} line 1: OATH CSV version ${version} is not known; privacyIDEA writes version 2 (user columns first) or no version line.`, 1);
  }
  const candidate = probe.find((row) => row.cells.length > 1);
  if (candidate && looksLikeOathRow(candidate, version)) {
    return readOathCsv(fileName, probe, version, opts.secretEncoding);
  }
  const at = candidate ?? first;
  throw new FileError(
    'CSV_UNKNOWN_LAYOUT',
    `${fileName} line ${at.line}: unknown layout. Expected a header naming at least "serial number" and "secret key" (Entra, Token2 and Deepnet layouts) or the header-less OATH CSV of privacyIDEA and LinOTP ("serial, hexseed[, totp|hotp[, digits[, time step or counter[, hash]]]]").`,
    at.line,
  );
}

const HEADER_TYPES: ReadonlyMap<string, TokenType> = new Map([
  ['totp', 'totp'],
  ['hotp', 'hotp'],
]);

function readHeaderCsv(fileName: string, rows: CsvRow[], forced: SecretEncoding | undefined): SeedReadResult {
  const header = rows[0]!;
  const cols = findColumns(header, SEED_COLUMNS, fileName);
  if (cols.serial === undefined || cols.secret === undefined) {
    const missing = cols.serial === undefined ? 'serial number' : 'secret key';
    throw new FileError('CSV_MISSING_COLUMN', `${fileName} line ${header.line}: the header has no "${missing}" column. Expected columns: upn (optional), serial number, secret key, time interval, manufacturer, model.`, header.line);
  }
  const body = rows.slice(1);
  if (body.length === 0) throw new FileError('FILE_EMPTY', `${fileName}: the file has a header but no token rows.`);

  const expected = { cells: header.cells.length, what: 'the header' };
  const raw = body.map((row): CsvRowOutcome => {
    const misaligned = misalignedRow(row, expected, cols.serial);
    if (misaligned) return { rejected: misaligned };
    const serial = cell(row, cols.serial);
    const serialProblem = checkSerial(serial, row.line);
    const where = rowWhere(row.line, serial, serialProblem);
    const problems: Problem[] = [];
    const error = (code: Problem['code'], detail: string) => problems.push(problem(code, 'error', `Line ${row.line}: ${detail}`, where));
    const intervalText = cell(row, cols.interval);
    let period = DEFAULT_PERIOD;
    if (intervalText.length > 0) {
      period = /^\d{1,6}$/.test(intervalText) ? Number(intervalText) : NaN;
      if (Number.isNaN(period)) error('INTERVAL_INVALID', 'the time interval is not a whole number of seconds; it must be 30 or 60.');
    }
    const algorithmText = cell(row, cols.algorithm);
    const algorithm: HashAlgorithm | undefined = algorithmText.length === 0 ? 'SHA1' : parseHashAlgorithm(algorithmText);
    if (!algorithm) error('ALGORITHM_UNSUPPORTED', 'the hash algorithm column is not SHA1, SHA256 or SHA512.');
    const digitsText = cell(row, cols.digits);
    const digits = digitsText.length === 0 ? 6 : /^\d{1,2}$/.test(digitsText) ? Number(digitsText) : undefined;
    if (digits === undefined) error('DIGITS_INVALID', 'the digits column is not a number; use 6 or 8.');
    const typeText = cell(row, cols.type).toLowerCase();
    const type = typeText.length === 0 ? 'totp' : HEADER_TYPES.get(typeText);
    if (!type) error('TYPE_UNSUPPORTED', 'the token type column is not totp or hotp.');
    const info = (detail: string) => problems.push(problem('CELL_NOT_USED', 'info', `Line ${row.line}: ${detail}`, where));
    // Each cell is read for what the row's type makes of it: a value the type does not use is said, not dropped.
    const counterText = cell(row, cols.counter);
    let counter: bigint | undefined;
    if (type === 'hotp' && counterText.length > 0) {
      if (/^\d{1,20}$/.test(counterText)) counter = BigInt(counterText);
      else error('FIELD_INVALID', 'the counter is not a whole number from 0 to 2^64-1.');
    } else if (type === 'totp' && counterText.length > 0 && !/^0+$/.test(counterText)) {
      info('the counter column is not used by a TOTP token (its codes follow the clock), so it was not read. If the token is HOTP, say so in the token type column.');
    }
    if (type === 'hotp' && intervalText.length > 0 && !Number.isNaN(period) && !HOTP_FILLER_PERIODS.includes(period)) {
      info(`the time interval (${period} s) is not used by an HOTP token (its codes follow its counter), so it was not read. If the column holds the counter, name it "counter".`);
      period = DEFAULT_PERIOD;
    }
    const upn = cell(row, cols.upn);
    return {
      line: row.line,
      serial,
      serialProblem,
      secretText: cell(row, cols.secret),
      problems,
      upn: upn.length > 0 ? upn : undefined,
      build: (secret) => ({
        token: {
          serial,
          manufacturer: cell(row, cols.manufacturer),
          model: cell(row, cols.model),
          type: type ?? 'totp',
          algorithm: algorithm ?? 'SHA1',
          digits: digits ?? 6,
          period,
          secret,
          line: row.line,
          ...(counter === undefined ? {} : { counter }),
        },
        problems: [],
      }),
    };
  });
  return finish(fileName, 'csv', raw, forced);
}
