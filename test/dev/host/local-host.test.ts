/**
 * The local Functions host running the fixture app (test/dev/host/fixtures/app),
 * registered through @azure/functions, against a real Azurite.
 * This file hosts the app in-process with authLevel enforcement on.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { QueueServiceClient } from '@azure/storage-queue';
import { startAzurite, type Azurite } from '../../../dev/azurite.js';
import { startLocalHost, type LocalHost } from '../../../dev/host/host.js';

const masterKey = 'test-master-key';
const functionKey = 'test-function-key';
const hostId = 'local-host-test';

let azurite: Azurite;
let host: LocalHost;
let dataDir: string;
const lines: string[] = [];

before(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'local-host-test-'));
  azurite = await startAzurite({ dataDir, ports: 'free' });
  host = await startLocalHost({
    entry: 'test/dev/host/fixtures/app/index.js',
    port: 0,
    storageConnectionString: azurite.connectionString,
    settings: { PipelineStorage: azurite.connectionString, FIXTURE_SETTING: 'from settings', FIXTURE_TICK_SCHEDULE: '*/2 * * * * *' },
    pollIntervalMs: 150,
    enforceAuth: true,
    masterKey,
    functionKeys: { default: functionKey },
    hostId,
    log: (line) => lines.push(line),
  });
});

after(async () => {
  await host?.close();
  await azurite?.close();
  await rm(dataDir, { recursive: true, force: true });
});

function container(name: string): ContainerClient {
  return BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(name);
}

async function listNames(client: ContainerClient, prefix = ''): Promise<string[]> {
  const names: string[] = [];
  if (!(await client.exists())) return names;
  for await (const item of client.listBlobsFlat({ prefix })) names.push(item.name);
  return names;
}

async function readJson(client: ContainerClient, name: string): Promise<Record<string, unknown>> {
  const buffer = await client.getBlobClient(name).downloadToBuffer();
  return JSON.parse(buffer.toString('utf8')) as Record<string, unknown>;
}

void describe('functions', () => {
  void it('learns every function from registerFunction, with its trigger type', () => {
    const byName = Object.fromEntries(host.functions.map((f) => [f.name, f.type]));
    assert.equal(byName.echo, 'httpTrigger');
    assert.equal(byName.recordBlob, 'blobTrigger');
    assert.equal(byName.failBlob, 'blobTrigger');
    assert.equal(byName.tick, 'timerTrigger');
    assert.equal(byName.queueEcho, 'queueTrigger');
    assert.equal(byName.recordBlobReference, 'blobTrigger');
    assert.equal(host.functions.length, 20);
    assert.match(host.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  });

  void it('runs the hooks registered with app.hook (appStart, preInvocation, postInvocation)', async () => {
    const first = (await (await fetch(`${host.url}/api/hooks`)).json()) as Record<string, unknown>;
    assert.equal(first.appStart, 1);
    assert.equal(first.appStartDirectory, 'hookData ok');
    assert.equal(first.wrappedByHook, true);
    const second = (await (await fetch(`${host.url}/api/hooks`)).json()) as Record<string, unknown>;
    assert.equal((second.preInvocation as number) - (first.preInvocation as number), 1);
    assert.equal((second.postInvocation as number) - (first.postInvocation as number), 1);
  });
});

void describe('HTTP triggers', () => {
  void it('passes route parameters, query, headers and method, and returns the status and headers', async () => {
    const res = await fetch(`${host.url}/api/items/42/echo?x=1&x=2&status=201`, { headers: { 'x-test-header': 'hello' } });
    assert.equal(res.status, 201);
    assert.equal(res.headers.get('x-fixture'), 'echo');
    assert.match(res.headers.get('content-type') ?? '', /application\/json/);
    const body = (await res.json()) as Record<string, unknown>;
    assert.equal(body.method, 'GET');
    assert.deepEqual(body.params, { id: '42' });
    assert.deepEqual(body.query, { x: '1,2', status: '201' });
    assert.equal(body.header, 'hello');
    assert.equal(body.functionName, 'echo');
    assert.equal(body.url, `${host.url}/api/items/42/echo?x=1&x=2&status=201`);
  });

  void it('passes the body and the optional route parameter', async () => {
    const res = await fetch(`${host.url}/api/items/a%20b/echo/more`, { method: 'PUT', body: 'payload ✓' });
    assert.equal(res.status, 200);
    const body = (await res.json()) as Record<string, unknown>;
    assert.equal(body.method, 'PUT');
    assert.deepEqual(body.params, { id: 'a b', extra: 'more' });
    assert.equal(body.body, 'payload ✓');
  });

  void it('answers 404 for a method the function does not accept and for unknown routes', async () => {
    assert.equal((await fetch(`${host.url}/api/items/42/echo`, { method: 'PATCH' })).status, 404);
    assert.equal((await fetch(`${host.url}/api/no/such/route`)).status, 404);
    assert.equal((await fetch(`${host.url}/elsewhere`)).status, 404);
  });

  void it('prefers literal routes and uses the function name when no route is given', async () => {
    const literal = await fetch(`${host.url}/api/items/special/echo`);
    assert.equal(await literal.text(), 'literal route wins');
    const byName = await fetch(`${host.url}/api/defaultRoute`);
    assert.equal(byName.status, 200);
    assert.equal(await byName.text(), 'default route is the function name');
  });

  void it('answers 204 when the function returns nothing and 500 when it throws', async () => {
    assert.equal((await fetch(`${host.url}/api/nothing`, { method: 'DELETE' })).status, 204);
    const crash = await fetch(`${host.url}/api/crash`);
    assert.equal(crash.status, 500);
    assert.equal(await crash.text(), '');
    assert.ok(lines.some((l) => /^\[crash\] \[[0-9a-f-]{36}\] Executed 'Functions\.crash' \(Failed/.test(l)));
  });

  void it('puts the settings in process.env for the app', async () => {
    const res = await fetch(`${host.url}/api/setting/FIXTURE_SETTING`);
    assert.deepEqual(await res.json(), { value: 'from settings' });
  });

  void it('writes function logs as [name] [invocationId] message', async () => {
    const res = await fetch(`${host.url}/api/items/7/echo`);
    const { invocationId } = (await res.json()) as { invocationId: string };
    assert.ok(lines.includes(`[echo] [${invocationId}] echo GET 7`), lines.join('\n'));
  });
});

void describe('authLevel enforcement', () => {
  void it('lets anonymous functions through without a key', async () => {
    assert.equal((await fetch(`${host.url}/api/defaultRoute`)).status, 200);
  });

  void it('needs a function key or the master key for function level', async () => {
    const url = `${host.url}/api/secure/function`;
    assert.equal((await fetch(url)).status, 401);
    assert.equal((await fetch(`${url}?code=wrong`)).status, 401);
    assert.equal((await fetch(`${url}?code=${functionKey}`)).status, 200);
    assert.equal((await fetch(url, { headers: { 'x-functions-key': functionKey } })).status, 200);
    const withMaster = await fetch(`${url}?code=${masterKey}`);
    assert.equal(withMaster.status, 200);
    assert.equal(await withMaster.text(), 'function ok');
  });

  void it('needs the master key for admin level', async () => {
    const url = `${host.url}/api/secure/admin`;
    assert.equal((await fetch(url)).status, 401);
    assert.equal((await fetch(`${url}?code=${functionKey}`)).status, 401);
    assert.equal((await fetch(url, { headers: { 'x-functions-key': masterKey } })).status, 200);
  });
});

void describe('blob triggers', () => {
  void it('fires for a new blob with trigger metadata as in Azure, once per ETag', async () => {
    const incoming = container('incoming');
    await incoming.createIfNotExists();
    const upload = await incoming.getBlockBlobClient('batch-1.csv').upload('serial,secret\n1,abc\n', 20, {
      metadata: { vendor: 'acme' },
      blobHTTPHeaders: { blobContentType: 'text/csv' },
    });
    await host.idle();

    const processed = container('processed');
    const records = await listNames(processed, 'batch-1.csv/');
    assert.equal(records.length, 1);
    const record = await readJson(processed, records[0]!);
    assert.equal(record.isBuffer, true);
    assert.equal(record.content, 'serial,secret\n1,abc\n');
    assert.equal(record.name, 'batch-1.csv');
    assert.equal(record.blobTrigger, 'incoming/batch-1.csv');
    assert.equal(record.uri, incoming.getBlobClient('batch-1.csv').url);
    assert.deepEqual(record.metadata, { vendor: 'acme' });
    const properties = record.properties as Record<string, unknown>;
    assert.equal(properties.contentLength, 20);
    assert.equal(properties.contentType, 'text/csv');
    assert.equal(properties.eTag, upload.etag);

    // The receipt is where the real host keeps it.
    const receipt = `blobreceipts/${hostId}/Host.Functions.recordBlob/${upload.etag}/incoming/batch-1.csv`;
    assert.ok(await container('azure-webjobs-hosts').getBlobClient(receipt).exists());

    // Later polls list it again without processing it again: a blob uploaded after it is processed (so a poll
    // that listed both ran), and it still has its one record.
    await incoming.getBlockBlobClient('after-batch-1.csv').upload('marker', 6);
    await host.idle();
    assert.equal((await listNames(processed, 'after-batch-1.csv/')).length, 1, 'the later blob was processed');
    assert.equal((await listNames(processed, 'batch-1.csv/')).length, 1);

    // A new ETag (overwrite) is a new blob for the trigger.
    await incoming.getBlockBlobClient('batch-1.csv').upload('changed', 7);
    await host.idle();
    assert.equal((await listNames(processed, 'batch-1.csv/')).length, 2);
  });

  void it('hands a deferred binding (sdkBinding) a reference to the blob, not its content', async () => {
    const referenced = container('referenced');
    await referenced.createIfNotExists();
    const content = Buffer.alloc(3 * 1024 * 1024, 'x');
    await referenced.getBlockBlobClient('big/file.bin').upload(content, content.length);
    await host.idle();
    const processed = container('processed-references');
    const records = await listNames(processed, 'big/file.bin/');
    assert.equal(records.length, 1);
    const record = await readJson(processed, records[0]!);
    assert.equal(record.isBuffer, false);
    assert.deepEqual(record.received, {
      source: 'AzureStorageBlobs',
      reference: { Connection: 'PipelineStorage', ContainerName: 'referenced', BlobName: 'big/file.bin' },
    });
    assert.equal(record.contentLength, content.length);
  });

  void it('does not start a blob again while its invocation is still running', async () => {
    const incoming = container('incoming');
    await incoming.getBlockBlobClient('slow.csv').upload('x', 1, { metadata: { slowms: '1200' } });
    await host.idle();
    assert.equal((await listNames(container('processed'), 'slow.csv/')).length, 1);
  });

  void it('tries a failing blob 5 times, then moves it to the poison queue', async () => {
    const failing = container('failing');
    await failing.createIfNotExists();
    const upload = await failing.getBlockBlobClient('bad.txt').upload('boom', 4);
    await failing.getBlockBlobClient('ignored.csv').upload('not matched by {name}.txt', 25);
    await host.idle();

    assert.equal((await listNames(container('attempts'), 'bad/')).length, 5);
    assert.equal((await listNames(container('attempts'), 'ignored')).length, 0);

    const poison = QueueServiceClient.fromConnectionString(azurite.connectionString).getQueueClient('webjobs-blobtrigger-poison');
    const peeked = await poison.peekMessages({ numberOfMessages: 32 });
    const messages = peeked.peekedMessageItems.map(
      (m) => JSON.parse(Buffer.from(m.messageText, 'base64').toString('utf8')) as Record<string, unknown>,
    );
    assert.deepEqual(messages, [
      {
        Type: 'BlobTrigger',
        FunctionId: 'Host.Functions.failBlob',
        BlobType: 'BlockBlob',
        ContainerName: 'failing',
        BlobName: 'bad.txt',
        ETag: upload.etag,
      },
    ]);

    // No more tries after that: a failing blob uploaded later goes through its own 5 tries (5 more polls that listed
    // bad.txt too) and bad.txt still has its 5.
    await failing.getBlockBlobClient('later.txt').upload('boom', 4);
    await host.idle();
    assert.equal((await listNames(container('attempts'), 'later/')).length, 5, 'the later blob was tried 5 times');
    assert.equal((await listNames(container('attempts'), 'bad/')).length, 5);
    assert.equal((await poison.peekMessages({ numberOfMessages: 32 })).peekedMessageItems.length, 2, 'one poison message each');
  });
});

void describe('timer and queue triggers', () => {
  void it('fires the timer on its NCRONTAB schedule (from an app setting)', async () => {
    const ticks = container('ticks');
    const deadline = Date.now() + 8000;
    let names: string[] = [];
    while (Date.now() < deadline && names.length < 2) {
      await new Promise((r) => setTimeout(r, 250));
      names = await listNames(ticks);
    }
    assert.ok(names.length >= 2, `expected 2 ticks, saw ${names.length}`);
    const first = await readJson(ticks, names[0]!);
    assert.equal(first.isPastDue, false);
    assert.equal(typeof first.next, 'string');
    assert.equal(new Date(first.next as string).getUTCSeconds() % 2, 0);
  });

  void it('runs a queue trigger and writes its queue output binding', async () => {
    const queues = QueueServiceClient.fromConnectionString(azurite.connectionString);
    await queues.getQueueClient('fixture-input').sendMessage(Buffer.from(JSON.stringify({ hello: 'queue' })).toString('base64'));
    await host.idle();
    const output = await queues.getQueueClient('fixture-output').receiveMessages();
    const texts = output.receivedMessageItems.map((m) => Buffer.from(m.messageText, 'base64').toString('utf8'));
    assert.deepEqual(
      texts.map((t) => JSON.parse(t) as unknown),
      [{ echoed: { hello: 'queue' } }],
    );
  });
});
