/**
 * One invocation, driven through the app's programming model in the same
 * order as the Node worker's invocation handler: getInvocationModel,
 * getArguments, preInvocation hooks, invokeFunction, postInvocation hooks,
 * getResponse.
 */
import { randomUUID } from 'node:crypto';
import { coreRegistry, runHooks, type RegisteredFunction } from './core-module.js';
import type {
  CoreInvocationContext,
  InvocationState,
  RpcInvocationRequest,
  RpcInvocationResponse,
  RpcLogCategory,
  RpcLogLevel,
} from './core-types.js';

export type FunctionLogger = (
  functionName: string,
  invocationId: string,
  level: RpcLogLevel,
  category: RpcLogCategory,
  message: string,
) => void;

export interface InvocationInput {
  inputData: RpcInvocationRequest['inputData'];
  triggerMetadata?: RpcInvocationRequest['triggerMetadata'];
  retryContext?: RpcInvocationRequest['retryContext'];
  /** A new one by default; the host passes its own so it can name an invocation it abandons. */
  invocationId?: string;
}

function readOnly(name: string): never {
  throw new TypeError(`Cannot assign to read only property '${name}'`);
}

export async function invokeFunction(
  fn: RegisteredFunction,
  input: InvocationInput,
  logger: FunctionLogger,
): Promise<{ invocationId: string; response: RpcInvocationResponse }> {
  const model = coreRegistry.programmingModel;
  if (!model) throw new Error('The app did not set a programming model (is @azure/functions v4 loaded?)');
  const invocationId = input.invocationId ?? randomUUID();
  const name = fn.metadata.name;
  const request: RpcInvocationRequest = {
    invocationId,
    functionId: fn.functionId,
    inputData: input.inputData,
    triggerMetadata: input.triggerMetadata ?? {},
    traceContext: {
      traceParent: `00-${randomUUID().replaceAll('-', '')}-${randomUUID().replaceAll('-', '').slice(0, 16)}-01`,
      traceState: '',
      attributes: {},
    },
    retryContext: input.retryContext ?? null,
  };
  const coreCtx: CoreInvocationContext & { state?: InvocationState } = {
    invocationId,
    request,
    metadata: { name, functionId: fn.functionId, bindings: fn.metadata.bindings, scriptFile: 'n/a' },
    state: undefined,
    log: (level, category, message) => logger(name, invocationId, level, category, message),
  };

  const invocationModel = await model.getInvocationModel(coreCtx);
  const hookData: Record<string, unknown> = {};
  const { context, inputs: initialInputs } = await invocationModel.getArguments();

  const pre = {
    get hookData() {
      return hookData;
    },
    set hookData(_v: unknown) {
      readOnly('hookData');
    },
    get appHookData() {
      return coreRegistry.appHookData;
    },
    set appHookData(_v: unknown) {
      readOnly('appHookData');
    },
    get invocationContext() {
      return context;
    },
    set invocationContext(_v: unknown) {
      readOnly('invocationContext');
    },
    functionCallback: fn.callback,
    inputs: initialInputs,
  };
  coreCtx.state = 'preInvocationHooks';
  try {
    await runHooks('preInvocation', pre);
  } finally {
    coreCtx.state = undefined;
  }

  const post = {
    get hookData() {
      return hookData;
    },
    set hookData(_v: unknown) {
      readOnly('hookData');
    },
    get appHookData() {
      return coreRegistry.appHookData;
    },
    set appHookData(_v: unknown) {
      readOnly('appHookData');
    },
    get invocationContext() {
      return context;
    },
    set invocationContext(_v: unknown) {
      readOnly('invocationContext');
    },
    inputs: pre.inputs,
    result: null as unknown,
    error: null as unknown,
  };
  coreCtx.state = 'invocation';
  try {
    post.result = await invocationModel.invokeFunction(context, pre.inputs, pre.functionCallback);
  } catch (err) {
    post.error = err;
  } finally {
    coreCtx.state = undefined;
  }

  coreCtx.state = 'postInvocationHooks';
  try {
    await runHooks('postInvocation', post);
  } finally {
    coreCtx.state = undefined;
  }
  if (post.error !== null && post.error !== undefined) {
    const err =
      post.error instanceof Error ? post.error : new Error(typeof post.error === 'string' ? post.error : JSON.stringify(post.error));
    throw Object.assign(err, { invocationId });
  }
  const response = await invocationModel.getResponse(context, post.result);
  return { invocationId, response };
}
