// Switchable realism of the Key Vault stand-in: throttling as documented in "Azure Key Vault throttling guidance"
// and "Azure Key Vault REST API Error Codes" (429 Throttled, rejected calls not counted, usually no Retry-After),
// injected faults (500/503, unanswered requests), added latency, counters and the admin HTTP surface.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLocalSecretClient } from '../../../dev/keyvault/client.js';
import type { KeyVaultStats } from '../../../dev/keyvault/server.js';
import { ManualClock } from '../../helpers/clock.js';
import { API, ManualWaits, errorOf, raw, restErrorOf, startForTest } from './helpers.js';

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
  const clock = new ManualClock();
  const kv = await startForTest(t, { realism: { throttling: true, createsPer10s: 3 }, clock });
  const put = async (name: string): Promise<number> => (await raw(kv, 'PUT', `/secrets/${name}?${API}`, { value: 'v' })).status;
  for (let i = 0; i < 3; i++) assert.equal(await put(`w1-${i}`), 200);
  clock.advance(8_000);
  for (let i = 0; i < 5; i++) assert.equal(await put(`rejected-${i}`), 429, 'budget spent for this window');
  clock.advance(2_000);
  // The first three fell out of the window; had the rejected ones counted, they would still fill it.
  for (let i = 0; i < 3; i++) assert.equal(await put(`w2-${i}`), 200, `create ${i + 1} after the window moved`);
  assert.equal(await put('w2-over'), 429);
  assert.equal(kv.stats().throttled, 6);
});

void test('Azure Key Vault throttling guidance: an accepted call counts for exactly 10 seconds', async (t) => {
  const clock = new ManualClock();
  const kv = await startForTest(t, { realism: { throttling: true, createsPer10s: 1, othersPer10s: 1 }, clock });
  assert.equal((await raw(kv, 'PUT', `/secrets/edge?${API}`, { value: 'v' })).status, 200);
  assert.equal((await raw(kv, 'GET', `/secrets/edge/?${API}`)).status, 200);
  clock.advance(9_999);
  assert.equal((await raw(kv, 'PUT', `/secrets/edge?${API}`, { value: 'v' })).status, 429, 'create still inside the window');
  assert.equal((await raw(kv, 'GET', `/secrets/edge/?${API}`)).status, 429, 'read still inside the window');
  clock.advance(1);
  assert.equal((await raw(kv, 'PUT', `/secrets/edge?${API}`, { value: 'v' })).status, 200, 'create budget back after 10 s');
  assert.equal((await raw(kv, 'GET', `/secrets/edge/?${API}`)).status, 200, 'read budget back after 10 s');
  const stats = kv.stats();
  assert.deepEqual(
    stats.createTimestamps,
    [0, 10_000].map((ms) => clock.now().getTime() - 10_000 + ms),
    'timestamps come from the clock',
  );
});

void test('fault injection: a share of calls answer 500/503 with Key Vault-shaped bodies and change nothing', async (t) => {
  let clearAfterFault = false;
  const kv = await startForTest(t, {
    realism: { errorRate: 1 },
    // One line per answered request, logged as it goes out.
    log: (line) => {
      if (clearAfterFault && / -> 50[03] /.test(line)) {
        clearAfterFault = false;
        kv.setRealism({ errorRate: 0 });
      }
    },
  });
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

  // A client with default-style retries rides over a fault that clears: it clears once a faulted answer went out.
  kv.setRealism({ errorRate: 1 });
  clearAfterFault = true;
  const retrying = createLocalSecretClient(kv.url, { retryOptions: { retryDelayInMs: 100 } });
  assert.equal((await retrying.setSecret('faulty', 'eventually')).value, 'eventually');
  assert.equal(kv.stats().realism.errorRate, 0, 'the fault cleared while the client retried');
});

void test('fault injection: timeouts leave requests unanswered until the client gives up', async (t) => {
  const waits = new ManualWaits();
  const kv = await startForTest(t, { realism: { timeoutRate: 1, timeoutMs: 60_000 }, wait: waits.wait });
  const client = createLocalSecretClient(kv.url, { retryOptions: { maxRetries: 0 } });
  const giveUp = new AbortController();
  const gettingSlow = assert.rejects(client.getSecret('slow', { abortSignal: giveUp.signal }), (err: Error) => {
    assert.match(err.name, /AbortError|TimeoutError/);
    return true;
  });
  const held = await waits.next();
  assert.equal(held.ms, 60_000, 'held for timeoutMs');
  giveUp.abort();
  await gettingSlow;
  assert.equal(await held.outcome, 'aborted', 'the stand-in stops holding once the client is gone');
  assert.equal(kv.stats().faultsByKind.timeouts, 1);

  // When the hold ends the server drops the connection itself: the caller sees a network error, not a status.
  kv.setRealism({ timeoutMs: 200 });
  let dropped = false;
  const droppedCall = assert.rejects(raw(kv, 'GET', `/secrets/slow/?${API}`)).then(() => (dropped = true));
  const shortHold = await waits.next();
  assert.equal(shortHold.ms, 200);
  await raw(kv, 'GET', '/_admin/stats', undefined, { auth: false });
  assert.equal(dropped, false, 'still held while the hold lasts');
  shortHold.release();
  await droppedCall;
  assert.equal(kv.stats().faultsByKind.timeouts, 2);

  // close() must not wait for held requests: it ends them (a close that waited would never return here).
  kv.setRealism({ timeoutMs: 60_000 });
  const pending = raw(kv, 'GET', `/secrets/slow/?${API}`).catch(() => 'dropped');
  const longHold = await waits.next();
  await kv.close();
  assert.equal(await pending, 'dropped');
  assert.equal(await longHold.outcome, 'aborted');
});

void test('latency: every call waits latencyMs before it is answered, changeable at runtime', async (t) => {
  const waits = new ManualWaits();
  const kv = await startForTest(t, { realism: { latencyMs: 150 }, wait: waits.wait });
  let answered = false;
  const call = raw(kv, 'GET', `/secrets?${API}`).then((res) => {
    answered = true;
    return res;
  });
  const latency = await waits.next();
  assert.equal(latency.ms, 150);
  // Admin calls bypass the latency: one round trip shows the server is serving while the API call still waits.
  assert.equal((await raw(kv, 'GET', '/_admin/stats', undefined, { auth: false })).status, 200);
  assert.equal(answered, false, 'not answered before the latency has passed');
  latency.release();
  assert.equal((await call).status, 200);

  kv.setRealism({ latencyMs: 0 });
  assert.equal((await raw(kv, 'GET', `/secrets?${API}`)).status, 200);
  assert.equal(waits.started.length, 1, 'latency removed: no more waits');
});

void test('fault injection by count: every Nth create throttled, every Nth call failed or held, whatever the speed', async (t) => {
  const waits = new ManualWaits();
  const kv = await startForTest(t, { realism: { throttleEveryNthCreate: 3, timeoutMs: 500 }, wait: waits.wait });
  const admin = (what: string, body?: unknown) => raw(kv, 'POST', `/_admin/${what}`, body, { auth: false });
  const get = async (): Promise<number> => (await raw(kv, 'GET', `/secrets?${API}`)).status;

  const creates: number[] = [];
  for (let i = 0; i < 9; i++) creates.push((await raw(kv, 'PUT', `/secrets/nth-${i}?${API}`, { value: 'v' })).status);
  assert.deepEqual(creates, [200, 200, 429, 200, 200, 429, 200, 200, 429]);
  assert.deepEqual([await get(), await get(), await get()], [200, 200, 200], 'reads are not creates');
  let stats = kv.stats();
  assert.equal(stats.creates, 6);
  assert.equal(stats.throttled, 3);
  const more: number[] = [];
  for (let i = 9; i < 12; i++) more.push((await raw(kv, 'PUT', `/secrets/nth-${i}?${API}`, { value: 'v' })).status);
  assert.deepEqual(more, [200, 200, 429], 'the count carries on: the 12th create is refused');
  assert.equal(kv.stats().versionsPerSecret['nth-2'], undefined, 'a throttled create stores nothing');

  // Every second call fails, 503 and 500 in turn; a reset starts the count again.
  assert.equal((await admin('realism', { throttleEveryNthCreate: 0, errorEveryNth: 2 })).status, 200);
  await admin('reset');
  assert.deepEqual([await get(), await get(), await get(), await get(), await get(), await get()], [200, 503, 200, 500, 200, 503]);
  stats = kv.stats();
  assert.deepEqual([stats.faults, stats.faultsByKind.status503, stats.faultsByKind.status500], [3, 2, 1]);

  // Every third call is held for timeoutMs, then dropped.
  kv.setRealism({ errorEveryNth: 0, timeoutEveryNth: 3 });
  await admin('reset');
  assert.deepEqual([await get(), await get()], [200, 200]);
  const third = assert.rejects(raw(kv, 'GET', `/secrets?${API}`));
  const hold = await waits.next();
  assert.equal(hold.ms, 500);
  hold.release();
  await third;
  assert.equal(await get(), 200);
  assert.equal(kv.stats().faultsByKind.timeouts, 1);

  for (const bad of [{ errorEveryNth: -1 }, { timeoutEveryNth: 1.5 }, { throttleEveryNthCreate: 'x' }]) {
    assert.equal((await admin('realism', bad)).status, 400, JSON.stringify(bad));
  }
  assert.equal(kv.stats().realism.timeoutEveryNth, 3, 'rejected settings change nothing');
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
