/**
 * Checks shared by every seed-file reader: the token-level rules and the
 * duplicate-serial rule, so CSV and PSKC files are judged alike.
 */
import { problem, quoteValue, type Problem } from './problems.js';
import { MAX_SECRET_BYTES, MIN_SECRET_BYTES, sameSecret, type OathToken } from './token.js';

export const ALLOWED_PERIODS: readonly number[] = [30, 60];
export const ALLOWED_DIGITS: readonly number[] = [6, 8];

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
  if (serial.length === 0) return problem('SERIAL_MISSING', 'error', `${at}: the serial number is empty. Fill it in from the token's back label.`, where);
  const bad = INVISIBLE_OR_CONTROL.exec(serial);
  if (bad) {
    const codePoint = bad[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0');
    return problem('SERIAL_INVALID', 'error', `${at}: the serial number holds a control or invisible character (U+${codePoint} at position ${[...serial.slice(0, bad.index)].length + 1}). Retype it from the token's label.`, where);
  }
  if (serial.length > 128) return problem('SERIAL_INVALID', 'error', `${at}: the serial number is ${serial.length} characters long; at most 128 are accepted.`, where);
  return undefined;
}

/** Token-level rules every format applies; returns the problems (empty: the token is good). */
export function checkToken(token: OathToken): Problem[] {
  const where = { line: token.line, serial: token.serial };
  const problems: Problem[] = [];
  if (token.secret.length < MIN_SECRET_BYTES) {
    problems.push(problem('SECRET_TOO_SHORT', 'error', `Serial ${quoteValue(token.serial)}: the secret is ${token.secret.length * 8} bits; at least ${MIN_SECRET_BYTES * 8} are required (RFC 4226). Ask the vendor for the full seed.`, where));
  } else if (token.secret.length > MAX_SECRET_BYTES) {
    problems.push(problem('SECRET_TOO_LONG', 'error', `Serial ${quoteValue(token.serial)}: the secret is ${token.secret.length} bytes; at most ${MAX_SECRET_BYTES} are accepted.`, where));
  }
  if (token.type === 'totp' && !ALLOWED_PERIODS.includes(token.period)) {
    problems.push(problem('INTERVAL_INVALID', 'error', `Serial ${quoteValue(token.serial)}: the time interval is ${token.period}; it must be 30 or 60 seconds.`, where));
  }
  if (!ALLOWED_DIGITS.includes(token.digits)) {
    problems.push(problem('DIGITS_INVALID', 'error', `Serial ${quoteValue(token.serial)}: the code length is ${token.digits}; it must be 6 or 8 digits.`, where));
  }
  return problems;
}

function sameToken(a: OathToken, b: OathToken): boolean {
  return (
    sameSecret(a.secret, b.secret) &&
    a.type === b.type &&
    a.algorithm === b.algorithm &&
    a.digits === b.digits &&
    a.period === b.period &&
    a.manufacturer === b.manufacturer &&
    a.model === b.model
  );
}

/**
 * Applies the duplicate rule to tokens that passed their own checks: an exact
 * repeat is a warning and kept once; the same serial with anything different
 * makes every row of that serial an error, and none of them is kept.
 */
export function resolveDuplicates(candidates: OathToken[]): { tokens: OathToken[]; problems: Problem[] } {
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
    if (rows.every((r) => sameToken(first, r))) {
      tokens.push(first);
      for (const r of rows.slice(1)) {
        problems.push(problem('DUPLICATE_ROW', 'warning', `Serial ${quoteValue(serial)} repeats ${first.line !== undefined ? `line ${first.line}` : 'an earlier entry'} exactly; it is imported once.`, { line: r.line, serial }));
      }
      continue;
    }
    const lines = rows.map((r) => r.line).filter((l): l is number => l !== undefined);
    for (const r of rows) {
      problems.push(problem('DUPLICATE_SERIAL_CONFLICT', 'error', `Serial ${quoteValue(serial)} appears ${rows.length} times with different secrets or settings${lines.length ? ` (lines ${lines.join(', ')})` : ''}; none is imported. Keep the right entry and remove the others.`, { line: r.line, serial }));
    }
  }
  // Keep file order for tokens and problems.
  tokens.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
  return { tokens, problems };
}

export function sortProblems(problems: Problem[]): Problem[] {
  return problems.sort((a, b) => (a.line ?? Number.MAX_SAFE_INTEGER) - (b.line ?? Number.MAX_SAFE_INTEGER));
}
