// Persistence of the Key Vault stand-in: state survives close/restart and SIGKILL; every acknowledged write is on
// disk before its response. Also the standalone CLI (dev/keyvault/main.ts).
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createLocalSecretClient } from '../../../dev/keyvault/client.js';
import { startKeyVaultStandIn } from '../../../dev/keyvault/server.js';
import { restErrorOf, startForTest } from './helpers.js';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const nodeBin = path.join(repoRoot, 'node_modules', '.bin', 'node');

function tempJournal(t: TestContext): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kv-standin-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return path.join(dir, 'vault.jsonl');
}

void test('persistence: secrets, versions, tags, deletions and purges survive close and restart', async (t) => {
  const file = tempJournal(t);
  let kv = await startKeyVaultStandIn({ persistPath: file });
  let client = createLocalSecretClient(kv.url);
  const v1 = await client.setSecret('Kept', 'one', { contentType: 'text/plain', tags: { a: '1' } });
  const v2 = await client.setSecret('kept', 'two');
  await client.updateSecretProperties('Kept', v1.properties.version ?? '', { tags: { a: 'updated' } });
  await client.setSecret('Deleted', 'd');
  await (await client.beginDeleteSecret('Deleted')).pollUntilDone();
  await client.setSecret('Purged', 'p');
  await (await client.beginDeleteSecret('Purged')).pollUntilDone();
  await client.purgeDeletedSecret('Purged');
  await kv.close();

  kv = await startKeyVaultStandIn({ persistPath: file });
  t.after(() => kv.close());
  client = createLocalSecretClient(kv.url);
  const latest = await client.getSecret('KEPT');
  assert.equal(latest.value, 'two');
  assert.equal(latest.properties.version, v2.properties.version);
  assert.equal(latest.name, 'Kept');
  const old = await client.getSecret('Kept', { version: v1.properties.version });
  assert.equal(old.value, 'one');
  assert.equal(old.properties.contentType, 'text/plain');
  assert.deepEqual(old.properties.tags, { a: 'updated' });
  assert.deepEqual(kv.stats().versionsPerSecret, { Kept: 2 });
  assert.equal((await client.getDeletedSecret('Deleted')).name, 'Deleted');
  assert.equal((await restErrorOf(() => client.getDeletedSecret('Purged'))).statusCode, 404);
  assert.equal((await restErrorOf(() => client.getSecret('Purged'))).statusCode, 404);

  // Compacted at start: one header, one line per version, one per deletion; and private to the owner.
  const lines = fs.readFileSync(file, 'utf8').trim().split('\n');
  assert.equal(lines.length, 1 + 2 + 1 + 1);
  assert.equal(fs.statSync(file).mode & 0o077, 0, 'plaintext secrets: no group/other access');

  // Recovering after restart works on the persisted deletion.
  await (await client.beginRecoverDeletedSecret('Deleted')).pollUntilDone();
  assert.equal((await client.getSecret('Deleted')).value, 'd');
});

void test('persistence: a torn last line is ignored, corruption elsewhere refuses to start', async (t) => {
  const file = tempJournal(t);
  const kv = await startKeyVaultStandIn({ persistPath: file });
  await createLocalSecretClient(kv.url).setSecret('survivor', 'v');
  await kv.close();

  fs.appendFileSync(file, '{"t":"version","key":"half-writ');
  const logs: string[] = [];
  const reopened = await startForTest(t, { persistPath: file, log: (l) => logs.push(l) });
  assert.equal(reopened.stats().secrets, 1);
  assert.ok(logs.some((l) => /torn/.test(l)));
  await reopened.close();

  const content = fs.readFileSync(file, 'utf8');
  fs.writeFileSync(file, 'not json\n' + content);
  await assert.rejects(startKeyVaultStandIn({ persistPath: file }), /corrupt/);
});

void test('persistence: 1,000 journaled creates stay fast and reload fast', async (t) => {
  const file = tempJournal(t);
  const kv = await startForTest(t, { persistPath: file });
  const client = createLocalSecretClient(kv.url);
  const started = Date.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 20 }, async () => {
      while (next < 1000) {
        const i = next++;
        await client.setSecret(`bulk-${i}`, `seed-${i}`);
      }
    }),
  );
  const writeMs = Date.now() - started;
  assert.ok(writeMs < 20_000, `1,000 creates took ${writeMs} ms`);
  assert.equal(kv.stats().creates, 1000);
  await kv.close();

  const reloadStart = Date.now();
  const again = await startForTest(t, { persistPath: file });
  assert.ok(Date.now() - reloadStart < 2_000);
  assert.equal(again.stats().secrets, 1000);
  assert.equal((await createLocalSecretClient(again.url).getSecret('bulk-999')).value, 'seed-999');
});

interface Cli {
  child: ChildProcessWithoutNullStreams;
  url: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

async function startCli(t: TestContext, args: string[]): Promise<Cli> {
  const child = spawn(nodeBin, ['--import', 'tsx', 'dev/keyvault/main.ts', ...args], { cwd: repoRoot, stdio: 'pipe' });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    let stdout = '';
    const timer = setTimeout(() => reject(new Error(`CLI did not start: ${stderr}`)), 20_000);
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(stdout);
      if (m?.[1]) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`CLI exited early: ${stderr}`));
    });
  });
  return { child, url, exited };
}

void test('persistence: a CLI stand-in killed with SIGKILL comes back with every acknowledged write', async (t) => {
  const file = tempJournal(t);
  const cli = await startCli(t, ['--port', '0', '--data', file]);
  assert.match(cli.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  // No retries: after the kill, outstanding calls must fail rather than wait on backoff.
  const client = createLocalSecretClient(cli.url, { retryOptions: { maxRetries: 0 } });

  await client.setSecret('before-burst', 'b');
  const tagged = await client.setSecret('tagged', 't');
  await client.updateSecretProperties('tagged', tagged.properties.version ?? '', { tags: { state: 'updated' } });
  await client.setSecret('removed', 'r');
  await (await client.beginDeleteSecret('removed')).pollUntilDone();

  const acknowledged: { name: string; version: string; value: string }[] = [];
  let killed = false;
  const burst = Array.from({ length: 300 }, async (_, i) => {
    const name = `burst-${i}`;
    const value = `value-${i}`;
    const result = await client.setSecret(name, value);
    acknowledged.push({ name, version: result.properties.version ?? '', value });
    if (acknowledged.length >= 100 && !killed) {
      killed = true;
      cli.child.kill('SIGKILL');
    }
  });
  const settled = await Promise.allSettled(burst);
  const { signal } = await cli.exited;
  assert.equal(signal, 'SIGKILL');
  assert.ok(acknowledged.length >= 100);
  assert.ok(
    settled.some((s) => s.status === 'rejected'),
    'the kill landed mid-burst',
  );

  const kv = await startForTest(t, { persistPath: file });
  const reader = createLocalSecretClient(kv.url);
  for (const ack of acknowledged) {
    const got = await reader.getSecret(ack.name, { version: ack.version });
    assert.equal(got.value, ack.value, ack.name);
  }
  assert.equal((await reader.getSecret('before-burst')).value, 'b');
  assert.deepEqual((await reader.getSecret('tagged')).properties.tags, { state: 'updated' });
  assert.equal((await reader.getDeletedSecret('removed')).name, 'removed');
  assert.ok(kv.stats().secrets >= acknowledged.length + 2);
});

void test('CLI: prints its URL, applies realism flags, and stops cleanly on SIGTERM and SIGINT', async (t) => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    const cli = await startCli(t, ['--port', '0', '--throttle', '--creates-per-10s', '1', '--latency-ms', '5']);
    const stats = (await (await fetch(`${cli.url}/_admin/stats`)).json()) as { realism: Record<string, unknown> };
    assert.equal(stats.realism.throttling, true);
    assert.equal(stats.realism.createsPer10s, 1);
    assert.equal(stats.realism.latencyMs, 5);
    cli.child.kill(signal);
    const { code } = await cli.exited;
    assert.equal(code, 0, `exit code after ${signal}`);
  }

  const bad = spawn(nodeBin, ['--import', 'tsx', 'dev/keyvault/main.ts', '--error-rate', 'lots'], { cwd: repoRoot, stdio: 'ignore' });
  const code = await new Promise<number | null>((resolve) => bad.once('exit', resolve));
  assert.equal(code, 2, 'bad flags exit 2');
});
