/**
 * Function keys and console roles side by side, on a local stack with `--enforce-auth` (as in Azure): automation
 * keeps its function keys and gets nothing without one; the console takes no key, only a signed-in principal with
 * a role; a principal header sent by a client is dropped, as App Service Authentication drops it. No browser
 * needed; the development sign-in's cookie stands for a signed-in person.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { describeStack, type Stack } from '../../dev/stack.js';
import { startTestStack, suiteScope, type TestStack } from '../helpers/stack.js';

const MASTER_KEY = 'test-master-key-0123456789';
const HELPDESK = 'dev_console_role=helpdesk';
const ADMIN = 'dev_console_role=admin';

describe('function keys and console roles (--enforce-auth)', () => {
  let stack: TestStack;
  const scope = suiteScope();

  before(async () => {
    stack = await startTestStack(scope, { enforceAuth: { masterKey: MASTER_KEY } });
  });

  const call = async (path: string, init: { method?: string; cookie?: string; headers?: Record<string, string>; body?: unknown } = {}) => {
    const headers: Record<string, string> = { ...init.headers };
    if (init.cookie) headers.cookie = init.cookie;
    if (init.body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${stack.functionsUrl}${path}`, {
      method: init.method ?? 'GET',
      headers,
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
      redirect: 'manual',
    });
    const text = await res.text();
    let body: { error?: { code?: string } } & Record<string, unknown> = {};
    try {
      body = text ? (JSON.parse(text) as typeof body) : {};
    } catch {
      body = {};
    }
    return { status: res.status, body, location: res.headers.get('location') };
  };

  it('the key-protected API still needs its key', async () => {
    assert.equal((await call('/api/tokens')).status, 401);
    assert.equal((await call('/api/tokens', { headers: { 'x-functions-key': MASTER_KEY } })).status, 200);
    // A signed-in person is not a key: the automation endpoints stay closed to the console's cookie.
    assert.equal((await call('/api/tokens', { cookie: ADMIN })).status, 401);
  });

  it('the console takes no key: without sign-in, pages send you to sign in and the API answers 401', async () => {
    const page = await call('/api/console/tokens', { headers: { 'x-functions-key': MASTER_KEY } });
    assert.equal(page.status, 302);
    assert.equal(page.location, '/.auth/login/aad?post_login_redirect_uri=%2Fapi%2Fconsole%2Ftokens');
    const api = await call('/api/console/api/tokens', { headers: { 'x-functions-key': MASTER_KEY } });
    assert.equal(api.status, 401);
    assert.equal(api.body.error?.code, 'SIGN_IN_REQUIRED');
  });

  it('a principal header sent by a client is dropped, whatever roles it claims', async () => {
    const forged = Buffer.from(
      JSON.stringify({
        auth_typ: 'aad',
        claims: [
          { typ: 'roles', val: 'Tokens.Admin' },
          { typ: 'name', val: 'mallory' },
        ],
      }),
    ).toString('base64');
    const api = await call('/api/console/api/tokens', {
      headers: { 'x-ms-client-principal': forged, 'x-ms-client-principal-name': 'mallory' },
    });
    assert.equal(api.status, 401);
    // With a helpdesk sign-in, a forged admin header does not lift the role either.
    const lifted = await call('/api/console/api/retire', {
      method: 'POST',
      cookie: HELPDESK,
      headers: { 'x-ms-client-principal': forged, 'x-console-request': '1' },
      body: { serial: 'NOPE1' },
    });
    assert.equal(lifted.status, 403);
    assert.equal(lifted.body.error?.code, 'ROLE_REQUIRED');
  });

  it('signed in, the role decides: helpdesk looks up, admin also changes', async () => {
    assert.equal((await call('/api/console/api/tokens', { cookie: HELPDESK })).status, 200);
    const helpdeskRetire = await call('/api/console/api/retire', {
      method: 'POST',
      cookie: HELPDESK,
      headers: { 'x-console-request': '1' },
      body: { serial: 'NOPE1' },
    });
    assert.equal(helpdeskRetire.status, 403);
    const adminRetire = await call('/api/console/api/retire', {
      method: 'POST',
      cookie: ADMIN,
      headers: { 'x-console-request': '1' },
      body: { serial: 'NOPE1' },
    });
    assert.equal(adminRetire.status, 404, 'reached the retire function, which knows no such token');
    assert.equal(adminRetire.body.error?.code, 'TOKEN_NOT_FOUND');
    const crossSite = await call('/api/console/api/retire', {
      method: 'POST',
      cookie: ADMIN,
      headers: { 'sec-fetch-site': 'cross-site', 'x-console-request': '1' },
      body: { serial: 'NOPE1' },
    });
    assert.equal(crossSite.status, 403);
    assert.equal(crossSite.body.error?.code, 'CROSS_SITE_REQUEST');
  });

  it('the development sign-in goes back only to a path on this host', async () => {
    const res = await fetch(`${stack.functionsUrl}/.auth/login/dev`, {
      method: 'POST',
      body: new URLSearchParams({ role: 'admin', redirect: '//evil.example/x' }),
      redirect: 'manual',
    });
    assert.equal(res.status, 302);
    assert.equal(res.headers.get('location'), '/api/console');
    assert.match(res.headers.get('set-cookie') ?? '', /^dev_console_role=admin; Path=\/; HttpOnly; SameSite=Lax$/);
  });

  it('npm start prints its address on a line that starts with "Console"', () => {
    const described = {
      functions: { url: 'http://127.0.0.1:7071', list: [] },
      consoleUrl: 'http://127.0.0.1:7071/api/console',
      enforceAuth: false,
      azurite: {},
      keyVault: { url: 'k' },
      graph: { url: 'g', stats: () => ({ users: 0 }) },
      dataDir: 'd',
      settingsPath: 's',
    } as unknown as Stack;
    const lines = describeStack(described);
    assert.ok(
      lines.some((l) => l.startsWith('Console http://127.0.0.1:7071/api/console')),
      lines.join('\n'),
    );
  });
});
