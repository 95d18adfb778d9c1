// AzureEntityTable with the real @azure/data-tables client against Azurite.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { AzureNamedKeyCredential, TableClient } from '@azure/data-tables';
import { devAccountKey, devAccountName, type Azurite } from '../../dev/azurite.js';
import { AzureEntityTable } from '../../shared/azure/entity-table.js';
import { ConflictError, PreconditionFailedError, TransientError } from '../../shared/pipeline/errors.js';
import { escapeTableKey } from '../../shared/azure/table-keys.js';
import type { AssignmentEntity, TokenEntity } from '../../shared/pipeline/ports.js';
import { MemoryTable } from '../helpers/memory-ports.js';
import { collect, startFailingServer, startTestAzurite, uniqueName } from './helpers.js';

let azurite: Azurite;

async function newTableClient(): Promise<TableClient> {
  const client = TableClient.fromConnectionString(azurite.connectionString, uniqueName('t'), { allowInsecureConnection: true });
  await client.createTable();
  return client;
}

const NULLABLE = [
  'upn',
  'buildId',
  'exportFile',
  'exportingSince',
  'deviceId',
  'userId',
  'methodId',
  'lastAcceptedStep',
  'activatedBuildId',
  'lockedUntil',
  'lastVerifiedAt',
  'driftSeconds',
  'counter',
] as const;

async function newTokenTable(listPageSize?: number): Promise<AzureEntityTable<TokenEntity>> {
  return new AzureEntityTable<TokenEntity>(await newTableClient(), 'token', { nullableFields: NULLABLE, listPageSize });
}

function token(serial: string, overrides: Partial<TokenEntity> = {}): TokenEntity {
  return {
    serial,
    state: 'stored',
    manufacturer: 'Token2',
    model: 'C202',
    type: 'totp',
    algorithm: 'SHA1',
    digits: 6,
    period: 30,
    counter: null,
    secretBytes: 20,
    secretName: `oath-${serial}`,
    secretVersion: '0123456789abcdef0123456789abcdef',
    batch: 'seeds/batch-1.csv@"0x8DC"',
    createdAt: '2026-01-02T03:04:05.000Z',
    updatedAt: '2026-01-02T03:04:05.000Z',
    upn: null,
    buildId: null,
    exportFile: null,
    exportingSince: null,
    deviceId: null,
    userId: null,
    methodId: null,
    lastAcceptedStep: null,
    activatedBuildId: null,
    failedAttempts: 0,
    lockedUntil: null,
    lastVerifiedAt: null,
    driftSeconds: null,
    history: '[]',
    ...overrides,
  };
}

before(async () => {
  azurite = await startTestAzurite();
});

after(async () => {
  await azurite?.close();
});

void describe('get and insert', () => {
  void test('round-trips a token entity exactly: nulls stay null, no system fields leak', async () => {
    const table = await newTokenTable();
    const value = token('a1', { history: '[{"at":"x","event":"stored"}]' });
    const etag = await table.insert('a1', value);
    assert.ok(etag.length > 0);
    const read = await table.get('a1');
    assert.deepEqual(read, { key: 'a1', value, etag });
  });

  void test('an HOTP counter up to 2^64 - 1 stays exact decimal text; a row from before the column reads it as null', async () => {
    const client = await newTableClient();
    const table = new AzureEntityTable<TokenEntity>(client, 'token', { nullableFields: NULLABLE });
    const value = token('h1', { type: 'hotp', counter: '18446744073709551615' });
    await table.insert('h1', value);
    assert.deepEqual((await table.get('h1'))?.value, value);
    const { counter: _dropped, ...older } = token('h0');
    await client.createEntity({ partitionKey: escapeTableKey('h0'), rowKey: 'token', ...older });
    assert.equal((await table.get('h0'))?.value.counter, null);
  });

  void test('numbers beyond Int32, negatives, fractions and booleans survive', async () => {
    const client = await newTableClient();
    const table = new AzureEntityTable<{ big: number; negative: number; fraction: number; flag: boolean; text: string }>(client, 'p');
    const value = { big: 2 ** 40 + 3, negative: -(2 ** 33), fraction: 0.25, flag: false, text: '' };
    await table.insert('k', value);
    assert.deepEqual((await table.get('k'))?.value, value);
  });

  void test('missing keys read as undefined', async () => {
    const table = await newTokenTable();
    assert.equal(await table.get('missing'), undefined);
  });

  void test('inserting an existing key throws ConflictError and keeps the first value', async () => {
    const table = await newTokenTable();
    await table.insert('dup', token('dup'));
    await assert.rejects(table.insert('dup', token('dup', { state: 'retired' })), ConflictError);
    assert.equal((await table.get('dup'))?.value.state, 'stored');
  });

  void test('keys with / \\ # ? %, control characters, quotes and unicode', async () => {
    const table = await newTokenTable();
    const keys = ['a/b', 'back\\slash', 'hash#1', 'what?', '100%', '%2F', 'tab\there', "O'Brien", 'ünïcødé-序列-🔑', 'plain'];
    for (const key of keys) await table.insert(key, token(key));
    for (const key of keys) {
      const read = await table.get(key);
      assert.equal(read?.key, key);
      assert.equal(read?.value.serial, key);
    }
    // '%2F' and 'a/b' stay distinct: escaping is collision-free.
    assert.notEqual(escapeTableKey('%2F'), escapeTableKey('/'));
    const listed = (await collect(table.list())).map((v) => v.key).sort();
    assert.deepEqual(listed, [...keys].sort());
    for (const key of keys) assert.equal(await table.delete(key), true);
    assert.deepEqual(await collect(table.list()), []);
  });
});

void describe('replace, upsert, delete', () => {
  void test('replace with the current etag returns a new one; a stale etag throws PreconditionFailedError', async () => {
    const table = await newTokenTable();
    const first = await table.insert('r', token('r'));
    const second = await table.replace('r', token('r', { state: 'exporting', upn: 'ana@contoso.com' }), first);
    assert.notEqual(second, first);
    await assert.rejects(table.replace('r', token('r', { state: 'retired' }), first), PreconditionFailedError);
    const read = await table.get('r');
    assert.equal(read?.etag, second);
    assert.equal(read?.value.state, 'exporting');
    assert.equal(read?.value.upn, 'ana@contoso.com');

    // Replace drops fields set before: going back to null clears them.
    await table.replace('r', token('r', { state: 'stored', upn: null }), second);
    assert.equal((await table.get('r'))?.value.upn, null);
  });

  void test('replacing a deleted entity is a PreconditionFailedError too', async () => {
    const table = await newTokenTable();
    const etag = await table.insert('gone', token('gone'));
    await table.delete('gone');
    await assert.rejects(table.replace('gone', token('gone'), etag), PreconditionFailedError);
    assert.equal(await table.get('gone'), undefined);
  });

  void test('upsert creates and overwrites', async () => {
    const table = await newTokenTable();
    const created = await table.upsert('u', token('u'));
    assert.equal((await table.get('u'))?.etag, created);
    const overwritten = await table.upsert('u', token('u', { failedAttempts: 3 }));
    assert.notEqual(overwritten, created);
    assert.equal((await table.get('u'))?.value.failedAttempts, 3);
  });

  void test('delete: false when absent, stale etag throws, current or no etag deletes', async () => {
    const table = await newTokenTable();
    assert.equal(await table.delete('absent'), false);
    assert.equal(await table.delete('absent', 'W/"datetime\'2020-01-01T00%3A00%3A00Z\'"'), false);
    const first = await table.insert('d', token('d'));
    const second = await table.replace('d', token('d', { failedAttempts: 1 }), first);
    await assert.rejects(table.delete('d', first), PreconditionFailedError);
    assert.ok(await table.get('d'));
    assert.equal(await table.delete('d', second), true);
    await table.insert('e', token('e'));
    assert.equal(await table.delete('e'), true);
    assert.equal(await table.get('e'), undefined);
  });
});

void describe('list', () => {
  void test('pages through more entities than a page holds', async () => {
    const table = await newTokenTable(3);
    const serials = Array.from({ length: 8 }, (_, i) => `s${i}`);
    for (const serial of serials) await table.insert(serial, token(serial));
    const listed = await collect(table.list());
    assert.deepEqual(listed.map((v) => v.key).sort(), serials);
    for (const item of listed) assert.equal(item.etag, (await table.get(item.key))?.etag);
  });

  void test('filters on equality of strings (quotes escaped), numbers and booleans', async () => {
    const client = await newTableClient();
    const table = new AzureEntityTable<AssignmentEntity & { active: boolean }>(client, 'assignment', { listPageSize: 2 });
    const rows: [string, AssignmentEntity & { active: boolean }][] = [
      ['1', { serial: '1', upn: "o'brien@contoso.com", sourceFile: 'a.csv', line: 2, createdAt: 't', active: true }],
      ['2', { serial: '2', upn: 'ana@contoso.com', sourceFile: 'a.csv', line: 3, createdAt: 't', active: false }],
      ['3', { serial: '3', upn: "o'brien@contoso.com", sourceFile: 'b.csv', line: 2, createdAt: 't', active: true }],
      ['4', { serial: '4', upn: "' or true or ''='", sourceFile: 'b.csv', line: 9, createdAt: 't', active: true }],
    ];
    for (const [key, value] of rows) await table.insert(key, value);
    const keys = async (where: Parameters<typeof table.list>[0]) => (await collect(table.list(where))).map((v) => v.key).sort();

    assert.deepEqual(await keys({ upn: "o'brien@contoso.com" }), ['1', '3']);
    assert.deepEqual(await keys({ upn: "o'brien@contoso.com", sourceFile: 'b.csv' }), ['3']);
    assert.deepEqual(await keys({ line: 2 }), ['1', '3']);
    assert.deepEqual(await keys({ active: false }), ['2']);
    assert.deepEqual(await keys({ upn: "' or true or ''='" }), ['4'], 'a value cannot widen the filter');
    assert.deepEqual(await keys({ upn: 'nobody' }), []);
    assert.deepEqual(await keys({}), ['1', '2', '3', '4']);
    assert.throws(() => table.filterFor({ 'upn eq upn or 1': 'x' }), /Cannot filter/);
  });

  void test('only its own kind: rows of another kind in the same table are invisible', async () => {
    const client = await newTableClient();
    const mine = new AzureEntityTable<{ v: string }>(client, 'mine');
    const theirs = new AzureEntityTable<{ v: string }>(client, 'theirs');
    await mine.insert('k', { v: 'mine' });
    await theirs.insert('k', { v: 'theirs' });
    assert.deepEqual(
      (await collect(mine.list())).map((e) => e.value),
      [{ v: 'mine' }],
    );
    assert.equal((await theirs.get('k'))?.value.v, 'theirs');
  });
});

void describe('page and countBy', () => {
  /** Every page of a query, following `after` as a caller does. */
  async function allPages(
    table: AzureEntityTable<TokenEntity> | MemoryTable<TokenEntity>,
    query: Omit<Parameters<typeof table.page>[0], 'after'>,
  ): Promise<string[][]> {
    const pages: string[][] = [];
    let after: string | undefined;
    for (;;) {
      const page = await table.page({ ...query, after });
      pages.push(page.rows.map((r) => r.key));
      if (!page.more) return pages;
      after = page.rows[page.rows.length - 1]!.key;
    }
  }

  void test('pages in key order with a filter, a key prefix and a resume key; pages stay full while the service answers short ones', async () => {
    // A service page of 3 against pages of 4 rows: each page needs two service calls (continuation tokens).
    const table = await newTokenTable(3);
    const serials = ['A/1', 'A/2', 'A1', 'A10', 'A2', 'A20', 'A3', 'B1', 'B2', "O'B1", 'a1'];
    for (const serial of serials)
      await table.insert(
        serial,
        token(serial, { state: serial.endsWith('2') ? 'exported' : 'stored', upn: serial.startsWith('B') ? 'b@contoso.com' : null }),
      );
    const byEscapedKey = [...serials].sort((a, b) => (escapeTableKey(a) < escapeTableKey(b) ? -1 : 1));
    assert.deepEqual((await allPages(table, { limit: 4 })).flat(), byEscapedKey, 'every row once, in escaped-key order');
    assert.deepEqual(
      (await allPages(table, { limit: 4 })).map((p) => p.length),
      [4, 4, 3],
    );
    assert.deepEqual(
      (await allPages(table, { limit: 2, keyPrefix: 'A' })).flat(),
      byEscapedKey.filter((s) => s.startsWith('A')),
    );
    assert.deepEqual((await allPages(table, { limit: 10, keyPrefix: 'A/' })).flat(), ['A/1', 'A/2'], 'a prefix with an escaped character');
    assert.deepEqual((await allPages(table, { limit: 10, keyPrefix: "O'" })).flat(), ["O'B1"], 'a quote in the prefix is escaped');
    assert.deepEqual(
      (await allPages(table, { limit: 1, where: { state: 'exported' } })).flat(),
      byEscapedKey.filter((s) => s.endsWith('2')),
    );
    assert.deepEqual((await allPages(table, { limit: 5, where: { upn: 'b@contoso.com' }, keyPrefix: 'B' })).flat(), ['B1', 'B2']);
    const last = await table.page({ limit: 3, after: 'B2' });
    assert.deepEqual(
      last.rows.map((r) => r.key),
      ["O'B1", 'a1'],
    );
    assert.equal(last.more, false);
    assert.deepEqual(await table.page({ limit: 3, where: { upn: 'nobody@contoso.com' } }), { rows: [], more: false });
  });

  void test('countBy counts each value of one field, with a filter, null as an empty value', async () => {
    const table = await newTokenTable(2);
    const states = ['stored', 'stored', 'exported', 'retired', 'stored'] as const;
    for (const [i, state] of states.entries())
      await table.insert(`c${i}`, token(`c${i}`, { state, upn: i === 0 ? 'a@contoso.com' : null }));
    assert.deepEqual(await table.countBy('state'), { stored: 3, exported: 1, retired: 1 });
    assert.deepEqual(await table.countBy('upn'), { 'a@contoso.com': 1, '': 4 });
    assert.deepEqual(await table.countBy('state', { upn: 'a@contoso.com' }), { stored: 1 });
    const memory = new MemoryTable<TokenEntity>();
    for (const [i, state] of states.entries())
      await memory.insert(`c${i}`, token(`c${i}`, { state, upn: i === 0 ? 'a@contoso.com' : null }));
    assert.deepEqual(await memory.countBy('state'), await table.countBy('state'));
    await assert.rejects(() => table.countBy('state) or (1'), /Cannot count/);
  });
});

void test('behaves like the in-memory table through the same sequence of calls', async () => {
  const azure = await newTokenTable(2);
  const memory = new MemoryTable<TokenEntity>();
  const outcome = async (table: AzureEntityTable<TokenEntity> | MemoryTable<TokenEntity>) => {
    const log: unknown[] = [];
    const step = async (fn: () => Promise<unknown>) => {
      try {
        const r = await fn();
        log.push(typeof r === 'string' ? 'etag' : r);
      } catch (e) {
        log.push((e as Error).name);
      }
    };
    const e1 = await table.insert('x/1', token('x/1'));
    await step(() => table.insert('x/1', token('x/1')));
    const e2 = await table.replace('x/1', token('x/1', { state: 'exported', upn: 'u@c' }), e1);
    await step(() => table.replace('x/1', token('x/1'), e1));
    await step(() => table.delete('x/1', e1));
    await step(() => table.upsert('y', token('y', { state: 'exported' })));
    await step(() => table.delete('nope'));
    await step(async () => (await table.get('x/1'))?.value);
    await step(async () => (await collect(table.list({ state: 'exported' }))).map((v) => [v.key, v.value]).sort());
    await step(() => table.delete('x/1', e2));
    await step(async () => (await collect(table.list())).map((v) => v.key));
    return log;
  };
  const fromAzure = await outcome(azure);
  assert.deepEqual(fromAzure.slice(0, 3), ['ConflictError', 'PreconditionFailedError', 'PreconditionFailedError']);
  assert.deepEqual(fromAzure, await outcome(memory));
});

void describe('rows of the earlier layout (one partition per table)', () => {
  /** A row as the earlier layout wrote it: PartitionKey the kind, RowKey the escaped key, nulls absent. */
  async function writeLegacyRow(client: TableClient, key: string, value: TokenEntity): Promise<void> {
    const present = Object.fromEntries(Object.entries(value).filter(([, v]) => v !== null));
    await client.createEntity({ partitionKey: 'token', rowKey: escapeTableKey(key), ...present });
  }

  async function legacyRowsLeft(client: TableClient): Promise<string[]> {
    const keys: string[] = [];
    for await (const e of client.listEntities({ queryOptions: { filter: "PartitionKey eq 'token' and RowKey ne 'token'" } }))
      keys.push(e.rowKey ?? '');
    return keys;
  }

  void test('are moved on the first call: values exact, keys unescaped, listed and paged like the others, none left behind', async () => {
    const client = await newTableClient();
    const legacy: [string, TokenEntity][] = [
      ['a/b', token('a/b', { state: 'exported', upn: 'ana@contoso.com', buildId: 'b-1' })],
      ['100%', token('100%')],
      ['h1', token('h1', { type: 'hotp', counter: '18446744073709551615' })],
      // Its legacy row and its row in this layout are one and the same place.
      ['token', token('token')],
      ...Array.from({ length: 7 }, (_, i): [string, TokenEntity] => [`m${i}`, token(`m${i}`, { failedAttempts: i })]),
    ];
    for (const [key, value] of legacy) await writeLegacyRow(client, key, value);
    const table = new AzureEntityTable<TokenEntity>(client, 'token', { nullableFields: NULLABLE, listPageSize: 3 });

    assert.deepEqual((await table.get('a/b'))?.value, legacy[0]![1]);
    assert.deepEqual(await legacyRowsLeft(client), []);
    for (const [key, value] of legacy) assert.deepEqual((await table.get(key))?.value, value, key);
    const byEscapedKey = legacy.map(([key]) => key).sort((a, b) => (escapeTableKey(a) < escapeTableKey(b) ? -1 : 1));
    assert.deepEqual(
      (await collect(table.list())).map((v) => v.key),
      byEscapedKey,
    );
    assert.deepEqual(
      (await table.page({ limit: 4, keyPrefix: 'm' })).rows.map((r) => r.key),
      ['m0', 'm1', 'm2', 'm3'],
    );
    assert.deepEqual(await table.countBy('state'), { stored: 10, exported: 1 });
  });

  void test('two instances moving at once, and a row already moved and changed since: one row per key, the newer kept', async () => {
    const client = await newTableClient();
    const keys = Array.from({ length: 40 }, (_, i) => `t${String(i).padStart(2, '0')}`);
    for (const key of keys) await writeLegacyRow(client, key, token(key));
    // Another instance moved t00 and then exported it; its legacy row was not deleted yet.
    await client.createEntity({ partitionKey: 't00', rowKey: 'token', ...token('t00', { state: 'exported' }), upn: 'ana@contoso.com' });
    const first = new AzureEntityTable<TokenEntity>(client, 'token', { nullableFields: NULLABLE, listPageSize: 7 });
    const second = new AzureEntityTable<TokenEntity>(client, 'token', { nullableFields: NULLABLE, listPageSize: 5 });

    const [fromFirst, fromSecond] = await Promise.all([collect(first.list()), collect(second.list())]);
    assert.deepEqual(
      fromFirst.map((v) => v.key),
      keys,
    );
    assert.deepEqual(
      fromSecond.map((v) => v.key),
      keys,
    );
    assert.equal((await first.get('t00'))?.value.state, 'exported');
    assert.equal((await second.get('t00'))?.value.upn, 'ana@contoso.com');
    assert.deepEqual(await legacyRowsLeft(client), []);
    let rows = 0;
    for await (const _ of client.listEntities()) rows++;
    assert.equal(rows, keys.length, 'one row per key in the table');
  });

  void test('a failed move is tried again on the next call, and nothing is lost meanwhile', async (t) => {
    const failing = await startFailingServer(503);
    t.after(() => failing.close());
    const client = await newTableClient();
    await writeLegacyRow(client, 'k1', token('k1'));
    // The same table behind a failing endpoint first, then the real one: the instance's first call fails.
    const broken = new AzureEntityTable<TokenEntity>(
      new TableClient(`${failing.url}/${devAccountName}`, client.tableName, new AzureNamedKeyCredential(devAccountName, devAccountKey), {
        allowInsecureConnection: true,
        retryOptions: { maxRetries: 0 },
      }),
      'token',
      { nullableFields: NULLABLE },
    );
    await assert.rejects(broken.get('k1'), TransientError);
    await assert.rejects(broken.get('k1'), TransientError, 'tried again, not remembered as done');
    assert.deepEqual(await legacyRowsLeft(client), [escapeTableKey('k1')]);
    const table = new AzureEntityTable<TokenEntity>(client, 'token', { nullableFields: NULLABLE });
    assert.deepEqual((await table.get('k1'))?.value, token('k1'));
    assert.deepEqual(await legacyRowsLeft(client), []);
  });
});

void describe('transient failures', () => {
  void test('503 with Retry-After and 429 become TransientError', async (t) => {
    for (const [status, headers, retryAfterMs] of [
      [503, { 'retry-after': '2' }, 2000],
      [429, {}, undefined],
      [500, { 'retry-after-ms': '250' }, 250],
    ] as const) {
      const failing = await startFailingServer(status, headers);
      t.after(() => failing.close());
      const client = new TableClient(
        `${failing.url}/${devAccountName}`,
        'tokens',
        new AzureNamedKeyCredential(devAccountName, devAccountKey),
        {
          allowInsecureConnection: true,
          retryOptions: { maxRetries: 0 },
        },
      );
      const table = new AzureEntityTable<{ v: string }>(client, 'p');
      for (const call of [
        () => table.get('k'),
        () => table.insert('k', { v: '' }),
        () => table.replace('k', { v: '' }, '*'),
        () => table.upsert('k', { v: '' }),
        () => table.delete('k'),
        () => collect(table.list()),
      ]) {
        await assert.rejects(call(), (e: unknown) => e instanceof TransientError && e.status === status && e.retryAfterMs === retryAfterMs);
      }
    }
  });
});
