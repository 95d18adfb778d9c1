/**
 * The app's side of the local host, run in a worker thread as Azure runs the app in a Node worker process beside
 * the host: it provides `@azure/functions-core`, loads the app, runs its hooks and its invocations, and answers the
 * host by messages. The host can end it mid-invocation (functionTimeout) and start a new one, as Azure restarts its
 * worker; the app then loads afresh.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import { coreRegistry, installCoreModule, runHooks } from './core-module.js';
import type { RpcInvocationResponse, RpcLogCategory, RpcLogLevel, RpcTypedData } from './core-types.js';
import { invokeFunction, type InvocationInput } from './invoke.js';
import type { WorkerReply, WorkerRequest, WorkerStart } from './worker-protocol.js';

const port = parentPort;
if (!port) throw new Error('dev/host/worker.ts runs in a worker thread started by the local host.');
const start = workerData as WorkerStart;

const logLevelRank: Record<RpcLogLevel, number> = { trace: 0, debug: 1, information: 2, warning: 3, error: 4, critical: 5, none: 6 };

function post(reply: WorkerReply): void {
  port!.postMessage(reply);
}

function describeError(error: unknown): string {
  if (error instanceof Error) return error.stack ?? `${error.name}: ${error.message}`;
  return String(error);
}

/** The app's log hooks may change level and message of user logs; a failing hook must not break logging. */
function runLogHooks(level: RpcLogLevel, category: RpcLogCategory, message: string): { level: RpcLogLevel; message: string } {
  const hooks = coreRegistry.hooks.get('log') ?? [];
  if (hooks.length === 0) return { level, message };
  const context = { hookData: {}, appHookData: coreRegistry.appHookData, invocationContext: undefined, category, level, message };
  for (const hook of hooks) {
    try {
      void hook(context);
    } catch {
      // Ignored, as the worker does.
    }
  }
  return category === 'user' ? { level: context.level, message: context.message } : { level, message };
}

coreRegistry.logSink = (level, category, message) => {
  if (logLevelRank[level] < logLevelRank.information) return;
  post({ type: 'log', line: `[host] ${runLogHooks(level, category, message).message}` });
};

function functionLog(name: string, invocationId: string, level: RpcLogLevel, category: RpcLogCategory, message: string): void {
  if (category === 'system' && logLevelRank[level] < logLevelRank.information) return;
  const final = runLogHooks(level, category, message);
  if (final.level === 'none') return;
  post({ type: 'log', line: `[${name}] [${invocationId}] ${final.message}` });
}

async function load(): Promise<void> {
  installCoreModule(start.entry);
  await import(pathToFileURL(start.entry).href);
  coreRegistry.startupFinished = true;
  if (!coreRegistry.programmingModel) {
    throw new Error(`${start.entry} did not register through @azure/functions v4 (no programming model was set).`);
  }
  const capabilities = await coreRegistry.programmingModel.getCapabilities?.({});
  await runHooks('appStart', { hookData: {}, appHookData: coreRegistry.appHookData, functionAppDirectory: start.appDirectory });
  post({
    type: 'ready',
    functions: [...coreRegistry.functions.values()].map((f) => ({ functionId: f.functionId, metadata: f.metadata })),
    httpStream: Boolean(capabilities?.HttpUri),
  });
}

/** Messages carry Buffers as plain Uint8Arrays; the app (and blob extensions) expect Buffers, as the worker gives. */
function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function reviveTypedData(data: RpcTypedData | null | undefined): void {
  if (!data) return;
  if (data.bytes) data.bytes = asBuffer(data.bytes);
  if (data.stream) data.stream = asBuffer(data.stream);
  if (data.modelBindingData?.content) data.modelBindingData.content = asBuffer(data.modelBindingData.content);
  if (data.http) {
    reviveTypedData(data.http.body);
    reviveTypedData(data.http.rawBody);
  }
}

async function invoke(id: string, functionId: string, input: InvocationInput): Promise<void> {
  const fn = coreRegistry.functions.get(functionId);
  if (!fn) {
    post({ type: 'failed', id, error: { name: 'Error', message: `No function ${functionId} in the app.`, stack: undefined } });
    return;
  }
  for (const item of input.inputData ?? []) reviveTypedData(item.data);
  let response: RpcInvocationResponse;
  try {
    response = (await invokeFunction(fn, input, functionLog)).response;
  } catch (error) {
    const err = error instanceof Error ? error : new Error(String(error));
    post({ type: 'failed', id, error: { name: err.name, message: err.message, stack: err.stack } });
    return;
  }
  post({ type: 'result', id, response });
}

port.on('message', (request: WorkerRequest) => {
  if (request.type === 'invoke') void invoke(request.id, request.functionId, request.input);
  else if (request.type === 'terminate') {
    void runHooks('appTerminate', { hookData: {}, appHookData: coreRegistry.appHookData })
      .catch((error: unknown) => post({ type: 'log', line: `[host] appTerminate hook failed: ${describeError(error)}` }))
      .finally(() => post({ type: 'terminated' }));
  }
});

load().catch((error: unknown) =>
  post({ type: 'startFailed', message: error instanceof Error ? error.message : String(error), stack: describeError(error) }),
);
