// Conformance of the Key Vault stand-in with the secrets REST API, driven by the real SecretClient.
// Each test names the Key Vault REST API reference page (API version 7.4 pages, same shapes in later versions)
// whose status codes, bodies and error codes it checks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLocalSecretClient } from '../../../dev/keyvault/client.js';
import { LOCAL_TENANT_ID } from '../../../dev/keyvault/server.js';
import { API, API_ENCODED, VERSION_PATTERN, errorOf, raw, restErrorOf, startForTest, uniqueName } from './helpers.js';

void test('Azure Key Vault REST API Error Codes (HTTP 401): a request without a token gets the bearer challenge', async (t) => {
  const kv = await startForTest(t);
  const res = await raw(kv, 'GET', `/secrets/anything/?${API}`, undefined, { auth: false });
  assert.equal(res.status, 401);
  assert.equal(
    res.headers.get('www-authenticate'),
    `Bearer authorization="https://login.microsoftonline.com/${LOCAL_TENANT_ID}", resource="https://vault.azure.net"`,
  );
  assert.match(LOCAL_TENANT_ID, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  assert.equal(errorOf(res.body).code, 'Unauthorized');

  // The SDK's first call goes out without token or body, gets the challenge, then resends with both.
  const client = createLocalSecretClient(kv.url);
  const set = await client.setSecret('challenge-first', 'value-after-challenge');
  assert.equal(set.value, 'value-after-challenge');
  assert.equal((await client.getSecret('challenge-first')).value, 'value-after-challenge');
  const stats = kv.stats();
  assert.equal(stats.challenges, 2, 'one from the raw call, one from the SDK, none after the token is cached');
  assert.equal(stats.statusCodes['401'], 2);
});

void test('Set Secret - REST API (Azure Key Vault) 7.4: every set makes a new 32-hex version; tags and content type kept', async (t) => {
  const kv = await startForTest(t);
  const client = createLocalSecretClient(kv.url);
  const name = uniqueName('set');
  const first = await client.setSecret(name, 'same-value', { contentType: 'application/x-seed', tags: { serial: 'A-1', kind: 'totp' } });
  const second = await client.setSecret(name, 'same-value');
  assert.equal(first.value, 'same-value');
  assert.equal(first.name, name);
  assert.match(first.properties.version ?? '', VERSION_PATTERN);
  assert.match(second.properties.version ?? '', VERSION_PATTERN);
  assert.notEqual(first.properties.version, second.properties.version, 'same value still yields a new version');
  assert.equal(first.properties.id, `${kv.url}/secrets/${name}/${first.properties.version}`);
  assert.equal(first.properties.vaultUrl, kv.url);
  assert.equal(first.properties.contentType, 'application/x-seed');
  assert.deepEqual(first.properties.tags, { serial: 'A-1', kind: 'totp' });
  assert.equal(first.properties.enabled, true);
  assert.equal(first.properties.recoveryLevel, 'Recoverable+Purgeable');
  assert.ok(first.properties.createdOn instanceof Date);
  assert.ok(Math.abs((first.properties.createdOn?.getTime() ?? 0) - Date.now()) < 5_000);
  assert.equal(kv.stats().versionsPerSecret[name], 2);
  assert.equal(kv.stats().creates, 2);

  // Raw shape, with the query key percent-encoded as the SDK sends it.
  const res = await raw(kv, 'PUT', `/secrets/${name}?${API_ENCODED}`, { value: 'v3', attributes: { enabled: false } });
  assert.equal(res.status, 200);
  const body = res.body as { value: string; id: string; attributes: Record<string, unknown> };
  assert.equal(body.value, 'v3');
  assert.match(body.id, new RegExp(`^${kv.url}/secrets/${name}/[0-9a-f]{32}$`));
  assert.equal(body.attributes.enabled, false);
  assert.equal(typeof body.attributes.created, 'number');
  assert.equal(body.attributes.created, body.attributes.updated);
  assert.ok(Number.isInteger(body.attributes.created), 'epoch seconds');

  const noValue = await raw(kv, 'PUT', `/secrets/${name}?${API}`, { contentType: 'x' });
  assert.equal(noValue.status, 400);
  assert.equal(errorOf(noValue.body).code, 'BadParameter');
  const noApiVersion = await raw(kv, 'PUT', `/secrets/${name}`, { value: 'v' });
  assert.equal(noApiVersion.status, 400);
  assert.equal(errorOf(noApiVersion.body).code, 'BadParameter');
});

void test('Get Secret - REST API (Azure Key Vault) 7.4: latest (trailing slash) and by version; 404 SecretNotFound', async (t) => {
  const kv = await startForTest(t);
  const client = createLocalSecretClient(kv.url);
  const name = uniqueName('get');
  const v1 = await client.setSecret(name, 'one');
  const v2 = await client.setSecret(name, 'two');

  assert.equal((await client.getSecret(name)).value, 'two');
  const old = await client.getSecret(name, { version: v1.properties.version });
  assert.equal(old.value, 'one');
  assert.equal(old.properties.version, v1.properties.version);

  const latest = await raw(kv, 'GET', `/secrets/${name}/?${API_ENCODED}`);
  assert.equal(latest.status, 200);
  assert.equal((latest.body as { id: string }).id, v2.properties.id);
  const byVersion = await raw(kv, 'GET', `/secrets/${name}/${v1.properties.version}?${API}`);
  assert.equal((byVersion.body as { value: string }).value, 'one');

  const missing = await restErrorOf(() => client.getSecret(uniqueName('never-set')));
  assert.equal(missing.statusCode, 404);
  assert.equal(missing.code, 'SecretNotFound');
  const missingVersion = await raw(kv, 'GET', `/secrets/${name}/${'0'.repeat(32)}?${API}`);
  assert.equal(missingVersion.status, 404);
  assert.equal(errorOf(missingVersion.body).code, 'SecretNotFound');
  assert.match(errorOf(missingVersion.body).message, new RegExp(`${name}/0{32}`));
});

void test('Update Secret - REST API (Azure Key Vault) 7.4: PATCH changes attributes, tags and content type, never the value', async (t) => {
  const kv = await startForTest(t);
  const client = createLocalSecretClient(kv.url);
  const name = uniqueName('update');
  const v1 = await client.setSecret(name, 'first', { tags: { a: '1' } });
  const v2 = await client.setSecret(name, 'second', { tags: { keep: 'me' } });

  const updated = await client.updateSecretProperties(name, v1.properties.version ?? '', {
    tags: { b: '2' },
    contentType: 'text/plain',
  });
  assert.equal(updated.version, v1.properties.version);
  assert.deepEqual(updated.tags, { b: '2' }, 'tags given replace the whole set');
  assert.equal(updated.contentType, 'text/plain');
  const after = await client.getSecret(name, { version: v1.properties.version });
  assert.equal(after.value, 'first');
  assert.deepEqual(after.properties.tags, { b: '2' });
  assert.deepEqual((await client.getSecret(name)).properties.tags, { keep: 'me' }, 'other versions untouched');
  assert.equal(kv.stats().versionsPerSecret[name], 2, 'an update is not a new version');
  assert.equal(kv.stats().creates, 2, 'an update is not a create');

  // Raw: the update response carries no value; disabling a version makes get answer 403.
  const patch = await raw(kv, 'PATCH', `/secrets/${name}/${v2.properties.version}?${API}`, { attributes: { enabled: false } });
  assert.equal(patch.status, 200);
  assert.equal((patch.body as { value?: string }).value, undefined);
  const disabled = await restErrorOf(() => client.getSecret(name));
  assert.equal(disabled.statusCode, 403);
  assert.equal(disabled.code, 'Forbidden');

  const missing = await restErrorOf(() => client.updateSecretProperties(name, 'f'.repeat(32), { tags: {} }));
  assert.equal(missing.statusCode, 404);
  assert.equal(missing.code, 'SecretNotFound');
});

void test('Get Secrets - REST API (Azure Key Vault) 7.4: paging with nextLink honours maxresults (1-25)', async (t) => {
  const kv = await startForTest(t);
  const client = createLocalSecretClient(kv.url);
  const names = Array.from({ length: 31 }, (_, i) => `page-${String(i).padStart(2, '0')}`);
  for (const n of names) await client.setSecret(n, `value-${n}`);
  await client.setSecret('page-05', 'second version does not duplicate the entry');

  const pages: string[][] = [];
  for await (const page of client.listPropertiesOfSecrets().byPage({ maxPageSize: 7 })) {
    pages.push(page.map((p) => p.name));
  }
  assert.deepEqual(
    pages.map((p) => p.length),
    [7, 7, 7, 7, 3],
  );
  assert.deepEqual(pages.flat().sort(), names);

  const all: string[] = [];
  for await (const p of client.listPropertiesOfSecrets()) {
    assert.equal(p.version, undefined, 'list items name the secret, not a version');
    assert.equal((p as { value?: string }).value, undefined);
    all.push(p.name);
  }
  assert.deepEqual(all.sort(), names);

  const first = await raw(kv, 'GET', `/secrets?${API_ENCODED}`);
  const firstBody = first.body as { value: { id: string }[]; nextLink: string | null };
  assert.equal(firstBody.value.length, 25, 'default page size is 25');
  const nextLink = firstBody.nextLink ?? assert.fail('a first page of 25 out of 31 has a nextLink');
  assert.ok(nextLink.startsWith(`${kv.url}/secrets?`));
  const second = await fetch(nextLink, { headers: { authorization: 'Bearer t' } });
  const secondBody = (await second.json()) as { value: unknown[]; nextLink: string | null };
  assert.equal(secondBody.value.length, 6);
  assert.equal(secondBody.nextLink, null);

  for (const bad of ['0', '26', 'x']) {
    const res = await raw(kv, 'GET', `/secrets?${API}&maxresults=${bad}`);
    assert.equal(res.status, 400, `maxresults=${bad}`);
    assert.equal(errorOf(res.body).code, 'BadParameter');
  }
});

void test('Get Secret Versions - REST API (Azure Key Vault) 7.4: every version, paged', async (t) => {
  const kv = await startForTest(t);
  const client = createLocalSecretClient(kv.url);
  const name = uniqueName('versions');
  const created: string[] = [];
  for (let i = 0; i < 5; i++) created.push((await client.setSecret(name, `v${i}`)).properties.version ?? '');
  await client.setSecret(uniqueName('other'), 'not listed');

  const pages: string[][] = [];
  for await (const page of client.listPropertiesOfSecretVersions(name).byPage({ maxPageSize: 2 })) {
    pages.push(page.map((p) => p.version ?? ''));
    for (const p of page) assert.equal(p.name, name);
  }
  assert.deepEqual(
    pages.map((p) => p.length),
    [2, 2, 1],
  );
  assert.deepEqual(pages.flat().sort(), [...created].sort());
  assert.equal(kv.stats().versionsPerSecret[name], 5);
});

void test('Delete Secret, Get Deleted Secret and Get Deleted Secrets - REST API (Azure Key Vault) 7.4: soft delete', async (t) => {
  const kv = await startForTest(t);
  const client = createLocalSecretClient(kv.url);
  const name = uniqueName('delete');
  const set = await client.setSecret(name, 'doomed', { tags: { t: '1' } });

  const poller = await client.beginDeleteSecret(name);
  const deleted = await poller.pollUntilDone();
  assert.equal(deleted.name, name);
  assert.equal(deleted.recoveryId, `${kv.url}/deletedsecrets/${name}`);
  assert.ok(deleted.deletedOn instanceof Date);
  const retentionDays = ((deleted.scheduledPurgeDate?.getTime() ?? 0) - (deleted.deletedOn?.getTime() ?? 0)) / 86_400_000;
  assert.equal(retentionDays, 90);
  assert.equal(deleted.properties.version, set.properties.version);

  const gone = await restErrorOf(() => client.getSecret(name));
  assert.equal(gone.statusCode, 404);
  assert.equal(gone.code, 'SecretNotFound');
  const again = await raw(kv, 'DELETE', `/secrets/${name}?${API}`);
  assert.equal(again.status, 404, 'deleting a deleted secret');

  const fetched = await client.getDeletedSecret(name);
  assert.equal(fetched.recoveryId, deleted.recoveryId);
  assert.deepEqual(fetched.properties.tags, { t: '1' });
  const rawDeleted = await raw(kv, 'GET', `/deletedsecrets/${name}?${API}`);
  assert.equal((rawDeleted.body as { value?: string }).value, undefined, 'deleted secrets do not return values');
  assert.equal(typeof (rawDeleted.body as { deletedDate: number }).deletedDate, 'number');

  const listed: string[] = [];
  for await (const d of client.listDeletedSecrets()) listed.push(d.name);
  assert.ok(listed.includes(name));
  for await (const p of client.listPropertiesOfSecrets()) assert.notEqual(p.name, name, 'deleted secrets are not listed');
  assert.equal(kv.stats().deletedSecrets, 1);

  const notDeleted = await restErrorOf(() => client.getDeletedSecret(uniqueName('alive')));
  assert.equal(notDeleted.statusCode, 404);
  assert.equal(notDeleted.code, 'SecretNotFound');
});

void test('Set Secret - REST API (Azure Key Vault) 7.4: 409 ObjectIsDeletedButRecoverable when writing a deleted name', async (t) => {
  const kv = await startForTest(t);
  const client = createLocalSecretClient(kv.url);
  const name = uniqueName('Conflict');
  await client.setSecret(name, 'v');
  await (await client.beginDeleteSecret(name)).pollUntilDone();

  const err = await restErrorOf(() => client.setSecret(name.toLowerCase(), 'again'));
  assert.equal(err.statusCode, 409);
  assert.equal(err.code, 'Conflict');
  // The wire field is `innererror`; the SDK's deserializer exposes it as `innerError`.
  const details = err.details as { error?: { innerError?: { code?: string } } } | undefined;
  assert.equal(details?.error?.innerError?.code, 'ObjectIsDeletedButRecoverable');
  const rawConflict = await raw(kv, 'PUT', `/secrets/${name}?${API}`, { value: 'x' });
  assert.equal(rawConflict.status, 409);
  assert.deepEqual(errorOf(rawConflict.body).innererror, { code: 'ObjectIsDeletedButRecoverable' });
  assert.equal(kv.stats().creates, 1);
});

void test('Recover Deleted Secret - REST API (Azure Key Vault) 7.4: versions, values and tags come back', async (t) => {
  const kv = await startForTest(t);
  const client = createLocalSecretClient(kv.url);
  const name = uniqueName('recover');
  const v1 = await client.setSecret(name, 'one', { tags: { a: 'b' } });
  await client.setSecret(name, 'two');
  await (await client.beginDeleteSecret(name)).pollUntilDone();

  const recovered = await (await client.beginRecoverDeletedSecret(name)).pollUntilDone();
  assert.equal(recovered.name, name);
  assert.equal((await client.getSecret(name)).value, 'two');
  const old = await client.getSecret(name, { version: v1.properties.version });
  assert.equal(old.value, 'one');
  assert.deepEqual(old.properties.tags, { a: 'b' });
  assert.equal(kv.stats().deletedSecrets, 0);

  const notDeleted = await raw(kv, 'POST', `/deletedsecrets/${name}/recover?${API}`);
  assert.equal(notDeleted.status, 404);
  assert.equal(errorOf(notDeleted.body).code, 'SecretNotFound');
});

void test('Purge Deleted Secret - REST API (Azure Key Vault) 7.4: 204, gone for good, name reusable', async (t) => {
  const kv = await startForTest(t);
  const client = createLocalSecretClient(kv.url);
  const name = uniqueName('purge');
  await client.setSecret(name, 'one');
  await client.setSecret(name, 'two');
  await (await client.beginDeleteSecret(name)).pollUntilDone();

  const notDeletedYet = uniqueName('alive');
  await client.setSecret(notDeletedYet, 'x');
  const refused = await raw(kv, 'DELETE', `/deletedsecrets/${notDeletedYet}?${API}`);
  assert.equal(refused.status, 404, 'only deleted secrets can be purged');

  const purge = await raw(kv, 'DELETE', `/deletedsecrets/${name}?${API}`);
  assert.equal(purge.status, 204);
  assert.equal(purge.body, undefined);
  const gone = await restErrorOf(() => client.getDeletedSecret(name));
  assert.equal(gone.statusCode, 404);

  await client.setSecret(name, 'fresh');
  assert.equal(kv.stats().versionsPerSecret[name], 1, 'purged versions do not come back');

  await (await client.beginDeleteSecret(name)).pollUntilDone();
  await client.purgeDeletedSecret(name);
  assert.equal(kv.stats().deletedSecrets, 0);
});

void test('Set Secret / Get Secret - REST API (Azure Key Vault) 7.4: names are case-insensitive', async (t) => {
  const kv = await startForTest(t);
  const client = createLocalSecretClient(kv.url);
  const a = await client.setSecret('MySecret', 'upper');
  const b = await client.setSecret('mysecret', 'lower');
  assert.equal((await client.getSecret('MYSECRET')).value, 'lower');
  assert.equal((await client.getSecret('mySecret', { version: a.properties.version })).value, 'upper');
  assert.equal(b.name, 'MySecret', 'the name keeps the case it was first written with');
  assert.deepEqual(kv.stats().versionsPerSecret, { MySecret: 2 });
  const listed: string[] = [];
  for await (const p of client.listPropertiesOfSecrets()) listed.push(p.name);
  assert.deepEqual(listed, ['MySecret']);
});

void test('Azure Key Vault service limits and Set Secret - REST API 7.4: 400 BadParameter past each limit', async (t) => {
  const kv = await startForTest(t);
  const client = createLocalSecretClient(kv.url);
  const expectBadParameter = async (what: string, fn: () => Promise<unknown>): Promise<void> => {
    const err = await restErrorOf(fn);
    assert.equal(err.statusCode, 400, what);
    assert.equal(err.code, 'BadParameter', what);
  };

  // Names: 1-127 characters of 0-9 a-z A-Z -.
  await client.setSecret('n'.repeat(127), 'ok');
  await expectBadParameter('128-char name', () => client.setSecret('n'.repeat(128), 'x'));
  await expectBadParameter('underscore', () => client.setSecret('bad_name', 'x'));
  await expectBadParameter('dot', () => client.setSecret('bad.name', 'x'));
  await expectBadParameter('non-ASCII', () => client.setSecret('café', 'x'));
  const rawBadName = await raw(kv, 'GET', `/secrets/bad%20name/?${API}`);
  assert.equal(rawBadName.status, 400);

  // Value: 25 KB (bytes, so multi-byte characters count more).
  await client.setSecret('value-limit', 'x'.repeat(25 * 1024));
  await expectBadParameter('value over 25 KB', () => client.setSecret('value-limit', 'x'.repeat(25 * 1024 + 1)));
  await expectBadParameter('multi-byte value over 25 KB', () => client.setSecret('value-limit', 'é'.repeat(12_801)));

  // Tags: at most 15, names and values up to 256 characters.
  const tags = (n: number): Record<string, string> => Object.fromEntries(Array.from({ length: n }, (_, i) => [`t${i}`, 'v']));
  await client.setSecret('tag-limit', 'v', { tags: tags(15) });
  await expectBadParameter('16 tags', () => client.setSecret('tag-limit', 'v', { tags: tags(16) }));
  await client.setSecret('tag-limit', 'v', { tags: { ['k'.repeat(256)]: 'v'.repeat(256) } });
  await expectBadParameter('257-char tag name', () => client.setSecret('tag-limit', 'v', { tags: { ['k'.repeat(257)]: 'v' } }));
  await expectBadParameter('257-char tag value', () => client.setSecret('tag-limit', 'v', { tags: { k: 'v'.repeat(257) } }));
  await expectBadParameter('16 tags on update', async () => {
    const latest = await client.getSecret('tag-limit');
    return client.updateSecretProperties('tag-limit', latest.properties.version ?? '', { tags: tags(16) });
  });

  // Content type: up to 255 characters.
  await client.setSecret('ct-limit', 'v', { contentType: 'c'.repeat(255) });
  await expectBadParameter('256-char content type', () => client.setSecret('ct-limit', 'v', { contentType: 'c'.repeat(256) }));

  assert.equal(kv.stats().versionsPerSecret['tag-limit'], 2, 'rejected writes create no version');
});

void test('Azure Key Vault REST API Error Codes: unknown paths and methods answer with Key Vault-shaped errors', async (t) => {
  const kv = await startForTest(t);
  const unknown = await raw(kv, 'GET', `/keys?${API}`);
  assert.equal(unknown.status, 404);
  errorOf(unknown.body);
  const wrongMethod = await raw(kv, 'POST', `/secrets/x?${API}`);
  assert.equal(wrongMethod.status, 405);
  errorOf(wrongMethod.body);
  const badJson = await fetch(`${kv.url}/secrets/x?${API}`, {
    method: 'PUT',
    headers: { authorization: 'Bearer t', 'content-type': 'application/json' },
    body: '{not json',
  });
  assert.equal(badJson.status, 400);
  assert.equal(errorOf(await badJson.json()).code, 'BadParameter');
});
