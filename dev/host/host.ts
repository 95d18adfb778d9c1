/**
 * A local Azure Functions host for Node.js v4-model apps, for machines
 * without Azure Functions Core Tools. It loads the app's real entry module,
 * learns the functions only from the app's `registerFunction` calls, and
 * invokes them through the app's own programming model, as the Functions
 * Node worker does. Triggers: HTTP, blob (polling), timer, storage queue.
 *
 * One app per process (the `@azure/functions` package and the ES module
 * cache are process-wide): run a second app, or the same app again, in a new
 * process (see `dev/host/cli.ts`).
 */
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { AppWorker } from './app-worker.js';
import type { FunctionDescription } from './core-module.js';
import type { RpcTypedData } from './core-types.js';
import { BlobTriggerPoller } from './blob-trigger.js';
import { buildHttpRoutes, createHttpServer } from './http-trigger.js';
import { readHostConfig, type HostConfig } from './host-config.js';
import { unsupportedBindings, writeOutputs } from './output-bindings.js';
import { QueuePoller } from './queue-trigger.js';
import { textOption } from './settings.js';
import { TimerScheduler } from './timer-trigger.js';

export interface LocalHostOptions {
  /** Path of the app's entry module (e.g. dist/functions/index.js). */
  entry: string;
  /** HTTP port; 7071 by default, 0 for a free port. */
  port?: number;
  /** App settings, put into process.env before the app loads (as `func start` does with local.settings.json Values). */
  settings?: Record<string, string>;
  /** AzureWebJobsStorage: blob receipts, timer status and the poison queue live here. */
  storageConnectionString: string;
  /** How often blob containers and queues are listed (ms); 1000 by default. */
  pollIntervalMs?: number;
  /** Enforce HTTP authLevel (off by default, like `func start`). */
  enforceAuth?: boolean;
  /** Accepted for `function` and `admin` functions when auth is enforced. */
  masterKey?: string;
  /** Keys (name -> value) accepted for `function` functions when auth is enforced. */
  functionKeys?: Record<string, string>;
  /**
   * Stand in for App Service Authentication: a development sign-in page at /.auth/login/aad (one button per console
   * role), principal headers for the signed-in user, and WEBSITE_AUTH_ENABLED=True for the app (dev-sign-in.ts).
   */
  devSignIn?: boolean;
  /** Where host and function log lines go; console.log by default. */
  log?: (line: string) => void;
  /**
   * Names the blob receipts and timer status; "localhost" by default. Hosts of one app share it (as Azure's
   * instances share the app's host id), so they share receipts and never process one blob version twice.
   */
  hostId?: string;
  /**
   * The host.json to honour (route prefix, functionTimeout, blob parallelism and poison threshold); by default the
   * one in the app root (the folder above the entry holding host.json or package.json), Azure's defaults without one.
   */
  hostJson?: string;
  /** Lease on a blob receipt while the blob is worked on (15-60 s, 15 by default): a crashed host's claim lapses after it. */
  receiptLeaseSeconds?: number;
}

export interface LocalFunctionInfo {
  name: string;
  /** Trigger binding type, e.g. httpTrigger, blobTrigger, timerTrigger. */
  type: string;
  /** For HTTP: the URL template; for blob: the path; for timer: the schedule; for queue: the queue name. */
  trigger: string;
  methods?: string[];
  authLevel?: string;
  /** False for trigger types this host does not run. */
  runsLocally: boolean;
}

export interface LocalHost {
  /** http://127.0.0.1:PORT */
  url: string;
  port: number;
  functions: LocalFunctionInfo[];
  /** Stops polling and timers, waits for running invocations, closes the server. */
  close(): Promise<void>;
  /** Resolves when no invocation is running and no blob or queue message is pending. */
  idle(): Promise<void>;
  /** What this host honours from host.json. */
  config: HostConfig;
}

/** What the Functions host reports for an invocation that outlived functionTimeout. */
export class FunctionTimeoutError extends Error {
  constructor(functionName: string, timeout: string) {
    super(`Timeout value of ${timeout} was exceeded by function: Functions.${functionName}`);
    this.name = 'FunctionTimeoutException';
  }
}

let started = false;

function describeError(error: unknown): string {
  if (error instanceof Error) return error.stack ?? `${error.name}: ${error.message}`;
  return String(error);
}

/** The directory holding host.json or package.json above the entry: the function app root. */
function findAppDirectory(entry: string): string {
  let dir = dirname(entry);
  for (;;) {
    if (existsSync(resolve(dir, 'host.json')) || existsSync(resolve(dir, 'package.json'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) return dirname(entry);
    dir = parent;
  }
}

function triggerOf(fn: FunctionDescription): [string, Record<string, unknown>] | undefined {
  const found = Object.entries(fn.metadata.bindings).find(([, b]) => b.type?.toLowerCase().endsWith('trigger'));
  return found ? [found[0], found[1]] : undefined;
}

function expressionValues(metadata: Record<string, RpcTypedData>): Record<string, string> {
  const values: Record<string, string> = {};
  for (const [key, value] of Object.entries(metadata)) if (typeof value.string === 'string') values[key] = value.string;
  return values;
}

export async function startLocalHost(opts: LocalHostOptions): Promise<LocalHost> {
  if (started) throw new Error('This process already hosts an app: start each local host in its own process.');
  started = true;

  const write = opts.log ?? ((line: string) => console.log(line));
  const entry = resolve(opts.entry);
  const hostId = opts.hostId ?? 'localhost';
  const pollIntervalMs = opts.pollIntervalMs ?? 1000;
  const appDirectory = findAppDirectory(entry);
  const config = opts.hostJson
    ? await readHostConfig(resolve(opts.hostJson), { required: true })
    : await readHostConfig(resolve(appDirectory, 'host.json'));

  for (const [key, value] of Object.entries(opts.settings ?? {})) process.env[key] = value;
  // What App Service sets when its authentication runs in front of the app; the app believes principal headers only then.
  if (opts.devSignIn) process.env.WEBSITE_AUTH_ENABLED = 'True';
  process.env.AzureWebJobsStorage = opts.storageConnectionString;
  process.env.FUNCTIONS_WORKER_RUNTIME ??= 'node';

  // The app runs in a worker thread, as Azure runs it in a worker process beside the host (see app-worker.ts).
  const appWorker = new AppWorker({ entry, appDirectory }, write);
  let loaded;
  try {
    loaded = await appWorker.start();
  } catch (error) {
    await appWorker.close();
    throw error;
  }
  if (loaded.httpStream) {
    write('[host] The app enabled HTTP streaming (app.setup({ enableHttpStream: true })), which this local host does not support.');
  }

  // Anything failing from here on must end the worker too, or it would keep the process alive.
  try {
    return await serve(loaded.functions);
  } catch (error) {
    await appWorker.close();
    throw error;
  }

  async function serve(functions: FunctionDescription[]): Promise<LocalHost> {
    let running = 0;
    let idleWaiters: (() => void)[] = [];
    const track = async <T>(work: () => Promise<T>): Promise<T> => {
      running += 1;
      try {
        return await work();
      } finally {
        running -= 1;
        if (running === 0) {
          const waiters = idleWaiters;
          idleWaiters = [];
          waiters.forEach((w) => w());
        }
      }
    };

    /**
     * Runs one invocation, logs an "Executed" line as the host does, and throws when the function failed. An
     * invocation that outlives functionTimeout fails with Azure's timeout error and its worker is restarted, which
     * ends it and every other invocation running on that worker (as Azure restarts its language worker).
     */
    const run = (
      fn: FunctionDescription,
      triggerName: string,
      data: RpcTypedData,
      triggerMetadata: Record<string, RpcTypedData>,
      reason: string,
      retryCount = 0,
    ) =>
      track(async () => {
        const started = Date.now();
        const invocationId = randomUUID();
        const name = fn.metadata.name;
        // As in Azure, the clock starts once a worker takes the invocation, not while a restarted worker loads the app.
        await appWorker.ready();
        const invocation = (async () => {
          const response = await appWorker.invoke(fn.functionId, {
            inputData: [{ name: triggerName, data }],
            triggerMetadata,
            retryContext: { retryCount, maxRetryCount: -1 },
            invocationId,
          });
          const queuesWritten = await writeOutputs(fn.metadata.bindings, response, expressionValues(triggerMetadata));
          for (const queueName of queuesWritten) queues.notifyEnqueued(queueName);
          return response;
        })();
        try {
          const response = await withinTimeout(invocation, () => {
            write(
              `[${name}] [${invocationId}] Timeout value of ${config.functionTimeoutText} exceeded by function 'Functions.${name}' (Id: '${invocationId}'). Initiating cancellation.`,
            );
            invocation.catch(() => undefined);
            void appWorker.restartFor(invocationId);
            return new FunctionTimeoutError(name, config.functionTimeoutText);
          });
          write(
            `[${name}] [${invocationId}] Executed 'Functions.${name}' (Succeeded, Reason='${reason}', Duration=${Date.now() - started}ms)`,
          );
          return response;
        } catch (error) {
          write(
            `[${name}] [${invocationId}] Executed 'Functions.${name}' (Failed, Reason='${reason}', Duration=${Date.now() - started}ms): ${describeError(error)}`,
          );
          throw error;
        }
      });

    /** The invocation's outcome, or the timeout error once functionTimeout has passed. */
    function withinTimeout<T>(invocation: Promise<T>, onTimeout: () => Error): Promise<T> {
      const limit = config.functionTimeoutMs;
      if (limit === undefined) return invocation;
      return new Promise<T>((resolveRun, rejectRun) => {
        const timer = setTimeout(() => rejectRun(onTimeout()), limit);
        invocation.then(
          (value) => {
            clearTimeout(timer);
            resolveRun(value);
          },
          (error: unknown) => {
            clearTimeout(timer);
            rejectRun(error instanceof Error ? error : new Error(String(error)));
          },
        );
      });
    }

    const info: LocalFunctionInfo[] = [];
    const runnable = new Set(['httptrigger', 'blobtrigger', 'timertrigger', 'queuetrigger']);
    for (const fn of functions) {
      const trigger = triggerOf(fn);
      const type = textOption(trigger?.[1].type) || 'unknown';
      const lower = type.toLowerCase();
      const binding = trigger?.[1] ?? {};
      const item: LocalFunctionInfo = { name: fn.metadata.name, type, trigger: '', runsLocally: runnable.has(lower) };
      if (lower === 'httptrigger') {
        const route = typeof binding.route === 'string' && binding.route !== '' ? binding.route : fn.metadata.name;
        item.trigger = config.routePrefix === '' ? `/${route}` : `/${config.routePrefix}/${route}`;
        if (Array.isArray(binding.methods)) item.methods = binding.methods as string[];
        item.authLevel = textOption(binding.authLevel) || 'function';
      } else if (lower === 'blobtrigger') item.trigger = textOption(binding.path);
      else if (lower === 'timertrigger') item.trigger = textOption(binding.schedule);
      else if (lower === 'queuetrigger') item.trigger = textOption(binding.queueName);
      info.push(item);
      if (!item.runsLocally) write(`[host] Function ${fn.metadata.name}: trigger type ${type} is not run by the local host.`);
      const unsupported = unsupportedBindings(fn.metadata.bindings);
      if (unsupported.length > 0) write(`[host] Function ${fn.metadata.name}: bindings not provided locally: ${unsupported.join(', ')}`);
    }

    const waitForNoInvocation = (): Promise<void> => (running === 0 ? Promise.resolve() : new Promise<void>((r) => idleWaiters.push(r)));
    // Declared before the pollers exist; only called once the host is up.
    let idle = (): Promise<void> => Promise.resolve();

    const routes = buildHttpRoutes(functions);
    const server = createHttpServer(
      routes,
      {
        enforceAuth: opts.enforceAuth ?? false,
        masterKey: opts.masterKey,
        functionKeys: opts.functionKeys ?? {},
        devSignIn: opts.devSignIn ?? false,
      },
      {
        invoke: (route, http) =>
          run(route.fn, route.triggerName, { http }, {}, `This function was programmatically called via the host APIs.`),
        status: () => ({ state: 'Running', functions: functions.map((f) => f.metadata.name), blobPolls: blobPoller.polls }),
        idle: () => idle(),
      },
      config.routePrefix,
    );

    const blobPoller = new BlobTriggerPoller({
      functions,
      hostStorage: opts.storageConnectionString,
      hostId,
      pollIntervalMs,
      maxDegreeOfParallelism: config.blobs.maxDegreeOfParallelism,
      poisonBlobThreshold: config.blobs.poisonBlobThreshold,
      receiptLeaseSeconds: opts.receiptLeaseSeconds,
      invoke: async (call) => {
        await run(
          call.fn,
          call.triggerName,
          call.data,
          call.triggerMetadata,
          `New blob detected(${String(call.triggerMetadata.BlobTrigger?.string)})`,
          call.retryCount,
        );
      },
      log: write,
    });
    const timers = new TimerScheduler({
      functions,
      hostStorage: opts.storageConnectionString,
      hostId,
      invoke: async (call) => {
        await run(call.fn, call.triggerName, call.data, {}, 'Timer fired');
      },
      log: write,
    });
    const queues = new QueuePoller({
      functions,
      pollIntervalMs: Math.min(pollIntervalMs, config.queues.maxPollingIntervalMs),
      invoke: async (call) => {
        await run(call.fn, call.triggerName, call.data, call.triggerMetadata, `New queue message detected`);
      },
      log: write,
    });

    await new Promise<void>((resolveListen, rejectListen) => {
      server.once('error', rejectListen);
      server.listen(opts.port ?? 7071, '127.0.0.1', () => {
        server.off('error', rejectListen);
        resolveListen();
      });
    });
    const port = (server.address() as AddressInfo).port;
    const url = `http://127.0.0.1:${port}`;

    try {
      await blobPoller.start();
      await queues.start();
      await timers.start();
    } catch (error) {
      await Promise.allSettled([blobPoller.stop(), queues.stop(), timers.stop()]);
      await new Promise<void>((r) => server.close(() => r()));
      throw error;
    }

    idle = async () => {
      for (;;) {
        await Promise.all([blobPoller.settle(), queues.settle(), timers.settle()]);
        await waitForNoInvocation();
        if (running === 0 && !blobPoller.busy && !queues.busy && !timers.busy) return;
      }
    };
    let closing: Promise<void> | undefined;

    write(`[host] Local Functions host for ${opts.entry} listening on ${url}`);
    write(
      `[host] host.json: ${config.source ?? 'none found, Azure defaults'}; routePrefix "${config.routePrefix}", functionTimeout ${config.functionTimeoutText}, ` +
        `blobs maxDegreeOfParallelism ${config.blobs.maxDegreeOfParallelism}, poisonBlobThreshold ${config.blobs.poisonBlobThreshold}, ` +
        `queues maxPollingInterval ${config.queues.maxPollingIntervalMs} ms`,
    );
    for (const item of info) {
      const where =
        item.type.toLowerCase() === 'httptrigger' ? `${[...(item.methods ?? [])].join(',')} ${url}${item.trigger}` : item.trigger;
      write(`[host]   ${item.name}: [${item.type}] ${where}`);
    }

    return {
      url,
      port,
      functions: info,
      close() {
        closing ??= (async () => {
          await Promise.allSettled([blobPoller.stop(), queues.stop(), timers.stop()]);
          await new Promise<void>((r) => {
            server.close(() => r());
            server.closeIdleConnections();
          });
          await waitForNoInvocation();
          // appTerminate hooks run in the worker before it ends.
          await appWorker.close();
        })();
        return closing;
      },
      idle: () => idle(),
      config,
    };
  }
}
