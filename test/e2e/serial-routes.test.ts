/**
 * Every HTTP route that takes a `{serial}` refuses one that no token could
 * have (too long, control or invisible characters) with 400 and the
 * documented error shape, before any storage call: through the local stack,
 * so the real host, app, Azurite and table keys are in the path.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { startTestStack, suiteScope, type TestStack } from '../helpers/stack.js';

const ROUTES: { method: string; path: (serial: string) => string; body?: unknown }[] = [
  { method: 'GET', path: (s) => `tokens/${s}` },
  { method: 'POST', path: (s) => `tokens/${s}/verify`, body: { code: '123456' } },
  { method: 'POST', path: (s) => `tokens/${s}/unlock` },
  { method: 'POST', path: (s) => `tokens/${s}/retire`, body: { reason: 'lost' } },
  { method: 'POST', path: (s) => `tokens/${s}/reprogram` },
  { method: 'DELETE', path: (s) => `assignments/${s}` },
];

const BAD_SERIALS: Record<string, string> = {
  '129 characters': 'S'.repeat(129),
  // Past Azure Table's 1 KiB key limit: Azure refuses such a key (400 OutOfRangeInput), which the app passed on as
  // a 500. Azurite does not check the limit, so on this stack the old code answered 404.
  '2,000 characters': 'S'.repeat(2000),
  'a zero-width space': 'AB\u200bC1',
  'a control character': 'AB\u0001C1',
  'a bidi override': 'AB\u202eC1',
};

describe('{serial} routes (local stack)', () => {
  let stack: TestStack;
  const scope = suiteScope();

  before(async () => {
    stack = await startTestStack(scope, { settings: { RECONCILE_SCHEDULE: '0 0 0 1 1 *' } });
  });

  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${stack.functionsUrl}/api/${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const raw = await res.text();
    return { status: res.status, body: raw ? (JSON.parse(raw) as Record<string, unknown>) : {} };
  };

  for (const [what, serial] of Object.entries(BAD_SERIALS)) {
    it(`answers 400 SERIAL_INVALID on every route for a serial with ${what}`, async () => {
      const wrong: string[] = [];
      for (const route of ROUTES) {
        const answer = await call(route.method, route.path(encodeURIComponent(serial)), route.body);
        const error = answer.body.error as { code?: string; message?: string } | undefined;
        const ok =
          answer.status === 400 &&
          Object.keys(answer.body).join() === 'error' &&
          Object.keys(error ?? {})
            .sort()
            .join() === 'code,message' &&
          error?.code === 'SERIAL_INVALID' &&
          /serial/i.test(error.message ?? '') &&
          // The answer quotes at most a bounded piece of what was sent.
          (error.message ?? '').length < 300;
        if (!ok) wrong.push(`${route.method} ${route.path('{serial}')}: ${answer.status} ${JSON.stringify(answer.body).slice(0, 120)}`);
      }
      assert.deepEqual(wrong, []);
    });
  }

  it('still answers 404 for a well-formed serial of the maximum length that names no token', async () => {
    const serial = 'S'.repeat(128);
    assert.equal((await call('GET', `tokens/${serial}`)).status, 404);
    assert.equal((await call('POST', `tokens/${serial}/verify`, { code: '123456' })).status, 404);
    assert.equal((await call('DELETE', `assignments/${serial}`)).status, 404);
  });
});
