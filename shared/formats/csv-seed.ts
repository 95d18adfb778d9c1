/**
 * CSV seed files: the header family (Entra's own layout, Token2, Deepnet and
 * similar, columns found by name) and privacyIDEA's header-less "OATH CSV".
 */
import { decideEncoding, decodeSecret, isValidBase32, isValidHex, type SecretEncoding } from '../core/encoding.js';
import { FileError, problem, type Problem } from '../core/problems.js';
import { parseHashAlgorithm, type OathToken } from '../core/token.js';
import { checkSerial, checkToken, resolveDuplicates, sortProblems } from '../core/validate.js';
import { cell, detectDelimiter, findColumns, hasContent, misalignedProblem, misalignedRow, normalizeHeader, parseCsvRows, readCsvRows, type CsvRow } from './csv-table.js';
import { checkSize, decodeUtf8 } from './text.js';
import { DEFAULT_MAX_SEED_FILE_BYTES, type ReadOptions, type SeedReadResult } from './types.js';

export const SEED_COLUMNS = {
  upn: ['upn'],
  serial: ['serial number', 'serialnumber', 'serial'],
  secret: ['secret key', 'secretkey', 'secret'],
  interval: ['time interval', 'timeinterval'],
  manufacturer: ['manufacturer'],
  model: ['model'],
} as const;

const DEFAULT_PERIOD = 30;

interface RawToken {
  line: number;
  /** The serial cell; quoted or attached to problems only when `serialProblem` is undefined. */
  serial: string;
  serialProblem: Problem | undefined;
  secretText: string;
  build: (secret: Uint8Array) => OathToken;
  /** Field problems found before the secret is decoded. */
  problems: Problem[];
  upn?: string;
}

/** A row that is not read at all: its one problem names the line only. */
interface RejectedRow {
  rejected: Problem;
}

/** Where a row's problems point: its line, and its serial only when that passed the serial check. */
function rowWhere(line: number, serial: string, serialProblem: Problem | undefined): { line: number; serial?: string } {
  return serialProblem ? { line } : { line, serial };
}

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

function isPrivacyIdeaRow(cells: string[]): boolean {
  const type = (cells[2] ?? '').trim().toLowerCase();
  return cells.length >= 3 && cells.length <= 5 && (type === 'totp' || type === 'hotp');
}

export function readCsvSeed(bytes: Uint8Array, opts: ReadOptions): SeedReadResult {
  const fileName = opts.fileName;
  checkSize(fileName, bytes, opts.maxBytes ?? DEFAULT_MAX_SEED_FILE_BYTES);
  const text = decodeUtf8(fileName, bytes);
  if (!hasContent(text)) throw new FileError('FILE_EMPTY', `${fileName}: the file is empty. Check that the vendor sent the right file.`);

  // Comments (#) exist only in privacyIDEA files; a header file never starts with one.
  // The first content line is the one holding the first non-blank character (no split of the whole file).
  const firstContent = text.search(/\S/);
  const lineEnd = text.indexOf('\n', firstContent);
  const firstLine = text.slice(text.lastIndexOf('\n', firstContent) + 1, lineEnd === -1 ? text.length : lineEnd);
  const startsWithComment = firstLine.trim().startsWith('#');
  const delimiter = detectDelimiter(text, startsWithComment);

  // The usual case, a file whose first line is the header, is parsed once: without comments, as it
  // is read. Anything else (including a file that only parses with comments) takes the probe below.
  if (!startsWithComment && firstLineIsHeader(fileName, firstLine, delimiter)) {
    const streamed = readHeaderCsvStreaming(fileName, text, delimiter, opts.secretEncoding);
    if (streamed) return streamed;
  }

  const probe = parseCsvRows(fileName, text, { delimiter, comments: true });
  if (probe.length === 0) throw new FileError('FILE_EMPTY', `${fileName}: the file holds only comments or empty lines.`);
  const first = probe[0]!;

  if (!startsWithComment && isHeaderRow(first.cells)) {
    return readHeaderCsv(fileName, parseCsvRows(fileName, text, { delimiter }), opts.secretEncoding);
  }
  if (isPrivacyIdeaRow(first.cells)) {
    return readPrivacyIdeaCsv(fileName, probe, opts.secretEncoding);
  }
  throw new FileError(
    'CSV_UNKNOWN_LAYOUT',
    `${fileName} line ${first.line}: unknown layout. Expected a header naming at least "serial number" and "secret key" (Entra, Token2 and Deepnet layouts) or privacyIDEA's header-less "serial, hexseed, totp|hotp, digits, period".`,
    first.line,
  );
}

/** Thrown from inside the streaming parse when its first row is not a header after all. */
class NotAHeader extends Error {}

/**
 * The usual file, header first, in one pass: each row becomes its RawToken as it is parsed, so the
 * rows' cells are never all held at once. Undefined when the parse fails or its first row is no
 * header: the caller then probes the file the slow way, as before.
 */
function readHeaderCsvStreaming(fileName: string, text: string, delimiter: ',' | ';', forced: SecretEncoding | undefined): SeedReadResult | undefined {
  let toRaw: ((row: CsvRow) => RawToken | RejectedRow) | undefined;
  let raw: (RawToken | RejectedRow)[];
  try {
    raw = readCsvRows(fileName, text, { delimiter }, (row) => {
      if (toRaw) return toRaw(row);
      if (!isHeaderRow(row.cells)) throw new NotAHeader();
      toRaw = headerRowReader(fileName, row);
      return undefined;
    });
  } catch (err) {
    if (err instanceof FileError || err instanceof NotAHeader) return undefined;
    throw err;
  }
  if (raw.length === 0) throw new FileError('FILE_EMPTY', `${fileName}: the file has a header but no token rows.`);
  return finish(fileName, 'csv', raw, forced);
}

function readHeaderCsv(fileName: string, rows: CsvRow[], forced: SecretEncoding | undefined): SeedReadResult {
  const toRaw = headerRowReader(fileName, rows[0]!);
  const body = rows.slice(1);
  if (body.length === 0) throw new FileError('FILE_EMPTY', `${fileName}: the file has a header but no token rows.`);
  return finish(fileName, 'csv', body.map(toRaw), forced);
}

/** Checks the header and returns what turns each body row into its RawToken (or its one rejection). */
function headerRowReader(fileName: string, header: CsvRow): (row: CsvRow) => RawToken | RejectedRow {
  const cols = findColumns(header.cells, SEED_COLUMNS);
  if (cols.serial === undefined || cols.secret === undefined) {
    const missing = cols.serial === undefined ? 'serial number' : 'secret key';
    throw new FileError('CSV_MISSING_COLUMN', `${fileName} line ${header.line}: the header has no "${missing}" column. Expected columns: upn (optional), serial number, secret key, time interval, manufacturer, model.`, header.line);
  }

  const expected = { cells: header.cells.length, what: 'the header' };
  return (row): RawToken | RejectedRow => {
    const misaligned = misalignedRow(row, expected, cols.serial);
    if (misaligned) return { rejected: misaligned };
    const serial = cell(row, cols.serial);
    const serialProblem = checkSerial(serial, row.line);
    const where = rowWhere(row.line, serial, serialProblem);
    const intervalText = cell(row, cols.interval);
    const problems: Problem[] = [];
    let period = DEFAULT_PERIOD;
    if (intervalText.length > 0) {
      period = /^\d{1,6}$/.test(intervalText) ? Number(intervalText) : NaN;
      if (Number.isNaN(period)) {
        problems.push(problem('INTERVAL_INVALID', 'error', `Line ${row.line}: the time interval is not a whole number of seconds; it must be 30 or 60.`, where));
      }
    }
    const upn = cell(row, cols.upn);
    // The closure holds the few cells the token needs, not the row: the row's cells can go at once.
    const { line } = row;
    const manufacturer = cell(row, cols.manufacturer);
    const model = cell(row, cols.model);
    return {
      line,
      serial,
      serialProblem,
      secretText: cell(row, cols.secret),
      problems,
      upn: upn.length > 0 ? upn : undefined,
      build: (secret) => ({ serial, manufacturer, model, type: 'totp', algorithm: 'SHA1', digits: 6, period, secret, line }),
    };
  };
}

/** privacyIDEA's OATH CSV: serial, seed, type, and optionally digits and the time step (or a hash name). */
const PRIVACYIDEA_CELLS = { min: 3, max: 5, what: "privacyIDEA's OATH CSV layout" };

function readPrivacyIdeaCsv(fileName: string, rows: CsvRow[], forced: SecretEncoding | undefined): SeedReadResult {
  const raw = rows.map((row): RawToken | RejectedRow => {
    const misaligned = misalignedRow(row, PRIVACYIDEA_CELLS, 0);
    if (misaligned) return { rejected: misaligned };
    const typeText = cell(row, 2).toLowerCase();
    // The type column anchors the layout: anything but a type name there means the cells are shifted.
    if (typeText !== 'totp' && typeText !== 'hotp' && !/^[a-z]{2,10}$/.test(typeText)) {
      return { rejected: misalignedProblem(row.line, 'the third cell is not a token type, so the cells are shifted') };
    }
    const serial = cell(row, 0);
    const serialProblem = checkSerial(serial, row.line);
    const where = rowWhere(row.line, serial, serialProblem);
    const problems: Problem[] = [];
    const type = typeText === 'hotp' ? 'hotp' : 'totp';
    if (typeText !== 'totp' && typeText !== 'hotp') {
      problems.push(problem('TYPE_UNSUPPORTED', 'error', `Line ${row.line}: the token type in the third cell is not supported; use totp or hotp.`, where));
    }
    const digitsText = cell(row, 3);
    const digits = digitsText.length === 0 ? 6 : /^\d{1,2}$/.test(digitsText) ? Number(digitsText) : NaN;
    if (Number.isNaN(digits)) problems.push(problem('DIGITS_INVALID', 'error', `Line ${row.line}: the digits cell is not a number; use 6 or 8.`, where));
    // privacyIDEA's fifth column is the time step for TOTP (and sometimes a hash name, which we accept too).
    const fifth = cell(row, 4);
    let period = DEFAULT_PERIOD;
    let algorithm = parseHashAlgorithm('SHA1')!;
    if (fifth.length > 0) {
      if (/^\d{1,6}$/.test(fifth)) period = Number(fifth);
      else {
        const alg = parseHashAlgorithm(fifth);
        if (alg) algorithm = alg;
        else problems.push(problem('INTERVAL_INVALID', 'error', `Line ${row.line}: the time step in the fifth cell is neither a number of seconds nor a hash name; use 30 or 60.`, where));
      }
    }
    return {
      line: row.line,
      serial,
      serialProblem,
      secretText: cell(row, 1),
      problems,
      build: (secret) => ({ serial, manufacturer: '', model: '', type, algorithm, digits: Number.isNaN(digits) ? 0 : digits, period, secret, line: row.line }),
    };
  });
  // privacyIDEA's OATH CSV carries hex seeds by definition; a user may still force base32.
  return finish(fileName, 'privacyidea-csv', raw, forced ?? 'hex', forced ? 'forced' : 'detected');
}

function finish(
  fileName: string,
  format: 'csv' | 'privacyidea-csv',
  rows: (RawToken | RejectedRow)[],
  forced: SecretEncoding | undefined,
  decidedByOverride?: 'forced' | 'detected',
): SeedReadResult {
  const problems: Problem[] = [];
  const raw: RawToken[] = [];
  for (const row of rows) {
    if ('rejected' in row) problems.push(row.rejected);
    else raw.push(row);
  }
  // Cells of misaligned rows are not secrets of known place: they take no part in the encoding decision.
  const decision = decideEncoding(fileName, raw.map((r) => r.secretText), forced);
  const encoding = decision.encoding;
  const candidates: OathToken[] = [];
  const embeddedAssignments: SeedReadResult['embeddedAssignments'] = [];

  for (const r of raw) {
    const where = rowWhere(r.line, r.serial, r.serialProblem);
    const rowProblems = [...r.problems];
    if (r.serialProblem) rowProblems.push(r.serialProblem);
    let secret: Uint8Array | undefined;
    if (r.secretText.length === 0) {
      rowProblems.push(problem('SECRET_MISSING', 'error', `Line ${r.line}: the secret key is empty. Take it from the vendor's file again.`, where));
    } else {
      secret = decodeSecret(r.secretText, encoding);
      if (!secret) rowProblems.push(invalidSecretProblem(r, encoding, where));
    }
    if (secret && rowProblems.length === 0) {
      const token = r.build(secret);
      rowProblems.push(...checkToken(token));
      if (rowProblems.length === 0) {
        candidates.push(token);
        if (r.upn) embeddedAssignments.push({ upn: r.upn, serial: r.serial, line: r.line });
      }
    }
    problems.push(...rowProblems);
  }

  const deduped = resolveDuplicates(candidates);
  problems.push(...deduped.problems);
  // A set of 100,000 serials costs as much as the duplicate check: build it only when a serial was dropped.
  const kept = embeddedAssignments.length > 0 && deduped.tokens.length < candidates.length ? new Set(deduped.tokens.map((t) => t.serial)) : undefined;
  return {
    file: fileName,
    format,
    secretEncoding: encoding,
    encodingDecidedBy: decidedByOverride ?? decision.decidedBy,
    tokens: deduped.tokens,
    problems: sortProblems(problems),
    embeddedAssignments: kept ? embeddedAssignments.filter((a) => kept.has(a.serial)) : embeddedAssignments,
  };
}

/** Names the offending character by position only: even one character of a secret stays out of messages. */
function invalidSecretProblem(r: RawToken, encoding: SecretEncoding, where: { line: number; serial?: string }): Problem {
  const compact = r.secretText.replace(/[\s-]+/g, '');
  const allowed = encoding === 'base32' ? /[A-Za-z2-7=]/ : /[0-9A-Fa-f]/;
  const badIndex = [...compact].findIndex((c) => !allowed.test(c));
  const hint =
    encoding === 'base32' && isValidHex(r.secretText)
      ? ' It looks like hex: if the whole file is hex, force --secret-encoding hex.'
      : encoding === 'hex' && isValidBase32(r.secretText)
        ? ' It looks like base32: if the whole file is base32, force --secret-encoding base32.'
        : '';
  const what =
    badIndex >= 0
      ? `character ${badIndex + 1} is outside the ${encoding} alphabet`
      : `its length (${compact.length} characters) is not a whole number of bytes in ${encoding}`;
  return problem('SECRET_INVALID_CHARACTERS', 'error', `Line ${r.line}: the secret key is not valid ${encoding}: ${what}.${hint}`, where);
}
