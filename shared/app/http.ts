/**
 * The HTTP API's one door: every route's request is parsed here (route
 * parameters, query strings, JSON bodies), handed to a service, and the
 * service's domain result mapped to an answer here. Errors answer
 * `{ "error": { "code", "message" } }` with a code from the one list
 * (shared/core/problems.ts) and the status this module gives that code;
 * unexpected failures become a generic 500 (503 when transient) without
 * echoing internals. The function files only bind a route to its trigger.
 */
import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { ConfigError } from '../config.js';
import { PROBLEM_CODES, type ProblemCode } from '../core/problems.js';
import { checkSerial } from '../core/validate.js';
import { PAGE_SIZE, serialAfter, TOKEN_STATES, type InventoryQuery } from '../pipeline/inventory-query.js';
import type { Logger, TokenState } from '../pipeline/ports.js';
import type { UnlockOutcome, VerifyOutcome, VerifyRequest } from '../pipeline/verify.js';
import { parseProgramRequest, type ProgramResult, type ReprogramResult } from '../pipeline/program.js';
import { upnProblem } from '../entra/import-rules.js';
import type { BuildResult } from '../pipeline/build.js';
import type { GraphBuildResult } from '../pipeline/graph-export.js';
import { ASSIGNMENT_STATES, type AssignmentChangeResult, type AssignmentQuery, type WithdrawResult } from '../pipeline/corrections.js';
import { requestBuild } from './build-trigger.js';
import type { Services } from './context.js';

/** The HTTP status of each problem code the API answers with. */
export const PROBLEM_STATUS = {
  REQUEST_INVALID: 400,
  SERIAL_MISSING: 400,
  SERIAL_INVALID: 400,
  TOKEN_NOT_FOUND: 404,
  ASSIGNMENT_NOT_FOUND: 404,
  IMPORT_FILE_NOT_FOUND: 404,
  FIELD_INVALID: 400,
  ASSIGNMENT_UPN_INVALID: 400,
  ASSIGNMENT_GUEST_UPN: 400,
  ENTRA_FORMULA_CELL: 400,
  GRAPH_ACTIVATE_FROM_SEED_OFF: 403,
  TOKEN_NOT_TOTP: 409,
  TOKEN_STATE_INVALID: 409,
  TOKEN_ALREADY_EXISTS: 409,
  VAULT_SECRET_DELETED: 409,
  CODE_REPLAYED: 409,
  TOKEN_RETIRED: 410,
  REQUEST_TOO_LARGE: 413,
  TOKEN_LOCKED: 423,
  CONFIG_INVALID: 500,
  INTERNAL_ERROR: 500,
  GRAPH_REFUSED: 502,
  IMPORT_CONFIRM_INCOMPLETE: 503,
  GRAPH_UNAVAILABLE: 503,
} as const satisfies Partial<Record<ProblemCode, number>>;

export type HttpProblemCode = keyof typeof PROBLEM_STATUS;

/** What a route reads of a request; the host's HttpRequest is one. */
export type HttpRequestLike = Pick<HttpRequest, 'params' | 'query' | 'text'> & { headers?: Pick<HttpRequest['headers'], 'get'> };

/** A parsed request, or the 400 answer that refuses it. */
export type Parsed<T> = { ok: true; value: T } | { ok: false; answer: HttpResponseInit };

export function json(status: number, body: unknown): HttpResponseInit {
  return { status, jsonBody: body, headers: { 'cache-control': 'no-store' } };
}

export interface ErrorOptions {
  /** Fields beside `error` that tell the caller what to do next (e.g. `lockedUntil`). */
  extra?: Record<string, unknown> & { error?: never };
  headers?: Record<string, string>;
  /** Only for INTERNAL_ERROR caused by a backing service that is busy or down: 503 instead of 500. */
  unavailable?: boolean;
}

/** The documented error answer for `code`, with its status; the message defaults to the code's hint. */
export function errorResponse(code: HttpProblemCode, message: string = PROBLEM_CODES[code], options: ErrorOptions = {}): HttpResponseInit {
  const status = options.unavailable && code === 'INTERNAL_ERROR' ? 503 : PROBLEM_STATUS[code];
  const answer = json(status, { error: { code, message }, ...options.extra });
  return options.headers ? { ...answer, headers: { ...answer.headers, ...options.headers } } : answer;
}

function refuse<T>(code: HttpProblemCode, message: string): Parsed<T> {
  return { ok: false, answer: errorResponse(code, message) };
}

export function invocationLogger(context: InvocationContext): Logger {
  const fmt = (message: string, data?: Record<string, unknown>) => (data ? `${message} ${JSON.stringify(data)}` : message);
  return {
    info: (m, d) => context.log(fmt(m, d)),
    warn: (m, d) => context.warn(fmt(m, d)),
    error: (m, d) => context.error(fmt(m, d)),
  };
}

/** Runs a handler; unexpected errors become 500/503 answers with a stable code and no internals. */
export async function guarded(context: InvocationContext, handler: () => Promise<HttpResponseInit>): Promise<HttpResponseInit> {
  try {
    return await handler();
  } catch (err) {
    if (err instanceof ConfigError) {
      context.error(err.message);
      return errorResponse('CONFIG_INVALID', err.message);
    }
    // Only the error's class goes to the log: SDK messages can quote request bodies.
    context.error(`Unhandled ${(err as Error)?.name ?? 'error'} in ${context.functionName}`);
    if ((err as Error)?.name === 'TransientError')
      return errorResponse('INTERNAL_ERROR', 'A backing service is busy or unavailable; retry shortly.', { unavailable: true });
    return errorResponse('INTERNAL_ERROR', 'The service failed unexpectedly; retry, and check the function logs if it persists.');
  }
}

// --- Parsing -------------------------------------------------------------------------------------------------

/**
 * The `{serial}` route parameter, judged by the same rule as a serial in a
 * seed file. One no token can have (too long, control or invisible
 * characters) gets a 400 answer before any storage call: Azure Table refuses
 * keys past 1 KiB, which would otherwise surface as a 500.
 */
export function serialFromRoute(request: Pick<HttpRequestLike, 'params'>): Parsed<string> {
  const serial = request.params['serial'] ?? '';
  const refused = checkSerial(serial);
  if (!refused) return { ok: true, value: serial };
  const message = serial === '' ? 'The path names no serial.' : `The serial in the path is not one a token can have: ${refused.message}`;
  return refuse(refused.code === 'SERIAL_MISSING' ? 'SERIAL_MISSING' : 'SERIAL_INVALID', message);
}

/** The `{file}` route parameter: an import file name (letters, digits, `_`, `.`, `-`; at most 200). */
export function importFileFromRoute(request: Pick<HttpRequestLike, 'params'>): Parsed<string> {
  const file = request.params['file'] ?? '';
  return /^[\w.-]{1,200}$/.test(file) ? { ok: true, value: file } : refuse('REQUEST_INVALID', 'The file name is not an import file name.');
}

/** The body as JSON: undefined when empty; { ok: false } when it is not JSON. */
export async function readJsonBody(request: Pick<HttpRequestLike, 'text'>): Promise<{ ok: true; value: unknown } | { ok: false }> {
  const text = await request.text();
  if (text.trim() === '') return { ok: true, value: undefined };
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch {
    return { ok: false };
  }
}

const CODE_SHAPE = /^[0-9]{6,8}$/;

/** Checks the JSON shape of a verify body. Accepts the parsed value or its JSON text. */
export function parseVerifyBody(body: unknown): VerifyRequest | { error: string } {
  let value = body;
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value) as unknown;
    } catch {
      return { error: 'The body is not valid JSON.' };
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { error: 'The body must be a JSON object { "code": "123456", "nextCode"?: "654321" }.' };
  }
  const record = value as Record<string, unknown>;
  // Strict about names, so a misspelt "next_code" is an error rather than a silent "confirmation required".
  const unknownFields = Object.keys(record).filter((k) => k !== 'code' && k !== 'nextCode');
  if (unknownFields.length > 0) {
    return {
      error: `Unknown field(s) ${unknownFields.map((k) => JSON.stringify(k.slice(0, 40))).join(', ')}: only "code" and "nextCode" are accepted.`,
    };
  }
  const { code, nextCode } = record;
  if (typeof code !== 'string' || !CODE_SHAPE.test(code)) {
    return { error: '"code" must be a string of 6 to 8 digits, as the token shows it.' };
  }
  if (nextCode === undefined || nextCode === null) return { code };
  if (typeof nextCode !== 'string' || !CODE_SHAPE.test(nextCode)) {
    return { error: '"nextCode", when given, must be a string of 6 to 8 digits, as the token shows it.' };
  }
  return { code, nextCode };
}

/** POST /api/imports body: empty, {}, or { "reexport": ["serial", ...] }. undefined when malformed. */
export function parseBuildRequest(value: unknown): { reexport?: string[] } | undefined {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) return undefined;
  const keys = Object.keys(value);
  if (keys.some((k) => k !== 'reexport')) return undefined;
  const reexport = (value as { reexport?: unknown }).reexport;
  if (reexport === undefined) return {};
  if (!Array.isArray(reexport) || reexport.length > 1000) return undefined;
  if (!reexport.every((s): s is string => typeof s === 'string' && s.length > 0 && s.length <= 128)) return undefined;
  return { reexport };
}

/** POST /api/tokens/{serial}/retire body: an optional `{ "reason" }`, cut to 200 characters. Anything else reads as no reason. */
export function parseRetireReason(value: unknown): string {
  const reason = typeof value === 'object' && value !== null ? (value as { reason?: unknown }).reason : undefined;
  return typeof reason === 'string' ? reason.slice(0, 200) : '';
}

/** GET /api/tokens query: state, batch, pageSize (1-1000, default 100), continuationToken. */
export function parseInventoryQuery(query: URLSearchParams): Parsed<InventoryQuery> {
  const state = query.get('state') ?? undefined;
  const batch = query.get('batch') ?? undefined;
  const pageSizeText = query.get('pageSize') ?? undefined;
  const continuationToken = query.get('continuationToken') ?? undefined;
  if (state !== undefined && !(TOKEN_STATES as readonly string[]).includes(state))
    return refuse('REQUEST_INVALID', `state must be one of ${TOKEN_STATES.join(', ')}.`);
  const pageSize = pageSizeText === undefined ? PAGE_SIZE.default : Number(pageSizeText);
  if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > PAGE_SIZE.max)
    return refuse('REQUEST_INVALID', `pageSize must be a whole number from 1 to ${PAGE_SIZE.max}.`);
  const after = continuationToken === undefined ? undefined : serialAfter(continuationToken);
  if (continuationToken !== undefined && after === undefined) return refuse('REQUEST_INVALID', 'continuationToken is not valid.');
  const value: InventoryQuery = { pageSize };
  if (state !== undefined) value.state = state as TokenState;
  if (batch !== undefined) value.batch = batch;
  if (after !== undefined) value.after = after;
  return { ok: true, value };
}

// --- Mapping domain results ----------------------------------------------------------------------------------

/** The verify answer: 200 for every checked code (accepted or not), an error for everything else. */
export function verifyAnswer(outcome: VerifyOutcome): HttpResponseInit {
  switch (outcome.status) {
    case 'request-invalid':
      return errorResponse('REQUEST_INVALID', outcome.reason);
    case 'not-found':
      return errorResponse('TOKEN_NOT_FOUND');
    case 'retired':
      return errorResponse('TOKEN_RETIRED');
    case 'not-totp':
      return errorResponse('TOKEN_NOT_TOTP');
    case 'locked':
      return errorResponse('TOKEN_LOCKED', undefined, { extra: { lockedUntil: outcome.lockedUntil } });
    case 'accepted':
      return json(200, {
        serial: outcome.serial,
        valid: true,
        confirmationRequired: false,
        driftSeconds: outcome.driftSeconds,
        withinSignInWindow: outcome.withinSignInWindow,
        withinActivationWindow: true,
        checkedAt: outcome.checkedAt,
        ...(outcome.entraActivation && { entraActivation: outcome.entraActivation }),
      });
    case 'rejected': {
      const lock = outcome.lock ? { lockedUntil: outcome.lock.until } : {};
      if (outcome.reason === 'replayed')
        return errorResponse('CODE_REPLAYED', undefined, { extra: { attemptsLeft: outcome.attemptsLeft, ...lock } });
      const unconfirmed = outcome.reason === 'confirmation-required';
      return json(200, {
        serial: outcome.serial,
        valid: false,
        confirmationRequired: unconfirmed,
        driftSeconds: null,
        withinSignInWindow: false,
        withinActivationWindow: unconfirmed,
        checkedAt: outcome.checkedAt,
        // A match that needs its next code is not a wrong code: the answer asks for nextCode, not for care.
        ...(unconfirmed ? {} : { attemptsLeft: outcome.attemptsLeft }),
        ...lock,
      });
    }
  }
}

export function unlockAnswer(outcome: UnlockOutcome): HttpResponseInit {
  switch (outcome.status) {
    case 'not-found':
      return errorResponse('TOKEN_NOT_FOUND');
    case 'retired':
      return errorResponse('TOKEN_RETIRED');
    case 'unlocked':
      return json(200, { serial: outcome.serial, unlocked: true, wasLocked: outcome.wasLocked });
  }
}

/** Parses a verify request and answers it: what POST /api/tokens/{serial}/verify does once the serial is known. */
export async function answerVerify(verify: Services['verify'], serial: string, body: unknown): Promise<HttpResponseInit> {
  const request = parseVerifyBody(body);
  return verifyAnswer('error' in request ? verify.invalidRequest(serial, request.error) : await verify.verify(serial, request));
}

const notFoundToken = (serial: string) => errorResponse('TOKEN_NOT_FOUND', `No token has serial ${JSON.stringify(serial)}.`);

/**
 * A JSON body refused (413) past maxBytes: by its Content-Length before reading, then by what arrived. Used where
 * a body may legitimately be large (programming tokens); the parser's own message is never shown (it quotes the body).
 */
export async function readBoundedJson(request: Pick<HttpRequestLike, 'text' | 'headers'>, maxBytes: number): Promise<Parsed<unknown>> {
  const tooLarge = (bytes: number) =>
    refuse<unknown>(
      'REQUEST_TOO_LARGE',
      `The body is ${bytes} bytes; at most ${maxBytes} are accepted. Send the tokens in smaller requests.`,
    );
  const declared = Number(request.headers?.get('content-length') ?? '');
  if (Number.isFinite(declared) && declared > maxBytes) return tooLarge(declared);
  const text = await request.text();
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > maxBytes) return tooLarge(bytes);
  if (text.trim() === '') return refuse('REQUEST_INVALID', 'The body is empty; send JSON.');
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch {
    return refuse('REQUEST_INVALID', 'The body is not valid JSON.');
  }
}

/** 201 with the provisioning package; 409 `{ error: { code, message, serials } }` when nothing was programmed. */
export function programAnswer(result: ProgramResult): HttpResponseInit {
  if (result.kind === 'refused') return json(409, { error: { code: result.code, message: result.message, serials: result.serials } });
  return json(201, { batch: result.batch, report: result.report, tokens: result.tokens });
}

/** 200 with the package (the same shape as programming), or the refusal. */
export function reprogramAnswer(serial: string, result: ReprogramResult): HttpResponseInit {
  if (result.kind === 'not-found') return notFoundToken(serial);
  if (result.kind === 'refused') return errorResponse(result.code as HttpProblemCode, result.message);
  return json(200, { batch: result.batch, report: result.report, tokens: result.tokens });
}

// --- Ways back ------------------------------------------------------------------------------------------------

/** PUT /api/assignments/{serial} body: `{ "upn": "name@domain" }`. */
export function parseAssignmentBody(value: unknown, serial: string): Parsed<string> {
  const keys = typeof value === 'object' && value !== null && !Array.isArray(value) ? Object.keys(value) : undefined;
  const upn = keys?.length === 1 ? (value as { upn?: unknown }).upn : undefined;
  if (typeof upn !== 'string') return refuse('REQUEST_INVALID', 'The body must be { "upn": "name@domain" }.');
  const trimmed = upn.trim();
  const wrong = upnProblem(trimmed, 0, serial);
  // The rule's message names a line of a file; this answer names the body.
  if (wrong) return refuse(wrong.code as HttpProblemCode, `"upn": ${PROBLEM_CODES[wrong.code]}`);
  return { ok: true, value: trimmed };
}

/** GET /api/assignments query: serial, upn, state (a token state or `pending`), pageSize, continuationToken. */
export function parseAssignmentQuery(query: URLSearchParams): Parsed<AssignmentQuery> {
  const state = query.get('state') ?? undefined;
  if (state !== undefined && !(ASSIGNMENT_STATES as readonly string[]).includes(state))
    return refuse('REQUEST_INVALID', `state must be one of ${ASSIGNMENT_STATES.join(', ')}.`);
  const paging = parseInventoryQuery(new URLSearchParams([...query].filter(([k]) => k === 'pageSize' || k === 'continuationToken')));
  if (!paging.ok) return paging;
  const value: AssignmentQuery = { pageSize: paging.value.pageSize };
  if (paging.value.after !== undefined) value.after = paging.value.after;
  if (state !== undefined) value.state = state as AssignmentQuery['state'];
  const serial = query.get('serial');
  if (serial !== null) {
    const checked = serialFromRoute({ params: { serial } });
    if (!checked.ok) return checked;
    value.serial = checked.value;
  }
  const upn = query.get('upn');
  if (upn !== null) value.upn = upn.trim();
  return { ok: true, value };
}

/** What a build started by a correction did, for the answer. */
function buildSummary(result: BuildResult | undefined) {
  if (!result) return { build: null, buildFailed: true };
  return {
    build: {
      id: result.build,
      files: result.files,
      exported: result.exported.length,
      notExported: result.notExported.length,
      report: result.report,
    },
  };
}

function withdrawRefusal(file: string, result: Extract<WithdrawResult, { status: 'refused' }>): HttpResponseInit {
  const serials = result.serials.slice(0, 20).join(', ');
  return result.reason === 'imported'
    ? errorResponse(
        'TOKEN_STATE_INVALID',
        `${file} was confirmed uploaded: its tokens (${serials}) are imported into Entra. Remove each token in Entra, then POST /api/tokens/{serial}/removed-from-entra.`,
      )
    : errorResponse('TOKEN_STATE_INVALID', `A build is still writing ${file} (tokens ${serials} are exporting); retry in a minute.`);
}

function assignmentRefusal(serial: string, result: Extract<AssignmentChangeResult, { status: 'refused' }>): HttpResponseInit {
  if (result.state === 'imported') {
    return errorResponse(
      'TOKEN_STATE_INVALID',
      `Token ${serial} is imported into Entra${result.file ? ` (from ${result.file})` : ''}. Remove it in Entra first (Entra admin center > Protection > Authentication methods > Hardware OATH tokens: unassign, then delete), then POST /api/tokens/${serial}/removed-from-entra, then change its assignment.`,
    );
  }
  return errorResponse(
    'TOKEN_STATE_INVALID',
    `Token ${serial} is ${result.state}${result.file ? ` (${result.file})` : ''}: a build is writing its import file; retry in a minute.`,
  );
}

// --- Routes --------------------------------------------------------------------------------------------------

export type Route = (request: HttpRequestLike, svc: Services) => Promise<HttpResponseInit>;

/** Every HTTP endpoint, by the name its function registers. */
export const routes = {
  /** POST /api/tokens/{serial}/verify */
  async verifyActivationCode(request, svc) {
    const serial = serialFromRoute(request);
    if (!serial.ok) return serial.answer;
    const body = await readJsonBody(request);
    if (!body.ok) return errorResponse('REQUEST_INVALID', 'The body must be JSON: { "code": "123456", "nextCode"?: "654321" }.');
    return answerVerify(svc.verify, serial.value, body.value);
  },

  /** POST /api/tokens/{serial}/activate-from-seed: Graph mode, only with GRAPH_ACTIVATE_FROM_SEED=true. */
  async activateFromSeed(request, svc) {
    const serial = serialFromRoute(request);
    if (!serial.ok) return serial.answer;
    const result = await svc.verify.activateFromSeed(serial.value);
    switch (result.status) {
      case 'disabled':
        return errorResponse('GRAPH_ACTIVATE_FROM_SEED_OFF');
      case 'not-found':
        return notFoundToken(serial.value);
      case 'refused':
        return errorResponse(
          'TOKEN_STATE_INVALID',
          `Token ${serial.value} is ${result.state}, not assigned in Entra: there is nothing to activate.`,
        );
      case 'entra-refused':
        return errorResponse('GRAPH_REFUSED', `${result.message} The token stays assigned.`);
      case 'unavailable':
        return errorResponse('GRAPH_UNAVAILABLE', `${result.message} The token stays assigned; try again.`, {
          headers: { 'retry-after': '30' },
        });
      case 'activated':
        return json(200, {
          serial: result.serial,
          state: 'activated',
          entraActivation: 'activated',
          next:
            'Entra now takes the token as in sync: a token whose clock drifted may fail its first sign-in. Check it with POST /api/tokens/' +
            serial.value +
            '/verify and a code from the token.',
        });
    }
  },

  /** POST /api/tokens/{serial}/unlock */
  async unlockToken(request, svc) {
    const serial = serialFromRoute(request);
    if (!serial.ok) return serial.answer;
    return unlockAnswer(await svc.verify.unlock(serial.value));
  },

  /** POST /api/tokens/{serial}/retire: one in a waiting import file is taken out by withdrawing that file. */
  async retireToken(request, svc) {
    const serial = serialFromRoute(request);
    if (!serial.ok) return serial.answer;
    const body = await readJsonBody(request);
    const reason = body.ok ? parseRetireReason(body.value) : '';
    const result = await svc.corrections.withdrawForRetire(serial.value, reason);
    if (result.status === 'not-found') return notFoundToken(serial.value);
    if (result.status === 'refused')
      return errorResponse(
        'TOKEN_STATE_INVALID',
        `The token is ${result.state}: a build is writing its import file; retire it in a minute.`,
      );
    // Its secret is disabled by the inventory's retire (also for a token the withdrawal just retired).
    const retired = await svc.inventory.retire(serial.value, reason);
    if (retired.status === 'not-found') return notFoundToken(serial.value);
    if (retired.status === 'refused')
      return errorResponse(
        'TOKEN_STATE_INVALID',
        `The token is ${retired.state}: a build is writing its import file; retire it in a minute.`,
      );
    const withdrawn = result.withdrawn?.status === 'withdrawn' ? result.withdrawn : null;
    const rebuilt =
      withdrawn && withdrawn.released.length > 0 ? buildSummary(await requestBuild(svc, svc.log, `retire ${serial.value}`)) : {};
    const steps: string[] = [];
    if (withdrawn)
      steps.push(
        `Its import file ${withdrawn.file} was withdrawn (deleted; do not upload a copy of it)${withdrawn.released.length > 0 ? `; the file's other ${withdrawn.released.length} token(s) were exported again in a new file` : ''}.`,
      );
    if (result.previousState === 'imported')
      steps.push(
        'The token was imported into Entra ID: delete it there too (Entra ID > Authentication methods > Hardware OATH tokens), or it still signs its user in.',
      );
    if (result.previousState === 'retired')
      steps.push(
        'If the token was imported into Entra ID, delete it there too (Entra ID > Authentication methods > Hardware OATH tokens).',
      );
    if (!retired.secretDisabled) steps.push('The secret could not be disabled in Key Vault yet; retire the token again to finish.');
    return json(200, {
      serial: serial.value,
      state: 'retired',
      changed: result.previousState !== 'retired',
      previousState: result.previousState,
      secretDisabled: retired.secretDisabled,
      withdrawnFile: withdrawn?.file ?? null,
      ...rebuilt,
      next: steps.join(' ') || 'Nothing else to do.',
    });
  },

  /** GET /api/tokens/{serial} */
  async getToken(request, svc) {
    const serial = serialFromRoute(request);
    if (!serial.ok) return serial.answer;
    const found = await svc.inventory.get(serial.value);
    return found.status === 'found' ? json(200, found.token) : notFoundToken(serial.value);
  },

  /** GET /api/tokens */
  async listTokens(request, svc) {
    const query = parseInventoryQuery(request.query);
    if (!query.ok) return query.answer;
    return json(200, await svc.inventory.list(query.value));
  },

  /** POST /api/imports */
  async buildImport(request, svc) {
    const body = await readJsonBody(request);
    const parsed = body.ok ? parseBuildRequest(body.value) : undefined;
    if (!parsed) return errorResponse('REQUEST_INVALID', 'The body must be empty or { "reexport": ["serial", ...] }.');
    const result = await svc.build.build(parsed);
    return json(200, {
      build: result.build,
      files: result.files,
      exported: result.exported,
      notExported: result.notExported,
      report: result.report,
    });
  },

  /** POST /api/imports/{file}/uploaded */
  async confirmImportUploaded(request, svc) {
    const file = importFileFromRoute(request);
    if (!file.ok) return file.answer;
    const result = await svc.uploads.confirm(file.value);
    if (!result.found)
      return errorResponse('IMPORT_FILE_NOT_FOUND', `No import file ${JSON.stringify(file.value)} exists or ever listed tokens.`);
    if (!result.complete) {
      // Some rows changed: not a 500. The file is kept, and the same request again finishes the job.
      const message = `Confirmed ${result.imported.length} token(s) of ${JSON.stringify(file.value)} so far; the file was kept. Send the same request again to finish.`;
      return errorResponse('IMPORT_CONFIRM_INCOMPLETE', message, { headers: { 'retry-after': '5' } });
    }
    return json(200, { file: file.value, deleted: true, imported: result.imported });
  },

  /** DELETE /api/assignments/{serial}: an exported token's import file is withdrawn; a build follows. */
  async deleteAssignment(request, svc) {
    const serial = serialFromRoute(request);
    if (!serial.ok) return serial.answer;
    const result = await svc.corrections.setAssignment(serial.value, null);
    if (result.status === 'not-found')
      return errorResponse('ASSIGNMENT_NOT_FOUND', `No assignment exists for serial ${JSON.stringify(serial.value)}.`);
    if (result.status === 'refused') return assignmentRefusal(serial.value, result);
    return assignmentAnswer(result, await requestBuild(svc, svc.log, `assignment of ${serial.value} deleted`));
  },

  /** PUT /api/assignments/{serial} `{ "upn" }`: creates or changes an assignment; an exported token's file is withdrawn; a build follows. */
  async setAssignment(request, svc) {
    const serial = serialFromRoute(request);
    if (!serial.ok) return serial.answer;
    const body = await readJsonBody(request);
    const upn = parseAssignmentBody(body.ok ? body.value : undefined, serial.value);
    if (!upn.ok) return upn.answer;
    const result = await svc.corrections.setAssignment(serial.value, upn.value);
    if (result.status === 'not-found')
      return errorResponse('ASSIGNMENT_NOT_FOUND', `No assignment exists for serial ${JSON.stringify(serial.value)}.`);
    if (result.status === 'refused') return assignmentRefusal(serial.value, result);
    const built = result.status === 'unchanged' ? undefined : await requestBuild(svc, svc.log, `assignment of ${serial.value} set`);
    return assignmentAnswer(result, built, result.status === 'unchanged');
  },

  /** GET /api/assignments?serial=&upn=&state=&pageSize=&continuationToken= */
  async listAssignments(request, svc) {
    const query = parseAssignmentQuery(request.query);
    if (!query.ok) return query.answer;
    return json(200, await svc.corrections.list(query.value));
  },

  /** POST /api/imports/{file}/withdraw: a file that was not uploaded is deleted; its tokens are stored again. */
  async withdrawImport(request, svc) {
    const file = importFileFromRoute(request);
    if (!file.ok) return file.answer;
    const result = await svc.corrections.withdraw(file.value, 'withdrawn by an administrator');
    if (result.status === 'not-found')
      return errorResponse('IMPORT_FILE_NOT_FOUND', `No import file ${JSON.stringify(file.value)} exists or ever listed tokens.`);
    if (result.status === 'refused') return withdrawRefusal(file.value, result);
    return json(200, {
      file: result.file,
      deleted: result.deleted,
      stored: result.released,
      next: 'Do not upload any copy of this file. Its tokens are stored again: change their assignments (PUT /api/assignments/{serial}), then POST /api/imports to build a new file.',
    });
  },

  /** POST /api/tokens/{serial}/removed-from-entra: an imported token removed in Entra can be exported again. */
  async markRemovedFromEntra(request, svc) {
    const serial = serialFromRoute(request);
    if (!serial.ok) return serial.answer;
    const result = await svc.corrections.markRemovedFromEntra(serial.value);
    if (result.status === 'not-found') return notFoundToken(serial.value);
    if (result.status === 'refused')
      return errorResponse('TOKEN_STATE_INVALID', `Token ${serial.value} is ${result.state}, not imported: there is nothing to mark.`);
    return json(200, {
      serial: serial.value,
      state: 'stored',
      previousUpn: result.upn,
      next: `Change its user with PUT /api/assignments/${serial.value} (a build follows), or POST /api/imports to export it again to its assigned user.`,
    });
  },

  /** POST /api/tokens/program: the package is in this answer only (no-store), never kept anywhere else. */
  async programTokens(request, svc) {
    const body = await readBoundedJson(request, svc.programLimits.maxBodyBytes);
    if (!body.ok) return body.answer;
    const parsed = parseProgramRequest(body.value, svc.programLimits.maxTokens);
    if (!parsed.ok) return errorResponse(parsed.problem.code as HttpProblemCode, parsed.problem.message);
    return programAnswer(await svc.program.program(parsed.request));
  },

  /** POST /api/tokens/{serial}/reprogram */
  async reprogramToken(request, svc) {
    const serial = serialFromRoute(request);
    if (!serial.ok) return serial.answer;
    return reprogramAnswer(serial.value, await svc.program.reprogram(serial.value));
  },

  /** GET /api/audit/secrets?batch=...: where each secret of a batch is, for an audit (no value ever). */
  async auditSecrets(request, svc) {
    const batch = request.query.get('batch') ?? '';
    if (batch.length === 0 || batch.length > 512 || /\p{Cc}/u.test(batch))
      return errorResponse('REQUEST_INVALID', 'The batch query parameter is empty, too long or holds control characters.');
    const tokens = await svc.inventory.secretLocations(batch);
    return json(200, { batch, vault: svc.vaultName, tokens });
  },

  /** GET /api/health: 200 when every check passed, 503 otherwise; the report either way. */
  async health(_request, svc) {
    const report = await svc.health.check();
    return json(report.status === 'ok' ? 200 : 503, report);
  },
} satisfies Record<string, Route>;

export type RouteName = keyof typeof routes;

function assignmentAnswer(
  result: Extract<AssignmentChangeResult, { serial: string }>,
  built: BuildResult | undefined,
  skipped = false,
): HttpResponseInit {
  const withdrawn = result.withdrawn?.status === 'withdrawn' ? result.withdrawn : null;
  const exportedTo = built?.exported.find((e) => e.serial === result.serial)?.file ?? null;
  const unassigned = result.unassignedInEntra;
  const assignedInEntra =
    built && 'assigned' in built ? (built as GraphBuildResult).assigned.find((a) => a.serial === result.serial) : undefined;
  const next = unassigned
    ? `Unassigned in Entra from ${unassigned.upn ?? 'its user'} (device ${unassigned.deviceId} stays in Entra's inventory).${
        assignedInEntra
          ? ` Assigned in Entra to ${assignedInEntra.upn}: activate it with POST /api/tokens/${result.serial}/verify and a code from the token.`
          : result.upn
            ? ' The next build assigns it to the new user; see GET /api/assignments?serial=' + encodeURIComponent(result.serial) + '.'
            : ''
      }`
    : withdrawn
      ? `Import file ${withdrawn.file} was withdrawn (deleted; do not upload any copy of it).${built ? ` The new build lists ${built.exported.length} token(s) in ${built.files.join(', ') || 'no file'}.` : ' Build again with POST /api/imports.'}`
      : exportedTo
        ? `Exported to ${exportedTo}: upload it in the Entra admin center, then POST /api/imports/${exportedTo}/uploaded.`
        : result.tokenState === null
          ? 'No token has this serial yet: the assignment waits for its seed file.'
          : 'See GET /api/assignments?serial=' +
            encodeURIComponent(result.serial) +
            " for the token's state, and the build report for why it was not exported.";
  return json(200, {
    serial: result.serial,
    upn: result.upn,
    previousUpn: result.previousUpn,
    status: result.status,
    withdrawnFile: withdrawn?.file ?? null,
    exportFile: exportedTo,
    ...(unassigned && { unassignedInEntraFrom: unassigned.upn }),
    ...(skipped ? {} : buildSummary(built)),
    next,
  });
}
