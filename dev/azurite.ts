/**
 * Starts the npm `azurite` storage emulator (blob, queue, table) as a child
 * process, with data kept in a folder so state survives restarts.
 *
 * Azurite runs in its own process group (Ctrl-C in a terminal reaches the
 * stack first, which then stops it in order) with a watchdog: when this
 * process dies, even by SIGKILL, Azurite's stdin closes and it shuts itself
 * down gracefully, saving its data like a durable storage account would.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';

/** Azurite's well-known development account, published in its README (not a secret). */
export const devAccountName = 'devstoreaccount1';
export const devAccountKey = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

/** dev/data/azurite in the repository (git-ignored); process.cwd() is the repository under npm scripts. */
export const defaultAzuriteDataDir = resolve(process.cwd(), 'dev', 'data', 'azurite');

export interface AzuriteOptions {
  /** Data folder; dev/data/azurite by default. */
  dataDir?: string;
  /** 'default' = 10000-10002, 'free' = ports picked by the OS; default 'default'. */
  ports?: 'default' | 'free';
  /** Azurite's own output lines (startup, shutdown). */
  log?: (line: string) => void;
  /** Milliseconds to wait for the three services; 30 s by default. */
  startTimeoutMs?: number;
  /**
   * Keep all data in memory (--inMemoryPersistence; `dataDir` is then unused): nothing survives the process. On
   * disk, Azurite writes each whole database every 5 s, which with tens of thousands of rows stalls all three
   * services for about a second each time; long benchmarks use memory so they measure the app, not that.
   */
  inMemory?: boolean;
}

export interface Azurite {
  blobUrl: string;
  queueUrl: string;
  tableUrl: string;
  /** Connection string for the dev account with explicit Blob/Queue/Table endpoints. */
  connectionString: string;
  /** Process id of the Azurite process (leader of its process group). */
  pid: number;
  close(): Promise<void>;
}

// Runs inside Azurite: when the parent goes away, its end of stdin closes. Azurite then shuts down as on
// SIGTERM (saving its data); its output pipes are gone with the parent, so write errors must not crash it.
const watchdog =
  'data:text/javascript,' +
  "process.stdout.on('error',()=>{});process.stderr.on('error',()=>{});" +
  "process.stdin.on('end',()=>{process.stdin.destroy();process.kill(process.pid,'SIGTERM')}).on('error',()=>{}).resume();";

export function devConnectionString(blobUrl: string, queueUrl: string, tableUrl: string): string {
  return (
    [
      'DefaultEndpointsProtocol=http',
      `AccountName=${devAccountName}`,
      `AccountKey=${devAccountKey}`,
      `BlobEndpoint=${blobUrl}`,
      `QueueEndpoint=${queueUrl}`,
      `TableEndpoint=${tableUrl}`,
    ].join(';') + ';'
  );
}

function azuriteEntry(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('azurite/package.json')), 'dist', 'src', 'azurite.js');
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

function waitForExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolveWait) => {
    const timer = setTimeout(() => resolveWait(false), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolveWait(true);
    });
  });
}

export async function startAzurite(opts: AzuriteOptions = {}): Promise<Azurite> {
  const dataDir = resolve(opts.dataDir ?? defaultAzuriteDataDir);
  if (!opts.inMemory) await mkdir(dataDir, { recursive: true });
  const free = opts.ports === 'free';
  const args = [
    '--import',
    watchdog,
    azuriteEntry(),
    // Azurite refuses a location with in-memory persistence.
    ...(opts.inMemory ? ['--inMemoryPersistence'] : ['--location', dataDir]),
    '--blobHost',
    '127.0.0.1',
    '--queueHost',
    '127.0.0.1',
    '--tableHost',
    '127.0.0.1',
    '--blobPort',
    free ? '0' : '10000',
    '--queuePort',
    free ? '0' : '10001',
    '--tablePort',
    free ? '0' : '10002',
    '--skipApiVersionCheck',
    '--disableTelemetry',
    '--loose',
  ];
  const child = spawn(process.execPath, args, { detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
  const log = opts.log ?? (() => undefined);
  const urls: Partial<Record<'Blob' | 'Queue' | 'Table', string>> = {};
  let output = '';

  const ready = new Promise<void>((resolveReady, rejectReady) => {
    const timer = setTimeout(
      () => rejectReady(new Error(`Azurite did not start within ${opts.startTimeoutMs ?? 30000} ms.\n${output}`)),
      opts.startTimeoutMs ?? 30000,
    );
    let buffered = '';
    const onData = (chunk: Buffer): void => {
      buffered += chunk.toString('utf8');
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline).trimEnd();
        buffered = buffered.slice(newline + 1);
        output += line + '\n';
        log(line);
        const found = /Azurite (Blob|Queue|Table) service is successfully listening at (http:\/\/\S+)/.exec(line);
        if (found) urls[found[1] as 'Blob' | 'Queue' | 'Table'] = found[2]!.replace(/\/$/, '');
        if (urls.Blob && urls.Queue && urls.Table) {
          clearTimeout(timer);
          resolveReady();
        }
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      output += text;
      text
        .split('\n')
        .filter((l) => l.trim() !== '')
        .forEach(log);
    });
    child.once('error', (error) => {
      clearTimeout(timer);
      rejectReady(error);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      rejectReady(new Error(`Azurite exited before it was ready (code ${code}, signal ${signal}).\n${output}`));
    });
  });

  const pid = child.pid;
  if (pid === undefined) throw new Error('Azurite could not be started.');

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        // Closing stdin trips the watchdog: a graceful shutdown that saves Azurite's data.
        child.stdin?.end();
        if (!(await waitForExit(child, 8000))) {
          killGroup(pid, 'SIGKILL');
          await waitForExit(child, 5000);
        }
      }
      // Anything Azurite left in its group goes too.
      if (isAlive(pid)) killGroup(pid, 'SIGKILL');
      killGroup(pid, 'SIGKILL');
      child.stdout?.destroy();
      child.stderr?.destroy();
    })();
    return closing;
  };

  try {
    await ready;
  } catch (error) {
    await close();
    throw error;
  }
  child.removeAllListeners('exit');

  const blobUrl = `${urls.Blob}/${devAccountName}`;
  const queueUrl = `${urls.Queue}/${devAccountName}`;
  const tableUrl = `${urls.Table}/${devAccountName}`;
  return { blobUrl, queueUrl, tableUrl, connectionString: devConnectionString(blobUrl, queueUrl, tableUrl), pid, close };
}
