// AzureBlobStore with the real @azure/storage-blob client against Azurite.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { BlobServiceClient } from '@azure/storage-blob';
import type { Azurite } from '../../dev/azurite.js';
import { AzureBlobStore } from '../../shared/azure/blob-store.js';
import { BlobExistsError, PreconditionFailedError, TransientError } from '../../shared/pipeline/errors.js';
import { MemoryBlobStore } from '../helpers/memory-ports.js';
import { closedPort, collect, startFailingServer, startTestAzurite, uniqueName } from './helpers.js';

let azurite: Azurite;
let service: BlobServiceClient;
let store: AzureBlobStore;

async function newContainer(): Promise<string> {
  const name = uniqueName('c');
  await service.getContainerClient(name).create();
  return name;
}

before(async () => {
  azurite = await startTestAzurite();
  service = BlobServiceClient.fromConnectionString(azurite.connectionString);
  store = new AzureBlobStore(service);
});

after(async () => {
  await azurite?.close();
});

void describe('read, properties, write', () => {
  void test('writes text and bytes and reads them back with metadata, content type and etag', async () => {
    const c = await newContainer();
    const written = await store.write(c, 'in/seed file.csv', 'serial,secret\nA1,JBSWY3DP\n', {
      contentType: 'text/csv',
      metadata: { source: 'vendor', batch: '7' },
    });
    assert.match(written.etag, /^"0x[0-9A-F]+"$/);

    const blob = await store.read(c, 'in/seed file.csv');
    assert.ok(blob);
    assert.equal(Buffer.from(blob.bytes).toString('utf8'), 'serial,secret\nA1,JBSWY3DP\n');
    assert.equal(blob.name, 'in/seed file.csv');
    assert.equal(blob.etag, written.etag);
    assert.equal(blob.contentLength, blob.bytes.length);
    assert.deepEqual(blob.metadata, { source: 'vendor', batch: '7' });
    assert.ok(blob.lastModified instanceof Date);
    assert.equal((await service.getContainerClient(c).getBlobClient('in/seed file.csv').getProperties()).contentType, 'text/csv');

    const bytes = new Uint8Array([0, 1, 2, 254, 255]);
    await store.write(c, 'binary', bytes.subarray(1, 4));
    assert.deepEqual((await store.read(c, 'binary'))?.bytes, new Uint8Array([1, 2, 254]));
  });

  void test('properties match the blob without downloading it', async () => {
    const c = await newContainer();
    const { etag } = await store.write(c, 'p.txt', 'héllo', { metadata: { k: 'v' } });
    const info = await store.properties(c, 'p.txt');
    assert.ok(info);
    assert.equal(info.name, 'p.txt');
    assert.equal(info.etag, etag);
    assert.equal(info.contentLength, Buffer.byteLength('héllo'));
    assert.deepEqual(info.metadata, { k: 'v' });
    assert.ok(info.createdOn instanceof Date);
  });

  void test('missing blobs and containers read as undefined', async () => {
    const c = await newContainer();
    assert.equal(await store.read(c, 'nope'), undefined);
    assert.equal(await store.properties(c, 'nope'), undefined);
    assert.equal(await store.read('no-such-container', 'nope'), undefined);
    assert.equal(await store.properties('no-such-container', 'nope'), undefined);
  });

  void test("ifNoneMatch '*' creates once, then throws BlobExistsError and leaves the blob unchanged", async () => {
    const c = await newContainer();
    const first = await store.write(c, 'once', 'one', { ifNoneMatch: '*' });
    await assert.rejects(
      store.write(c, 'once', 'two', { ifNoneMatch: '*' }),
      (e: unknown) => e instanceof BlobExistsError && e.blobName === 'once',
    );
    const blob = await store.read(c, 'once');
    assert.equal(Buffer.from(blob!.bytes).toString(), 'one');
    assert.equal(blob!.etag, first.etag);

    // Without the condition a write overwrites and changes the etag.
    const second = await store.write(c, 'once', 'two');
    assert.notEqual(second.etag, first.etag);
    assert.equal(Buffer.from((await store.read(c, 'once'))!.bytes).toString(), 'two');
  });

  void test("ifNoneMatch '*' on a leased blob is still BlobExistsError", async () => {
    const c = await newContainer();
    await store.write(c, 'leased', 'x');
    const lease = await store.acquireLease(c, 'leased', 15);
    assert.ok(lease);
    await assert.rejects(store.write(c, 'leased', 'y', { ifNoneMatch: '*' }), BlobExistsError);
    await lease.release();
  });

  void test('ifMatch replaces only the version it names, and fails on a changed or deleted blob (memory store alike)', async () => {
    for (const [label, s, container] of [
      ['azure', store, await newContainer()],
      ['memory', new MemoryBlobStore(), 'c'],
    ] as const) {
      const first = await s.write(container, 'csv', 'one');
      const second = await s.write(container, 'csv', 'two', { ifMatch: first.etag });
      assert.equal(Buffer.from((await s.read(container, 'csv'))!.bytes).toString(), 'two', label);
      await assert.rejects(s.write(container, 'csv', 'three', { ifMatch: first.etag }), PreconditionFailedError, label);
      assert.equal((await s.read(container, 'csv'))!.etag, second.etag, label);
      await s.delete(container, 'csv');
      await assert.rejects(s.write(container, 'csv', 'four', { ifMatch: second.etag }), PreconditionFailedError, label);
      assert.equal(await s.read(container, 'csv'), undefined, label);
    }
  });
});

void describe('delete', () => {
  void test('false when absent, true once deleted', async () => {
    const c = await newContainer();
    assert.equal(await store.delete(c, 'absent'), false);
    await store.write(c, 'x', 'x');
    assert.equal(await store.delete(c, 'x'), true);
    assert.equal(await store.read(c, 'x'), undefined);
    assert.equal(await store.delete(c, 'x'), false);
  });

  void test('a stale ifMatch throws PreconditionFailedError; the current etag deletes', async () => {
    const c = await newContainer();
    const old = await store.write(c, 'x', 'v1');
    const current = await store.write(c, 'x', 'v2');
    await assert.rejects(store.delete(c, 'x', { ifMatch: old.etag }), PreconditionFailedError);
    assert.ok(await store.read(c, 'x'));
    assert.equal(await store.delete(c, 'x', { ifMatch: current.etag }), true);
  });
});

void describe('copy', () => {
  void test('copies content, metadata and content type, overwriting the target', async () => {
    const from = await newContainer();
    const to = await newContainer();
    await store.write(from, 'seed.xml', '<pskc/>', { contentType: 'application/xml', metadata: { uploader: 'ops' } });
    await store.write(to, 'archived/seed.xml', 'old target');
    await store.copy(from, 'seed.xml', to, 'archived/seed.xml');
    const copied = await store.read(to, 'archived/seed.xml');
    assert.equal(Buffer.from(copied!.bytes).toString(), '<pskc/>');
    assert.deepEqual(copied!.metadata, { uploader: 'ops' });
    assert.equal((await service.getContainerClient(to).getBlobClient('archived/seed.xml').getProperties()).contentType, 'application/xml');
    // The source stays.
    assert.ok(await store.read(from, 'seed.xml'));
  });

  void test('copying a missing blob fails', async () => {
    const c = await newContainer();
    await assert.rejects(store.copy(c, 'missing', c, 'target'), /does not exist/);
  });

  void test('streams a blob of several blocks and an empty one unchanged', async () => {
    const c = await newContainer();
    const big = randomBytes(9 * 1024 * 1024 + 123);
    await store.write(c, 'big.bin', big, { metadata: { uploader: 'ops' } });
    await store.copy(c, 'big.bin', c, 'copy/big.bin');
    const copied = await store.read(c, 'copy/big.bin');
    assert.ok(copied && Buffer.from(copied.bytes).equals(big));
    assert.deepEqual(copied.metadata, { uploader: 'ops' });
    await store.write(c, 'empty', new Uint8Array());
    await store.copy(c, 'empty', c, 'copy/empty');
    assert.equal((await store.read(c, 'copy/empty'))?.bytes.length, 0);
  });
});

void describe('bounded read', () => {
  void test('loads at most maxBytes + 1 bytes and reports the whole size', async () => {
    const c = await newContainer();
    await store.write(c, 'b', 'x'.repeat(5000), { metadata: { k: 'v' } });
    const blob = await store.read(c, 'b', { maxBytes: 1000 });
    assert.equal(blob?.bytes.length, 1001);
    assert.equal(blob.contentLength, 5000);
    assert.deepEqual(blob.metadata, { k: 'v' });
    assert.match(blob.etag, /^"0x[0-9A-F]+"$/);
    const small = await store.read(c, 'b', { maxBytes: 10_000 });
    assert.equal(small?.bytes.length, 5000);
    assert.equal(small.contentLength, 5000);
  });

  void test('reads an empty blob and a missing one', async () => {
    const c = await newContainer();
    await store.write(c, 'empty', '');
    const empty = await store.read(c, 'empty', { maxBytes: 1000 });
    assert.equal(empty?.bytes.length, 0);
    assert.equal(empty.contentLength, 0);
    assert.equal(await store.read(c, 'missing', { maxBytes: 1000 }), undefined);
  });
});

void describe('list', () => {
  void test('lists with prefix and metadata across several pages', async () => {
    const c = await newContainer();
    const paged = new AzureBlobStore(service, { listPageSize: 2 });
    const names = ['a/1', 'a/2', 'a/3', 'a/4', 'a/5', 'b/1'];
    for (const [i, name] of names.entries()) await paged.write(c, name, `content ${i}`, { metadata: { index: String(i) } });

    const all = await collect(paged.list(c));
    assert.deepEqual(
      all.map((b) => b.name),
      names,
    );
    const underA = await collect(paged.list(c, 'a/'));
    assert.deepEqual(
      underA.map((b) => b.name),
      ['a/1', 'a/2', 'a/3', 'a/4', 'a/5'],
    );
    assert.deepEqual(
      underA.map((b) => b.metadata.index),
      ['0', '1', '2', '3', '4'],
    );
    for (const info of underA) {
      const props = await paged.properties(c, info.name);
      assert.equal(info.etag, props!.etag);
      assert.equal(info.contentLength, props!.contentLength);
    }
  });

  void test('lists like the in-memory store (empty prefix, no match, missing container)', async () => {
    const c = await newContainer();
    const memory = new MemoryBlobStore();
    for (const name of ['x1', 'x2', 'y1']) {
      await store.write(c, name, name, { metadata: { n: name } });
      await memory.write(c, name, name, { metadata: { n: name } });
    }
    for (const prefix of [undefined, '', 'x', 'z']) {
      const azure = (await collect(store.list(c, prefix))).map((b) => [b.name, b.contentLength, b.metadata]);
      const mem = (await collect(memory.list(c, prefix))).map((b) => [b.name, b.contentLength, b.metadata]);
      assert.deepEqual(azure, mem, `prefix ${String(prefix)}`);
    }
    assert.deepEqual(await collect(store.list('no-such-container')), []);
  });
});

void describe('leases', () => {
  void test('acquire, conflict, renew, delete with and without the lease, release', async () => {
    const c = await newContainer();
    await store.write(c, 'file', 'x');
    const lease = await store.acquireLease(c, 'file', 15);
    assert.ok(lease);
    assert.match(lease.id, /^[0-9a-f-]{36}$/);

    assert.equal(await store.acquireLease(c, 'file', 15), undefined, 'a second holder gets nothing');
    await lease.renew();

    await assert.rejects(store.delete(c, 'file'), PreconditionFailedError, 'delete without the lease id');
    await assert.rejects(
      store.delete(c, 'file', { leaseId: '00000000-0000-4000-8000-000000000000' }),
      PreconditionFailedError,
      'delete with another lease id',
    );
    await assert.rejects(store.write(c, 'file', 'overwrite'), PreconditionFailedError, 'overwrite without the lease id');

    await lease.release();
    const next = await store.acquireLease(c, 'file', 15);
    assert.ok(next, 'free again after release');
    assert.equal(await store.delete(c, 'file', { leaseId: next.id }), true);
    // Releasing a lease on a deleted blob has nothing left to do.
    await next.release();
  });

  void test('a lease lost to another holder: renew throws PreconditionFailedError, release is quiet', async () => {
    const c = await newContainer();
    await store.write(c, 'file', 'x');
    const mine = await store.acquireLease(c, 'file', 15);
    assert.ok(mine);
    // Someone breaks it and takes the blob.
    await service.getContainerClient(c).getBlobClient('file').getBlobLeaseClient().breakLease(0);
    const theirs = await store.acquireLease(c, 'file', 15);
    assert.ok(theirs);
    await assert.rejects(mine.renew(), PreconditionFailedError);
    await mine.release();
    assert.equal(await store.acquireLease(c, 'file', 15), undefined, 'their lease still holds');
    await theirs.release();
  });

  void test('leasing a missing blob fails', async () => {
    const c = await newContainer();
    await assert.rejects(store.acquireLease(c, 'missing', 15), /does not exist/);
  });
});

void describe('transient failures', () => {
  void test('503 with Retry-After becomes TransientError with status and retryAfterMs', async (t) => {
    const failing = await startFailingServer(503, { 'retry-after': '7' });
    t.after(() => failing.close());
    const client = BlobServiceClient.fromConnectionString(
      azurite.connectionString.replace(/BlobEndpoint=[^;]+/, `BlobEndpoint=${failing.url}/devstoreaccount1`),
      {
        retryOptions: { maxTries: 1 },
      },
    );
    const failingStore = new AzureBlobStore(client);
    for (const call of [
      () => failingStore.read('c', 'b'),
      () => failingStore.write('c', 'b', 'x'),
      () => failingStore.delete('c', 'b'),
      () => collect(failingStore.list('c')),
      () => failingStore.acquireLease('c', 'b', 15),
    ]) {
      await assert.rejects(call(), (e: unknown) => e instanceof TransientError && e.status === 503 && e.retryAfterMs === 7000);
    }
  });

  void test('429 without Retry-After is transient with no retryAfterMs', async (t) => {
    const failing = await startFailingServer(429);
    t.after(() => failing.close());
    const client = BlobServiceClient.fromConnectionString(
      azurite.connectionString.replace(/BlobEndpoint=[^;]+/, `BlobEndpoint=${failing.url}/devstoreaccount1`),
      {
        retryOptions: { maxTries: 1 },
      },
    );
    await assert.rejects(
      new AzureBlobStore(client).properties('c', 'b'),
      (e: unknown) => e instanceof TransientError && e.status === 429 && e.retryAfterMs === undefined,
    );
  });

  void test('a refused connection and a per-call timeout are transient', async () => {
    const port = await closedPort();
    const refused = BlobServiceClient.fromConnectionString(
      azurite.connectionString.replace(/BlobEndpoint=[^;]+/, `BlobEndpoint=http://127.0.0.1:${port}/devstoreaccount1`),
      {
        retryOptions: { maxTries: 1 },
      },
    );
    await assert.rejects(new AzureBlobStore(refused).read('c', 'b'), TransientError);

    // A deadline shorter than any answer: the call is aborted and reported as transient.
    const hurried = new AzureBlobStore(service, { timeoutMs: 1 });
    await assert.rejects(
      hurried.write('c', 'b', 'x'.repeat(1_000_000)),
      (e: unknown) => e instanceof TransientError && /timed out/.test(e.message),
    );
  });
});

void describe('setMetadata', () => {
  void test('replaces metadata, changes the etag, and honours If-Match', async () => {
    const c = await newContainer();
    const { etag } = await store.write(c, 'm.csv', 'x', { metadata: { a: '1' } });
    const updated = await store.setMetadata(c, 'm.csv', { reconcileattempts: '2' }, { ifMatch: etag });
    assert.notEqual(updated.etag, etag);
    assert.deepEqual((await store.properties(c, 'm.csv'))?.metadata, { reconcileattempts: '2' });
    await assert.rejects(store.setMetadata(c, 'm.csv', { a: 'b' }, { ifMatch: etag }), PreconditionFailedError);
  });
});
