/**
 * The header-less "OATH CSV" of privacyIDEA and LinOTP, both variants:
 *
 *   serial, seed [, type [, digits [, time step | counter [, hash]]]]
 *
 * - privacyIDEA: a row of serial and seed is HOTP; the fifth cell is the time
 *   step of a TOTP row and the counter of an HOTP row; `# version: 2` on the
 *   first line puts three user columns (user, resolver, realm) first.
 * - LinOTP: an optional sixth cell names the hash (sha1, sha256, sha512); in
 *   its six-cell rows the fifth cell of an HOTP row is not used.
 * - Both: with no hash named, a 32-byte seed is HMAC-SHA256 and a 64-byte one
 *   HMAC-SHA512; seeds are hex; lines holding a single value are skipped.
 * Every such decision is an info problem on the row. The rules and their
 * sources are in docs/formats/oath-csv.md.
 */
import type { SecretEncoding } from '../core/encoding.js';
import { problem, type Problem } from '../core/problems.js';
import { parseHashAlgorithm, type HashAlgorithm, type OathToken, type TokenType } from '../core/token.js';
import { checkSerial } from '../core/validate.js';
import { misalignedProblem, misalignedRow, type CsvRow } from './csv-table.js';
import { CsvTokenCollector, rowWhere, type CsvRowOutcome } from './csv-tokens.js';
import type { SeedReadResult } from './types.js';

/** The user columns privacyIDEA's version 2 puts before the token columns. */
const VERSION_2_USER_COLUMNS = 3;
/** Token cells: serial and seed at least; LinOTP's hash column makes six. */
const TOKEN_CELLS = { min: 2, max: 6 };
/** privacyIDEA's version 2 files carry privacyIDEA's token columns (no LinOTP hash column). */
const VERSION_2_TOKEN_CELLS_MAX = 5;

const DEFAULT_DIGITS = 6;
const DEFAULT_TIME_STEP = 30;

const OATH_TYPES: ReadonlyMap<string, TokenType> = new Map([
  ['totp', 'totp'],
  ['hotp', 'hotp'],
  // LinOTP's name for HOTP.
  ['hmac', 'hotp'],
]);

/** Token types privacyIDEA and LinOTP export that are not OATH HOTP/TOTP, with the reason in this tool's words. */
const NON_OATH_TYPES: ReadonlyMap<string, string> = new Map([
  ['ocra', 'an OCRA challenge-response token'],
  ['ocra2', 'an OCRA challenge-response token'],
  ['tan', 'a TAN list'],
  ['pw', 'a static password'],
  ['spass', 'a simple-pass (PIN only) token'],
  ['motp', 'an mOTP token'],
  ['daypassword', 'a day-password token'],
  ['yubikey', 'a Yubico OTP token'],
  ['yubico', 'a Yubico OTP token'],
  ['sshkey', 'an SSH key'],
  ['email', 'an e-mail token'],
  ['sms', 'an SMS token'],
  ['registration', 'a registration code'],
  ['paper', 'a paper TAN list'],
]);

/** `# version: N` on the first line (privacyIDEA writes it for files with user columns). */
export function oathCsvVersion(text: string): number {
  const firstLine = text.slice(0, text.indexOf('\n') === -1 ? text.length : text.indexOf('\n'));
  const m = /^\s*#\s*version:\s*(\d{1,3})\s*$/i.exec(firstLine);
  return m ? Number(m[1]) : 1;
}

/**
 * Comments are whole lines whose first non-blank character is '#'; csv-parse
 * only knows comments that start the line, so indented ones (privacyIDEA's
 * own test files indent them) are blanked here, keeping the line numbers.
 */
export function blankIndentedComments(text: string): string {
  return text.replace(/^[ \t]+#.*$/gm, '');
}

function tokenCells(row: CsvRow, version: number): string[] {
  return version === 2 ? row.cells.slice(VERSION_2_USER_COLUMNS) : row.cells;
}

/** Whether a row has OATH CSV's shape: serial, then a hex seed or a totp/hotp type in the third cell. */
export function looksLikeOathRow(row: CsvRow, version: number): boolean {
  const t = tokenCells(row, version).map((c) => c.trim());
  const max = version === 2 ? VERSION_2_TOKEN_CELLS_MAX : TOKEN_CELLS.max;
  if (t.length < TOKEN_CELLS.min || t.length > max) return false;
  const seed = t[1]!.replace(/\s+/g, '');
  return (seed.length >= 2 && seed.length % 2 === 0 && /^[0-9a-f]+$/i.test(seed)) || OATH_TYPES.has((t[2] ?? '').toLowerCase());
}

/** The hash a seed's length chooses when the row names none (privacyIDEA and LinOTP). */
function hashFromSeedLength(bytes: number): { algorithm?: HashAlgorithm; ambiguous?: string } {
  if (bytes === 32) return { algorithm: 'SHA256' };
  if (bytes === 64) return { algorithm: 'SHA512' };
  // privacyIDEA reads these lengths as SHA-224 and SHA-384; LinOTP as SHA-1. Neither is safe to pick.
  if (bytes === 28) return { ambiguous: 'HMAC-SHA224' };
  if (bytes === 48) return { ambiguous: 'HMAC-SHA384' };
  return { algorithm: 'SHA1' };
}

function readRow(row: CsvRow, version: number, fileName: string): CsvRowOutcome {
  if (row.cells.length === 1) {
    return {
      note: problem(
        'LINE_SKIPPED',
        'info',
        `Line ${row.line}: the line holds one value and no seed, so it is skipped (privacyIDEA and LinOTP skip it too). If it was meant as a token, give it as "serial, seed".`,
        { line: row.line },
      ),
    };
  }
  const userColumns = version === 2 ? VERSION_2_USER_COLUMNS : 0;
  const maxTokenCells = version === 2 ? VERSION_2_TOKEN_CELLS_MAX : TOKEN_CELLS.max;
  const expected = {
    min: userColumns + TOKEN_CELLS.min,
    max: userColumns + maxTokenCells,
    what: version === 2 ? "privacyIDEA's version 2 OATH CSV layout" : 'the OATH CSV layout',
  };
  const misaligned = misalignedRow(row, expected, userColumns);
  if (misaligned) return { rejected: misaligned };
  const t = tokenCells(row, version).map((c) => c.trim());
  const typeText = (t[2] ?? '').toLowerCase();
  // The type cell anchors the layout: anything but a type name (or nothing) there means the cells are shifted.
  if (typeText !== '' && !/^[a-z][a-z0-9]{1,11}$/.test(typeText)) {
    return { rejected: misalignedProblem(row.line, 'the third token cell is not a token type, so the cells are shifted') };
  }
  const hashText = (t[5] ?? '').toLowerCase();
  if (hashText !== '' && !/^[a-z0-9-]{1,10}$/.test(hashText)) {
    return { rejected: misalignedProblem(row.line, 'the sixth cell is not a hash name, so the cells are shifted') };
  }

  const serial = t[0]!;
  const serialProblem = checkSerial(serial, row.line);
  const where = rowWhere(row.line, serial, serialProblem);
  const problems: Problem[] = [];
  const error = (code: Problem['code'], detail: string) => problems.push(problem(code, 'error', `Line ${row.line}: ${detail}`, where));
  const info = (code: Problem['code'], detail: string) => problems.push(problem(code, 'info', `Line ${row.line}: ${detail}`, where));

  let type: TokenType = 'hotp';
  if (typeText === '') {
    info('TYPE_FROM_MISSING_COLUMN', 'no token type is given, so the token is HOTP, as privacyIDEA and LinOTP read such rows.');
  } else if (OATH_TYPES.has(typeText)) {
    type = OATH_TYPES.get(typeText)!;
  } else {
    const kind = NON_OATH_TYPES.get(typeText);
    error(
      'TYPE_UNSUPPORTED',
      `the token type in the third cell is ${kind ?? 'not one this tool reads'}; only OATH TOTP and HOTP tokens (totp, hotp) are read.`,
    );
    return { line: row.line, serial, serialProblem, secretText: t[1] ?? '', problems, build: unreachable };
  }

  const digitsText = t[3] ?? '';
  const digits = digitsText === '' ? DEFAULT_DIGITS : /^\d{1,2}$/.test(digitsText) ? Number(digitsText) : undefined;
  if (digits === undefined) error('DIGITS_INVALID', 'the digits cell is not a number; use 6 or 8.');

  const fifth = t[4] ?? '';
  const linotpRow = t.length === 6;
  let period = DEFAULT_TIME_STEP;
  let counter: bigint | undefined;
  if (type === 'totp' && fifth !== '') {
    if (/^\d{1,6}$/.test(fifth)) period = Number(fifth);
    else
      error(
        'INTERVAL_INVALID',
        `the time step in the fifth cell is not a whole number of seconds; use 30 or 60.${parseHashAlgorithm(fifth) ? ' A hash name belongs in a sixth cell (LinOTP layout).' : ''}`,
      );
  } else if (type === 'hotp' && fifth !== '') {
    if (linotpRow) {
      info(
        'CELL_READING_DECIDED',
        "the row has LinOTP's six cells, and LinOTP does not use the fifth cell of an HOTP row (privacyIDEA's counter), so it is not read; the counter is left unset.",
      );
    } else if (/^\d{1,20}$/.test(fifth)) {
      counter = BigInt(fifth);
      info(
        'CELL_READING_DECIDED',
        'the fifth cell of an HOTP row is read as the counter, as privacyIDEA reads it (LinOTP would ignore it).',
      );
    } else {
      error('FIELD_INVALID', 'the counter in the fifth cell of this HOTP row is not a whole number.');
    }
  }

  let namedHash: HashAlgorithm | undefined;
  if (hashText !== '') {
    namedHash = ({ sha1: 'SHA1', sha256: 'SHA256', sha512: 'SHA512' } as const)[hashText as 'sha1' | 'sha256' | 'sha512'];
    if (!namedHash) error('ALGORITHM_UNSUPPORTED', 'the hash in the sixth cell is not sha1, sha256 or sha512.');
  }

  return {
    line: row.line,
    serial,
    serialProblem,
    secretText: t[1] ?? '',
    problems,
    build: (secret) => {
      const built: Problem[] = [];
      let algorithm = namedHash;
      if (!algorithm) {
        const chosen = hashFromSeedLength(secret.length);
        if (chosen.ambiguous) {
          built.push(
            problem(
              'ALGORITHM_UNSUPPORTED',
              'error',
              `Line ${row.line}: the seed is ${secret.length} bytes and no hash is named: privacyIDEA reads this length as ${chosen.ambiguous} (not supported here, nor by Entra) and LinOTP as HMAC-SHA1. Add a sixth cell naming the hash (sha1, sha256 or sha512).`,
              where,
            ),
          );
        } else if (chosen.algorithm !== 'SHA1') {
          built.push(
            problem(
              'HASH_FROM_SEED_LENGTH',
              'info',
              `Line ${row.line}: no hash is named, so the ${secret.length}-byte seed makes this ${chosen.algorithm === 'SHA256' ? 'HMAC-SHA256' : 'HMAC-SHA512'}, as privacyIDEA and LinOTP decide (32 bytes: SHA-256, 64 bytes: SHA-512). Add a sixth cell (sha1, sha256 or sha512) if the token uses another hash.`,
              where,
            ),
          );
        }
        algorithm = chosen.algorithm ?? 'SHA1';
      }
      const token: OathToken = {
        serial,
        manufacturer: '',
        model: '',
        type,
        algorithm,
        digits: digits ?? 0,
        period,
        secret,
        line: row.line,
      };
      if (counter !== undefined) token.counter = counter;
      return { token, problems: built };
    },
  };

  function unreachable(): never {
    // A row with an unsupported type carries an error, so finish() never builds it.
    throw new Error(`${fileName}: a refused OATH CSV row was built`);
  }
}

/** Reads privacyIDEA's and LinOTP's OATH CSV one row at a time, from rows parsed with comments skipped. */
export class OathCsvReader {
  private readonly collector: CsvTokenCollector;

  constructor(
    private readonly fileName: string,
    private readonly version: 1 | 2,
    forced: SecretEncoding | undefined,
  ) {
    // OATH CSV carries hex seeds by definition; a user may still force base32.
    this.collector = new CsvTokenCollector(fileName, 'privacyidea-csv', forced ?? 'hex', forced ? 'forced' : 'detected');
    if (version === 2) {
      this.collector.note(
        problem(
          'USER_COLUMNS_IGNORED',
          'info',
          `Line 1: privacyIDEA's version 2 layout puts user, resolver and realm before each token; those columns are not used here. Assign the tokens with an assignment list (upn, serial number).`,
          { line: 1 },
        ),
      );
    }
  }

  row(row: CsvRow): void {
    this.collector.addOutcome(readRow(row, this.version, this.fileName));
  }

  finish(): SeedReadResult {
    return this.collector.finish();
  }
}
