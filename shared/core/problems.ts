/**
 * Every problem the project can report, with its stable code.
 *
 * The CLI, the Azure Functions and the reports all render these codes, so a
 * code never changes meaning once released. Add new codes; never reuse one.
 */

export type Severity = 'error' | 'warning' | 'info';

/** Stable problem codes, grouped by where they arise. The value is the hint shown to users. */
export const PROBLEM_CODES = {
  // File-level: the file as a whole cannot be used (exit status 2).
  FILE_UNREADABLE: 'The file could not be read. Check the path and permissions.',
  FILE_EMPTY: 'The file holds no data rows. Check that the vendor sent the right file.',
  FILE_TOO_LARGE: 'The file is larger than the configured limit. Split it into smaller files.',
  FILE_NOT_TEXT: 'The file is not UTF-8 text. Save it as UTF-8 (with or without BOM).',
  CSV_MALFORMED: 'The CSV cannot be parsed (for example an unclosed quote). Fix the line named.',
  CSV_UNKNOWN_LAYOUT: 'The header does not name the columns this tool needs.',
  CSV_MISSING_COLUMN: 'A required column is missing from the header.',
  CSV_DUPLICATE_COLUMN:
    'The header names one column twice (under one name or two, such as "algorithm" and "hash"); which one holds the value cannot be known. Keep one.',
  ENCODING_AMBIGUOUS: 'Every secret is valid as both base32 and hex. Force one with --secret-encoding base32|hex.',
  ENCODING_UNKNOWN: 'The secrets are neither all base32 nor all hex.',
  ENCODING_INVALID_OPTION: 'The secret encoding must be base32 or hex.',
  PSKC_MALFORMED: 'The PSKC file is not well-formed XML or not a PSKC 1.0 KeyContainer.',
  PSKC_DOCTYPE_REFUSED: 'The XML declares a DOCTYPE or entities, which are refused (entity-expansion attacks).',
  PSKC_KEY_REQUIRED: 'The PSKC file is encrypted: give the pre-shared key or password.',
  PSKC_DECRYPTION_FAILED: 'Wrong transport key or password, or the file was altered.',
  PSKC_UNSUPPORTED_ALGORITHM: 'The file uses an algorithm this tool does not support.',
  PSKC_INVALID_KEY_OPTION: 'The pre-shared key must be hex text of 16, 24 or 32 bytes.',
  // Replaces the retired warning PSKC_MAC_MISSING (that name is not reused): unauthenticated CBC is a padding oracle.
  PSKC_MAC_REQUIRED:
    'The file encrypts values with CBC but without a MAC, so tampering cannot be detected; it is refused before decryption. Ask the vendor for a MAC-protected file.',

  // Per token (exit status 1 when severity is error).
  CSV_ROW_MISALIGNED:
    "The row's cells do not line up with the columns (a cell missing or one too many, often an unquoted comma or a dropped empty cell), so it is not read and none of its cells is shown. Quote cells that hold the delimiter, keep empty cells in place, and drop the file again.",
  SERIAL_MISSING: 'The row has no serial number.',
  SERIAL_INVALID: 'The serial number holds characters that are not allowed (control characters or non-printable text).',
  SECRET_MISSING: 'The row has no secret key.',
  SECRET_INVALID_CHARACTERS: "The secret holds characters that are not valid for the file's encoding.",
  SECRET_TOO_SHORT: 'The secret is shorter than 128 bits, the minimum of RFC 4226.',
  SECRET_TOO_LONG: 'The secret is longer than this tool accepts.',
  INTERVAL_INVALID: 'The time interval must be 30 or 60 seconds.',
  DIGITS_INVALID: 'The code length must be 6 or 8 digits.',
  ALGORITHM_UNSUPPORTED: 'The hash algorithm must be SHA1, SHA256 or SHA512.',
  TYPE_UNSUPPORTED: 'The token type must be totp or hotp.',
  FIELD_INVALID: 'A field holds a value that is not allowed.',
  DUPLICATE_SERIAL_CONFLICT: 'The serial appears more than once with different secrets.',
  DUPLICATE_ROW: 'The row repeats an earlier row exactly; it is imported once.',
  POLICY_EXPIRED:
    "The PSKC key's Policy ExpiryDate has passed; an expired key is neither stored nor exported. Ask the vendor for a current seed.",
  POLICY_NOT_YET_VALID: "The PSKC key's Policy StartDate is still to come; the token is read, but its issuer meant it for later.",
  POLICY_KEY_USAGE: "The PSKC key's Policy KeyUsage does not list OTP; check that the token shows one-time codes.",
  POLICY_PIN: 'The PSKC key has a PINPolicy; the message says what it changes (a PIN in the code computation cannot be checked by Entra).',
  POLICY_TRANSACTION_LIMIT: "The PSKC key's Policy limits its number of uses (NumberOfTransactions), which Entra does not enforce.",
  POLICY_UNKNOWN: "The PSKC key's Policy holds rules RFC 6030 does not define; RFC 6030 says the key must then not be used.",
  ENTRA_NOT_IMPORTABLE: "Entra's CSV upload takes only TOTP, SHA-1, 6-digit tokens with a 30 or 60 s interval.",
  ENTRA_FORMULA_CELL:
    'A cell starts with a character spreadsheets treat as a formula (= + - @ tab CR). Entra would import it as text; fix the source value.',
  ENTRA_FIELD_TOO_LONG: 'A field is longer than Entra accepts.',

  // Per token, severity info: a decision the reader took, and why (a line or serial says where).
  HASH_FROM_SEED_LENGTH:
    'No hash column: the hash was chosen from the seed length, as privacyIDEA and LinOTP do (32 bytes: SHA-256, 64 bytes: SHA-512).',
  TYPE_FROM_MISSING_COLUMN: 'No token type column: the token is HOTP, as privacyIDEA and LinOTP read such rows.',
  CELL_READING_DECIDED: 'A cell the OATH CSV variants read differently was read as the message says.',
  SECRET_ENCODING_DECIDED:
    "The token's secret is valid as both base32 and hex; it was read in the file's encoding, which the other secrets decided (the message names the first). Force --secret-encoding if this one differs.",
  CELL_NOT_USED:
    "A cell the row's token type does not use (a time interval on an HOTP row, a counter on a TOTP row) was not read; the message says which, in case the column is mislabelled.",
  INTEGER_ENCODING_DECIDED:
    "A PSKC integer was not in RFC 6030's form (ASCII digits, or base64 of a number); the message says how it was read.",
  LINE_SKIPPED: 'A line holding one value and no seed was skipped, as privacyIDEA and LinOTP skip it.',
  USER_COLUMNS_IGNORED: "The user columns of privacyIDEA's version 2 OATH CSV are not used; assign tokens with an assignment list.",
  PSKC_DRAFT_LAYOUT:
    "The PSKC file uses the pre-RFC 6030 draft layout (older ActivIdentity exports); it was read with that layout's rules.",

  // Assignment join.
  ASSIGNMENT_UNKNOWN_SERIAL: 'No token in the seed file has this serial.',
  ASSIGNMENT_UPN_INVALID: 'The UPN is not a valid user principal name (name@domain).',
  ASSIGNMENT_GUEST_UPN: 'Guest users (#EXT# UPNs) cannot hold hardware tokens in Entra.',
  ASSIGNMENT_SERIAL_CONFLICT: 'The serial is assigned to more than one user; none of these rows is exported.',
  ASSIGNMENT_TOO_MANY_TOKENS: "A user can hold at most five OATH tokens in Entra; none of this user's new rows is exported.",
  ASSIGNMENT_DUPLICATE_ROW: 'The assignment repeats an earlier row exactly; it is used once.',
  ASSIGNMENT_SERIAL_MISSING: 'The assignment row has no serial number.',
  TOKEN_UNASSIGNED: 'No assignment names this token; it is not exported.',
  ASSIGNMENT_TABLE_CONFLICT:
    'The serial is already assigned to another user; the existing assignment stands. Reassign it with PUT /api/assignments/{serial}.',
  ASSIGNMENT_TOKEN_PENDING: 'No token with this serial has been ingested yet; the assignment waits for it.',

  // Pipeline (vault and inventory).
  VAULT_SECRET_CONFLICT:
    'Key Vault already holds a different secret for this serial; it was not overwritten. Retire the old token first if the new seed is right.',
  VAULT_SECRET_DELETED: "The token's secret name is soft-deleted in Key Vault. Recover or purge it, or set RECOVER_DELETED_SECRETS=true.",
  TRANSPORT_KEY_NOT_ALLOWED: 'The blob metadata names a vault secret outside the transport-key prefix; only those may serve as keys.',
  TRANSPORT_KEY_MISSING: 'The transport key secret named for this file does not exist in Key Vault.',
  TOKEN_STATE_INVALID: 'The token is not in a state that allows this operation.',
  EXPORT_SECRET_MISSING: "The token's secret could not be read from Key Vault; it was not exported.",
  GRAPH_USER_NOT_FOUND: 'Graph mode: no user with this UPN exists in the directory; the token was not assigned. Fix the assignment.',
  GRAPH_USER_GUEST: 'Graph mode: the user is a guest; hardware OATH tokens go to members only. The token was not assigned.',
  GRAPH_USER_DISABLED: 'Graph mode: the user account is disabled; the token was not assigned.',
  GRAPH_USER_PRIVILEGED:
    'Graph mode: the user holds a privileged directory role, so the app does not enrol a factor whose seed it knows; the token was not assigned. Assign it by hand, or set GRAPH_ALLOW_PRIVILEGED_USERS=true.',
  GRAPH_USER_NOT_IN_GROUP: 'Graph mode: the user is not a member of GRAPH_ALLOWED_GROUP_ID; the token was not assigned.',
  GRAPH_DEVICE_CONFLICT:
    'Graph mode: Entra already holds a token with this serial for another user, or from a legacy CSV upload; nothing was changed. Remove it in Entra first.',
  GRAPH_REFUSED: 'Graph mode: Microsoft Graph refused the call (the message gives its status and code); the token was not assigned.',
  GRAPH_UNAVAILABLE:
    'Graph mode: Microsoft Graph was unavailable or throttled; the token was left for a later build or the reconciler to finish.',
  GRAPH_ACTIVATE_FROM_SEED_OFF:
    'Activating a token with a code computed from its stored seed is off (GRAPH_ACTIVATE_FROM_SEED=false, the default, or not in Graph mode): activate it with POST /api/tokens/{serial}/verify and a code read from the token, or let its user activate it in My Security Info.',
  EXPORT_CLAIM_LOST:
    'The build no longer held the token (the reconciler presumed the build dead, or another process changed the token) before the import file was final; it was not exported. A later build exports it.',

  // HTTP API.
  REQUEST_INVALID:
    'The request does not have the shape the endpoint documents (path, query string or JSON body); the message says what is wrong.',
  RESULTS_NO_KNOWN_SERIAL:
    "The failure file names no serial number the inventory knows: check that it is Entra's failure file for an import file this pipeline built; nothing was changed.",
  RESULTS_SERIAL_UNKNOWN: 'The failure file names a serial the inventory does not know; that row was skipped.',
  RESULTS_TOKEN_NOT_EXPORTED:
    'The failure file names a token that was not exported (stored, retired or already marked failed); it was left as it is.',
  TOKEN_NOT_FOUND: 'No token with this serial is in the inventory.',
  TOKEN_RETIRED: 'The token is retired and can no longer be checked.',
  TOKEN_NOT_TOTP: 'The token is not a time-based (TOTP) token, so it cannot be checked here.',
  TOKEN_LOCKED: 'Too many wrong codes: the token is locked until the lockout ends or an administrator unlocks it.',
  CODE_REPLAYED: 'This code, or a later one, was already accepted; wait for the token to show a new code.',
  ASSIGNMENT_NOT_FOUND: 'No assignment exists for this serial.',
  IMPORT_FILE_NOT_FOUND: 'No import file with this name exists.',
  IMPORT_CONFIRM_INCOMPLETE: 'The upload confirmation stopped part-way; the import file was kept. Send the same request again to finish.',
  REQUEST_TOO_LARGE: 'The request is larger than the configured limit (tokens or bytes); send it in smaller parts.',
  TOKEN_ALREADY_EXISTS:
    'A token with this serial already exists (in the inventory, or as an active Key Vault secret); nothing was programmed. A programmed token whose package was lost is delivered again with reprogram.',
  SIGN_IN_REQUIRED: 'Sign in to the console first (Entra ID through App Service Authentication); function keys do not open the console.',
  ROLE_REQUIRED:
    "Your account lacks the console app role this needs (Tokens.Helpdesk or Tokens.Admin); ask the console's owners to assign it in Entra ID.",
  CROSS_SITE_REQUEST: "The console API takes changes only from the console's own pages (same origin, with the console's request header).",
  CONFIG_INVALID: 'An app setting is missing or invalid.',
  INTERNAL_ERROR: 'The service failed unexpectedly; the request can be retried.',
} as const;

export type ProblemCode = keyof typeof PROBLEM_CODES;

/** One problem found while reading or converting, in the shape the CLI and reports print. */
export interface Problem {
  code: ProblemCode;
  severity: Severity;
  message: string;
  line?: number;
  serial?: string;
}

export function problem(code: ProblemCode, severity: Severity, detail: string, where: { line?: number; serial?: string } = {}): Problem {
  const p: Problem = { code, severity, message: detail };
  if (where.line !== undefined) p.line = where.line;
  if (where.serial !== undefined) p.serial = where.serial;
  return p;
}

/**
 * A file-level failure: the file cannot be used at all. Carries a code from
 * PROBLEM_CODES and a message that names what is wrong and what to do, never a
 * secret.
 */
export class FileError extends Error {
  readonly code: ProblemCode;
  readonly line: number | undefined;

  constructor(code: ProblemCode, message: string, line?: number) {
    super(message);
    this.name = 'FileError';
    this.code = code;
    this.line = line;
  }

  toProblem(): Problem {
    return problem(this.code, 'error', this.message, this.line === undefined ? {} : { line: this.line });
  }
}

const SEVERITY_ORDER: Record<Severity, number> = { error: 0, warning: 1, info: 2 };

/**
 * The project's one order for problems, wherever they are shown: by line (problems without one, about the file as
 * a whole, last), then errors before warnings before info, then by code. Returns a sorted copy.
 */
export function sortProblems(problems: readonly Problem[]): Problem[] {
  return [...problems].sort(
    (a, b) =>
      (a.line ?? Number.MAX_SAFE_INTEGER) - (b.line ?? Number.MAX_SAFE_INTEGER) ||
      SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity] ||
      (a.code < b.code ? -1 : a.code > b.code ? 1 : 0),
  );
}

export function hasErrors(problems: readonly Problem[]): boolean {
  return problems.some((p) => p.severity === 'error');
}

/** Visible form of a value taken from a file, for messages: control characters escaped, length capped. */
export function quoteValue(value: string, max = 60): string {
  const clipped = value.length > max ? `${value.slice(0, max)}…` : value;
  // JSON.stringify escapes quotes and control characters, so the value cannot break the message.
  return JSON.stringify(clipped);
}
