/**
 * The console's JSON API (`/api/console/api/...`), called by the console's pages for people signed in with Entra
 * ID. Every route needs a signed-in principal holding a role that grants it (auth.ts), and every change also a
 * same-origin request carrying the console's header, so another site cannot make a signed-in browser act.
 *
 * Where the key-protected API already does the thing (verify, unlock, retire, confirm an upload, build), the
 * route hands the request to that very function's handler: one behaviour and one answer shape for people and for
 * automation. Automation keeps calling those endpoints with function keys; the console routes take no key.
 */
import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import type { ProblemCode } from '../../core/problems.js';
import { PROBLEM_CODES } from '../../core/problems.js';
import { checkSerial } from '../../core/validate.js';
import type { InventoryQuery } from '../../pipeline/inventory-query.js';
import { can, principalFromHeaders, rolesFor, type Permission, type Principal } from '../auth.js';
import type { AppContext, Services, services as buildServices } from '../context.js';
import { guarded, invocationLogger, json, parseInventoryQuery, routes, type HttpRequestLike, type RouteName } from '../http.js';
import { forgetTokenCounts, isReportParameter, readReport } from './data.js';
import { acceptUpload, uploadStatus, type UploadKind } from './uploads.js';

/** What the console needs of the app: its context and services (functions/console.ts hands them in). */
export interface ConsoleRuntime {
  context: () => Promise<AppContext>;
  services: typeof buildServices;
}

/** The header console.js sends with every change; a cross-site form cannot set it, and a cross-site fetch with it needs CORS, which the app does not allow. */
export const CONSOLE_REQUEST_HEADER = 'x-console-request';

export function consoleError(status: number, code: ProblemCode, message: string = PROBLEM_CODES[code]): HttpResponseInit {
  return json(status, { error: { code, message } });
}

/** True for a request the console's own page sent: its header, and (where the browser says) the same origin. */
export function isSameOriginRequest(request: Pick<HttpRequest, 'headers'>): boolean {
  if (request.headers.get(CONSOLE_REQUEST_HEADER) !== '1') return false;
  const site = request.headers.get('sec-fetch-site');
  return site === null || site === 'same-origin';
}

interface Call {
  request: HttpRequest;
  context: InvocationContext;
  principal: Principal;
  ctx: AppContext;
  svc: Services;
}

interface ApiRoute {
  method: 'GET' | 'POST';
  permission: Permission;
  /** Says what the route does, for "needs role" messages. */
  what: string;
  handle(call: Call): Promise<HttpResponseInit>;
}

async function jsonBody(request: HttpRequest): Promise<Record<string, unknown> | undefined> {
  const text = await request.text();
  if (text.length > 64 * 1024) return undefined;
  if (text.trim() === '') return {};
  try {
    const value = JSON.parse(text) as unknown;
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** Answers as the key-protected endpoint `route` does (the one HTTP module), with these route parameters and body. */
function delegate(
  call: Call,
  route: RouteName,
  params: Record<string, string>,
  body?: unknown,
  query = new URLSearchParams(),
): Promise<HttpResponseInit> {
  return delegateText(call, route, params, body === undefined ? '' : JSON.stringify(body), query);
}

function delegateText(
  call: Call,
  route: RouteName,
  params: Record<string, string>,
  text: string,
  query = new URLSearchParams(),
): Promise<HttpResponseInit> {
  const request: HttpRequestLike = {
    params,
    query,
    text: () => Promise.resolve(text),
    headers: { get: (name: string) => (name.toLowerCase() === 'content-length' ? String(Buffer.byteLength(text)) : null) },
  };
  return routes[route](request, call.svc);
}

/** Reads `{ serial, ...}` from the body; the serial passes the same rule as a route's `{serial}`. */
async function serialCall(call: Call): Promise<{ serial: string; body: Record<string, unknown> } | HttpResponseInit> {
  const body = await jsonBody(call.request);
  if (!body) return consoleError(400, 'REQUEST_INVALID', 'The body must be a JSON object.');
  const serial = typeof body.serial === 'string' ? body.serial : '';
  const refused = checkSerial(serial);
  if (refused)
    return consoleError(
      400,
      refused.code,
      serial === '' ? 'The body names no serial.' : `The serial is not one a token can have: ${refused.message}`,
    );
  return { serial, body };
}

function audit(call: Call, action: string, data: Record<string, unknown> = {}): void {
  invocationLogger(call.context).info('Console action', { action, by: call.principal.id, ...data });
}

const KINDS: readonly UploadKind[] = ['seeds', 'assignments'];

/** Routes under /api/console/api/, by "METHOD path". */
export const API_ROUTES: Record<string, ApiRoute> = {
  'GET tokens': {
    method: 'GET',
    permission: 'view',
    what: 'Searching tokens',
    async handle(call) {
      const parsed = parseInventoryQuery(call.request.query);
      if (!parsed.ok) return parsed.answer;
      const search = withTextQuery(parsed.value, call.request.query.get('q') ?? '');
      if ('error' in search) return consoleError(400, 'REQUEST_INVALID', search.error);
      return json(200, await call.svc.inventory.list(search));
    },
  },
  'GET token': {
    method: 'GET',
    permission: 'view',
    what: 'Looking a token up',
    handle(call) {
      const serial = call.request.query.get('serial') ?? '';
      return delegate(call, 'getToken', { serial });
    },
  },
  'GET report': {
    method: 'GET',
    permission: 'view',
    what: 'Reading a report',
    async handle(call) {
      const name = call.request.query.get('name') ?? '';
      if (!isReportParameter(name))
        return consoleError(400, 'REQUEST_INVALID', 'name must be the name of a JSON report in the reports container.');
      const read = await readReport({ blobs: call.ctx.blobs, containers: call.ctx.config.containers }, name);
      if (read.status === 'not-found')
        return consoleError(404, 'REQUEST_INVALID', 'No report has this name (reports are deleted after the retention period).');
      if (read.status === 'unreadable') return consoleError(422, 'REQUEST_INVALID', 'The report is not one the pipeline wrote.');
      return {
        status: 200,
        body: read.raw,
        headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' },
      };
    },
  },
  'POST verify': {
    method: 'POST',
    permission: 'checkCode',
    what: 'Checking a code',
    async handle(call) {
      const parsed = await serialCall(call);
      if (!('serial' in parsed)) return parsed;
      const { serial, body } = parsed;
      const answer: Record<string, unknown> = { code: body.code };
      if (body.nextCode !== undefined && body.nextCode !== '') answer.nextCode = body.nextCode;
      const result = await delegate(call, 'verifyActivationCode', { serial }, answer);
      // Never the codes: only that a check happened and how it ended.
      audit(call, 'verify', { serial, status: result.status });
      forgetTokenCounts();
      return result;
    },
  },
  'POST unlock': {
    method: 'POST',
    permission: 'unlock',
    what: 'Unlocking a token',
    async handle(call) {
      const parsed = await serialCall(call);
      if (!('serial' in parsed)) return parsed;
      audit(call, 'unlock', { serial: parsed.serial });
      return delegate(call, 'unlockToken', { serial: parsed.serial });
    },
  },
  'POST retire': {
    method: 'POST',
    permission: 'retire',
    what: 'Retiring a token',
    async handle(call) {
      const parsed = await serialCall(call);
      if (!('serial' in parsed)) return parsed;
      const reason = typeof parsed.body.reason === 'string' ? parsed.body.reason : undefined;
      audit(call, 'retire', { serial: parsed.serial });
      forgetTokenCounts();
      return delegate(call, 'retireToken', { serial: parsed.serial }, reason ? { reason } : undefined);
    },
  },
  'POST reassign': {
    method: 'POST',
    permission: 'reassign',
    what: 'Reassigning a token',
    async handle(call) {
      const parsed = await serialCall(call);
      if (!('serial' in parsed)) return parsed;
      const { serial, body } = parsed;
      const upn = typeof body.upn === 'string' ? body.upn.trim() : '';
      const svc = call.svc;
      const result = await svc.assignments.reassign(serial, upn);
      switch (result.status) {
        case 'invalid':
          return consoleError(400, result.code);
        case 'not-found':
          return consoleError(404, 'TOKEN_NOT_FOUND', `No token has serial ${JSON.stringify(serial)}.`);
        case 'refused':
          return consoleError(
            409,
            'TOKEN_STATE_INVALID',
            `The token is ${result.state}: only a stored token (not yet in an import file) can be reassigned here. Retire it and issue another, or change the user in Entra ID.`,
          );
        case 'unchanged':
          return json(200, { serial, upn, changed: false });
        case 'assigned':
          audit(call, 'reassign', { serial });
          // As after an assignment list: the token goes into an import CSV for its new user.
          await svc.build
            .build()
            .catch((err: unknown) =>
              invocationLogger(call.context).warn(
                'Import build after a console reassignment failed; the reconciler or "Build now" will retry',
                { error: (err as Error).name },
              ),
            );
          forgetTokenCounts();
          return json(200, { serial, upn, changed: true });
      }
    },
  },
  'POST imports/uploaded': {
    method: 'POST',
    permission: 'imports',
    what: 'Confirming an import file as uploaded',
    async handle(call) {
      const body = await jsonBody(call.request);
      const file = typeof body?.file === 'string' ? body.file : '';
      audit(call, 'confirm-upload', { file: file.slice(0, 200) });
      forgetTokenCounts();
      return delegate(call, 'confirmImportUploaded', { file });
    },
  },
  'POST imports/build': {
    method: 'POST',
    permission: 'imports',
    what: 'Building an import file',
    async handle(call) {
      audit(call, 'build');
      forgetTokenCounts();
      return delegate(call, 'buildImport', {}, {});
    },
  },
  'GET imports/download': {
    method: 'GET',
    permission: 'imports',
    what: 'Downloading an import file',
    async handle(call) {
      const file = call.request.query.get('file') ?? '';
      if (!/^[\w.-]{1,200}$/.test(file)) return consoleError(400, 'REQUEST_INVALID', 'The file name is not an import file name.');
      const blob = await call.ctx.blobs.read(call.ctx.config.containers.imports, file);
      if (!blob)
        return consoleError(
          404,
          'IMPORT_FILE_NOT_FOUND',
          `No import file ${JSON.stringify(file)} is waiting (it may have been confirmed already).`,
        );
      audit(call, 'download-import', { file });
      // The one answer of the console that holds seeds: the file the Global Administrator uploads to Entra.
      return {
        status: 200,
        body: blob.bytes,
        headers: {
          'content-type': 'text/csv; charset=utf-8',
          'content-disposition': `attachment; filename="${file}"`,
          'cache-control': 'no-store',
          'x-content-type-options': 'nosniff',
        },
      };
    },
  },
  'POST program': {
    method: 'POST',
    permission: 'program',
    what: 'Programming tokens',
    async handle(call) {
      const declared = Number(call.request.headers.get('content-length') ?? '0');
      const limit = call.ctx.config.programMaxBodyBytes;
      if (declared > limit)
        return consoleError(
          413,
          'REQUEST_TOO_LARGE',
          `The request is ${declared} bytes; at most ${limit} are accepted. Program fewer tokens at once.`,
        );
      const text = await call.request.text();
      const count = (() => {
        try {
          const tokens = (JSON.parse(text) as { tokens?: unknown }).tokens;
          return Array.isArray(tokens) ? tokens.length : 0;
        } catch {
          return 0;
        }
      })();
      audit(call, 'program', { tokens: count });
      forgetTokenCounts();
      // The answer carries the seeds, once, to this page only (no-store); nothing here keeps or logs them.
      return delegateText(call, 'programTokens', {}, text);
    },
  },
  'POST uploads/seeds': uploadRoute('seeds'),
  'POST uploads/assignments': uploadRoute('assignments'),
  'GET uploads/status': {
    method: 'GET',
    permission: 'upload',
    what: 'Following an upload',
    async handle(call) {
      const q = call.request.query;
      const kind = q.get('kind') as UploadKind | null;
      const name = q.get('name') ?? '';
      const etag = q.get('etag') ?? '';
      if (!kind || !KINDS.includes(kind) || !/^console-[\w.-]{1,200}$/.test(name) || !/^[\w-]{1,100}$/.test(etag)) {
        return consoleError(400, 'REQUEST_INVALID', 'kind, name and etag must be those an upload answered.');
      }
      const deps = {
        blobs: call.ctx.blobs,
        containers: call.ctx.config.containers,
        vault: call.ctx.vault,
        transportKeyPrefix: call.ctx.config.transportKeyPrefix,
        log: invocationLogger(call.context),
      };
      return json(200, await uploadStatus(deps, kind, name, etag));
    },
  },
};

function uploadRoute(kind: UploadKind): ApiRoute {
  return {
    method: 'POST',
    permission: 'upload',
    what: kind === 'seeds' ? 'Uploading a seed file' : 'Uploading an assignment list',
    async handle(call) {
      const { ctx } = call;
      const length = Number(call.request.headers.get('content-length') ?? '0');
      // The form carries the file and a few fields: refuse a body well past the file limit before reading it.
      if (length > ctx.config.maxSeedFileBytes + 64 * 1024)
        return consoleError(
          413,
          'FILE_TOO_LARGE',
          `The upload is ${length} bytes; files may be at most ${ctx.config.maxSeedFileBytes} bytes (MAX_SEED_FILE_BYTES).`,
        );
      let form: FormData;
      try {
        form = await call.request.formData();
      } catch {
        return consoleError(400, 'REQUEST_INVALID', 'The upload must be multipart/form-data with a "file" field.');
      }
      const result = await acceptUpload(
        {
          blobs: ctx.blobs,
          vault: ctx.vault,
          clock: ctx.clock,
          log: invocationLogger(call.context),
          containers: ctx.config.containers,
          transportKeyPrefix: ctx.config.transportKeyPrefix,
          maxFileBytes: ctx.config.maxSeedFileBytes,
        },
        kind,
        form,
        call.principal.id,
      );
      if ('message' in result)
        return consoleError(result.status, result.status === 413 ? 'FILE_TOO_LARGE' : 'REQUEST_INVALID', result.message);
      return json(202, result);
    },
  };
}

/** The console's one search box: a UPN (it has an @) filters by user, anything else is the start of a serial. */
export function withTextQuery(search: InventoryQuery, text: string): InventoryQuery | { error: string } {
  const q = text.trim();
  if (q === '') return search;
  if (q.length > 256) return { error: 'The search text is longer than any serial or UPN.' };
  return q.includes('@') ? { ...search, upn: q } : { ...search, serialPrefix: q };
}

/** Serves /api/console/api/{path}: sign-in, role, same-origin for changes, then the route. */
export function serveConsoleApi(
  request: HttpRequest,
  context: InvocationContext,
  runtime: ConsoleRuntime,
  routePath = request.params.path ?? '',
): Promise<HttpResponseInit> {
  return guarded(context, async () => {
    const path = routePath.replace(/^\/+|\/+$/g, '');
    const route = API_ROUTES[`${request.method.toUpperCase()} ${path}`];
    const principal = principalFromHeaders(request.headers);
    if (!principal) return consoleError(401, 'SIGN_IN_REQUIRED');
    if (!route)
      return consoleError(
        404,
        'REQUEST_INVALID',
        `The console API has no ${request.method.toUpperCase()} ${JSON.stringify(path.slice(0, 100))}.`,
      );
    if (!can(principal, route.permission)) {
      return consoleError(
        403,
        'ROLE_REQUIRED',
        `${route.what} needs the app role ${rolesFor(route.permission).join(' or ')}; you hold ${principal.roles.join(', ') || 'none of the console roles'}.`,
      );
    }
    if (route.method === 'POST' && !isSameOriginRequest(request)) return consoleError(403, 'CROSS_SITE_REQUEST');
    const ctx = await runtime.context();
    return route.handle({ request, context, principal, ctx, svc: runtime.services(ctx, invocationLogger(context)) });
  });
}
