/**
 * Checks shared by every seed-file reader: the serial rules, the token-level
 * rules and the duplicate-serial rule, so CSV and PSKC files are judged alike.
 */
import { problem, quoteValue, type Problem } from './problems.js';
import { MAX_COUNTER, MAX_SECRET_BYTES, MIN_SECRET_BYTES, sameSecret, type OathToken, type TokenType } from './token.js';

// Re-exported for callers that take the problem order from here; the one rule lives in problems.ts.
export { sortProblems } from './problems.js';

export const ALLOWED_PERIODS: readonly number[] = [30, 60];
export const ALLOWED_DIGITS: readonly number[] = [6, 8];

/**
 * Where a problem points: its line, and its serial only once the serial passed
 * checkSerial (a serial that fails it may be a shifted secret, so it is never
 * quoted or attached).
 */
export interface ProblemPlace {
  line?: number;
  serial?: string;
}

/** The place's own words for the start of a message: the serial when it may be shown, else the line. */
function subject(place: ProblemPlace): string {
  if (place.serial !== undefined) return `Serial ${quoteValue(place.serial)}`;
  return place.line !== undefined ? `Line ${place.line}` : 'The key';
}

/**
 * Control characters (Cc), Unicode format characters (Cf: zero-width, every bidi control including
 * U+061C, tag characters) and line/paragraph separators have no place in a serial.
 */
const INVISIBLE_OR_CONTROL = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\u2060-\u206f]/u;

/**
 * The serial rules every format applies. A serial that fails them is neither
 * quoted nor attached to the problem: it may be anything, a shifted secret
 * included, so the problem names its line and what is wrong only.
 */
export function checkSerial(serial: string, line?: number): Problem | undefined {
  const where = line === undefined ? {} : { line };
  const at = `Line ${line ?? '?'}`;
  if (serial.length === 0)
    return problem('SERIAL_MISSING', 'error', `${at}: the serial number is empty. Fill it in from the token's back label.`, where);
  const bad = INVISIBLE_OR_CONTROL.exec(serial);
  if (bad) {
    const codePoint = bad[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0');
    return problem(
      'SERIAL_INVALID',
      'error',
      `${at}: the serial number holds a control or invisible character (U+${codePoint} at position ${[...serial.slice(0, bad.index)].length + 1}). Retype it from the token's label.`,
      where,
    );
  }
  if (serial.length > 128)
    return problem(
      'SERIAL_INVALID',
      'error',
      `${at}: the serial number is ${serial.length} characters long; at most 128 are accepted.`,
      where,
    );
  return undefined;
}

/**
 * What the token rules look at. A reader leaves a field undefined when it
 * could not read it at all (and has reported why), so one fault is not
 * reported twice.
 */
export interface TokenDraft {
  type: TokenType;
  secret?: Uint8Array;
  digits?: number;
  period?: number;
  counter?: bigint;
  timeDriftSeconds?: number;
}

/** Token-level rules every format applies; returns the problems (empty: the token is good). */
export function checkToken(token: TokenDraft, place: ProblemPlace): Problem[] {
  const problems: Problem[] = [];
  // The subject (a quoted serial) is worded only for a token that has a problem.
  const error = (code: Problem['code'], detail: string) => problems.push(problem(code, 'error', `${subject(place)}: ${detail}`, place));
  const { secret } = token;
  if (secret && secret.length < MIN_SECRET_BYTES) {
    error(
      'SECRET_TOO_SHORT',
      `the secret is ${secret.length} bytes (${secret.length * 8} bits); at least ${MIN_SECRET_BYTES} bytes (${MIN_SECRET_BYTES * 8} bits) are required (RFC 4226). Ask the vendor for the full seed.`,
    );
  } else if (secret && secret.length > MAX_SECRET_BYTES) {
    error('SECRET_TOO_LONG', `the secret is ${secret.length} bytes; at most ${MAX_SECRET_BYTES} are accepted.`);
  }
  if (token.type === 'totp' && token.period !== undefined && !ALLOWED_PERIODS.includes(token.period)) {
    error('INTERVAL_INVALID', `the time interval is ${token.period} seconds; it must be 30 or 60.`);
  }
  if (token.digits !== undefined && !ALLOWED_DIGITS.includes(token.digits)) {
    error('DIGITS_INVALID', `the code length is ${token.digits}; it must be 6 or 8 digits.`);
  }
  if (token.counter !== undefined && (token.counter < 0n || token.counter > MAX_COUNTER)) {
    error('FIELD_INVALID', `the counter is outside 0 to ${MAX_COUNTER} (RFC 4226's counter is an unsigned 64-bit number).`);
  }
  if (token.timeDriftSeconds !== undefined && !Number.isSafeInteger(token.timeDriftSeconds)) {
    error('FIELD_INVALID', 'the time drift is not a whole number of seconds.');
  }
  return problems;
}

function sameSettings(a: OathToken, b: OathToken): boolean {
  return (
    a.type === b.type &&
    a.algorithm === b.algorithm &&
    a.digits === b.digits &&
    a.period === b.period &&
    a.manufacturer === b.manufacturer &&
    a.model === b.model &&
    a.counter === b.counter &&
    a.timeDriftSeconds === b.timeDriftSeconds
  );
}

/**
 * Applies the duplicate rule to tokens that passed their own checks: an exact
 * repeat is a warning and kept once; the same serial with anything different
 * (secret, settings, counter or drift) makes every entry of that serial an
 * error, and none of them is kept. Tokens come back in file order.
 */
export function resolveDuplicates(candidates: OathToken[]): { tokens: OathToken[]; problems: Problem[] } {
  // Vendors list tokens by serial: strictly ascending serials cannot repeat, and need no lookup table.
  if (strictlyAscending(candidates)) return { tokens: inFileOrder(candidates), problems: [] };
  // A list only for a serial that repeats: one array per token would be 100,000 thrown away for a clean file.
  const firstBySerial = new Map<string, OathToken>();
  const repeated = new Map<string, OathToken[]>();
  for (const t of candidates) {
    const first = firstBySerial.get(t.serial);
    if (first === undefined) firstBySerial.set(t.serial, t);
    else {
      const list = repeated.get(t.serial);
      if (list) list.push(t);
      else repeated.set(t.serial, [first, t]);
    }
  }
  const tokens: OathToken[] = [];
  const problems: Problem[] = [];
  for (const [serial, first] of firstBySerial) {
    const rows = repeated.get(serial);
    if (rows === undefined) {
      tokens.push(first);
      continue;
    }
    const sameSecrets = rows.every((r) => sameSecret(first.secret, r.secret));
    if (sameSecrets && rows.every((r) => sameSettings(first, r))) {
      tokens.push(first);
      for (const r of rows.slice(1)) {
        problems.push(
          problem(
            'DUPLICATE_ROW',
            'warning',
            `Serial ${quoteValue(serial)} repeats ${first.line !== undefined ? `line ${first.line}` : 'an earlier entry'} exactly; it is imported once.`,
            { line: r.line, serial },
          ),
        );
      }
      continue;
    }
    const lines = rows.map((r) => r.line).filter((l): l is number => l !== undefined);
    const what = sameSecrets ? 'the same secret but different settings' : 'different secrets';
    for (const r of rows) {
      problems.push(
        problem(
          'DUPLICATE_SERIAL_CONFLICT',
          'error',
          `Serial ${quoteValue(serial)} appears ${rows.length} times with ${what}${lines.length ? ` (lines ${lines.join(', ')})` : ''}; none is imported. Keep the right entry and remove the others.`,
          { line: r.line, serial },
        ),
      );
    }
  }
  return { tokens: inFileOrder(tokens), problems };
}

function strictlyAscending(tokens: readonly OathToken[]): boolean {
  for (let i = 1; i < tokens.length; i++) if (!(tokens[i - 1]!.serial < tokens[i]!.serial)) return false;
  return true;
}

/** A copy in file order (a stable sort: entries without a line keep the order they came in); no sort when already so. */
function inFileOrder(tokens: readonly OathToken[]): OathToken[] {
  const line = (t: OathToken) => t.line ?? 0;
  for (let i = 1; i < tokens.length; i++) {
    if (line(tokens[i - 1]!) > line(tokens[i]!)) return [...tokens].sort((a, b) => line(a) - line(b));
  }
  return [...tokens];
}
