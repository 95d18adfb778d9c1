/**
 * The local host across restarts: each host runs in its own process
 * (dev/host/cli.ts), as a process hosts one app. Blob receipts in Azurite
 * keep a blob from being processed again by the next host, even after a
 * crash. Also checks the local default of open authLevel (as `func start`).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { startAzurite, type Azurite } from '../../../dev/azurite.js';

let azurite: Azurite;
let dataDir: string;
const children = new Set<ChildProcess>();

interface HostProcess {
  url: string;
  child: ChildProcess;
  logs: string[];
}

async function startHostProcess(tickSchedule = '0 0 0 1 1 *'): Promise<HostProcess> {
  const args = [
    '--import',
    'tsx',
    'dev/host/cli.ts',
    '--entry',
    'test/dev/host/fixtures/app/index.js',
    '--storage',
    azurite.connectionString,
    '--port',
    '0',
    '--poll-interval-ms',
    '150',
    '--host-id',
    'restart-test',
    '--json',
  ];
  const child = spawn(process.execPath, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PipelineStorage: azurite.connectionString, FIXTURE_TICK_SCHEDULE: tickSchedule },
  });
  children.add(child);
  const logs: string[] = [];
  const url = await new Promise<string>((resolve, reject) => {
    let buffered = '';
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.stdout?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        if (!line.startsWith('{')) continue;
        const parsed = JSON.parse(line) as { ready?: boolean; url?: string; log?: string };
        if (parsed.log !== undefined) logs.push(parsed.log);
        if (parsed.ready && parsed.url) resolve(parsed.url);
      }
    });
    child.once('exit', (code) => reject(new Error(`host exited (${code}) before it was ready: ${stderr}`)));
  });
  return { url, child, logs };
}

function stopHost(host: HostProcess, signal: NodeJS.Signals): Promise<number | null> {
  return new Promise((resolve) => {
    if (host.child.exitCode !== null || host.child.signalCode !== null) return resolve(host.child.exitCode);
    host.child.once('exit', (code) => {
      children.delete(host.child);
      resolve(code);
    });
    host.child.kill(signal);
  });
}

before(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'host-restart-test-'));
  azurite = await startAzurite({ dataDir, ports: 'free' });
});

after(async () => {
  for (const child of children) child.kill('SIGKILL');
  await azurite?.close();
  await rm(dataDir, { recursive: true, force: true });
});

function container(name: string): ContainerClient {
  return BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(name);
}

async function count(prefix: string): Promise<number> {
  const processed = container('processed');
  if (!(await processed.exists())) return 0;
  let n = 0;
  for await (const _item of processed.listBlobsFlat({ prefix })) n += 1;
  return n;
}

async function waitFor(prefix: string, expected: number, timeoutMs = 10000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if ((await count(prefix)) >= expected) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`no ${expected} record(s) for ${prefix} within ${timeoutMs} ms`);
}

async function readTicks(): Promise<{ isPastDue: boolean }[]> {
  const ticks = container('ticks');
  if (!(await ticks.exists())) return [];
  const found: { isPastDue: boolean }[] = [];
  for await (const item of ticks.listBlobsFlat()) {
    found.push(JSON.parse((await ticks.getBlobClient(item.name).downloadToBuffer()).toString('utf8')) as { isPastDue: boolean });
  }
  return found;
}

async function waitForTicks(n: number): Promise<{ isPastDue: boolean }[]> {
  const deadline = Date.now() + 10000;
  for (;;) {
    const found = await readTicks();
    if (found.length >= n) return found;
    if (Date.now() > deadline) assert.fail(`expected ${n} ticks, saw ${found.length}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Resolves once the host has polled every blob after this call and runs nothing (the host's local admin call). */
async function idle(host: HostProcess): Promise<void> {
  const res = await fetch(`${host.url}/admin/host/idle`);
  assert.equal(res.status, 200);
  await res.arrayBuffer();
}

const everyTwoSeconds = '*/2 * * * * *';

void describe('local host restarts', () => {
  let first: HostProcess;
  before(async () => {
    const incoming = container('incoming');
    await incoming.createIfNotExists();
    await incoming.getBlockBlobClient('before.csv').upload('a', 1);
    first = await startHostProcess(everyTwoSeconds);
  });

  void it('leaves authLevel open by default, like func start', async () => {
    const res = await fetch(`${first.url}/api/secure/admin`);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'admin ok');
  });

  void it('keeps blob receipts and timer status across a graceful restart and a crash', async () => {
    const incoming = container('incoming');
    await waitFor('before.csv/', 1);
    const ticksBefore = await waitForTicks(1);
    assert.equal(await stopHost(first, 'SIGTERM'), 0);
    assert.ok(ticksBefore.every((tick) => !tick.isPastDue));
    const seen = (await readTicks()).length;

    // Down long enough to miss a timer occurrence: the next host runs it at start-up with isPastDue.
    await new Promise((r) => setTimeout(r, 2200));
    const second = await startHostProcess(everyTwoSeconds);
    const ticksAfter = await waitForTicks(seen + 1);
    assert.equal(ticksAfter.filter((tick) => tick.isPastDue).length, 1);

    await incoming.getBlockBlobClient('second.csv').upload('b', 1);
    await waitFor('second.csv/', 1);
    // Idle means a poll that started after this call found every blob done, the old one included.
    await idle(second);
    assert.equal(await count('before.csv/'), 1);
    assert.ok(!second.logs.some((l) => l.endsWith('processing before.csv')), 'the second host did not run the old blob');
    await stopHost(second, 'SIGKILL');

    const third = await startHostProcess();
    await incoming.getBlockBlobClient('third.csv').upload('c', 1);
    await waitFor('third.csv/', 1);
    await idle(third);
    assert.equal(await count('before.csv/'), 1);
    assert.equal(await count('second.csv/'), 1);
    assert.ok(
      third.logs.some((l) => /^\[recordBlob\] \[[0-9a-f-]{36}\] processing third\.csv$/.test(l)),
      third.logs.join('\n'),
    );
    assert.equal(await stopHost(third, 'SIGTERM'), 0);
  });
});
