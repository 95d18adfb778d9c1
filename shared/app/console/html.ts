/**
 * Server-rendered HTML for the console: a tagged template that escapes every value it is given (a hostile serial
 * or file name stays text), and the page frame every page shares.
 */
import type { HttpResponseInit } from '@azure/functions';
import { escapeHtml } from '../../pipeline/report.js';
import { APP_ROLES, can, type Permission, type Principal } from '../auth.js';

/** HTML that is already safe: produced by `html` or by the helpers here. */
export class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

type Value = Html | string | number | boolean | null | undefined | readonly Value[];

function render(value: Value): string {
  if (value instanceof Html) return value.text;
  if (Array.isArray(value)) return value.map((v: Value) => render(v)).join('');
  if (value === null || value === undefined || value === false) return '';
  return escapeHtml(value as string | number | boolean);
}

/** `html\`<p>${value}</p>\``: every interpolated value is escaped unless it is Html (or an array of them). */
export function html(strings: TemplateStringsArray, ...values: Value[]): Html {
  let out = strings[0] ?? '';
  values.forEach((value, i) => {
    out += render(value) + (strings[i + 1] ?? '');
  });
  return new Html(out);
}

/** Where the console lives: the host's route prefix (host.json) plus the function's route. */
export const CONSOLE_PATH = '/api/console';
export const CONSOLE_API_PATH = `${CONSOLE_PATH}/api`;

/** A console URL with query parameters (undefined and empty ones left out). */
export function consoleUrl(page: string, query: Record<string, string | undefined> = {}): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) if (value !== undefined && value !== '') params.set(key, value);
  const search = params.toString();
  return `${CONSOLE_PATH}${page ? `/${page}` : ''}${search ? `?${search}` : ''}`;
}

/** Security headers of every console answer: no framing, no inline script or style, no caching, no referrer. */
export const PAGE_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
  'x-frame-options': 'DENY',
};

export function htmlResponse(status: number, body: Html, headers: Record<string, string> = {}): HttpResponseInit {
  return {
    status,
    body: `<!doctype html>\n${body.text}`,
    headers: { 'content-type': 'text/html; charset=utf-8', ...PAGE_HEADERS, ...headers },
  };
}

export type NavPage = 'overview' | 'tokens' | 'batches' | 'upload' | 'program';

const NAV: { page: NavPage; label: string; path: string; permission: Permission }[] = [
  { page: 'overview', label: 'Overview', path: '', permission: 'view' },
  { page: 'tokens', label: 'Tokens', path: 'tokens', permission: 'view' },
  { page: 'batches', label: 'Batches', path: 'batches', permission: 'view' },
  { page: 'upload', label: 'Upload', path: 'upload', permission: 'upload' },
  { page: 'program', label: 'Program tokens', path: 'program', permission: 'program' },
];

export interface PageFrame {
  title: string;
  principal: Principal;
  current?: NavPage;
  /** Extra navigation entries (pages that exist only with some features). */
  extraNav?: { page: NavPage; label: string; path: string; permission: Permission }[];
  /** The local host's development sign-in is in use: say so on every page. */
  development?: boolean;
}

export function page(frame: PageFrame, main: Html): Html {
  const { principal } = frame;
  const entries = [...NAV, ...(frame.extraNav ?? [])].filter((n) => can(principal, n.permission));
  const roles = principal.roles.length > 0 ? principal.roles.join(', ') : 'no console role';
  const isAdmin = principal.roles.includes(APP_ROLES.admin);
  return html`<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${frame.title} · OATH token console</title>
<link rel="stylesheet" href="${CONSOLE_PATH}/assets/console.css">
<script type="module" src="${CONSOLE_PATH}/assets/console.js"></script>
</head>
<body class="${isAdmin ? 'role-admin' : 'role-helpdesk'}">
<a class="skip-link" href="#main">Skip to content</a>
${frame.development ? html`<p class="dev-banner" role="note"><strong>Development sign-in.</strong> This local stack signs people in without Entra ID; never expose it beyond this machine.</p>` : ''}
<header class="top">
<p class="brand"><a href="${CONSOLE_PATH}">OATH token console</a></p>
<nav aria-label="Console sections"><ul>
${entries.map((n) => html`<li><a href="${consoleUrl(n.path)}"${n.page === frame.current ? html` aria-current="page"` : ''}>${n.label}</a></li>`)}
</ul></nav>
<p class="who">Signed in as <strong>${principal.name}</strong> <span class="roles">(${roles})</span> · <a href="/.auth/logout?post_logout_redirect_uri=${encodeURIComponent(CONSOLE_PATH)}">Sign out</a></p>
</header>
<main id="main" tabindex="-1">
${main}
</main>
</body>
</html>`;
}

/** A page for someone who is signed in but may not see it. */
export function forbiddenPage(principal: Principal, what: string, roles: readonly string[], development: boolean): HttpResponseInit {
  const main = html`<h1>Not allowed</h1>
<p>${what} needs the app role ${roles.join(' or ')}. You hold ${principal.roles.length > 0 ? principal.roles.join(', ') : 'no role of this console'}.</p>
<p>Ask the console's owners to assign you the role in Entra ID (Enterprise applications, Users and groups).</p>`;
  return htmlResponse(403, page({ title: 'Not allowed', principal, development }, main));
}

export function formatTime(iso: string | null | undefined): Html {
  if (!iso) return html`<span class="muted">never</span>`;
  const text = iso
    .replace('T', ' ')
    .replace(/\.\d+Z$/, 'Z')
    .replace('Z', ' UTC');
  return html`<time datetime="${iso}">${text}</time>`;
}

export function formatDrift(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined) return 'not measured yet';
  return `${seconds > 0 ? '+' : ''}${seconds} s`;
}

export const STATE_LABELS: Record<string, string> = {
  stored: 'Stored (in Key Vault, not exported)',
  exporting: 'Exporting (a build holds it)',
  exported: 'Exported (in an import CSV)',
  imported: 'Imported into Entra ID',
  retired: 'Retired',
};
