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
import {
  cell,
  detectDelimiter,
  findColumns,
  forEachCsvRow,
  hasContent,
  misalignedRow,
  normalizeHeader,
  parseCsvRows,
  type CsvRow,
} from './csv-table.js';
import { CsvTokenCollector, rowWhere, type CsvRowOutcome } from './csv-tokens.js';
import { blankIndentedComments, looksLikeOathRow, oathCsvVersion, OathCsvReader } from './oath-csv.js';
import { checkSize, utf8Body } from './text.js';
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
  return (
    names.some((n) => (SEED_COLUMNS.serial as readonly string[]).includes(n)) ||
    names.some((n) => (SEED_COLUMNS.secret as readonly string[]).includes(n))
  );
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
  const body = utf8Body(fileName, bytes);
  const text = body.toString('utf8');
  if (!hasContent(text)) throw new FileError('FILE_EMPTY', `${fileName}: the file is empty. Check that the vendor sent the right file.`);

  // Comments (#) exist only in OATH CSV files; a header file never starts with one.
  // The first content line is the one holding the first non-blank character (no split of the whole file).
  const firstContent = text.search(/\S/);
  const lineEnd = text.indexOf('\n', firstContent);
  const firstLine = text.slice(text.lastIndexOf('\n', firstContent) + 1, lineEnd === -1 ? text.length : lineEnd);
  const startsWithComment = firstLine.trim().startsWith('#');
  const delimiter = detectDelimiter(text, startsWithComment);

  // The usual case, a file whose first line is the header, is parsed once, from its bytes: without
  // comments, as it is read. Anything else (including a file that only parses with comments) takes
  // the probe below.
  if (!startsWithComment && firstLineIsHeader(fileName, firstLine, delimiter)) {
    const read = readHeaderCsv(fileName, body, delimiter, opts.secretEncoding, 'header first or nothing');
    if (read) return read;
  }

  const version = oathCsvVersion(text);
  const probe = new LayoutProbe(fileName, startsWithComment, version, opts.secretEncoding);
  forEachCsvRow(fileName, blankIndentedComments(text), { delimiter, comments: true }, (row) => probe.row(row));
  const layout = probe.layout();
  if (layout === 'header') return readHeaderCsv(fileName, body, delimiter, opts.secretEncoding, 'as it is')!;
  return layout.finish();
}

/**
 * Chooses the layout from the rows parsed with comments skipped, as they come: a header first
 * (the header family), else OATH CSV judged on the first row of more than one cell, whose rows
 * it then reads. A failure waits for the end of the parse, so a file that does not parse says so
 * first, whatever its layout.
 */
class LayoutProbe {
  private first: CsvRow | undefined;
  private mode: 'undecided' | 'header' | 'failed' | 'oath' = 'undecided';
  private failure: FileError | undefined;
  /** One-value lines before the row that decides: OATH CSV skips them, with a note each. */
  private readonly skipped: CsvRow[] = [];
  private oath: OathCsvReader | undefined;

  constructor(
    private readonly fileName: string,
    private readonly startsWithComment: boolean,
    private readonly version: number,
    private readonly forced: SecretEncoding | undefined,
  ) {}

  row(row: CsvRow): void {
    if (this.mode === 'oath') return this.oath!.row(row);
    if (this.mode !== 'undecided') return;
    if (!this.first) {
      this.first = row;
      if (!this.startsWithComment && isHeaderRow(row.cells)) {
        this.mode = 'header';
        return;
      }
      // privacyIDEA and LinOTP skip lines holding a single value; the layout is judged on the first row they would read.
      if (this.version !== 1 && this.version !== 2) {
        this.fail(
          new FileError(
            'CSV_UNKNOWN_LAYOUT',
            `${this.fileName} line 1: OATH CSV version ${this.version} is not known; privacyIDEA writes version 2 (user columns first) or no version line.`,
            1,
          ),
        );
        return;
      }
    }
    if (row.cells.length <= 1) {
      this.skipped.push(row);
      return;
    }
    if (!looksLikeOathRow(row, this.version)) {
      this.fail(unknownLayout(this.fileName, row.line));
      return;
    }
    this.mode = 'oath';
    this.oath = new OathCsvReader(this.fileName, this.version as 1 | 2, this.forced);
    for (const skipped of this.skipped.splice(0)) this.oath.row(skipped);
    this.oath.row(row);
  }

  layout(): 'header' | OathCsvReader {
    if (!this.first) throw new FileError('FILE_EMPTY', `${this.fileName}: the file holds only comments or empty lines.`);
    if (this.mode === 'header') return 'header';
    if (this.mode === 'oath') return this.oath!;
    throw this.failure ?? unknownLayout(this.fileName, this.first.line);
  }

  private fail(failure: FileError): void {
    this.mode = 'failed';
    this.failure = failure;
  }
}

function unknownLayout(fileName: string, line: number): FileError {
  return new FileError(
    'CSV_UNKNOWN_LAYOUT',
    `${fileName} line ${line}: unknown layout. Expected a header naming at least "serial number" and "secret key" (Entra, Token2 and Deepnet layouts) or the header-less OATH CSV of privacyIDEA and LinOTP ("serial, hexseed[, totp|hotp[, digits[, time step or counter[, hash]]]]").`,
    line,
  );
}

const HEADER_TYPES: ReadonlyMap<string, TokenType> = new Map([
  ['totp', 'totp'],
  ['hotp', 'hotp'],
]);

/** A file's first row did not name a serial or secret column (the fast path then gives way to the probe). */
class NotAHeader extends Error {}

/**
 * Reads a header CSV in one pass. 'header first or nothing': undefined when the first row is no
 * header or the file does not parse without comments (the caller then probes); 'as it is': the
 * first row is taken as the header and a parse failure is thrown.
 */
function readHeaderCsv(
  fileName: string,
  body: Uint8Array,
  delimiter: ',' | ';',
  forced: SecretEncoding | undefined,
  mode: 'header first or nothing' | 'as it is',
): SeedReadResult | undefined {
  const reader = new HeaderCsvReader(fileName, forced, mode === 'header first or nothing');
  try {
    forEachCsvRow(fileName, body, { delimiter }, (row) => reader.row(row));
  } catch (err) {
    if (mode === 'header first or nothing' && (err instanceof NotAHeader || err instanceof FileError)) return undefined;
    throw err;
  }
  return reader.finish();
}

class HeaderCsvReader {
  private header: { line: number; cells: number } | undefined;
  private cols!: Record<keyof typeof SEED_COLUMNS, number | undefined>;
  private missing: string | undefined;
  private headerFailure: FileError | undefined;
  private bodyRows = 0;
  private readonly collector: CsvTokenCollector;
  /** Manufacturer and model repeat on every row: one string each, not one per token. */
  private readonly names = new Map<string, string>();

  constructor(
    private readonly fileName: string,
    forced: SecretEncoding | undefined,
    private readonly headerFirst: boolean,
  ) {
    this.collector = new CsvTokenCollector(fileName, 'csv', forced);
  }

  row(row: CsvRow): void {
    if (this.header === undefined) {
      if (this.headerFirst && !isHeaderRow(row.cells)) throw new NotAHeader();
      this.header = { line: row.line, cells: row.cells.length };
      try {
        this.cols = findColumns(row, SEED_COLUMNS, this.fileName);
      } catch (err) {
        // Said once the file has parsed, like every failure of the header.
        if (!(err instanceof FileError)) throw err;
        this.headerFailure = err;
        return;
      }
      if (this.cols.serial === undefined || this.cols.secret === undefined)
        this.missing = this.cols.serial === undefined ? 'serial number' : 'secret key';
      return;
    }
    this.bodyRows++;
    if (this.missing === undefined && this.headerFailure === undefined) this.collector.addOutcome(this.outcome(row));
  }

  finish(): SeedReadResult {
    const { header, fileName } = this;
    if (!header) throw new FileError('FILE_EMPTY', `${fileName}: the file holds no rows.`);
    if (this.headerFailure) throw this.headerFailure;
    if (this.missing !== undefined) {
      throw new FileError(
        'CSV_MISSING_COLUMN',
        `${fileName} line ${header.line}: the header has no "${this.missing}" column. Expected columns: upn (optional), serial number, secret key, time interval, manufacturer, model.`,
        header.line,
      );
    }
    if (this.bodyRows === 0) throw new FileError('FILE_EMPTY', `${fileName}: the file has a header but no token rows.`);
    return this.collector.finish();
  }

  private name(value: string): string {
    const known = this.names.get(value);
    if (known !== undefined) return known;
    if (this.names.size < 256) this.names.set(value, value);
    return value;
  }

  private outcome(row: CsvRow): CsvRowOutcome {
    const cols = this.cols;
    const misaligned = misalignedRow(row, { cells: this.header!.cells, what: 'the header' }, cols.serial);
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
      info(
        'the counter column is not used by a TOTP token (its codes follow the clock), so it was not read. If the token is HOTP, say so in the token type column.',
      );
    }
    if (type === 'hotp' && intervalText.length > 0 && !Number.isNaN(period) && !HOTP_FILLER_PERIODS.includes(period)) {
      info(
        `the time interval (${period} s) is not used by an HOTP token (its codes follow its counter), so it was not read. If the column holds the counter, name it "counter".`,
      );
      period = DEFAULT_PERIOD;
    }
    const upn = cell(row, cols.upn);
    const manufacturer = this.name(cell(row, cols.manufacturer));
    const model = this.name(cell(row, cols.model));
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
          manufacturer,
          model,
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
  }
}
