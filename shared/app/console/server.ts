/**
 * Serves the console's pages (`/api/console/...`): sign-in first (Easy Auth's login in Azure, the local host's
 * development sign-in locally), then the page the principal's roles allow, rendered on the server. Static assets
 * (`/api/console/assets/...`) come from the repository's `console/` folder, which ships in the deployment package.
 */
import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkSerial } from '../../core/validate.js';
import { publicTokenView } from '../../pipeline/inventory.js';
import { listInventoryPage } from '../../pipeline/inventory-query.js';
import { can, DEVELOPMENT_IDP, platformAuthEnabled, principalFromHeaders, rolesFor, type Permission, type Principal } from '../auth.js';
import { guarded, parseInventoryQuery } from '../http.js';
import { serveConsoleApi, withTextQuery, type ConsoleRuntime } from './api.js';
import {
  importsWaiting,
  isReportParameter,
  listReports,
  readReport,
  recentReports,
  summarize,
  tokenCounts,
  type ConsoleData,
  type ReportSummary,
} from './data.js';
import { CONSOLE_PATH, forbiddenPage, html, htmlResponse, page, PAGE_HEADERS, type Html, type NavPage } from './html.js';
import { batchesPage, batchPage, noRolePage, noticeFor, overviewPage, programPage, tokenPage, tokensPage, uploadPage } from './pages.js';

const ASSET_TYPES: Record<string, string> = {
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
};
const ASSET_NAME = /^[a-z0-9][a-z0-9-]*\.(css|js|svg)$/;

/** The app root (the folder with host.json), where `console/` lives: the repository, or wwwroot in Azure. */
function findAppRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'host.json'))) return dir;
    if (dirname(dir) === dir) return from;
  }
}

export const ASSETS_DIR = join(findAppRoot(dirname(fileURLToPath(import.meta.url))), 'console');
const assetCache = new Map<string, Promise<Buffer | undefined>>();

async function serveAsset(file: string): Promise<HttpResponseInit> {
  const extension = file.slice(file.lastIndexOf('.'));
  if (!ASSET_NAME.test(file)) return { status: 404, headers: PAGE_HEADERS };
  let content = assetCache.get(file);
  if (!content) {
    content = readFile(join(ASSETS_DIR, file)).catch(() => undefined);
    assetCache.set(file, content);
  }
  const bytes = await content;
  if (!bytes) return { status: 404, headers: PAGE_HEADERS };
  // Revalidated on each load: a deploy changes them, and they are small.
  return { status: 200, body: bytes, headers: { ...PAGE_HEADERS, 'content-type': ASSET_TYPES[extension]!, 'cache-control': 'no-cache' } };
}

interface PageCall {
  request: HttpRequest;
  principal: Principal;
  runtime: ConsoleRuntime;
  development: boolean;
}

interface PageRoute {
  permission: Permission;
  what: string;
  current?: NavPage;
  render(call: PageCall): Promise<{ title: string; main: Html } | HttpResponseInit>;
}

function consoleData(ctx: Awaited<ReturnType<ConsoleRuntime['context']>>): ConsoleData {
  return { blobs: ctx.blobs, tokens: ctx.tokens, clock: ctx.clock, containers: ctx.config.containers };
}

function notFound(call: PageCall, title: string, message: string): HttpResponseInit {
  return htmlResponse(
    404,
    page({ title, principal: call.principal, development: call.development }, html`<h1>${title}</h1><p>${message}</p>`),
  );
}

const TOKENS_PER_PAGE = 50;

const PAGES: Record<string, PageRoute> = {
  '': {
    permission: 'view',
    what: 'The overview',
    current: 'overview',
    async render(call) {
      const data = consoleData(await call.runtime.context());
      const [counts, recent, imports] = await Promise.all([tokenCounts(data), recentReports(data, 8), importsWaiting(data)]);
      return { title: 'Overview', main: overviewPage(call.principal, counts, recent, imports, noticeFor(call.request.query.get('done'))) };
    },
  },
  tokens: {
    permission: 'view',
    what: 'Searching tokens',
    current: 'tokens',
    async render(call) {
      const q = call.request.query;
      const form = { q: q.get('q') ?? '', state: q.get('state') ?? '', batch: q.get('batch') ?? '' };
      const query = new URLSearchParams({ pageSize: String(TOKENS_PER_PAGE) });
      if (form.state) query.set('state', form.state);
      if (form.batch) query.set('batch', form.batch);
      const continuation = q.get('continuationToken');
      if (continuation) query.set('continuationToken', continuation);
      // The same parsing as GET /api/tokens; its refusal's message is shown on the page.
      const parsed = parseInventoryQuery(query);
      const search = parsed.ok
        ? withTextQuery(parsed.value, form.q)
        : { error: (parsed.answer.jsonBody as { error: { message: string } }).error.message };
      const result = 'error' in search ? search : await listInventoryPage((await call.runtime.context()).tokens, search);
      return { title: 'Tokens', main: tokensPage(form, 'error' in search ? { pageSize: TOKENS_PER_PAGE } : search, result) };
    },
  },
  token: {
    permission: 'view',
    what: 'A token',
    current: 'tokens',
    async render(call) {
      const serial = call.request.query.get('serial') ?? '';
      if (checkSerial(serial)) return notFound(call, 'No such token', 'The address names no serial a token can have.');
      const ctx = await call.runtime.context();
      const row = await ctx.tokens.get(serial);
      if (!row) return notFound(call, 'No such token', `No token has serial ${JSON.stringify(serial)}.`);
      return {
        title: `Token ${serial}`,
        main: tokenPage(call.principal, publicTokenView(row.value), ctx.clock.now(), noticeFor(call.request.query.get('done'))),
      };
    },
  },
  batches: {
    permission: 'view',
    what: 'The batches',
    current: 'batches',
    async render(call) {
      const data = consoleData(await call.runtime.context());
      const { reports, total } = await listReports(data, 100);
      const summaries = new Map<string, ReportSummary>();
      await Promise.all(
        reports.map(async (r) => {
          const read = await readReport(data, r.name);
          if (read.status === 'found') summaries.set(r.name, summarize(r.name, read.report));
        }),
      );
      return { title: 'Batches', main: batchesPage(reports, total, summaries) };
    },
  },
  batch: {
    permission: 'view',
    what: 'A batch report',
    current: 'batches',
    async render(call) {
      const name = call.request.query.get('name') ?? '';
      if (!isReportParameter(name)) return notFound(call, 'No such report', 'The address names no report.');
      const read = await readReport(consoleData(await call.runtime.context()), name);
      if (read.status === 'not-found')
        return notFound(call, 'No such report', 'No report has this name; reports are deleted after the retention period.');
      if (read.status === 'unreadable') return notFound(call, 'Unreadable report', 'This blob is not a report the pipeline wrote.');
      return { title: `Report ${read.report.subject}`, main: batchPage(name, read.report, read.raw) };
    },
  },
  program: {
    permission: 'program',
    what: 'Programming tokens',
    current: 'program',
    async render(call) {
      const { config } = await call.runtime.context();
      return { title: 'Program tokens', main: programPage(config.programMaxTokens) };
    },
  },
  upload: {
    permission: 'upload',
    what: 'Uploading files',
    current: 'upload',
    async render(call) {
      const { config } = await call.runtime.context();
      return { title: 'Upload', main: uploadPage(config.maxSeedFileBytes, config.transportKeyPrefix) };
    },
  },
};

function signInRedirect(request: HttpRequest): HttpResponseInit {
  const url = new URL(request.url);
  const back = `${url.pathname}${url.search}`;
  return { status: 302, headers: { ...PAGE_HEADERS, location: `/.auth/login/aad?post_login_redirect_uri=${encodeURIComponent(back)}` } };
}

function authNotSetUp(): HttpResponseInit {
  const body = html`<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Sign-in is not set up · OATH token console</title><link rel="stylesheet" href="${CONSOLE_PATH}/assets/console.css"></head>
<body><main id="main"><h1>Sign-in is not set up</h1>
<p>The console needs App Service Authentication with Entra ID in front of this app, and it is off, so nobody can be signed in. See the README, "The console: sign-in and roles".</p></main></body></html>`;
  return htmlResponse(503, body);
}

/** Serves /api/console/{path}. */
export function serveConsolePage(request: HttpRequest, context: InvocationContext, runtime: ConsoleRuntime): Promise<HttpResponseInit> {
  const path = (request.params.path ?? '').replace(/^\/+|\/+$/g, '');
  // The API has its own function; should a host route an API path here, it still gets the API's rules.
  if (path === 'api' || path.startsWith('api/')) return serveConsoleApi(request, context, runtime, path.slice(4));
  return guarded(context, async () => {
    if (path.startsWith('assets/')) return serveAsset(path.slice('assets/'.length));
    const principal = principalFromHeaders(request.headers);
    if (!principal) return platformAuthEnabled() ? signInRedirect(request) : authNotSetUp();
    const development = principal.identityProvider === DEVELOPMENT_IDP;
    if (principal.roles.length === 0) return htmlResponse(403, page({ title: 'No access', principal, development }, noRolePage()));
    const route = PAGES[path];
    const call: PageCall = { request, principal, runtime, development };
    if (!route) return notFound(call, 'Page not found', 'The console has no such page.');
    if (!can(principal, route.permission)) return forbiddenPage(principal, route.what, rolesFor(route.permission), development);
    const rendered = await route.render(call);
    if (!('main' in rendered)) return rendered;
    return htmlResponse(200, page({ title: rendered.title, principal, current: route.current, development }, rendered.main));
  });
}
