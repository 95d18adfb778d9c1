// KeyVaultSecretStore with the real @azure/keyvault-secrets client against the Key Vault stand-in.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import type { SecretClient } from '@azure/keyvault-secrets';
import { createLocalSecretClient } from '../../dev/keyvault/client.js';
import type { KeyVaultStandIn } from '../../dev/keyvault/server.js';
import { KeyVaultSecretStore } from '../../shared/azure/secret-store.js';
import { SecretDeletedError, TransientError } from '../../shared/pipeline/errors.js';
import { startFailingServer, startTestVault, uniqueName } from './helpers.js';

let vault: KeyVaultStandIn;
/** The client as the pipeline builds it: no SDK retries. */
let client: SecretClient;
let store: KeyVaultSecretStore;

const options = { contentType: 'application/vnd.entra-oath.seed+json', tags: { serial: 'A1', manufacturer: 'Token2' } };

before(async () => {
  vault = await startTestVault();
  client = createLocalSecretClient(vault.url, { retryOptions: { maxRetries: 0 } });
  store = new KeyVaultSecretStore(client, { timeoutMs: 2_000, recoverPollMs: 50 });
});

after(async () => {
  await vault?.close();
});

beforeEach(() => {
  vault.setRealism({ throttling: false, latencyMs: 0, errorRate: 0, timeoutRate: 0 });
});

async function deleteWithRawClient(name: string): Promise<void> {
  const poller = await client.beginDeleteSecret(name, { intervalInMs: 50 });
  await poller.pollUntilDone();
}

void describe('get and set', () => {
  void test('set passes value, content type and tags; get returns the latest version', async () => {
    const name = uniqueName('oath-');
    const first = await store.set(name, 'seed-one', options);
    assert.match(first.version, /^[0-9a-f]{32}$/);
    assert.deepEqual(await store.get(name), {
      value: 'seed-one',
      version: first.version,
      contentType: options.contentType,
      tags: options.tags,
    });

    const second = await store.set(name, 'seed-two', { contentType: 'text/plain', tags: {} });
    assert.notEqual(second.version, first.version);
    assert.deepEqual(await store.get(name), { value: 'seed-two', version: second.version, contentType: 'text/plain', tags: {} });
    assert.equal(vault.stats().versionsPerSecret[name], 2);
  });

  void test('names are case-insensitive, as in the vault', async () => {
    const name = uniqueName('oath-x-');
    await store.set(name, 'v', options);
    assert.equal((await store.get(name.toUpperCase()))?.value, 'v');
  });

  void test('get of a name never written is undefined', async () => {
    assert.equal(await store.get(uniqueName('never-')), undefined);
  });
});

void describe('versions and disabling', () => {
  void test('get with a version reads that version; an unknown version is undefined', async () => {
    const name = uniqueName('oath-');
    const first = await store.set(name, 'seed-one', options);
    const second = await store.set(name, 'seed-two', options);
    assert.equal((await store.get(name, first.version))?.value, 'seed-one');
    assert.equal((await store.get(name, second.version))?.version, second.version);
    assert.equal(await store.get(name, '0'.repeat(32)), undefined);
  });

  void test('a disabled version reads as undefined; a disabled newest version falls back to the newest enabled one', async () => {
    const name = uniqueName('oath-');
    const first = await store.set(name, 'seed-one', options);
    const second = await store.set(name, 'seed-two', options);
    await store.disable(name, second.version);
    // Key Vault itself refuses the name now (403 SecretDisabled): the adapter answers with the version before.
    await assert.rejects(client.getSecret(name), (e: unknown) => (e as { statusCode?: number }).statusCode === 403);
    assert.equal(await store.get(name, second.version), undefined);
    assert.deepEqual(await store.get(name), {
      value: 'seed-one',
      version: first.version,
      contentType: options.contentType,
      tags: options.tags,
    });

    await store.disable(name, second.version); // again: nothing changes
    await store.disable(name, first.version);
    assert.equal(await store.get(name), undefined, 'no enabled version left');
    assert.equal(vault.stats().versionsPerSecret[name], 2, 'disabling removes nothing');
  });

  void test('disabling a version or a name that does not exist changes nothing', async () => {
    const name = uniqueName('oath-');
    await store.disable(name, '0'.repeat(32));
    const { version } = await store.set(name, 'v', options);
    await store.disable(name, '1'.repeat(32));
    assert.equal((await store.get(name))?.version, version);
  });

  void test('a failed disable is a TransientError and leaves the version enabled', async () => {
    const name = uniqueName('oath-');
    const { version } = await store.set(name, 'v', options);
    vault.setRealism({ errorRate: 1 });
    await assert.rejects(
      store.disable(name, version),
      (e: unknown) => e instanceof TransientError && (e.status === 500 || e.status === 503),
    );
    vault.setRealism({ errorRate: 0 });
    assert.equal((await store.get(name, version))?.value, 'v');
  });
});

void describe('soft delete and recovery', () => {
  void test('a deleted secret reads as undefined, set throws SecretDeletedError, recover brings it back', async () => {
    const name = uniqueName('oath-');
    const { version } = await store.set(name, 'kept', options);
    await deleteWithRawClient(name);

    assert.equal(await store.get(name), undefined);
    await assert.rejects(
      store.set(name, 'new', options),
      (e: unknown) => e instanceof SecretDeletedError && e.secretName === name && !e.beingDeleted,
    );

    await store.recover(name);
    assert.deepEqual(await store.get(name), { value: 'kept', version, contentType: options.contentType, tags: options.tags });
    const next = await store.set(name, 'new', options);
    assert.notEqual(next.version, version);
  });

  void test('recover of a secret that is not deleted, or never existed, changes nothing', async () => {
    const name = uniqueName('oath-');
    const { version } = await store.set(name, 'active', options);
    await store.recover(name);
    assert.equal((await store.get(name))?.version, version);
    const stranger = uniqueName('never-');
    await store.recover(stranger);
    assert.equal(await store.get(stranger), undefined);
  });
});

void describe('transient failures (SDK retries off, so each is seen once)', () => {
  void test('a throttled create (budget 1 per 10 s) is a TransientError 429 and does not write', async () => {
    vault.setRealism({ throttling: true, createsPer10s: 1 });
    const before = vault.stats();
    const ok = uniqueName('oath-');
    const throttled = uniqueName('oath-');
    await store.set(ok, 'v', options);
    await assert.rejects(
      store.set(throttled, 'v', options),
      (e: unknown) => e instanceof TransientError && e.status === 429 && e.retryAfterMs === undefined,
    );
    const stats = vault.stats();
    assert.equal(stats.throttled - before.throttled, 1, 'exactly one throttled request: no SDK retry');
    vault.setRealism({ throttling: false });
    assert.equal(await store.get(throttled), undefined);
  });

  void test('throttled reads are transient too', async () => {
    const name = uniqueName('oath-');
    await store.set(name, 'v', options);
    vault.setRealism({ throttling: true, othersPer10s: 1 });
    await store.get(name).catch(() => undefined); // may use the last slot
    await assert.rejects(store.get(name), (e: unknown) => e instanceof TransientError && e.status === 429);
  });

  void test('injected 5xx are TransientError with the status, for get, set and recover', async () => {
    const name = uniqueName('oath-');
    await store.set(name, 'v', options);
    vault.setRealism({ errorRate: 1 });
    const before = vault.stats().faults;
    const isServerError = (e: unknown) => e instanceof TransientError && (e.status === 503 || e.status === 500);
    await assert.rejects(store.get(name), isServerError);
    await assert.rejects(store.set(name, 'w', options), isServerError);
    assert.equal(vault.stats().faults - before, 2, 'one request per call');
    // The SDK's recovery poller reads first and swallows that failure; the recover call itself then fails.
    await assert.rejects(store.recover(name), isServerError);
    vault.setRealism({ errorRate: 0 });
    assert.equal((await store.get(name))?.value, 'v', 'nothing written by the failed set');
  });

  void test('a call that gets no answer within the timeout is a TransientError', async () => {
    const name = uniqueName('oath-');
    vault.setRealism({ timeoutRate: 1, timeoutMs: 10_000 });
    const quick = new KeyVaultSecretStore(client, { timeoutMs: 200 });
    const started = Date.now();
    await assert.rejects(
      quick.get(name),
      (e: unknown) => e instanceof TransientError && e.status === undefined && /timed out/.test(e.message),
    );
    await assert.rejects(quick.set(name, 'v', options), TransientError);
    assert.ok(Date.now() - started < 3_000, 'the per-call timeout, not the server, ended the calls');
  });

  void test('a dropped connection is a TransientError', async () => {
    vault.setRealism({ timeoutRate: 1, timeoutMs: 50 });
    await assert.rejects(
      store.get(uniqueName('oath-')),
      (e: unknown) => e instanceof TransientError && /ECONNRESET|connection/.test(e.message),
    );
  });

  void test('Retry-After is passed on as retryAfterMs', async (t) => {
    // A server that is throttling before it even challenges: the SDK surfaces the 429 as is.
    const failing = await startFailingServer(429, { 'retry-after': '3' });
    t.after(() => failing.close());
    const busy = new KeyVaultSecretStore(createLocalSecretClient(failing.url, { retryOptions: { maxRetries: 0 } }));
    await assert.rejects(busy.get('oath-a'), (e: unknown) => e instanceof TransientError && e.status === 429 && e.retryAfterMs === 3000);
    assert.equal(failing.requests, 1);
  });

  void test('other failures are plain errors that carry no secret value', async () => {
    const value = 'x'.repeat(30 * 1024); // over the 25 KB limit: 400 BadParameter
    const error = await store.set(uniqueName('oath-'), value, options).then(
      () => assert.fail('expected a failure'),
      (e: unknown) => e as Error & { statusCode?: number },
    );
    assert.ok(!(error instanceof TransientError));
    assert.equal(error.statusCode, 400);
    assert.ok(!JSON.stringify({ ...error, message: error.message, stack: error.stack }).includes('xxxxxxxxxx'));
    assert.equal((error as { request?: unknown }).request, undefined);
  });
});
