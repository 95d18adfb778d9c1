/**
 * Property-based fuzzing of every reader: whatever the bytes, a reader returns
 * a result or throws a FileError with one of the specific file-level codes it
 * may use; never another exception, never a catch-all code, never a problem
 * code outside PROBLEM_CODES, never an unsound token.
 *
 * fast-check picks a new seed each run and prints it (with the shrunk input)
 * on failure; pass it back through FUZZ_SEED to replay.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { base32 } from '@scure/base';
import fc from 'fast-check';
import { FileError, PROBLEM_CODES, type Problem } from '../../shared/core/problems.js';
import type { OathToken } from '../../shared/core/token.js';
import { checkSerial } from '../../shared/core/validate.js';
import { importabilityProblems, planImport, type ImportCandidate } from '../../shared/entra/import-rules.js';
import { readAssignments } from '../../shared/formats/assignments.js';
import { readCsvSeed } from '../../shared/formats/csv-seed.js';
import { readPskc } from '../../shared/formats/pskc.js';
import { readSeedFile } from '../../shared/formats/read-seed-file.js';
import type { ReadOptions, SeedReadResult } from '../../shared/formats/types.js';

/** The clock reading given to the readers. */
const READ_AT = new Date('2026-06-01T00:00:00Z');
const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url));
const seedFlag = process.env['FUZZ_SEED'];
const runs = <Ts>(numRuns: number): fc.Parameters<Ts> => (seedFlag ? { numRuns, seed: Number(seedFlag) } : { numRuns });

/** Codes a seed reader may throw: each names a specific reason. */
const SEED_FILE_CODES: ReadonlySet<string> = new Set([
  'FILE_EMPTY',
  'FILE_TOO_LARGE',
  'FILE_NOT_TEXT',
  'CSV_MALFORMED',
  'CSV_UNKNOWN_LAYOUT',
  'CSV_MISSING_COLUMN',
  'CSV_DUPLICATE_COLUMN',
  'ENCODING_AMBIGUOUS',
  'ENCODING_UNKNOWN',
  'PSKC_MALFORMED',
  'PSKC_DOCTYPE_REFUSED',
  'PSKC_KEY_REQUIRED',
  'PSKC_DECRYPTION_FAILED',
  'PSKC_UNSUPPORTED_ALGORITHM',
  'PSKC_MAC_REQUIRED',
]);
const ASSIGNMENT_FILE_CODES: ReadonlySet<string> = new Set([
  'FILE_EMPTY',
  'FILE_TOO_LARGE',
  'FILE_NOT_TEXT',
  'CSV_MALFORMED',
  'CSV_MISSING_COLUMN',
  'CSV_DUPLICATE_COLUMN',
]);
/** Codes a seed reader may return per token. */
const SEED_ROW_CODES: ReadonlySet<string> = new Set([
  'CSV_ROW_MISALIGNED',
  'SERIAL_MISSING',
  'SERIAL_INVALID',
  'SECRET_MISSING',
  'SECRET_INVALID_CHARACTERS',
  'SECRET_TOO_SHORT',
  'SECRET_TOO_LONG',
  'INTERVAL_INVALID',
  'DIGITS_INVALID',
  'ALGORITHM_UNSUPPORTED',
  'TYPE_UNSUPPORTED',
  'FIELD_INVALID',
  'DUPLICATE_SERIAL_CONFLICT',
  'DUPLICATE_ROW',
  // Key policies (PSKC) and the infos that say what a reader decided (OATH CSV, header CSV encodings, PSKC integers, the draft layout).
  'POLICY_EXPIRED',
  'POLICY_NOT_YET_VALID',
  'POLICY_KEY_USAGE',
  'POLICY_PIN',
  'POLICY_TRANSACTION_LIMIT',
  'POLICY_UNKNOWN',
  'HASH_FROM_SEED_LENGTH',
  'TYPE_FROM_MISSING_COLUMN',
  'CELL_READING_DECIDED',
  'CELL_NOT_USED',
  'SECRET_ENCODING_DECIDED',
  'INTEGER_ENCODING_DECIDED',
  'LINE_SKIPPED',
  'USER_COLUMNS_IGNORED',
  'PSKC_DRAFT_LAYOUT',
]);
const PLAN_CODES: ReadonlySet<string> = new Set([
  'ASSIGNMENT_UNKNOWN_SERIAL',
  'ASSIGNMENT_UPN_INVALID',
  'ASSIGNMENT_GUEST_UPN',
  'ASSIGNMENT_SERIAL_CONFLICT',
  'ASSIGNMENT_TOO_MANY_TOKENS',
  'ASSIGNMENT_DUPLICATE_ROW',
  'ASSIGNMENT_SERIAL_MISSING',
  'ENTRA_NOT_IMPORTABLE',
  'ENTRA_FORMULA_CELL',
]);

/** Generous: only a hang or a blow-up gets near it. */
const HANG_GUARD_MS = 10_000;
let slowest = { ms: 0, reader: '' };
let calls = 0;
/** How often each outcome came up, over the run and in the running property: shows the fuzzing reaches past the first checks. */
const outcomes = new Map<string, number>();
let reached = new Map<string, number>();
const count = (key: string) => {
  outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
  reached.set(key, (reached.get(key) ?? 0) + 1);
};

/**
 * Runs one property and checks its reach: each listed outcome (a FileError or problem code, or a kind of result)
 * came up at least the given number of times. The floors sit well below what any seed gives (a quarter or less of
 * the lowest count seen over many runs), so they catch a generator or reader change that stops the fuzzing from
 * getting past the first checks, not the luck of a seed.
 */
function fuzzWithReach<Ts>(property: fc.IProperty<Ts>, numRuns: number, floors: Record<string, number>): void {
  reached = new Map();
  fc.assert(property, runs<Ts>(numRuns));
  if (process.env['FUZZ_REACH_REPORT']) console.log(`reach ${JSON.stringify(Object.fromEntries(reached))}`);
  const short = Object.entries(floors).filter(([key, floor]) => (reached.get(key) ?? 0) < floor);
  assert.deepEqual(
    short.map(([key, floor]) => `${key}: ${reached.get(key) ?? 0} < ${floor}`),
    [],
    `the fuzzing no longer reaches these outcomes often enough (${[...reached].map(([k, n]) => `${k} ${n}`).join(', ')})`,
  );
}

function checkProblems(problems: readonly Problem[], allowed: ReadonlySet<string>, reader: string): void {
  for (const p of problems) {
    assert.ok(Object.hasOwn(PROBLEM_CODES, p.code), `${reader}: problem code ${String(p.code)} is not in PROBLEM_CODES`);
    assert.ok(allowed.has(p.code), `${reader}: unexpected problem code ${String(p.code)}`);
    assert.ok(['error', 'warning', 'info'].includes(p.severity));
    assert.equal(typeof p.message, 'string');
  }
}

function checkTokens(tokens: readonly OathToken[], reader: string): void {
  for (const t of tokens) {
    assert.equal(
      checkSerial(t.serial, t.line),
      undefined,
      `${reader}: a token with an invalid serial ${JSON.stringify(t.serial.slice(0, 40))} came out`,
    );
    assert.ok(t.secret.length >= 16 && t.secret.length <= 128, `${reader}: secret of ${t.secret.length} bytes`);
    assert.ok(t.digits === 6 || t.digits === 8, `${reader}: ${t.digits} digits`);
    if (t.type === 'totp') assert.ok(t.period === 30 || t.period === 60, `${reader}: period ${t.period}`);
  }
}

function candidate(t: OathToken): ImportCandidate {
  return { ...t, secretBytes: t.secret.length };
}

/** Runs one reader call and checks the outcome; returns what happened, for the statistics. */
function outcomeOf<T>(reader: string, allowedFileCodes: ReadonlySet<string>, call: () => T): T | FileError {
  const started = performance.now();
  let value: T | FileError;
  try {
    value = call();
  } catch (err) {
    if (!(err instanceof FileError)) {
      assert.fail(`${reader} threw ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)} instead of a FileError`);
    }
    assert.ok(allowedFileCodes.has(err.code), `${reader}: FileError code ${err.code} is not one this reader may throw`);
    assert.ok(err.message.length > 0);
    count(err.code);
    value = err;
  }
  const ms = performance.now() - started;
  calls++;
  if (ms > slowest.ms) slowest = { ms, reader };
  assert.ok(ms < HANG_GUARD_MS, `${reader} took ${ms.toFixed(0)} ms`);
  return value;
}

function checkSeed(reader: string, call: () => SeedReadResult): void {
  const result = outcomeOf(reader, SEED_FILE_CODES, call);
  if (result instanceof FileError) return;
  count(result.tokens.length > 0 ? 'seed read, with tokens' : 'seed read, no token');
  if (result.tokens.length > 0) count(`tokens from ${reader}`);
  for (const p of result.problems) count(String(p.code));
  checkProblems(result.problems, SEED_ROW_CODES, reader);
  checkTokens(result.tokens, reader);
  for (const t of result.tokens) checkProblems(importabilityProblems(candidate(t), 'warning', t.line), PLAN_CODES, `${reader} inspect`);
  const plan = planImport(
    result.tokens.map(candidate),
    result.tokens.map((t, i) => ({ upn: `u${i}@contoso.com`, serial: t.serial, line: i + 1 })),
  );
  checkProblems(plan.problems, PLAN_CODES, `${reader} convert`);
}

const referenceTokens = readSeedFile(readFileSync(join(FIXTURES, 'corpus/reference/tokens.csv')), {
  now: READ_AT,
  fileName: 'reference',
}).tokens.map(candidate);

/** Codes the assignment-list reader may return per row. */
const ASSIGNMENT_ROW_CODES: ReadonlySet<string> = new Set(['CSV_ROW_MISALIGNED', 'SERIAL_INVALID']);

function checkAssignments(bytes: Uint8Array): void {
  const list = outcomeOf('readAssignments', ASSIGNMENT_FILE_CODES, () => readAssignments(bytes, 'fuzz.csv'));
  if (list instanceof FileError) return;
  checkProblems(list.problems, ASSIGNMENT_ROW_CODES, 'readAssignments');
  for (const p of list.problems) count(String(p.code));
  const rows = list.rows;
  const plan = planImport(referenceTokens, rows);
  count(plan.exported.length > 0 ? 'assignments exported' : 'assignments read, none exported');
  for (const p of plan.problems) count(String(p.code));
  checkProblems(plan.problems, PLAN_CODES, 'planImport');
  for (const r of plan.exported) assert.ok(rows.some((a) => a.serial === r.serial && a.upn === r.upn));
}

// ---------------------------------------------------------------------------
// Inputs.

const b32 = (bytes: Uint8Array) => base32.encode(bytes).replace(/=+$/, '');
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');

/** Cells that steer the readers into their deeper branches, mixed with arbitrary text. */
const cellArb = fc.oneof(
  fc.constantFrom(
    '',
    ' ',
    '30',
    '60',
    '45',
    '-1',
    'totp',
    'hotp',
    'motp',
    '6',
    '8',
    'SHA256',
    'md5',
    '"',
    '""',
    '"a,b"',
    '#',
    '=1+1',
    '@x',
    'a@contoso.com',
    'x#EXT#@contoso.com',
    '\u200b',
    '\u202e',
    '\u0410B',
    'R001',
    '000123',
  ),
  fc.uint8Array({ minLength: 1, maxLength: 40 }).map(b32),
  fc.uint8Array({ minLength: 1, maxLength: 40 }).map(hex),
  fc.string({ maxLength: 12 }),
  fc.string({ unit: 'binary', maxLength: 6 }),
);
const headerArb = fc.constantFrom(
  'upn,serial number,secret key,time interval,manufacturer,model',
  'serial number,secret key',
  'Serial Number;Secret Key;Time Interval',
  'serial,secret,timeinterval',
  '# privacyIDEA OATH CSV export',
  'upn,serial number',
  'userprincipalname;serialnumber',
  '',
);
const csvArb = fc
  .record({
    header: headerArb,
    rows: fc.array(fc.array(cellArb, { maxLength: 7 }), { maxLength: 8 }),
    delimiter: fc.constantFrom(',', ';', '\t'),
    newline: fc.constantFrom('\n', '\r\n', '\r'),
    bom: fc.boolean(),
  })
  .map(({ header, rows, delimiter, newline, bom }) =>
    Buffer.from(`${bom ? '\ufeff' : ''}${[header, ...rows.map((r) => r.join(delimiter))].join(newline)}`, 'utf8'),
  );

/** Known seed layouts, each column with values a real file could hold; a quarter of the cells are arbitrary. */
const SEED_LAYOUTS = [
  ['upn', 'serial number', 'secret key', 'time interval', 'manufacturer', 'model'],
  ['serial number', 'secret key'],
  ['Serial Number', 'Secret Key', 'Time Interval'],
  ['serial', 'secret', 'timeinterval'],
  // A vendor's own columns: hash, digits, token type and an HOTP counter.
  ['serial number', 'secret key', 'time interval', 'algorithm', 'digits', 'token type', 'counter'],
] as const;
const plausibleCell: Record<string, fc.Arbitrary<string>> = {
  upn: fc.constantFrom('', 'a@contoso.com', 'b@fabrikam.com'),
  serial: fc.oneof(fc.constantFrom('R001', '000123', 'S-1', 'R001'), fc.stringMatching(/^[A-Z0-9]{1,12}$/)),
  secret: fc.oneof(fc.uint8Array({ minLength: 8, maxLength: 70 }).map(b32), fc.uint8Array({ minLength: 8, maxLength: 70 }).map(hex)),
  interval: fc.constantFrom('30', '60', '45', '', '30s'),
  label: fc.constantFrom('Token2', 'C202', '', '=1+1', 'Feitian'),
  algorithm: fc.constantFrom('SHA1', 'sha256', 'HMAC-SHA512', '', 'MD5'),
  digits: fc.constantFrom('6', '8', '', '7', 'six'),
  type: fc.constantFrom('totp', 'HOTP', '', 'ocra'),
  counter: fc.oneof(fc.constantFrom('', '0', '-1', '18446744073709551616', 'x'), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }).map(String)),
};
const kindOf = (column: string): string =>
  /serial/i.test(column)
    ? 'serial'
    : /secret/i.test(column)
      ? 'secret'
      : /interval/i.test(column)
        ? 'interval'
        : column === 'upn'
          ? 'upn'
          : column === 'token type'
            ? 'type'
            : column in plausibleCell
              ? column
              : 'label';
const layoutCsvArb = fc
  .record({ layout: fc.constantFrom(...SEED_LAYOUTS), delimiter: fc.constantFrom(',', ';', '\t'), newline: fc.constantFrom('\n', '\r\n') })
  .chain(({ layout, delimiter, newline }) => {
    const cell = (column: string) => fc.oneof({ weight: 3, arbitrary: plausibleCell[kindOf(column)]! }, { weight: 1, arbitrary: cellArb });
    const row = fc.tuple(...layout.map(cell)).map((cells) => cells.join(delimiter));
    return fc
      .array(row, { minLength: 1, maxLength: 8 })
      .map((rows) => Buffer.from([layout.join(delimiter), ...rows].join(newline), 'utf8'));
  });

const upnArb = fc.oneof(
  fc.constantFrom(
    'a@contoso.com',
    'A@Contoso.com',
    'b@contoso.com',
    'c_fabrikam.com#EXT#@contoso.com',
    '=cmd@contoso.com',
    '-1@contoso.com',
    'no-at',
    '',
    '"q"@contoso.com',
  ),
  fc.string({ maxLength: 20 }),
);
const serialArb = fc.oneof(
  fc.constantFrom('R001', 'R002', 'R003', 'R004', 'R005', 'R006', '000123', '123', '', 'R0\u200b01'),
  fc.string({ maxLength: 8 }),
);
const assignmentsArb = fc
  .array(fc.tuple(upnArb, serialArb), { maxLength: 14 })
  .map((rows) =>
    Buffer.from(['upn,serial number', ...rows.map(([u, s]) => `"${u.replace(/"/g, '""')}","${s.replace(/"/g, '""')}"`)].join('\n'), 'utf8'),
  );

interface Fixture {
  name: string;
  bytes: Buffer;
  options: Omit<ReadOptions, 'fileName' | 'now'>;
}

/** Files whose secrets fit both alphabets need the encoding forced, as a user would. */
function csvOptions(name: string, bytes: Buffer): Fixture['options'] {
  try {
    readSeedFile(bytes, { now: READ_AT, fileName: name });
    return {};
  } catch (err) {
    if (err instanceof FileError && err.code === 'ENCODING_AMBIGUOUS') return { secretEncoding: 'base32' };
    throw err;
  }
}

const csvFixtures: Fixture[] = readdirSync(join(FIXTURES, 'csv'))
  .filter((f) => f.endsWith('.csv'))
  .map((f) => {
    const bytes = readFileSync(join(FIXTURES, 'csv', f));
    return { name: `csv/${f}`, bytes, options: csvOptions(f, bytes) };
  });

const pskcExpected = JSON.parse(readFileSync(join(FIXTURES, 'pskc/expected.json'), 'utf8')) as {
  valid: Record<string, { psk?: string; password?: string }>;
};
const pskcFixtures: Fixture[] = readdirSync(join(FIXTURES, 'pskc'))
  .filter((f) => f.endsWith('.pskcxml'))
  .map((f) => {
    const keys = pskcExpected.valid[f] ?? {};
    const options: Fixture['options'] = {};
    if (keys.psk) options.psk = Buffer.from(keys.psk, 'hex');
    if (keys.password !== undefined) options.password = keys.password;
    return { name: `pskc/${f}`, bytes: readFileSync(join(FIXTURES, 'pskc', f)), options };
  });

type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; length: number };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 64 }) }),
);

function mutate(original: Buffer, mutations: readonly Mutation[]): Buffer {
  let bytes = Buffer.from(original);
  for (const m of mutations) {
    if (bytes.length === 0) break;
    const at = m.at % (bytes.length + 1);
    if (m.kind === 'flip') {
      const i = m.at % bytes.length;
      bytes[i] = bytes[i]! ^ (1 << m.bit);
    } else if (m.kind === 'truncate') bytes = bytes.subarray(0, at);
    else if (m.kind === 'insert') bytes = Buffer.concat([bytes.subarray(0, at), m.bytes, bytes.subarray(at)]);
    else bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + m.length)]);
  }
  return bytes;
}

const mutatedArb = (fixtures: Fixture[]) =>
  fc
    .record({ fixture: fc.constantFrom(...fixtures), mutations: fc.array(mutationArb, { minLength: 1, maxLength: 3 }) })
    .map(({ fixture, mutations }) => ({
      fixture,
      bytes: mutate(fixture.bytes, mutations),
    }));

const ANY_PSK = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex');

// ---------------------------------------------------------------------------

void describe('fuzzing the readers', () => {
  after(() => {
    const seen = [...outcomes].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`);
    console.log(`fuzz: ${calls} reader calls; slowest ${slowest.ms.toFixed(1)} ms (${slowest.reader}); outcomes: ${seen.join(', ')}`);
  });

  void it('arbitrary bytes: every seed reader and the assignment reader', () => {
    fuzzWithReach(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        checkSeed('readSeedFile', () => readSeedFile(bytes, { now: READ_AT, fileName: 'fuzz' }));
        checkSeed('readCsvSeed hex', () => readCsvSeed(bytes, { now: READ_AT, fileName: 'fuzz', secretEncoding: 'hex' }));
        checkSeed('readPskc', () => readPskc(bytes, { now: READ_AT, fileName: 'fuzz' }));
        checkSeed('readPskc psk', () => readPskc(bytes, { now: READ_AT, fileName: 'fuzz', psk: ANY_PSK }));
        checkAssignments(bytes);
      }),
      500,
      { FILE_NOT_TEXT: 487, FILE_EMPTY: 62, PSKC_MALFORMED: 25, CSV_UNKNOWN_LAYOUT: 24, CSV_MISSING_COLUMN: 12 },
    );
  });

  void it('arbitrary Unicode text: CSV, privacyIDEA and assignment readers', () => {
    fuzzWithReach(
      fc.property(
        fc.string({ unit: 'binary', maxLength: 300 }),
        fc.constantFrom('', '# c\n', 'upn,serial number\n', 'serial number,secret key\n', '<'),
        (text, prefix) => {
          const bytes = Buffer.from(prefix + text, 'utf8');
          checkSeed('readSeedFile', () => readSeedFile(bytes, { now: READ_AT, fileName: 'fuzz' }));
          checkSeed('readCsvSeed base32', () => readCsvSeed(bytes, { now: READ_AT, fileName: 'fuzz', secretEncoding: 'base32' }));
          checkAssignments(bytes);
        },
      ),
      300,
      {
        CSV_MISSING_COLUMN: 85,
        CSV_UNKNOWN_LAYOUT: 64,
        CSV_ROW_MISALIGNED: 38,
        'seed read, no token': 26,
        PSKC_MALFORMED: 11,
        'assignments read, none exported': 11,
        FILE_EMPTY: 10,
      },
    );
  });

  void it('separator soup: delimiters, quotes, comments and blanks only', () => {
    const soup = fc.string({ unit: fc.constantFrom(',', ';', ' ', '\t', '\n', '\r', '"', '#', '\ufeff', 'a'), maxLength: 40 });
    fuzzWithReach(
      fc.property(soup, (text) => {
        const bytes = Buffer.from(text, 'utf8');
        checkSeed('readSeedFile', () => readSeedFile(bytes, { now: READ_AT, fileName: 'fuzz' }));
        checkAssignments(bytes);
      }),
      500,
      { FILE_EMPTY: 86, CSV_MALFORMED: 70, CSV_MISSING_COLUMN: 44, CSV_UNKNOWN_LAYOUT: 31 },
    );
  });

  void it('CSV-shaped input: headers, delimiters, quotes and steering cells', () => {
    fuzzWithReach(
      fc.property(csvArb, fc.constantFrom(undefined, 'hex' as const, 'base32' as const), (bytes, secretEncoding) => {
        checkSeed('readCsvSeed', () =>
          readCsvSeed(bytes, secretEncoding ? { now: READ_AT, fileName: 'fuzz', secretEncoding } : { now: READ_AT, fileName: 'fuzz' }),
        );
        checkAssignments(bytes);
      }),
      800,
      {
        CSV_ROW_MISALIGNED: 305,
        CSV_MISSING_COLUMN: 121,
        CSV_MALFORMED: 105,
        'seed read, no token': 56,
        'assignments read, none exported': 37,
        FILE_EMPTY: 30,
        CSV_UNKNOWN_LAYOUT: 28,
        ASSIGNMENT_UPN_INVALID: 6,
      },
    );
  });

  void it('seed layouts with plausible rows: real headers, values a file could hold, some cells arbitrary', () => {
    fuzzWithReach(
      fc.property(layoutCsvArb, fc.constantFrom(undefined, 'hex' as const, 'base32' as const), (bytes, secretEncoding) => {
        const options = secretEncoding ? { now: READ_AT, fileName: 'fuzz', secretEncoding } : { now: READ_AT, fileName: 'fuzz' };
        checkSeed('readCsvSeed layout', () => readCsvSeed(bytes, options));
        checkSeed('readSeedFile layout', () => readSeedFile(bytes, options));
      }),
      500,
      {
        SECRET_INVALID_CHARACTERS: 288,
        INTERVAL_INVALID: 191,
        SECRET_TOO_SHORT: 101,
        'seed read, no token': 80,
        CSV_UNKNOWN_LAYOUT: 73,
        'seed read, with tokens': 53,
        'tokens from readSeedFile layout': 26,
        'tokens from readCsvSeed layout': 26,
        CELL_NOT_USED: 40,
        FIELD_INVALID: 8,
      },
    );
  });

  void it('assignment-shaped lists: users, guests, formulas, repeats and conflicts', () => {
    fuzzWithReach(
      fc.property(assignmentsArb, (bytes) => checkAssignments(bytes)),
      800,
      {
        ASSIGNMENT_UPN_INVALID: 461,
        'assignments read, none exported': 135,
        ASSIGNMENT_SERIAL_MISSING: 88,
        ASSIGNMENT_SERIAL_CONFLICT: 83,
        ENTRA_FORMULA_CELL: 75,
        ASSIGNMENT_UNKNOWN_SERIAL: 73,
        SERIAL_INVALID: 42,
        'assignments exported': 37,
      },
    );
  });

  void it('mutated valid CSV and privacyIDEA files (bit flips, truncation, inserted and deleted bytes)', () => {
    fuzzWithReach(
      fc.property(mutatedArb(csvFixtures), ({ fixture, bytes }) => {
        checkSeed('readSeedFile', () => readSeedFile(bytes, { now: READ_AT, fileName: 'fuzz', ...fixture.options }));
        checkSeed('readCsvSeed hex', () => readCsvSeed(bytes, { now: READ_AT, fileName: 'fuzz', secretEncoding: 'hex' }));
        checkAssignments(bytes);
      }),
      800,
      {
        FILE_NOT_TEXT: 227,
        CSV_MISSING_COLUMN: 93,
        CSV_ROW_MISALIGNED: 71,
        'seed read, no token': 62,
        FILE_EMPTY: 60,
        'seed read, with tokens': 46,
        CSV_UNKNOWN_LAYOUT: 36,
        SECRET_INVALID_CHARACTERS: 34,
        'tokens from readCsvSeed hex': 13,
        'tokens from readSeedFile': 31,
        'assignments read, none exported': 34,
      },
    );
  });

  void it('mutated valid and hostile PSKC files, with their key and without one', () => {
    fuzzWithReach(
      fc.property(mutatedArb(pskcFixtures), ({ fixture, bytes }) => {
        checkSeed('readPskc keyed', () => readPskc(bytes, { now: READ_AT, fileName: 'fuzz', ...fixture.options }));
        checkSeed('readPskc no key', () => readPskc(bytes, { now: READ_AT, fileName: 'fuzz' }));
        checkSeed('readSeedFile keyed', () => readSeedFile(bytes, { now: READ_AT, fileName: 'fuzz', ...fixture.options }));
      }),
      800,
      {
        PSKC_MALFORMED: 321,
        FILE_NOT_TEXT: 216,
        PSKC_DOCTYPE_REFUSED: 8,
        PSKC_KEY_REQUIRED: 6,
        'seed read, with tokens': 6,
        PSKC_UNSUPPORTED_ALGORITHM: 3,
        'tokens from readSeedFile keyed': 2,
        'tokens from readPskc keyed': 2,
      },
    );
  });

  void it('the fixtures themselves read without error (so the mutations start from valid files)', () => {
    assert.ok(csvFixtures.length >= 5 && pskcFixtures.length >= 10);
    for (const f of [...csvFixtures, ...pskcFixtures.filter((p) => p.options.psk || p.options.password !== undefined)]) {
      const result = readSeedFile(f.bytes, { now: READ_AT, fileName: f.name, ...f.options });
      assert.ok(result.tokens.length > 0, f.name);
    }
  });
});
