/**
 * Entra ID's rules for the hardware OATH import CSV, in one place.
 *
 * Sources (copied into docs/entra-facts.md): the Entra admin center's "OATH
 * tokens" upload page and Graph's hardwareOathDevices reference.
 */
import { stringify } from 'csv-stringify/sync';
import { problem, quoteValue, sortProblems, type Problem } from '../core/problems.js';
import type { OathToken } from '../core/token.js';
import type { AssignmentRow } from '../formats/assignments.js';

export const ENTRA_HEADER = ['upn', 'serial number', 'secret key', 'time interval', 'manufacturer', 'model'] as const;
export const ENTRA_MAX_SECRET_CHARS = 128;
export const ENTRA_PERIODS: readonly number[] = [30, 60];
/** Hardware tokens and authenticator apps together. */
export const ENTRA_MAX_OATH_METHODS_PER_USER = 5;
/**
 * Entra documents no length limit for serial, manufacturer and model; this
 * project caps them at 256 characters (Key Vault's tag limit, where they are
 * kept too) so a runaway cell never reaches an upload.
 */
export const ENTRA_MAX_FIELD_CHARS = 256;
/** Spreadsheets run cells starting with these as formulas. */
const FORMULA_PREFIXES = ['=', '+', '-', '@', '\t', '\r'];

/** What the rules need to know about a token; the secret itself is not needed to plan. */
export type ImportCandidate = Pick<OathToken, 'serial' | 'manufacturer' | 'model' | 'type' | 'algorithm' | 'digits' | 'period'> & {
  secretBytes: number;
};

export interface EntraRow {
  upn: string;
  serial: string;
  /** Canonical base32: upper case, no padding. */
  secretBase32: string;
  period: number;
  manufacturer: string;
  model: string;
}

export function base32Length(bytes: number): number {
  return Math.ceil((bytes * 8) / 5);
}

export function startsLikeFormula(value: string): boolean {
  return value.length > 0 && FORMULA_PREFIXES.includes(value[0]!);
}

/**
 * Why a token cannot go through Entra's CSV upload. Empty when it can.
 * Severity is chosen by the caller: a warning in `inspect` (the token is fine),
 * an error for that row in `convert`.
 */
export function importabilityProblems(token: ImportCandidate, severity: 'error' | 'warning', line?: number): Problem[] {
  const where = { line, serial: token.serial };
  const reasons: string[] = [];
  if (token.type !== 'totp') reasons.push(`it is ${token.type.toUpperCase()}, not TOTP`);
  if (token.algorithm !== 'SHA1')
    reasons.push(`it uses ${token.algorithm}, not SHA-1 (add it through Graph's hardwareOathDevices API instead)`);
  if (token.digits !== 6) reasons.push(`it shows ${token.digits} digits, not 6`);
  if (!ENTRA_PERIODS.includes(token.period)) reasons.push(`its interval is ${token.period} s, not 30 or 60`);
  if (base32Length(token.secretBytes) > ENTRA_MAX_SECRET_CHARS)
    reasons.push(`its secret is longer than ${ENTRA_MAX_SECRET_CHARS} base32 characters`);
  const problems: Problem[] = [];
  if (reasons.length > 0) {
    problems.push(
      problem(
        'ENTRA_NOT_IMPORTABLE',
        severity,
        `Serial ${quoteValue(token.serial)} is not importable by CSV: ${reasons.join('; ')}.`,
        where,
      ),
    );
  }
  for (const [field, value] of [
    ['serial number', token.serial],
    ['manufacturer', token.manufacturer],
    ['model', token.model],
  ] as const) {
    if (value.length > ENTRA_MAX_FIELD_CHARS) {
      problems.push(
        problem(
          'ENTRA_FIELD_TOO_LONG',
          severity,
          `Serial ${quoteValue(token.serial)}: the ${field} is ${value.length} characters long; at most ${ENTRA_MAX_FIELD_CHARS} are written to Entra's CSV. Shorten it in the source file.`,
          where,
        ),
      );
    }
    if (startsLikeFormula(value)) {
      // Only the offending character: the rest of a cell read from a seed file is not echoed.
      problems.push(
        problem(
          'ENTRA_FORMULA_CELL',
          severity,
          `Serial ${quoteValue(token.serial)}: the ${field} starts with ${quoteValue(value[0]!)}, a spreadsheet formula character; fix it in the source file (it is not altered silently).`,
          where,
        ),
      );
    }
  }
  return problems;
}

/** Entra's CSV: exact header, UTF-8 without BOM, fields quoted only when needed, LF line ends. */
export function writeEntraCsv(rows: readonly EntraRow[]): string {
  // planImport already refuses these rows; the writer checks again so no caller can emit a formula cell.
  for (const r of rows) {
    if ([r.upn, r.serial, r.manufacturer, r.model].some(startsLikeFormula)) {
      throw new Error(`Refusing to write serial ${quoteValue(r.serial)}: a cell starts with a spreadsheet formula character.`);
    }
  }
  return stringify(
    rows.map((r) => [r.upn, r.serial, r.secretBase32, String(r.period), r.manufacturer, r.model]),
    { header: true, columns: [...ENTRA_HEADER], record_delimiter: '\n' },
  );
}

/** Splits rows into files of at most maxRows (0 or undefined: one file). */
export function splitRows<T>(rows: readonly T[], maxRows?: number): T[][] {
  if (!maxRows || maxRows <= 0 || rows.length <= maxRows) return [rows.slice()];
  const parts: T[][] = [];
  for (let i = 0; i < rows.length; i += maxRows) parts.push(rows.slice(i, i + maxRows));
  return parts;
}

/** `import.csv` -> `import-1.csv`, `import-2.csv`, ... */
export function partFileName(path: string, index: number, total: number): string {
  if (total <= 1) return path;
  const m = /^(.*?)(\.[^./\\]*)?$/.exec(path)!;
  return `${m[1]}-${index + 1}${m[2] ?? ''}`;
}

const UPN_PATTERN = /^[^\s@"<>,;()[\]\\]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$/;

const UPN_MAX_CHARS = 113 + 1 + 255;

/** What is wrong with a UPN that fails the pattern, said without quoting it (the cell may be anything). */
function upnFault(upn: string): string {
  if (upn.length === 0) return 'the UPN is empty';
  if (upn.length > UPN_MAX_CHARS) return `the UPN is ${upn.length} characters long; at most ${UPN_MAX_CHARS} are allowed`;
  const at = upn.split('@').length - 1;
  if (at === 0) return 'the UPN has no @';
  if (at > 1) return `the UPN has ${at} @ signs`;
  if (/[\s"<>,;()[\]\\]/.test(upn)) return 'the UPN holds a space or one of " < > , ; ( ) [ ] \\';
  if (upn.startsWith('@')) return 'the UPN has nothing before the @';
  return 'the part after the @ is not a domain name (labels of letters, digits and inner hyphens, with at least one dot)';
}

export function upnProblem(upn: string, line: number, serial: string): Problem | undefined {
  const where = { line, serial };
  // A UPN is quoted only when it has the shape of one; anything else is described, not echoed.
  const wellFormed = upn.length > 0 && upn.length <= UPN_MAX_CHARS && UPN_PATTERN.test(upn);
  if (/#EXT#/i.test(upn)) {
    return problem(
      'ASSIGNMENT_GUEST_UPN',
      'error',
      `Line ${line}: ${wellFormed ? quoteValue(upn) : 'the UPN'} is a guest account (#EXT#); Entra does not let guests hold hardware tokens. Assign the token to a member account.`,
      where,
    );
  }
  if (!wellFormed) {
    return problem(
      'ASSIGNMENT_UPN_INVALID',
      'error',
      `Line ${line}: ${upnFault(upn)}, so it is not a valid user principal name; write it as name@domain (for example helga@contoso.com).`,
      where,
    );
  }
  if (startsLikeFormula(upn)) {
    return problem(
      'ENTRA_FORMULA_CELL',
      'error',
      `Line ${line}: the UPN ${quoteValue(upn)} starts with a spreadsheet formula character.`,
      where,
    );
  }
  return undefined;
}

export interface PlannedRow {
  upn: string;
  serial: string;
  line: number;
}

export interface ImportPlan {
  /** Rows to write, in assignment-list order. */
  exported: PlannedRow[];
  /** Why rows were not exported (errors and warnings). */
  problems: Problem[];
  /** Serials of importable tokens that no row assigns. */
  unassigned: string[];
}

export interface PlanOptions {
  /** Tokens each user (lower-case UPN) already holds (exported or imported earlier), counted against the limit of five. */
  existingTokensPerUser?: ReadonlyMap<string, number>;
}

/**
 * The rules an assignment list must pass on its own, before any token is
 * looked at: a serial, a valid member UPN, one user per serial. Exact repeats
 * are used once.
 */
export function screenAssignments(assignments: readonly AssignmentRow[]): { accepted: AssignmentRow[]; problems: Problem[] } {
  const problems: Problem[] = [];
  const rowsBySerial = new Map<string, AssignmentRow[]>();
  for (const row of assignments) {
    if (row.serial.length === 0) {
      problems.push(problem('ASSIGNMENT_SERIAL_MISSING', 'error', `Line ${row.line}: the row has no serial number.`, { line: row.line }));
      continue;
    }
    const list = rowsBySerial.get(row.serial);
    if (list) list.push(row);
    else rowsBySerial.set(row.serial, [row]);
  }
  const candidates: AssignmentRow[] = [];
  for (const [serial, rows] of rowsBySerial) {
    const upns = new Set(rows.map((r) => r.upn.toLowerCase()));
    if (upns.size > 1) {
      for (const r of rows) {
        problems.push(
          problem(
            'ASSIGNMENT_SERIAL_CONFLICT',
            'error',
            `Line ${r.line}: serial ${quoteValue(serial)} is assigned to ${upns.size} users (${rows.map((x) => `line ${x.line}`).join(', ')}); none of these rows is exported. Keep one user per token.`,
            { line: r.line, serial },
          ),
        );
      }
      continue;
    }
    candidates.push(rows[0]!);
    for (const r of rows.slice(1)) {
      problems.push(
        problem('ASSIGNMENT_DUPLICATE_ROW', 'warning', `Line ${r.line}: repeats line ${rows[0]!.line}; the assignment is used once.`, {
          line: r.line,
          serial,
        }),
      );
    }
  }
  candidates.sort((a, b) => a.line - b.line);
  const accepted: AssignmentRow[] = [];
  for (const row of candidates) {
    const upnIssue = upnProblem(row.upn, row.line, row.serial);
    if (upnIssue) problems.push(upnIssue);
    else accepted.push(row);
  }
  return { accepted, problems };
}

/**
 * Joins assignments with tokens under Entra's rules. A row is exported only when
 * every rule passes; a user who would pass five tokens gets none of the new rows,
 * so nothing is half-done.
 */
export function planImport(
  tokens: readonly ImportCandidate[],
  assignments: readonly AssignmentRow[],
  options: PlanOptions = {},
): ImportPlan {
  const bySerial = new Map(tokens.map((t) => [t.serial, t]));
  const byStrippedSerial = new Map<string, string>();
  for (const t of tokens) {
    const stripped = t.serial.replace(/^0+(?=.)/, '');
    if (stripped !== t.serial) byStrippedSerial.set(stripped, t.serial);
  }
  const { accepted, problems } = screenAssignments(assignments);

  const valid: PlannedRow[] = [];
  for (const row of accepted) {
    const where = { line: row.line, serial: row.serial };
    const token = bySerial.get(row.serial);
    if (!token) {
      const original = byStrippedSerial.get(row.serial);
      const hint = original
        ? ` A token has serial ${quoteValue(original)}: the leading zeros were probably lost in a spreadsheet; write the serial as text.`
        : " Check the serial on the token's label and in the seed file.";
      problems.push(
        problem('ASSIGNMENT_UNKNOWN_SERIAL', 'error', `Line ${row.line}: no token has serial ${quoteValue(row.serial)}.${hint}`, where),
      );
      continue;
    }
    const notImportable = importabilityProblems(token, 'error', row.line);
    if (notImportable.length > 0) {
      problems.push(...notImportable);
      continue;
    }
    valid.push({ upn: row.upn, serial: row.serial, line: row.line });
  }

  // Entra's limit of five OATH methods per user, counting what the user already holds.
  const perUser = new Map<string, PlannedRow[]>();
  for (const r of valid) {
    const key = r.upn.toLowerCase();
    const list = perUser.get(key);
    if (list) list.push(r);
    else perUser.set(key, [r]);
  }
  const overLimit = new Set<string>();
  for (const [user, rows] of perUser) {
    const existing = options.existingTokensPerUser?.get(user) ?? 0;
    if (existing + rows.length > ENTRA_MAX_OATH_METHODS_PER_USER) {
      overLimit.add(user);
      for (const r of rows) {
        problems.push(
          problem(
            'ASSIGNMENT_TOO_MANY_TOKENS',
            'error',
            `Line ${r.line}: ${quoteValue(r.upn)} would hold ${existing + rows.length} OATH tokens${existing ? ` (${existing} already)` : ''}; Entra allows ${ENTRA_MAX_OATH_METHODS_PER_USER}. None of this user's new rows is exported; remove some.`,
            { line: r.line, serial: r.serial },
          ),
        );
      }
    }
  }
  const exported = valid.filter((r) => !overLimit.has(r.upn.toLowerCase()));

  const assigned = new Set(assignments.map((a) => a.serial));
  const unassigned = tokens.filter((t) => !assigned.has(t.serial)).map((t) => t.serial);
  return { exported, problems: sortProblems(problems), unassigned };
}
