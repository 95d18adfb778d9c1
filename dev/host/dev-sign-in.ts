/**
 * The local host's stand-in for App Service Authentication (Easy Auth), so the console works without an Entra
 * tenant. Like Easy Auth it removes any `x-ms-client-principal*` header a client sends and sets its own for a
 * signed-in user, and it tells the app it is there (`WEBSITE_AUTH_ENABLED=True`, set by the host). Signing in is a
 * clearly marked development page at Easy Auth's own address, `/.auth/login/aad`, with one button per app role;
 * the choice is kept in a cookie. It exists only in this local host (dev/, which is not deployed), never in Azure.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { APP_ROLES, DEVELOPMENT_IDP, type AppRole } from '../../shared/app/auth.js';

export const DEV_COOKIE = 'dev_console_role';
export const DEV_IDP = DEVELOPMENT_IDP;

/** The development users, one per role. */
export const DEV_USERS = {
  helpdesk: {
    id: '00000000-0000-4000-8000-00000000d001',
    name: 'helpdesk@dev.localhost',
    roles: [APP_ROLES.helpdesk] as AppRole[],
    label: 'Helpdesk',
  },
  admin: { id: '00000000-0000-4000-8000-00000000d002', name: 'admin@dev.localhost', roles: [APP_ROLES.admin] as AppRole[], label: 'Admin' },
} as const;
export type DevRole = keyof typeof DEV_USERS;

/** The principal header Easy Auth would send for this user: base64 JSON with an object id, names and one `roles` claim per role. */
export function encodePrincipal(user: { id: string; name: string; roles: readonly string[] }): string {
  const claims = [
    { typ: 'http://schemas.microsoft.com/identity/claims/objectidentifier', val: user.id },
    { typ: 'preferred_username', val: user.name },
    { typ: 'name', val: user.name },
    ...user.roles.map((role) => ({ typ: 'roles', val: role })),
  ];
  const principal = {
    auth_typ: 'aad',
    claims,
    name_typ: 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name',
    role_typ: 'http://schemas.microsoft.com/ws/2008/06/identity/claims/role',
  };
  return Buffer.from(JSON.stringify(principal), 'utf8').toString('base64');
}

function cookies(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) out[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return out;
}

/** A path on this host to return to after signing in or out; anything else (another site, `//host`) becomes the console. */
function localPath(value: string | null | undefined, fallback: string): string {
  if (!value || !value.startsWith('/') || value.startsWith('//') || value.includes('\\')) return fallback;
  return value;
}

const PAGE_STYLE = `body{font-family:system-ui,sans-serif;margin:0;color:#1b1b1b;line-height:1.5}
main{max-width:40rem;margin:0 auto;padding:1.5rem}
.banner{background:#fff4ce;border:2px solid #7a5600;color:#3d2e00;padding:0.75rem 1rem;border-radius:6px}
form{display:flex;flex-wrap:wrap;gap:1rem;margin:1.5rem 0}
button{font:inherit;font-weight:600;padding:0.6rem 1.5rem;border-radius:4px;border:2px solid #0b5cad;background:#0b5cad;color:#fff;cursor:pointer}
button:focus-visible{outline:3px solid #ffbf47;outline-offset:2px}
dt{font-weight:600}dd{margin:0 0 0.5rem}`;

function escape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function signInPage(redirect: string): string {
  const buttons = (Object.keys(DEV_USERS) as DevRole[])
    .map((role) => `<button type="submit" name="role" value="${role}">${DEV_USERS[role].label}</button>`)
    .join('\n');
  const who = (Object.keys(DEV_USERS) as DevRole[])
    .map(
      (role) => `<dt>${DEV_USERS[role].label}</dt><dd>${escape(DEV_USERS[role].name)}, app role ${DEV_USERS[role].roles.join(', ')}</dd>`,
    )
    .join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Development sign-in · local stack</title><style>${PAGE_STYLE}</style></head>
<body><main>
<h1>Development sign-in</h1>
<p class="banner" role="note"><strong>Local development only.</strong> This page stands in for Entra ID sign-in on the local stack. It does not exist in Azure, where App Service Authentication signs people in.</p>
<p>Choose who to be:</p>
<form method="post" action="/.auth/login/dev">
<input type="hidden" name="redirect" value="${escape(redirect)}">
${buttons}
</form>
<dl>${who}</dl>
</main></body></html>
`;
}

function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= 8192) chunks.push(chunk);
    });
    req.on('end', () => resolve(new URLSearchParams(Buffer.concat(chunks).toString('utf8'))));
    req.on('error', reject);
  });
}

const CONSOLE_HOME = '/api/console';

/**
 * Handles Easy Auth's own paths (`/.auth/...`); true when it answered. Sign-in: GET /.auth/login/aad shows the
 * page, POST /.auth/login/dev sets the cookie; sign-out: GET /.auth/logout clears it; GET /.auth/me says who.
 */
export async function handleAuthPath(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
  const path = url.pathname.toLowerCase();
  if (!path.startsWith('/.auth/')) return false;
  const method = (req.method ?? 'GET').toUpperCase();
  const headers = { 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', 'x-frame-options': 'DENY' };
  if (path === '/.auth/login/aad' && method === 'GET') {
    res.writeHead(200, { ...headers, 'content-type': 'text/html; charset=utf-8' });
    res.end(signInPage(localPath(url.searchParams.get('post_login_redirect_uri'), CONSOLE_HOME)));
    return true;
  }
  if (path === '/.auth/login/dev' && method === 'POST') {
    const form = await readForm(req);
    const role = form.get('role');
    if (role !== 'helpdesk' && role !== 'admin') {
      res.writeHead(400, { ...headers, 'content-type': 'text/plain; charset=utf-8' });
      res.end('Choose Helpdesk or Admin.\n');
      return true;
    }
    res.writeHead(302, {
      ...headers,
      location: localPath(form.get('redirect'), CONSOLE_HOME),
      'set-cookie': `${DEV_COOKIE}=${role}; Path=/; HttpOnly; SameSite=Lax`,
    });
    res.end();
    return true;
  }
  if (path === '/.auth/logout' && method === 'GET') {
    const back = localPath(url.searchParams.get('post_logout_redirect_uri'), CONSOLE_HOME);
    res.writeHead(302, { ...headers, location: back, 'set-cookie': `${DEV_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0` });
    res.end();
    return true;
  }
  if (path === '/.auth/me' && method === 'GET') {
    const user = devUser(req);
    res.writeHead(200, { ...headers, 'content-type': 'application/json; charset=utf-8' });
    res.end(
      JSON.stringify(
        user ? [{ provider_name: DEV_IDP, user_id: user.name, user_claims: user.roles.map((r) => ({ typ: 'roles', val: r })) }] : [],
      ),
    );
    return true;
  }
  res.writeHead(404, headers);
  res.end();
  return true;
}

function devUser(req: IncomingMessage): (typeof DEV_USERS)[DevRole] | undefined {
  const role = cookies(req)[DEV_COOKIE];
  return role === 'helpdesk' || role === 'admin' ? DEV_USERS[role] : undefined;
}

/**
 * The request headers the app sees: any client-sent principal headers removed, and the signed-in development
 * user's added, as Easy Auth does in Azure.
 */
export function withPrincipalHeaders(req: IncomingMessage, headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(headers))
    if (!key.toLowerCase().startsWith('x-ms-client-principal') && !key.toLowerCase().startsWith('x-ms-token-')) out[key] = value;
  const user = devUser(req);
  if (user) {
    out['x-ms-client-principal'] = encodePrincipal(user);
    out['x-ms-client-principal-id'] = user.id;
    out['x-ms-client-principal-name'] = user.name;
    out['x-ms-client-principal-idp'] = DEV_IDP;
  }
  return out;
}
