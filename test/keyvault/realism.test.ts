// Switchable realism of the Key Vault stand-in: throttling as documented in "Azure Key Vault throttling guidance"
// and "Azure Key Vault REST API Error Codes" (429 Throttled, rejected calls not counted, usually no Retry-After),
// injected faults (500/503, unanswered requests), added latency, counters and the admin HTTP surface.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { createLocalSecretClient } from '../../dev/keyvault/client.js';
import type { KeyVaultStats } from '../../dev/keyvault/server.js';
import { API, errorOf, raw, restErrorOf, startForTest } from './helpers.js';

void test('Azure Key Vault throttling guidance: past the create budget the set gets 429 Throttled, without Retry-After', async (t) => {
  const kv = await startForTest(t, { realism: { throttling: true, createsPer10s: 5 } });
  for (let i = 0; i < 5; i++) {
    const ok = await raw(kv, 'PUT', `/secrets/burst-${i}?${API}`, { value: 'v' });
    assert.equal(ok.status, 200, `create ${i + 1} is within the budget`);
  }
  const sixth = await raw(kv, 'PUT', `/secrets/burst-5?${API}`, { value: 'v' });
  assert.equal(sixth.status, 429);
  assert.equal(errorOf(sixth.body).code, 'Throttled');
  assert.equal(sixth.headers.get('retry-after'), null);

  // Reads have their own budget, so they still pass.
  assert.equal((await raw(kv, 'GET', `/secrets/burst-0/?${API}`)).status, 200);

  // The SDK does not retry a 429 without Retry-After: the caller sees it and must back off itself.
  const client = createLocalSecretClient(kv.url);
  const err = await restErrorOf(() => client.setSecret('burst-6', 'v'));
  assert.equal(err.statusCode, 429);
  assert.equal(err.code, 'Throttled');

  const stats = kv.stats();
  assert.equal(stats.creates, 5);
  assert.equal(stats.throttled, 2);
  assert.equal(stats.statusCodes['429'], 2);
  assert.equal(stats.versionsPerSecret['burst-5'], undefined, 'a throttled create stores nothing');

  // Switching throttling off at runtime lifts the limit at once.
  kv.setRealism({ throttling: false });
  assert.equal((await client.setSecret('burst-6', 'v')).value, 'v');
});

void test('Azure Key Vault throttling guidance: other operations have their own budget', async (t) => {
  const kv = await startForTest(t, { realism: { throttling: true, createsPer10s: 100, othersPer10s: 3 } });
  await raw(kv, 'PUT', `/secrets/read-me?${API}`, { value: 'v' });
  assert.equal((await raw(kv, 'GET', `/secrets/read-me/?${API}`)).status, 200);
  assert.equal((await raw(kv, 'GET', `/secrets?${API}`)).status, 200);
  assert.equal((await raw(kv, 'PATCH', `/secrets/read-me/?${API}`, { tags: { a: 'b' } })).status, 200);
  const fourth = await raw(kv, 'DELETE', `/secrets/read-me?${API}`);
  assert.equal(fourth.status, 429);
  assert.equal(errorOf(fourth.body).code, 'Throttled');
  assert.equal((await raw(kv, 'PUT', `/secrets/still-creating?${API}`, { value: 'v' })).status, 200, 'creates unaffected');
  assert.equal(kv.stats().operations.deleteSecret, 0, 'a throttled call never reaches the operation');
});

void test('Azure Key Vault throttling guidance: rejected calls do not count toward the 10-second budget', async (t) => {
  const kv = await startForTest(t, { realism: { throttling: true, createsPer10s: 3 } });
  const put = async (name: string): Promise<number> => (await raw(kv, 'PUT', `/secrets/${name}?${API}`, { value: 'v' })).status;
  const windowStart = Date.now();
  for (let i = 0; i < 3; i++) assert.equal(await put(`w1-${i}`), 200);
  await delay(8_000);
  for (let i = 0; i < 5; i++) assert.equal(await put(`rejected-${i}`), 429, 'budget spent for this window');
  await delay(Math.max(0, windowStart + 10_300 - Date.now()));
  // The first three fell out of the window; had the rejected ones counted, they would still fill it.
  for (let i = 0; i < 3; i++) assert.equal(await put(`w2-${i}`), 200, `create ${i + 1} after the window moved`);
  assert.equal(await put('w2-over'), 429);
  assert.equal(kv.stats().throttled, 6);
});

void test('fault injection: a share of calls answer 500/503 with Key Vault-shaped bodies and change nothing', async (t) => {
  const kv = await startForTest(t, { realism: { errorRate: 1 } });
  const statuses = new Set<number>();
  for (let i = 0; i < 40; i++) {
    const res = await raw(kv, 'PUT', `/secrets/faulty?${API}`, { value: 'v' });
    statuses.add(res.status);
    const code = errorOf(res.body).code;
    assert.ok(
      (res.status === 500 && code === 'InternalServerError') || (res.status === 503 && code === 'ServiceUnavailable'),
      `${res.status} ${code}`,
    );
  }
  assert.deepEqual([...statuses].sort(), [500, 503], 'both kinds are injected');
  let stats = kv.stats();
  assert.equal(stats.faults, 40);
  assert.equal(stats.faultsByKind.status500 + stats.faultsByKind.status503, 40);
  assert.equal(stats.creates, 0);
  assert.equal(stats.versionsPerSecret.faulty, undefined);

  // The SDK retries 500/503; with every call failing it gives up after maxRetries + 1 attempts.
  const client = createLocalSecretClient(kv.url, { retryOptions: { maxRetries: 2, retryDelayInMs: 10, maxRetryDelayInMs: 20 } });
  const err = await restErrorOf(() => client.setSecret('faulty', 'v'));
  assert.ok(err.statusCode === 500 || err.statusCode === 503);
  stats = kv.stats();
  assert.equal(stats.faults, 40 + 3, 'the challenge is answered first, then three faulted attempts');

  // Partial rates: roughly the configured share fails.
  kv.setRealism({ errorRate: 0.3 });
  let failed = 0;
  for (let i = 0; i < 200; i++) if ((await raw(kv, 'GET', `/secrets?${API}`)).status >= 500) failed++;
  assert.ok(failed > 200 * 0.15 && failed < 200 * 0.45, `${failed}/200 failed at errorRate 0.3`);

  // A client with default-style retries rides over a fault that clears.
  kv.setRealism({ errorRate: 1 });
  const retrying = createLocalSecretClient(kv.url, { retryOptions: { retryDelayInMs: 100 } });
  setTimeout(() => kv.setRealism({ errorRate: 0 }), 50);
  assert.equal((await retrying.setSecret('faulty', 'eventually')).value, 'eventually');
});

void test('fault injection: timeouts leave requests unanswered until the client gives up', async (t) => {
  const kv = await startForTest(t, { realism: { timeoutRate: 1, timeoutMs: 60_000 } });
  const client = createLocalSecretClient(kv.url, { retryOptions: { maxRetries: 0 } });
  const started = Date.now();
  await assert.rejects(client.getSecret('slow', { abortSignal: AbortSignal.timeout(300) }), (err: Error) => {
    assert.match(err.name, /AbortError|TimeoutError/);
    return true;
  });
  assert.ok(Date.now() - started < 5_000);
  assert.equal(kv.stats().faultsByKind.timeouts, 1);

  // With a short hold the server drops the connection itself: the caller sees a network error, not a status.
  kv.setRealism({ timeoutMs: 200 });
  const heldFrom = Date.now();
  await assert.rejects(raw(kv, 'GET', `/secrets/slow/?${API}`));
  assert.ok(Date.now() - heldFrom >= 180, 'held for about timeoutMs');
  assert.equal(kv.stats().faultsByKind.timeouts, 2);

  // close() must not wait for held requests.
  kv.setRealism({ timeoutMs: 60_000 });
  const pending = raw(kv, 'GET', `/secrets/slow/?${API}`).catch(() => 'dropped');
  await delay(100);
  const closing = Date.now();
  await kv.close();
  assert.ok(Date.now() - closing < 2_000, 'close is prompt');
  assert.equal(await pending, 'dropped');
});

void test('latency: every call is delayed by latencyMs, changeable at runtime', async (t) => {
  const kv = await startForTest(t, { realism: { latencyMs: 150 } });
  let started = Date.now();
  assert.equal((await raw(kv, 'GET', `/secrets?${API}`)).status, 200);
  assert.ok(Date.now() - started >= 145, `took ${Date.now() - started} ms`);
  kv.setRealism({ latencyMs: 0 });
  started = Date.now();
  await raw(kv, 'GET', `/secrets?${API}`);
  assert.ok(Date.now() - started < 140, 'latency removed');
});

void test('counters: per-operation counts and create timestamps for creates/second', async (t) => {
  const kv = await startForTest(t);
  const client = createLocalSecretClient(kv.url);
  const before = Date.now();
  for (let i = 0; i < 10; i++) await client.setSecret(`count-${i}`, 'v');
  await client.setSecret('count-0', 'second version');
  await client.getSecret('count-1');
  await client.getSecret('count-1');
  for await (const _ of client.listPropertiesOfSecrets()) {
    // drain
  }
  const after = Date.now();
  const stats: KeyVaultStats = kv.stats();
  assert.equal(stats.creates, 11);
  assert.equal(stats.createTimestamps.length, 11);
  assert.ok(stats.createTimestamps.every((ts, i, all) => ts >= before && ts <= after && (i === 0 || ts >= (all[i - 1] ?? 0))));
  assert.equal(stats.operations.setSecret, 11);
  assert.equal(stats.operations.getSecret, 2);
  assert.equal(stats.operations.getSecrets, 1);
  assert.equal(stats.versionsPerSecret['count-0'], 2);
  assert.equal(stats.versionsPerSecret['count-9'], 1);
  assert.equal(stats.secrets, 10);
});

void test('admin surface: /_admin/stats, /_admin/realism and /_admin/reset need no token', async (t) => {
  const kv = await startForTest(t);
  const admin = (method: string, what: string, body?: unknown) => raw(kv, method, `/_admin/${what}`, body, { auth: false });

  await raw(kv, 'PUT', `/secrets/admin-a?${API}`, { value: 'v' });
  const stats = await admin('GET', 'stats');
  assert.equal(stats.status, 200);
  assert.equal((stats.body as KeyVaultStats).creates, 1);
  assert.equal((stats.body as KeyVaultStats).createTimestamps.length, 1);

  const set = await admin('POST', 'realism', { throttling: true, createsPer10s: 1 });
  assert.equal(set.status, 200);
  assert.equal(kv.stats().realism.throttling, true);
  assert.equal(kv.stats().realism.createsPer10s, 1);
  assert.equal((await raw(kv, 'PUT', `/secrets/admin-b?${API}`, { value: 'v' })).status, 200);
  assert.equal((await raw(kv, 'PUT', `/secrets/admin-c?${API}`, { value: 'v' })).status, 429, 'budget of 1 used');

  for (const bad of [{ errorRate: 2 }, { createsPer10s: 0 }, { noSuchSetting: 1 }, { errorRate: 0.6, timeoutRate: 0.6 }]) {
    const res = await admin('POST', 'realism', bad);
    assert.equal(res.status, 400, JSON.stringify(bad));
  }
  assert.equal(kv.stats().realism.errorRate, 0, 'rejected settings change nothing');

  const reset = await admin('POST', 'reset');
  assert.equal(reset.status, 200);
  const cleared = kv.stats();
  assert.equal(cleared.creates, 0);
  assert.equal(cleared.throttled, 0);
  assert.equal(cleared.requests, 0, 'admin calls are not counted');
  assert.equal(cleared.secrets, 2, 'plain reset keeps the data');
  assert.equal((await raw(kv, 'PUT', `/secrets/admin-c?${API}`, { value: 'v' })).status, 200, 'throttle window cleared');

  await admin('POST', 'reset', { data: true });
  assert.equal(kv.stats().secrets, 0);
  assert.equal((await admin('GET', 'nope')).status, 404);
});

void test('setRealism validates its input', async (t) => {
  const kv = await startForTest(t);
  assert.throws(() => kv.setRealism({ errorRate: -0.1 }), TypeError);
  assert.throws(() => kv.setRealism({ timeoutRate: 1.5 }), TypeError);
  assert.throws(() => kv.setRealism({ othersPer10s: 2.5 }), TypeError);
  assert.throws(() => kv.setRealism({ latencyMs: -1 }), TypeError);
  kv.setRealism({ latencyMs: 5, othersPer10s: 10 });
  assert.equal(kv.stats().realism.latencyMs, 5);
  assert.equal(kv.stats().realism.othersPer10s, 10);
  assert.equal(kv.stats().realism.createsPer10s, 300, 'unspecified settings keep their value');
  assert.equal(kv.stats().realism.throttling, false, 'throttling is off unless asked for');
});
