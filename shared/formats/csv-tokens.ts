/**
 * What every CSV seed reader shares once its rows are split into cells: the
 * per-file encoding decision, decoding each secret, the token rules, the
 * duplicate rule and the problem order. No cell is quoted in a message.
 *
 * Rows come in one at a time as csv-parse emits them (CsvTokenCollector), so a
 * reader holds what it keeps (the tokens) and not every row it parsed.
 */
import { decodeSecret, EncodingTally, isValidBase32, isValidHex, type SecretEncoding } from '../core/encoding.js';
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

/** A row read in one encoding: its problems in order, and its token when none of them is an error. */
interface RowResult {
  problems: Problem[];
  token: OathToken | undefined;
}

/** A row finished once the file's encoding is known: one whose secret fits both alphabets or neither, or that has problems. */
interface PendingRow {
  raw: RawToken;
  /** The encoding the row was already read in (the only one its secret fits), and what that gave. */
  readAs?: SecretEncoding;
  result?: RowResult;
}

/**
 * Collects a CSV file's rows as they are parsed. A row whose secret fits one
 * alphabet only is decoded and checked at once, in that alphabet: that is the
 * file's encoding unless most rows fit the other one, in which case the row's
 * secret is invalid (finish() says so from the secret text kept beside the
 * token until then). Rows with problems, or whose secret fits both alphabets or
 * none, wait whole for the decision: they are few in any file that imports.
 */
export class CsvTokenCollector {
  private readonly problems: Problem[] = [];
  private readonly tally = new EncodingTally();
  /** Tokens of clean rows read in their secret's one alphabet, in file order, with that secret's text and alphabet. */
  private readonly read: OathToken[] = [];
  private readonly readTexts: string[] = [];
  private readonly readAs: SecretEncoding[] = [];
  private readonly pending: PendingRow[] = [];
  /** Tokens of rows read in their final encoding already (a forced one). */
  private readonly kept: OathToken[] = [];
  /** UPNs the file carries, by the line of their token. */
  private readonly upns = new Map<number, string>();
  /** The first line whose secret fits base32 only, and hex only: the row that decides a detected encoding. */
  private firstOnlyBase32: number | undefined;
  private firstOnlyHex: number | undefined;
  /** Token rows seen (rejected and note rows aside). */
  tokenRows = 0;

  constructor(
    private readonly fileName: string,
    private readonly format: Extract<SeedFormat, 'csv' | 'privacyidea-csv'>,
    private readonly forced: SecretEncoding | undefined,
    private readonly decidedByOverride?: 'forced' | 'detected',
  ) {}

  /** A problem that is not about a token row (a rejected row, a skipped line, the file's user columns): kept as it is. */
  note(p: Problem): void {
    this.problems.push(p);
  }

  addOutcome(outcome: CsvRowOutcome): void {
    if ('rejected' in outcome) this.note(outcome.rejected);
    else if ('note' in outcome) this.note(outcome.note);
    else this.add(outcome);
  }

  add(raw: RawToken): void {
    this.tokenRows++;
    if (raw.upn) this.upns.set(raw.line, raw.upn);
    if (this.forced) return this.keep(readRow(raw, this.forced));
    const fit = this.tally.add(raw.secretText);
    if (fit.base32 !== fit.hex) {
      if (fit.base32) this.firstOnlyBase32 ??= raw.line;
      else this.firstOnlyHex ??= raw.line;
    }
    // No secret is the same error in any encoding.
    if (raw.secretText.length === 0) return this.keep(readRow(raw, 'base32'));
    if (fit.base32 === fit.hex) {
      this.pending.push({ raw });
      return;
    }
    const readAs = fit.base32 ? 'base32' : 'hex';
    const result = readRow(raw, readAs);
    if (result.token && result.problems.length === 0) {
      this.read.push(result.token);
      this.readTexts.push(raw.secretText);
      this.readAs.push(readAs);
    } else {
      this.pending.push({ raw, readAs, result });
    }
  }

  finish(): SeedReadResult {
    const decision = this.forced ? { encoding: this.forced, decidedBy: 'forced' as const } : this.tally.decide(this.fileName);
    const encoding = decision.encoding;
    // Clean rows read in the decided encoding keep their token; the others now have an invalid secret.
    let tokens: OathToken[] = this.read;
    if (this.readAs.some((e) => e !== encoding)) {
      tokens = [];
      this.read.forEach((token, i) => {
        if (this.readAs[i] === encoding) tokens.push(token);
        else
          this.problems.push(invalidSecretProblem(token.line!, this.readTexts[i]!, encoding, { line: token.line!, serial: token.serial }));
      });
    }
    // A header file's encoding is detected from its secrets (OATH CSV is hex by definition): a secret valid in both
    // alphabets took the file's encoding without a say of its own, so that token is told which row decided it.
    const decidedBy =
      this.format === 'csv' && decision.decidedBy === 'detected'
        ? encoding === 'base32'
          ? this.firstOnlyBase32
          : this.firstOnlyHex
        : undefined;
    const late: OathToken[] = [...this.kept];
    for (const row of this.pending) {
      const result = row.readAs === encoding && row.result ? row.result : readRow(row.raw, encoding, decidedBy);
      this.problems.push(...result.problems);
      if (result.token) late.push(result.token);
    }
    // Back into file order (each row starts on a line of its own).
    if (tokens.length === 0) tokens = late;
    else if (late.length > 0) tokens = [...tokens, ...late].sort((a, b) => a.line! - b.line!);

    const deduped = resolveDuplicates(tokens);
    this.problems.push(...deduped.problems);
    const embeddedAssignments: SeedReadResult['embeddedAssignments'] = [];
    if (this.upns.size > 0) {
      const kept = new Set(deduped.tokens.map((t) => t.serial));
      for (const token of tokens) {
        const upn = this.upns.get(token.line!);
        if (upn && kept.has(token.serial)) embeddedAssignments.push({ upn, serial: token.serial, line: token.line! });
      }
    }
    return {
      file: this.fileName,
      format: this.format,
      secretEncoding: encoding,
      encodingDecidedBy: this.decidedByOverride ?? decision.decidedBy,
      tokens: deduped.tokens,
      problems: sortProblems(this.problems),
      embeddedAssignments,
    };
  }

  private keep(result: RowResult): void {
    this.problems.push(...result.problems);
    if (result.token) this.kept.push(result.token);
  }
}

/** Reads one row's secret in `encoding`, then builds and checks its token; the problems keep the order the rules run in. */
function readRow(r: RawToken, encoding: SecretEncoding, decidedBy?: number): RowResult {
  const where = rowWhere(r.line, r.serial, r.serialProblem);
  const problems = r.serialProblem ? [...r.problems, r.serialProblem] : r.problems.slice();
  let secret: Uint8Array | undefined;
  if (r.secretText.length === 0) {
    problems.push(
      problem('SECRET_MISSING', 'error', `Line ${r.line}: the secret key is empty. Take it from the vendor's file again.`, where),
    );
  } else {
    secret = decodeSecret(r.secretText, encoding);
    if (!secret) problems.push(invalidSecretProblem(r.line, r.secretText, encoding, where));
    // It decoded in the file's encoding: it was the file's call only if it is valid in the other one too.
    else if (decidedBy !== undefined && (encoding === 'base32' ? isValidHex(r.secretText) : isValidBase32(r.secretText))) {
      const other = encoding === 'base32' ? 'hex' : 'base32';
      problems.push(
        problem(
          'SECRET_ENCODING_DECIDED',
          'info',
          `Line ${r.line}: the secret key is valid as both base32 and hex; it was read as ${encoding}, the file's encoding, which the secrets valid only in ${encoding} decided (the first on line ${decidedBy}). If this token's seed is ${other}, the file mixes encodings: split it, or force --secret-encoding.`,
          where,
        ),
      );
    }
  }
  if (!secret || problems.some(isError)) return { problems, token: undefined };
  const built = r.build(secret);
  problems.push(...built.problems);
  problems.push(...checkToken(built.token, { line: built.token.line, serial: built.token.serial }));
  return { problems, token: problems.some(isError) ? undefined : built.token };
}

/** Names the offending character by position only: even one character of a secret stays out of messages. */
function invalidSecretProblem(
  line: number,
  secretText: string,
  encoding: SecretEncoding,
  where: { line: number; serial?: string },
): Problem {
  const compact = secretText.replace(/[\s-]+/g, '');
  const allowed = encoding === 'base32' ? /[A-Za-z2-7=]/ : /[0-9A-Fa-f]/;
  const badIndex = [...compact].findIndex((c) => !allowed.test(c));
  const hint =
    encoding === 'base32' && isValidHex(secretText)
      ? ' It looks like hex: if the whole file is hex, force --secret-encoding hex.'
      : encoding === 'hex' && isValidBase32(secretText)
        ? ' It looks like base32: if the whole file is base32, force --secret-encoding base32.'
        : '';
  const what =
    badIndex >= 0
      ? `character ${badIndex + 1} is outside the ${encoding} alphabet`
      : `its length (${compact.length} characters) is not a whole number of bytes in ${encoding}`;
  return problem('SECRET_INVALID_CHARACTERS', 'error', `Line ${line}: the secret key is not valid ${encoding}: ${what}.${hint}`, where);
}
