/**
 * Starts the local Azure stack (dev/start.ts: Azurite, Key Vault and Graph
 * stand-ins, Functions host) for a test, on free ports, in a temporary data folder,
 * as a child process, and always tears it down.
 *
 * A child process because a process hosts one app, and so a test can crash
 * the stack (`kill()`, SIGKILL) and start it again on the same data folder
 * (`restart()`). Azurite is watched by the stack: when the stack dies it
 * shuts down gracefully, keeping its data, like durable storage.
 *
 *   const stack = await startTestStack(t, { entry: 'dist/functions/index.js' });
 *   // stack.functionsUrl, stack.connectionString, stack.keyVaultUrl, ...
 *
 * More instances of the app: `extraHosts: N` in the options, or `await stack.startExtraHost()` at any time, start
 * further Functions host processes (dev/host/spawn.ts) against the same Azurite, vault and Graph stand-ins, with the
 * same settings and host id, as Azure runs several instances of one app. `stack.idleAll()` waits for every host.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { after } from 'node:test';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BlobServiceClient } from '@azure/storage-blob';
import { BUILD_REQUEST_BLOB } from '../../shared/pipeline/build-queue.js';
import type { KeyVaultRealism } from '../../dev/keyvault/server.js';
import type { GraphRealism } from '../../dev/graph/server.js';
import type { LocalFunctionInfo } from '../../dev/host/host.js';
import { spawnHost, type HostProcess } from '../../dev/host/spawn.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface TestStackOptions {
  /** App entry; dist/functions/index.js by default (run `npm run build` first). */
  entry?: string;
  /** Reuse a data folder (e.g. after a crash); a new temporary one by default, removed at teardown. */
  dataDir?: string;
  /** Extra app settings. */
  settings?: Record<string, string>;
  kvRealism?: KeyVaultRealism;
  graphRealism?: GraphRealism;
  /** Blob/queue polling interval of the host; 250 ms by default to keep tests quick. */
  pollIntervalMs?: number;
  /** Milliseconds to wait for readiness; 60 s by default. */
  startTimeoutMs?: number;
  /** Enforce function keys (`--enforce-auth`), accepting this master key. */
  enforceAuth?: { masterKey: string };
  /** Further Functions host processes of the same app started with the stack (and again after a restart); 0 by default. */
  extraHosts?: number;
  /** A host.json for the stack's own host; the app root's by default. */
  hostJson?: string;
  /** A host.json for the extra hosts; the app root's by default. */
  extraHostJson?: string;
}

export interface ExtraHostOptions {
  /** host.json of this host; the stack's extraHostJson, else the app root's. */
  hostJson?: string;
  /** Each log line of the host (they are also kept: host.logs()). */
  log?: (line: string) => void;
}

export interface TestStack {
  dataDir: string;
  functionsUrl: string;
  /** The console (its development sign-in is at functionsUrl + /.auth/login/aad). */
  consoleUrl: string;
  keyVaultUrl: string;
  /** The Graph stand-in (GRAPH_BASE_URL of the host); its admin endpoints are under /_admin/. */
  graphUrl: string;
  blobUrl: string;
  queueUrl: string;
  tableUrl: string;
  /** Azurite connection string (well-known dev account). */
  connectionString: string;
  /** The app settings the host runs with. */
  settings: Record<string, string>;
  functions: LocalFunctionInfo[];
  /** Stack process id and Azurite's. */
  pid: number;
  azuritePid: number;
  /** Resolves when the Functions host runs no invocation and has no blob or queue message pending. */
  idle(): Promise<void>;
  /**
   * Resolves once the host is idle and no import build is requested or waiting (the blob triggers only request
   * builds; a timer runs them after BUILD_SETTLE_SECONDS): what a test that expects the import CSV waits for.
   */
  buildsSettled(): Promise<void>;
  /** Everything the stack printed so far. */
  output(): string;
  /** Crash: SIGKILL the stack, then wait until Azurite has shut itself down. */
  kill(): Promise<void>;
  /** Graceful stop (SIGTERM, as Ctrl-C), SIGKILL if it takes more than 20 s. */
  stop(): Promise<void>;
  /** Stops (or, with crash: true, kills) this stack and starts a new one on the same data folder. */
  restart(opts?: { crash?: boolean }): Promise<TestStack>;
  /**
   * Starts one more Functions host process serving the same app against this stack's Azurite, vault and Graph
   * stand-ins (same settings, same host id, so blob receipts are shared: a blob version runs on one host only).
   * It is stopped with the stack; stop or kill it earlier through the handle.
   */
  startExtraHost(opts?: ExtraHostOptions): Promise<HostProcess>;
  /** The extra hosts started so far (with `extraHosts` or startExtraHost). */
  extraHosts: HostProcess[];
  /** Resolves when the stack's host and every extra host are idle. */
  idleAll(): Promise<void>;
}

interface TestContextLike {
  after(fn: () => Promise<void> | void): void;
}

/**
 * For stacks started in a suite's `before` hook: collects their teardowns and
 * runs them, newest first, after the suite. Call it in the describe body.
 */
export function suiteScope(): TestContextLike {
  const teardown: (() => Promise<void> | void)[] = [];
  after(async () => {
    for (const fn of teardown.reverse()) await fn();
  });
  return { after: (fn) => void teardown.push(fn) };
}

interface ReadyLine {
  ready: true;
  pid: number;
  dataDir: string;
  settings: Record<string, string>;
  blobUrl: string;
  queueUrl: string;
  tableUrl: string;
  connectionString: string;
  azuritePid: number;
  keyVaultUrl: string;
  graphUrl: string;
  functionsUrl: string;
  consoleUrl: string;
  functions: LocalFunctionInfo[];
}

export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function waitForProcessExit(pid: number, timeoutMs: number): Promise<boolean> {
  // A monotonic deadline: a wall-clock step (NTP, suspend) must not cut the wait short or stretch it.
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (!isProcessAlive(pid)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return !isProcessAlive(pid);
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // Gone already.
  }
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((r) => child.once('exit', () => r()));
}

// Every stack this process started, so even a test that forgets teardown leaves nothing behind.
const live = new Set<{ child: ChildProcess; azuritePid?: number }>();
process.once('exit', () => {
  for (const item of live) {
    if (item.child.pid) killGroup(item.child.pid, 'SIGKILL');
    if (item.azuritePid) killGroup(item.azuritePid, 'SIGKILL');
  }
});

async function launch(
  dataDir: string,
  opts: TestStackOptions,
): Promise<{ ready: ReadyLine; child: ChildProcess; output: () => string; entry: { child: ChildProcess; azuritePid?: number } }> {
  const args = ['--import', 'tsx', join(repoRoot, 'dev', 'start.ts'), '--json', '--ports', 'free', '--data-dir', dataDir];
  if (opts.entry) args.push('--entry', resolve(repoRoot, opts.entry));
  // Requested builds run a second after things settle (not 30 s), so tests stay quick; buildsSettled() waits for them.
  const settings = { BUILD_SETTLE_SECONDS: '1', BUILD_QUEUE_SCHEDULE: '* * * * * *', ...opts.settings };
  for (const [key, value] of Object.entries(settings)) args.push('--setting', `${key}=${value}`);
  args.push('--poll-interval-ms', String(opts.pollIntervalMs ?? 250));
  if (opts.kvRealism) args.push('--kv-realism', JSON.stringify(opts.kvRealism));
  if (opts.graphRealism) args.push('--graph-realism', JSON.stringify(opts.graphRealism));
  if (opts.hostJson) args.push('--host-json', resolve(opts.hostJson));
  if (opts.enforceAuth) args.push('--enforce-auth', '--master-key', opts.enforceAuth.masterKey);

  // Own process group, so teardown can take the whole stack down at once.
  const child = spawn(process.execPath, args, { cwd: repoRoot, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const entry: { child: ChildProcess; azuritePid?: number } = { child };
  live.add(entry);
  let text = '';
  const ready = await new Promise<ReadyLine>((resolveReady, rejectReady) => {
    const timeoutMs = opts.startTimeoutMs ?? 60000;
    const timer = setTimeout(() => rejectReady(new Error(`The stack did not start within ${timeoutMs} ms.\n${text}`)), timeoutMs);
    let buffered = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      const s = chunk.toString('utf8');
      text += s;
      buffered += s;
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        if (line.startsWith('{"ready":true')) {
          clearTimeout(timer);
          resolveReady(JSON.parse(line) as ReadyLine);
        }
      }
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      text += chunk.toString('utf8');
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      rejectReady(new Error(`The stack exited before it was ready (code ${code}, signal ${signal}).\n${text}`));
    });
  }).catch(async (error: unknown) => {
    if (child.pid) killGroup(child.pid, 'SIGKILL');
    await exited(child);
    live.delete(entry);
    throw error;
  });
  entry.azuritePid = ready.azuritePid;
  return { ready, child, output: () => text, entry };
}

export async function startTestStack(t: TestContextLike | undefined, opts: TestStackOptions = {}): Promise<TestStack> {
  const ownDataDir = opts.dataDir === undefined;
  const dataDir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), 'entra-oath-stack-')));
  const stacks: TestStack[] = [];

  const make = async (): Promise<TestStack> => {
    const { ready, child, output, entry } = await launch(dataDir, opts);
    let done: Promise<void> | undefined;
    const finish = async (): Promise<void> => {
      // Azurite shuts down once the stack is gone; wait for it so the data folder is free again.
      if (!(await waitForProcessExit(ready.azuritePid, 20000))) killGroup(ready.azuritePid, 'SIGKILL');
      await waitForProcessExit(ready.azuritePid, 5000);
      live.delete(entry);
    };
    const extraHosts: HostProcess[] = [];
    const stopExtras = async (crash: boolean): Promise<void> => {
      await Promise.all(extraHosts.map((h) => (crash ? h.kill() : h.stop().then(() => undefined))));
    };
    const stack: TestStack = {
      extraHosts,
      async startExtraHost(extra = {}) {
        const host = await spawnHost({
          entry: resolve(repoRoot, opts.entry ?? 'dist/functions/index.js'),
          storage: ready.connectionString,
          settings: ready.settings,
          hostJson: extra.hostJson ?? opts.extraHostJson,
          pollIntervalMs: opts.pollIntervalMs ?? 250,
          devSignIn: true,
          enforceAuth: opts.enforceAuth,
          log: extra.log,
          startTimeoutMs: opts.startTimeoutMs,
          cwd: repoRoot,
        });
        extraHosts.push(host);
        return host;
      },
      async idleAll() {
        await stack.idle();
        await Promise.all(extraHosts.map((h) => h.idle()));
        // A blob another host was working on counts as pending for each host, so one more round settles them all.
        await stack.idle();
      },
      dataDir,
      functionsUrl: ready.functionsUrl,
      consoleUrl: ready.consoleUrl,
      keyVaultUrl: ready.keyVaultUrl,
      graphUrl: ready.graphUrl,
      blobUrl: ready.blobUrl,
      queueUrl: ready.queueUrl,
      tableUrl: ready.tableUrl,
      connectionString: ready.connectionString,
      settings: ready.settings,
      functions: ready.functions,
      pid: ready.pid,
      azuritePid: ready.azuritePid,
      output,
      async idle() {
        const key = opts.enforceAuth ? `?code=${encodeURIComponent(opts.enforceAuth.masterKey)}` : '';
        const res = await fetch(`${ready.functionsUrl}/admin/host/idle${key}`);
        if (res.status !== 200) throw new Error(`idle: HTTP ${res.status}`);
        await res.arrayBuffer();
      },
      async buildsSettled() {
        const request = BlobServiceClient.fromConnectionString(ready.connectionString)
          .getContainerClient(ready.settings.REPORTS_CONTAINER ?? 'reports')
          .getBlobClient(BUILD_REQUEST_BLOB);
        for (let i = 0; i < 600; i++) {
          await stack.idle();
          if (!(await request.exists())) {
            await stack.idle();
            return;
          }
          await new Promise((r) => setTimeout(r, 200));
        }
        throw new Error('buildsSettled: a requested import build did not run within about two minutes.');
      },
      kill() {
        done ??= (async () => {
          await stopExtras(true);
          killGroup(ready.pid, 'SIGKILL');
          await exited(child);
          await finish();
        })();
        return done;
      },
      stop() {
        done ??= (async () => {
          await stopExtras(false);
          child.kill('SIGTERM');
          const timer = setTimeout(() => killGroup(ready.pid, 'SIGKILL'), 20000);
          await exited(child);
          clearTimeout(timer);
          killGroup(ready.pid, 'SIGKILL');
          await finish();
        })();
        return done;
      },
      async restart(restartOpts = {}) {
        if (restartOpts.crash) await stack.kill();
        else await stack.stop();
        const next = await make();
        stacks.push(next);
        return next;
      },
    };
    try {
      for (let i = 0; i < (opts.extraHosts ?? 0); i++) await stack.startExtraHost();
    } catch (error) {
      await stack.stop();
      throw error;
    }
    return stack;
  };

  const first = await make();
  stacks.push(first);
  t?.after(async () => {
    for (const stack of stacks) await stack.stop();
    if (ownDataDir) await rm(dataDir, { recursive: true, force: true });
  });
  return first;
}
