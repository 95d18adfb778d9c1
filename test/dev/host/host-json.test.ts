/**
 * The local host honours the app's host.json: route prefix, functionTimeout (the invocation fails and its worker is
 * restarted, as in Azure), blob maxDegreeOfParallelism and poisonBlobThreshold; and several host processes of one
 * app share blob receipts, so one blob version runs once, and a crashed host's claim is taken over.
 * Hosts run as child processes (dev/host/spawn.ts) with a host.json of the test's own, against one Azurite, all with
 * one host id (as one app's instances), so a blob finished in one test is not run again in the next.
 */
import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { QueueServiceClient } from '@azure/storage-queue';
import { startAzurite, type Azurite } from '../../../dev/azurite.js';
import { defaultHostConfig, hostConfigFrom, parseTimeSpan, readHostConfig } from '../../../dev/host/host-config.js';
import { spawnHost, spawnHosts, type HostProcess, type HostProcessOptions } from '../../../dev/host/spawn.js';

const entry = 'test/dev/host/fixtures/app/index.js';
let azurite: Azurite;
let dataDir: string;
const hosts: HostProcess[] = [];

before(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'host-json-test-'));
  azurite = await startAzurite({ dataDir: join(dataDir, 'azurite'), ports: 'free' });
});

after(async () => {
  await Promise.all(hosts.map((h) => h.kill()));
  await azurite?.close();
  await rm(dataDir, { recursive: true, force: true });
});

let files = 0;
async function hostJson(content: unknown): Promise<string> {
  const path = join(dataDir, `host-${++files}.json`);
  await writeFile(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

function options(extra: Partial<HostProcessOptions>): HostProcessOptions {
  return {
    entry,
    storage: azurite.connectionString,
    settings: { PipelineStorage: azurite.connectionString, FIXTURE_TICK_SCHEDULE: '0 0 0 1 1 *' },
    pollIntervalMs: 100,
    hostId: 'host-json-test',
    ...extra,
  };
}

/** A host for one test: killed after it whatever happens, so a failed test leaves no host working on its blobs. */
async function start(t: TestContext, extra: Partial<HostProcessOptions>): Promise<HostProcess> {
  const host = await spawnHost(options(extra));
  hosts.push(host);
  t.after(() => host.kill());
  return host;
}

function container(name: string): ContainerClient {
  return BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(name);
}

async function listNames(name: string, prefix = ''): Promise<string[]> {
  const client = container(name);
  const names: string[] = [];
  if (!(await client.exists())) return names;
  for await (const item of client.listBlobsFlat({ prefix })) names.push(item.name);
  return names;
}

async function upload(containerName: string, blobName: string, metadata: Record<string, string> = {}): Promise<string> {
  const client = container(containerName);
  await client.createIfNotExists();
  const result = await client.getBlockBlobClient(blobName).upload('x', 1, { metadata });
  return result.etag!;
}

/** Waits for a state, checking every 50 ms; the bound only turns a hang into a failure. */
async function waitFor<T>(what: string, read: () => Promise<T>, done: (value: T) => boolean, boundMs = 60000): Promise<T> {
  const deadline = performance.now() + boundMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (performance.now() > deadline) assert.fail(`${what}: still ${JSON.stringify(value)} after ${boundMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface GateState {
  active: number;
  maxActive: number;
  started: string[];
  finished: string[];
}

async function gateState(host: HostProcess, prefix = 'api'): Promise<GateState> {
  const res = await fetch(`${host.url}/${prefix}/gates`);
  assert.equal(res.status, 200);
  return (await res.json()) as GateState;
}

async function openGate(host: HostProcess, name: string): Promise<void> {
  const res = await fetch(`${host.url}/api/gates/${encodeURIComponent(name)}/open`, { method: 'POST' });
  assert.equal(res.status, 204);
}

async function blobPolls(host: HostProcess): Promise<number> {
  const res = await fetch(`${host.url}/admin/host/status`);
  return ((await res.json()) as { blobPolls: number }).blobPolls;
}

async function poisonMessages(): Promise<Record<string, unknown>[]> {
  const poison = QueueServiceClient.fromConnectionString(azurite.connectionString).getQueueClient('webjobs-blobtrigger-poison');
  if (!(await poison.exists())) return [];
  const peeked = await poison.peekMessages({ numberOfMessages: 32 });
  return peeked.peekedMessageItems.map((m) => JSON.parse(Buffer.from(m.messageText, 'base64').toString('utf8')) as Record<string, unknown>);
}

void describe('reading host.json', () => {
  void it('takes the five values, with Azure defaults for what is absent', () => {
    const config = hostConfigFrom(
      {
        version: '2.0',
        functionTimeout: '01:02:03',
        extensions: {
          http: { routePrefix: '/custom/' },
          blobs: { maxDegreeOfParallelism: 3, poisonBlobThreshold: 2 },
          queues: { maxPollingInterval: '00:00:02' },
        },
      },
      'host.json',
    );
    assert.equal(config.queues.maxPollingIntervalMs, 2000);
    assert.equal(config.routePrefix, 'custom');
    assert.equal(config.functionTimeoutMs, 3723000);
    assert.deepEqual(config.blobs, { maxDegreeOfParallelism: 3, poisonBlobThreshold: 2 });
    const defaults = hostConfigFrom({ version: '2.0' }, 'host.json');
    assert.deepEqual({ ...defaults, source: undefined }, defaultHostConfig());
    assert.equal(defaults.routePrefix, 'api');
    assert.equal(defaults.functionTimeoutMs, 30 * 60 * 1000);
    assert.equal(defaults.blobs.poisonBlobThreshold, 5);
    assert.equal(defaults.queues.maxPollingIntervalMs, 60_000);
    assert.equal(hostConfigFrom({ extensions: { http: { routePrefix: '' } } }, 'h').routePrefix, '');
    assert.equal(hostConfigFrom({ functionTimeout: '-1' }, 'h').functionTimeoutMs, undefined);
    assert.equal(parseTimeSpan('1.00:00:00.5'), 86400500);
    assert.equal(parseTimeSpan('00:60:00'), undefined);
  });

  void it('refuses malformed values, naming the file, the property and what to write', async () => {
    assert.throws(
      () => hostConfigFrom({ functionTimeout: '30m' }, 'app/host.json'),
      /app\/host\.json: "functionTimeout" must be a duration "hh:mm:ss".*got "30m"/,
    );
    assert.throws(() => hostConfigFrom({ functionTimeout: '00:00:00' }, 'h'), /functionTimeout.*above zero/);
    assert.throws(
      () => hostConfigFrom({ extensions: { queues: { maxPollingInterval: 2000 } } }, 'h'),
      /h: "extensions\.queues\.maxPollingInterval" must be a duration "hh:mm:ss" of at least 100 ms.*got 2000/,
    );
    assert.throws(
      () => hostConfigFrom({ extensions: { blobs: { maxDegreeOfParallelism: 0 } } }, 'h'),
      /"extensions\.blobs\.maxDegreeOfParallelism" must be a whole number of at least 1, got 0/,
    );
    assert.throws(
      () => hostConfigFrom({ extensions: { blobs: { poisonBlobThreshold: '5' } } }, 'h'),
      /"extensions\.blobs\.poisonBlobThreshold" must be a whole number.*got "5"/,
    );
    assert.throws(
      () => hostConfigFrom({ extensions: { http: { routePrefix: 7 } } }, 'h'),
      /"extensions\.http\.routePrefix" must be a string/,
    );
    assert.throws(() => hostConfigFrom({ extensions: { http: { routePrefix: 'a b' } } }, 'h'), /routePrefix.*plain path/);
    assert.throws(() => hostConfigFrom({ extensions: [] }, 'h'), /"extensions" must be an object/);
    assert.throws(() => hostConfigFrom([], 'h'), /must hold a JSON object/);
    await assert.rejects(readHostConfig(await hostJson('{ "version": "2.0", ')), /host-\d+\.json: host\.json is not valid JSON/);
    await assert.rejects(readHostConfig(join(dataDir, 'absent.json'), { required: true }), /cannot read host\.json/);
    assert.deepEqual(await readHostConfig(join(dataDir, 'absent.json')), defaultHostConfig());
  });

  void it('a host given a malformed host.json does not start, and says why', async (t) => {
    const path = await hostJson({ functionTimeout: 'soon' });
    await assert.rejects(start(t, { hostJson: path }), (error: Error) =>
      error.message.includes(`${path}: "functionTimeout" must be a duration`),
    );
  });

  void it("uses the app root's host.json when none is given (the repository's, for the fixture app)", async (t) => {
    const host = await start(t, {});
    assert.match(host.config.source ?? '', /host\.json$/);
    assert.equal(host.config.routePrefix, 'api');
    assert.equal(host.config.blobs.poisonBlobThreshold, 5);
    assert.equal(await host.stop(), 0);
  });
});

void describe('routePrefix', () => {
  void it('serves HTTP functions under the configured prefix, and only there', async (t) => {
    const host = await start(t, { hostJson: await hostJson({ version: '2.0', extensions: { http: { routePrefix: 'custom/v1' } } }) });
    const echo = await fetch(`${host.url}/custom/v1/items/5/echo`);
    assert.equal(echo.status, 200);
    assert.deepEqual(((await echo.json()) as { params: unknown }).params, { id: '5' });
    assert.equal((await fetch(`${host.url}/api/items/5/echo`)).status, 404);
    assert.equal(host.functions.find((f) => f.name === 'echo')?.trigger, '/custom/v1/items/{id}/echo/{extra?}');
    assert.equal(await host.stop(), 0);
  });

  void it('serves them at the root with an empty prefix, keeping the admin paths', async (t) => {
    const host = await start(t, { hostJson: await hostJson({ version: '2.0', extensions: { http: { routePrefix: '' } } }) });
    assert.equal((await fetch(`${host.url}/items/5/echo`)).status, 200);
    assert.equal(await (await fetch(`${host.url}/defaultRoute`)).text(), 'default route is the function name');
    assert.equal((await fetch(`${host.url}/api/items/5/echo`)).status, 404);
    assert.equal((await fetch(`${host.url}/admin/host/status`)).status, 200);
    assert.equal(host.functions.find((f) => f.name === 'defaultRoute')?.trigger, '/defaultRoute');
    assert.equal(await host.stop(), 0);
  });
});

void describe('extensions.queues.maxPollingInterval', () => {
  void it("polls a queue at once when one of the host's own functions writes to it, not at the next interval", async (t) => {
    const queues = QueueServiceClient.fromConnectionString(azurite.connectionString);
    const relay = queues.getQueueClient('fixture-relay');
    const done = queues.getQueueClient('fixture-relay-done');
    await Promise.all([relay.createIfNotExists(), done.createIfNotExists()]);
    const relayed = async (count: number) =>
      (
        await waitFor(
          `${count} relayed message(s)`,
          async () => (await done.peekMessages({ numberOfMessages: 32 })).peekedMessageItems,
          (items) => items.length >= count,
        )
      ).map((m) => JSON.parse(Buffer.from(m.messageText, 'base64').toString('utf8')) as unknown);
    // Waiting before the host starts: its first poll runs it, so that poll is known to be over once it is relayed.
    await relay.sendMessage(Buffer.from(JSON.stringify({ relayed: 'before start' })).toString('base64'));
    // Ten minutes between polls: after the first one, only the notification of the host's own write can run the queue function.
    const host = await start(t, {
      pollIntervalMs: 600_000,
      hostJson: await hostJson({ version: '2.0', extensions: { queues: { maxPollingInterval: '00:10:00' } } }),
    });
    assert.equal(host.config.queues.maxPollingIntervalMs, 600_000);
    assert.deepEqual(await relayed(1), [{ relayed: 'before start' }]);
    assert.equal((await fetch(`${host.url}/api/relayStart`, { method: 'POST', body: 'hand-off' })).status, 202);
    assert.deepEqual(await relayed(2), [{ relayed: 'before start' }, { relayed: 'hand-off' }]);
    assert.equal(await host.stop(), 0);
  });
});

void describe('extensions.blobs.maxDegreeOfParallelism', () => {
  void it('runs at most that many blob invocations at once', async (t) => {
    const host = await start(t, { hostJson: await hostJson({ version: '2.0', extensions: { blobs: { maxDegreeOfParallelism: 2 } } }) });
    const names = ['p1', 'p2', 'p3', 'p4', 'p5'];
    await Promise.all(names.map((name) => upload('gated', name)));
    let state = await waitFor(
      'two gated invocations running',
      () => gateState(host),
      (s) => s.started.length >= 2,
    );
    // Two complete polls later (each listed the three waiting blobs), still only two have started.
    const polls = await blobPolls(host);
    await waitFor(
      'two more polls',
      () => blobPolls(host),
      (n) => n >= polls + 2,
    );
    state = await gateState(host);
    assert.equal(state.started.length, 2, JSON.stringify(state));
    // Each opened gate frees one place, taken by the next blob.
    while (state.finished.length < names.length) {
      const waiting = state.started.find((n) => !state.finished.includes(n))!;
      await openGate(host, waiting);
      const finished = state.finished.length;
      state = await waitFor(
        'the next gated invocation',
        () => gateState(host),
        (s) => s.finished.length > finished && (s.started.length === names.length || s.active === 2),
      );
      assert.ok(state.active <= 2, JSON.stringify(state));
    }
    await host.idle();
    state = await gateState(host);
    assert.deepEqual([...state.finished].sort(), names);
    assert.equal(state.maxActive, 2);
    assert.equal(await host.stop(), 0);
  });
});

void describe('functionTimeout and poisonBlobThreshold', () => {
  void it('fails an invocation that outlives functionTimeout, restarts the worker, and retries the blob', async (t) => {
    const host = await start(t, {
      hostJson: await hostJson({ version: '2.0', functionTimeout: '00:00:01', extensions: { blobs: { poisonBlobThreshold: 2 } } }),
    });
    await upload('hanging', 'once.txt', { hangtries: '1' });

    const done = await waitFor(
      'the retried blob done',
      () => listNames('hang-done', 'once.txt/'),
      (n) => n.length === 1,
    );
    const attempts = await listNames('hang-attempts', 'once.txt/');
    assert.equal(attempts.length, 2, 'the first attempt timed out, the second succeeded');
    const final = JSON.parse((await container('hang-done').getBlobClient(done[0]!).downloadToBuffer()).toString('utf8')) as {
      retryCount: number;
    };
    assert.equal(final.retryCount, 1);
    const logs = host.logs();
    assert.ok(
      logs.some((l) =>
        /^\[hangBlob\] \[[0-9a-f-]{36}\] Timeout value of 00:00:01 exceeded by function 'Functions\.hangBlob' \(Id: '[0-9a-f-]{36}'\)\. Initiating cancellation\.$/.test(
          l,
        ),
      ),
      logs.join('\n'),
    );
    assert.ok(
      logs.some(
        (l) =>
          l.includes("Executed 'Functions.hangBlob' (Failed") &&
          l.includes('FunctionTimeoutException: Timeout value of 00:00:01 was exceeded by function: Functions.hangBlob'),
      ),
    );
    assert.ok(
      logs.some((l) => l.includes("Restarting the app's worker, which is running invocation")),
      logs.join('\n'),
    );
    // The app loaded afresh in the new worker (it logs this registration once per load).
    assert.equal(logs.filter((l) => l.includes('Enabled Deferred Binding')).length, 2, 'the app was loaded twice');
    await host.idle();
    assert.equal((await fetch(`${host.url}/api/defaultRoute`)).status, 200, 'the host keeps serving');
    assert.equal(await host.stop(), 0);
  });

  void it('moves a blob to the poison queue after poisonBlobThreshold failed attempts, timeouts included', async (t) => {
    const host = await start(t, {
      hostJson: await hostJson({ version: '2.0', functionTimeout: '00:00:01', extensions: { blobs: { poisonBlobThreshold: 2 } } }),
    });
    // One after the other: a timeout restarts the worker, which would also end the failing blob's attempt early.
    const bad = await upload('failing', 'bad.txt');
    await host.idle();
    const stuck = await upload('hanging', 'stuck.txt', { hangtries: '99' });
    await host.idle();
    assert.equal((await listNames('hang-attempts', 'stuck.txt/')).length, 2);
    assert.equal((await listNames('hang-done', 'stuck.txt/')).length, 0);
    assert.equal((await listNames('attempts', 'bad/')).length, 2);
    const messages = await poisonMessages();
    assert.deepEqual(
      messages
        .filter((m) => m.BlobName === 'stuck.txt' || m.BlobName === 'bad.txt')
        .sort((a, b) => String(a.BlobName).localeCompare(String(b.BlobName))),
      [
        {
          Type: 'BlobTrigger',
          FunctionId: 'Host.Functions.failBlob',
          BlobType: 'BlockBlob',
          ContainerName: 'failing',
          BlobName: 'bad.txt',
          ETag: bad,
        },
        {
          Type: 'BlobTrigger',
          FunctionId: 'Host.Functions.hangBlob',
          BlobType: 'BlockBlob',
          ContainerName: 'hanging',
          BlobName: 'stuck.txt',
          ETag: stuck,
        },
      ],
    );
    // Not tried again: a later blob is processed (so later polls listed both) and the counts stand.
    await upload('incoming', 'after-poison.csv');
    await host.idle();
    assert.equal((await listNames('processed', 'after-poison.csv/')).length, 1);
    assert.equal((await listNames('hang-attempts', 'stuck.txt/')).length, 2);
    assert.equal((await listNames('attempts', 'bad/')).length, 2);
    assert.equal(await host.stop(), 0);
  });
});

void describe('several host processes of one app', () => {
  void it('process each blob version once between them', async (t) => {
    const pair = await spawnHosts(2, options({}));
    hosts.push(...pair);
    t.after(() => Promise.all(pair.map((h) => h.kill())));
    const names = Array.from({ length: 8 }, (_, i) => `shared-${i}.csv`);
    // One blob first, then several at once.
    await upload('incoming', names[0]!);
    await Promise.all(pair.map((h) => h.idle()));
    await Promise.all(names.slice(1).map((name) => upload('incoming', name)));
    await Promise.all(pair.map((h) => h.idle()));
    await Promise.all(pair.map((h) => h.idle()));
    for (const name of names) assert.equal((await listNames('processed', `${name}/`)).length, 1, name);
    const executed = pair.map(
      (h) => h.logs().filter((l) => /Executed 'Functions\.recordBlob' \(Succeeded/.test(l) && l.includes('incoming/shared-')).length,
    );
    assert.equal(executed[0]! + executed[1]!, names.length, `invocations per host: ${executed.join(', ')}`);
    await Promise.all(pair.map((h) => h.stop()));
  });

  void it('a blob another host holds takes no place: a host with one place starts the next blob nobody holds', async (t) => {
    const onePlace = await hostJson({ version: '2.0', extensions: { blobs: { maxDegreeOfParallelism: 1 } } });
    const first = await start(t, { hostJson: onePlace });
    await upload('gated', 'held-a');
    await waitFor(
      'the first host running held-a',
      () => gateState(first),
      (s) => s.started.includes('held-a'),
    );
    const second = await start(t, { hostJson: onePlace });
    // Listed after held-a, which the first host holds open: the second host's only place must go to held-b.
    await upload('gated', 'held-b');
    const state = await waitFor(
      'the second host running held-b',
      () => gateState(second),
      (s) => s.started.includes('held-b'),
    );
    assert.deepEqual(state.started, ['held-b']);
    await openGate(first, 'held-a');
    await openGate(second, 'held-b');
    await Promise.all([first.idle(), second.idle()]);
    assert.equal((await gateState(first)).started.join(), 'held-a');
  });

  void it("take over a crashed host's blob once its receipt lease lapses", async (t) => {
    const first = await start(t, {});
    await upload('gated', 'orphan');
    await waitFor(
      'the first host running the blob',
      () => gateState(first),
      (s) => s.started.includes('orphan'),
    );
    const second = await start(t, {});
    await first.kill();
    // The second host waits out the lease (15 s at most), then runs the blob as a retry.
    const state = await waitFor(
      'the second host running the blob',
      () => gateState(second),
      (s) => s.started.includes('orphan'),
    );
    assert.deepEqual(state.started, ['orphan']);
    await openGate(second, 'orphan');
    await second.idle();
    assert.ok(second.logs().some((l) => l.includes("Executed 'Functions.gatedBlob' (Succeeded, Reason='New blob detected(gated/orphan)'")));
    assert.equal(await second.stop(), 0);
  });
});
