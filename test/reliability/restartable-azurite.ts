/**
 * Azurite on fixed ports that a test can stop and start again on the same
 * ports and data folder: a storage outage that clients ride out (or not) with
 * their own retries, as when the storage service restarts under a running app.
 * dev/azurite.ts picks new free ports on every start, which a restart cannot use.
 *
 * Stops are graceful (SIGTERM; Azurite saves its data as its services close), like durable storage;
 * a watchdog on stdin stops Azurite if the test process dies.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { devConnectionString } from '../../dev/azurite.js';

const watchdog =
  'data:text/javascript,' +
  "process.stdout.on('error',()=>{});process.stderr.on('error',()=>{});" +
  "process.stdin.on('end',()=>{process.stdin.destroy();process.kill(process.pid,'SIGTERM')}).on('error',()=>{}).resume();";

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

export interface RestartableAzurite {
  connectionString: string;
  /** Graceful stop (SIGTERM); resolves once the process is gone. */
  stop(): Promise<void>;
  /** Starts again on the same ports and data. */
  start(): Promise<void>;
  close(): Promise<void>;
}

export async function startRestartableAzurite(dataDir: string): Promise<RestartableAzurite> {
  const ports = { blob: await freePort(), queue: await freePort(), table: await freePort() };
  const entry = join(dirname(createRequire(import.meta.url).resolve('azurite/package.json')), 'dist', 'src', 'azurite.js');
  let child: ChildProcess | undefined;
  let output = '';

  const exited = (c: ChildProcess) =>
    c.exitCode !== null || c.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => c.once('exit', () => r()));

  const start = async (): Promise<void> => {
    const args = [
      '--import',
      watchdog,
      entry,
      '--location',
      dataDir,
      '--blobHost',
      '127.0.0.1',
      '--queueHost',
      '127.0.0.1',
      '--tableHost',
      '127.0.0.1',
    ];
    args.push(
      '--blobPort',
      String(ports.blob),
      '--queuePort',
      String(ports.queue),
      '--tablePort',
      String(ports.table),
      '--skipApiVersionCheck',
      '--disableTelemetry',
      '--loose',
    );
    const c = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    child = c;
    output = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`Azurite did not start.\n${output}`)), 30_000);
      let listening = 0;
      c.stdout?.on('data', (chunk: Buffer) => {
        output += chunk.toString('utf8');
        listening = (output.match(/successfully listening/g) ?? []).length;
        if (listening >= 3) {
          clearTimeout(timer);
          resolve();
        }
      });
      c.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
      c.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`Azurite exited (code ${code}).\n${output}`));
      });
    });
    c.removeAllListeners('exit');
  };

  const closedServices = () => (output.match(/successfully closed/g) ?? []).length;

  const stop = async (): Promise<void> => {
    const c = child;
    if (!c) return;
    child = undefined;
    c.kill('SIGTERM');
    // Azurite saves its data as each service closes, but the process can linger long after;
    // once all three report closed, the rest of its life does not matter.
    const deadline = Date.now() + 10_000;
    while (closedServices() < 3 && c.exitCode === null && c.signalCode === null && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    c.kill('SIGKILL');
    await exited(c);
    c.stdout?.destroy();
    c.stderr?.destroy();
    c.stdin?.destroy();
  };

  await start();
  const base = (port: number) => `http://127.0.0.1:${port}/devstoreaccount1`;
  return { connectionString: devConnectionString(base(ports.blob), base(ports.queue), base(ports.table)), start, stop, close: stop };
}
