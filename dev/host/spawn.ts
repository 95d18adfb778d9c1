/**
 * Starts local Functions hosts as child processes (dev/host/cli.ts), one app per process as the host requires:
 * several of them serving one app against one Azurite play several instances of a function app. They share the
 * host id ("localhost" unless given), so they share blob receipts and timer status as Azure's instances do.
 *
 *   const hosts = await spawnHosts(2, { entry: 'dist/functions/index.js', storage: connectionString, settingsFile });
 *   await Promise.all(hosts.map((h) => h.idle()));
 *   await Promise.all(hosts.map((h) => h.stop()));
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HostConfig } from './host-config.js';
import type { LocalFunctionInfo } from './host.js';

export interface HostProcessOptions {
  /** App entry module (e.g. dist/functions/index.js), resolved from `cwd`. */
  entry: string;
  /** AzureWebJobsStorage (receipts, timer status, poison queue). */
  storage: string;
  /** A local.settings.json whose Values become app settings (e.g. the stack's dev/data/local.settings.json). */
  settingsFile?: string;
  /** App settings, over those of settingsFile. */
  settings?: Record<string, string>;
  /** host.json to honour; by default the app root's. */
  hostJson?: string;
  /** HTTP port; 0 (a free one) by default. */
  port?: number;
  pollIntervalMs?: number;
  /** Shared by every host of one app; "localhost" by default (what the stack's own host uses). */
  hostId?: string;
  /** The development sign-in of the local stack (App Service Authentication stand-in). */
  devSignIn?: boolean;
  enforceAuth?: { masterKey: string };
  receiptLeaseSeconds?: number;
  /** Each log line of the host, as it comes. */
  log?: (line: string) => void;
  /** Milliseconds to wait for readiness; 60 s by default. */
  startTimeoutMs?: number;
  /** Working folder of the host process; the current one by default. */
  cwd?: string;
}

export interface HostProcess {
  pid: number;
  /** http://127.0.0.1:PORT */
  url: string;
  port: number;
  functions: LocalFunctionInfo[];
  /** What the host took from host.json. */
  config: HostConfig;
  /** Every log line so far. */
  logs(): string[];
  /** Resolves when this host runs nothing and has no blob or message pending (its local admin call). */
  idle(): Promise<void>;
  /** Graceful stop (SIGTERM, as Ctrl-C; SIGKILL after 20 s); resolves with the exit code. */
  stop(): Promise<number | null>;
  /** Crash: SIGKILL, resolves once the process is gone. */
  kill(): Promise<void>;
}

interface ReadyLine {
  ready: true;
  pid: number;
  url: string;
  port: number;
  functions: LocalFunctionInfo[];
  config: HostConfig;
}

const here = dirname(fileURLToPath(import.meta.url));
// From source (tsx) the CLI is cli.ts and needs tsx in the child too; compiled, it is cli.js next to this file.
const cliFromSource = join(here, 'cli.ts');
const cliCommand = existsSync(cliFromSource) ? ['--import', 'tsx', cliFromSource] : [join(here, 'cli.js')];

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((r) => child.once('exit', (code) => r(code)));
}

export function hostArguments(opts: HostProcessOptions): string[] {
  const args = [...cliCommand, '--entry', opts.entry, '--storage', opts.storage, '--port', String(opts.port ?? 0), '--json'];
  if (opts.settingsFile) args.push('--settings', opts.settingsFile);
  for (const [key, value] of Object.entries(opts.settings ?? {})) args.push('--setting', `${key}=${value}`);
  if (opts.hostJson) args.push('--host-json', opts.hostJson);
  if (opts.pollIntervalMs !== undefined) args.push('--poll-interval-ms', String(opts.pollIntervalMs));
  if (opts.hostId) args.push('--host-id', opts.hostId);
  if (opts.devSignIn) args.push('--dev-sign-in');
  if (opts.enforceAuth) args.push('--enforce-auth', '--master-key', opts.enforceAuth.masterKey);
  if (opts.receiptLeaseSeconds !== undefined) args.push('--receipt-lease-seconds', String(opts.receiptLeaseSeconds));
  return args;
}

/** Starts one host process and resolves once it serves. */
export async function spawnHost(opts: HostProcessOptions): Promise<HostProcess> {
  const cwd = resolve(opts.cwd ?? process.cwd());
  const child = spawn(process.execPath, hostArguments(opts), { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  void exited(child).then(() => live.delete(child));
  const lines: string[] = [];
  const note = (line: string): void => {
    lines.push(line);
    opts.log?.(line);
  };
  let stderr = '';
  const ready = await new Promise<ReadyLine>((resolveReady, rejectReady) => {
    const timeoutMs = opts.startTimeoutMs ?? 60000;
    const timer = setTimeout(
      () => rejectReady(new Error(`The host did not start within ${timeoutMs} ms.\n${lines.join('\n')}\n${stderr}`)),
      timeoutMs,
    );
    let buffered = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        if (line.startsWith('{"log":')) note((JSON.parse(line) as { log: string }).log);
        else if (line.startsWith('{"ready":true')) {
          clearTimeout(timer);
          resolveReady(JSON.parse(line) as ReadyLine);
        } else note(line);
      }
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      rejectReady(new Error(`The host exited before it was ready (code ${code}, signal ${signal}): ${stderr.trim() || lines.join('\n')}`));
    });
  }).catch(async (error: unknown) => {
    child.kill('SIGKILL');
    await exited(child);
    throw error;
  });

  let stopping: Promise<number | null> | undefined;
  return {
    pid: ready.pid,
    url: ready.url,
    port: ready.port,
    functions: ready.functions,
    config: ready.config,
    logs: () => [...lines],
    async idle() {
      const key = opts.enforceAuth ? `?code=${encodeURIComponent(opts.enforceAuth.masterKey)}` : '';
      const res = await fetch(`${ready.url}/admin/host/idle${key}`);
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`idle: HTTP ${res.status} from the host at ${ready.url}`);
    },
    stop() {
      stopping ??= (async () => {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 20000);
        const code = await exited(child);
        clearTimeout(timer);
        return code;
      })();
      return stopping;
    },
    async kill() {
      child.kill('SIGKILL');
      await exited(child);
    },
  };
}

/** Starts `count` hosts of one app at once (several instances); if one fails to start, the others are stopped. */
export async function spawnHosts(count: number, opts: HostProcessOptions): Promise<HostProcess[]> {
  const started = await Promise.allSettled(Array.from({ length: count }, () => spawnHost(opts)));
  const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    await Promise.all(started.map((r) => (r.status === 'fulfilled' ? r.value.kill() : Promise.resolve())));
    throw failed.reason;
  }
  return started.map((r) => (r as PromiseFulfilledResult<HostProcess>).value);
}
