/**
 * The host's handle on the app's worker thread (dev/host/worker.ts), the local counterpart of Azure's language
 * worker channel: invocations go to the worker and come back by message. `restartFor` ends the worker running a
 * given invocation and starts a new one, as Azure restarts the worker when an invocation outlives functionTimeout:
 * every invocation still running on the old worker ends as failed, and the app loads afresh (appStart runs again).
 * A worker that dies on its own (an uncaught exception in the app) is restarted the same way.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { FunctionDescription } from './core-module.js';
import type { RpcInvocationResponse } from './core-types.js';
import type { InvocationInput } from './invoke.js';
import type { WorkerReply, WorkerRequest, WorkerStart } from './worker-protocol.js';

const here = dirname(fileURLToPath(import.meta.url));
// From source the worker is worker.ts (tsx, inherited through execArgv, loads it); compiled, worker.js.
const workerFile = existsSync(join(here, 'worker.ts')) ? join(here, 'worker.ts') : join(here, 'worker.js');

interface Pending {
  resolve: (response: RpcInvocationResponse) => void;
  reject: (error: Error) => void;
}

interface Channel {
  worker: Worker;
  generation: number;
  pending: Map<string, Pending>;
  ready: Promise<{ functions: FunctionDescription[]; httpStream: boolean }>;
  /** Set once the host ends it on purpose (restart or close), so its exit is not reported as a crash. */
  ending: boolean;
}

export class AppWorker {
  #start: WorkerStart;
  #log: (line: string) => void;
  #channel: Channel | undefined;
  #generation = 0;
  #closed = false;

  constructor(start: WorkerStart, log: (line: string) => void) {
    this.#start = start;
    this.#log = log;
  }

  /** Starts the worker and resolves with the functions the app registered; rejects if the app fails to load. */
  async start(): Promise<{ functions: FunctionDescription[]; httpStream: boolean }> {
    const channel = this.#open();
    return channel.ready;
  }

  #open(): Channel {
    this.#generation += 1;
    const worker = new Worker(workerFile, { workerData: this.#start, stdout: false, stderr: false });
    let markReady!: (value: { functions: FunctionDescription[]; httpStream: boolean }) => void;
    let failStart!: (error: Error) => void;
    const ready = new Promise<{ functions: FunctionDescription[]; httpStream: boolean }>((resolve, reject) => {
      markReady = resolve;
      failStart = reject;
    });
    // A start failure is reported to whoever awaits ready; never an unhandled rejection.
    ready.catch(() => undefined);
    const channel: Channel = { worker, generation: this.#generation, pending: new Map(), ready, ending: false };
    this.#channel = channel;

    worker.on('message', (reply: WorkerReply) => {
      switch (reply.type) {
        case 'ready':
          markReady({ functions: reply.functions, httpStream: reply.httpStream });
          break;
        case 'startFailed':
          failStart(new Error(reply.message));
          break;
        case 'log':
          this.#log(reply.line);
          break;
        case 'result':
          this.#settle(channel, reply.id, (p) => p.resolve(reply.response));
          break;
        case 'failed':
          this.#settle(channel, reply.id, (p) =>
            p.reject(Object.assign(new Error(reply.error.message), { name: reply.error.name, stack: reply.error.stack })),
          );
          break;
        case 'terminated':
          break;
      }
    });
    worker.on('error', (error) => {
      if (channel.ending) return;
      this.#log(`[host] The app's worker failed: ${error.stack ?? error.message}`);
    });
    worker.on('exit', (code) => {
      failStart(new Error(`The app's worker exited (code ${code}) before the app was loaded.`));
      this.#failAll(channel, `The app's worker exited (code ${code}); this invocation was ended.`);
      if (channel.ending || this.#closed || this.#channel !== channel) return;
      this.#log(`[host] The app's worker exited unexpectedly (code ${code}); starting a new one.`);
      this.#open();
    });
    return channel;
  }

  #settle(channel: Channel, id: string, action: (p: Pending) => void): void {
    const pending = channel.pending.get(id);
    if (!pending) return;
    channel.pending.delete(id);
    action(pending);
  }

  #failAll(channel: Channel, message: string): void {
    const pending = [...channel.pending.values()];
    channel.pending.clear();
    for (const p of pending) p.reject(new Error(message));
  }

  /** Resolves once the current worker has loaded the app (at once, unless it is being restarted). */
  async ready(): Promise<void> {
    await this.#channel?.ready;
  }

  /** Runs one invocation on the current worker (waiting for it to be ready after a restart). */
  async invoke(functionId: string, input: InvocationInput & { invocationId: string }): Promise<RpcInvocationResponse> {
    const channel = this.#channel;
    if (!channel || this.#closed) throw new Error('The host is shutting down; no invocation is started.');
    await channel.ready;
    return new Promise<RpcInvocationResponse>((resolve, reject) => {
      channel.pending.set(input.invocationId, { resolve, reject });
      const request: WorkerRequest = { type: 'invoke', id: input.invocationId, functionId, input };
      channel.worker.postMessage(request);
    });
  }

  /**
   * Ends the worker that runs `invocationId` (if it still runs it) and starts a new one: Azure's answer to an
   * invocation that outlived functionTimeout. The other invocations on that worker end as failed.
   */
  async restartFor(invocationId: string): Promise<void> {
    const channel = this.#channel;
    if (!channel || this.#closed || !channel.pending.has(invocationId)) return;
    const others = channel.pending.size - 1;
    this.#log(
      `[host] Restarting the app's worker, which is running invocation '${invocationId}' that timed out` +
        (others > 0 ? `; ${others} other invocation(s) on it end as failed.` : '.'),
    );
    channel.ending = true;
    channel.pending.delete(invocationId);
    this.#failAll(channel, `The app's worker was restarted because invocation '${invocationId}' timed out; this invocation was ended.`);
    this.#open();
    await channel.worker.terminate();
  }

  /** Runs the appTerminate hooks (waiting up to `graceMs`), then ends the worker. */
  async close(graceMs = 10000): Promise<void> {
    const channel = this.#channel;
    this.#closed = true;
    if (!channel) return;
    channel.ending = true;
    const loaded = await channel.ready.then(
      () => true,
      () => false,
    );
    if (loaded) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, graceMs);
        channel.worker.on('message', (reply: WorkerReply) => {
          if (reply.type === 'terminated') {
            clearTimeout(timer);
            resolve();
          }
        });
        channel.worker.on('exit', () => {
          clearTimeout(timer);
          resolve();
        });
        channel.worker.postMessage({ type: 'terminate' } satisfies WorkerRequest);
      });
    }
    await channel.worker.terminate();
  }
}
