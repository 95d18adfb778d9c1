/**
 * What every CSV seed reader shares once its rows are split into cells: the
 * per-file encoding decision, decoding each secret, the token rules, the
 * duplicate rule and the problem order. No cell is quoted in a message.
 */
import { decideEncoding, decodeSecret, isValidBase32, isValidHex, type SecretEncoding } from '../core/encoding.js';
import { problem, sortProblems, type Problem } from '../core/problems.js';
import type { OathToken } from '../core/token.js';
import { checkToken, resolveDuplicates } from '../core/validate.js';
import type { SeedFormat, SeedReadResult } from './types.js';

export interface RawToken {
  line: number;
  /** The serial cell; quoted or attached to problems only when `serialProblem` is undefined. */
  serial: string;
  serialProblem: Problem | undefined;
  secretText: string;
  /** The token for the decoded secret, with what the secret itself decided (a hash from its length). */
  build: (secret: Uint8Array) => { token: OathToken; problems: Problem[] };
  /** Field problems found before the secret is decoded (errors, and infos on decisions taken). */
  problems: Problem[];
  upn?: string;
}

/** A row that is not read at all: its one problem names the line only. */
export interface RejectedRow {
  rejected: Problem;
}

/** Problems that are not about a token row (a skipped line, the file's user columns): kept as they are. */
export interface NoteRow {
  note: Problem;
}

export type CsvRowOutcome = RawToken | RejectedRow | NoteRow;

/** Where a row's problems point: its line, and its serial only when that passed the serial check. */
export function rowWhere(line: number, serial: string, serialProblem: Problem | undefined): { line: number; serial?: string } {
  return serialProblem ? { line } : { line, serial };
}

const isError = (p: Problem) => p.severity === 'error';

export function finish(
  fileName: string,
  format: Extract<SeedFormat, 'csv' | 'privacyidea-csv'>,
  rows: CsvRowOutcome[],
  forced: SecretEncoding | undefined,
  decidedByOverride?: 'forced' | 'detected',
): SeedReadResult {
  const problems: Problem[] = [];
  const raw: RawToken[] = [];
  for (const row of rows) {
    if ('rejected' in row) problems.push(row.rejected);
    else if ('note' in row) problems.push(row.note);
    else raw.push(row);
  }
  // Cells of misaligned rows are not secrets of known place: they take no part in the encoding decision.
  const decision = decideEncoding(fileName, raw.map((r) => r.secretText), forced);
  const encoding = decision.encoding;
  // A header file's encoding is detected from its secrets (OATH CSV is hex by definition): a secret valid in both
  // alphabets took the file's encoding without a say of its own, so that token is told which row decided it.
  const decidedBy = format === 'csv' && decision.decidedBy === 'detected' ? firstDecidingLine(raw, encoding) : undefined;
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
      // It decoded in the file's encoding: it was the file's call only if it is valid in the other one too.
      else if (decidedBy !== undefined && (encoding === 'base32' ? isValidHex(r.secretText) : isValidBase32(r.secretText))) {
        const other = encoding === 'base32' ? 'hex' : 'base32';
        rowProblems.push(
          problem(
            'SECRET_ENCODING_DECIDED',
            'info',
            `Line ${r.line}: the secret key is valid as both base32 and hex; it was read as ${encoding}, the file's encoding, which the secrets valid only in ${encoding} decided (the first on line ${decidedBy}). If this token's seed is ${other}, the file mixes encodings: split it, or force --secret-encoding.`,
            where,
          ),
        );
      }
    }
    if (secret && !rowProblems.some(isError)) {
      const built = r.build(secret);
      rowProblems.push(...built.problems);
      rowProblems.push(...checkToken(built.token, { line: built.token.line, serial: built.token.serial }));
      if (!rowProblems.some(isError)) {
        candidates.push(built.token);
        if (r.upn) embeddedAssignments.push({ upn: r.upn, serial: r.serial, line: r.line });
      }
    }
    problems.push(...rowProblems);
  }

  const deduped = resolveDuplicates(candidates);
  problems.push(...deduped.problems);
  const kept = new Set(deduped.tokens.map((t) => t.serial));
  return {
    file: fileName,
    format,
    secretEncoding: encoding,
    encodingDecidedBy: decidedByOverride ?? decision.decidedBy,
    tokens: deduped.tokens,
    problems: sortProblems(problems),
    embeddedAssignments: embeddedAssignments.filter((a) => kept.has(a.serial)),
  };
}

/** The line of the first secret valid in the chosen encoding and not in the other one: the row that decided it. */
function firstDecidingLine(raw: readonly RawToken[], encoding: SecretEncoding): number | undefined {
  const onlyChosen = encoding === 'base32' ? (t: string) => isValidBase32(t) && !isValidHex(t) : (t: string) => isValidHex(t) && !isValidBase32(t);
  return raw.find((r) => onlyChosen(r.secretText))?.line;
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
