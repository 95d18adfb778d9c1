/** Messages between the local host and the app's worker thread (dev/host/worker.ts). */
import type { CoreFunctionMetadata, RpcInvocationResponse } from './core-types.js';
import type { InvocationInput } from './invoke.js';

/** workerData of the worker thread. */
export interface WorkerStart {
  /** Absolute path of the app's entry module. */
  entry: string;
  /** The function app root, passed to appStart hooks. */
  appDirectory: string;
}

export type WorkerRequest = { type: 'invoke'; id: string; functionId: string; input: InvocationInput } | { type: 'terminate' };

export type WorkerReply =
  | { type: 'ready'; functions: { functionId: string; metadata: CoreFunctionMetadata }[]; httpStream: boolean }
  | { type: 'startFailed'; message: string; stack: string }
  | { type: 'log'; line: string }
  | { type: 'result'; id: string; response: RpcInvocationResponse }
  | { type: 'failed'; id: string; error: { name: string; message: string; stack: string | undefined } }
  | { type: 'terminated' };
