/**
 * This host's stand-in for `@azure/functions-core`, the module the Functions
 * Node worker builds into the process. `@azure/functions` registers every
 * function through it, so what is registered here is exactly what Azure sees.
 *
 * Like the worker, the module is provided by intercepting `require` for that
 * one id. There is one registry per process: `@azure/functions` keeps the core
 * API it found in a module-level singleton, so one process hosts one app.
 */
import Module, { createRequire } from 'node:module';
import type { CoreFunctionMetadata, FunctionCallback, HookCallback, ProgrammingModel, RpcLogCategory, RpcLogLevel } from './core-types.js';

/** A function as the host sees it: what the app registered, without the code (that stays with the app's worker). */
export interface FunctionDescription {
  metadata: CoreFunctionMetadata;
  functionId: string;
}

export interface RegisteredFunction extends FunctionDescription {
  callback: FunctionCallback;
}

type LogSink = (level: RpcLogLevel, category: RpcLogCategory, message: string) => void;

class Disposable {
  static from(...items: { dispose: () => unknown }[]): Disposable {
    return new Disposable(() => items.forEach((item) => item.dispose()));
  }
  #callOnDispose: (() => unknown) | undefined;
  constructor(callOnDispose: () => unknown) {
    this.#callOnDispose = callOnDispose;
  }
  dispose(): unknown {
    const call = this.#callOnDispose;
    this.#callOnDispose = undefined;
    return call?.();
  }
}

export const coreRegistry = {
  programmingModel: undefined as ProgrammingModel | undefined,
  functions: new Map<string, RegisteredFunction>(),
  hooks: new Map<string, HookCallback[]>(),
  appHookData: {} as Record<string, unknown>,
  startupFinished: false,
  logSink: ((level, _category, message) => console.log(`[host] ${level}: ${message}`)) as LogSink,
};

const coreApi = {
  version: '4.0.0-local',
  hostVersion: '4.0.0-local',
  Disposable,
  setProgrammingModel(model: ProgrammingModel): void {
    coreRegistry.programmingModel = model;
  },
  getProgrammingModel(): ProgrammingModel | undefined {
    return coreRegistry.programmingModel;
  },
  registerFunction(metadata: CoreFunctionMetadata, callback: FunctionCallback): Disposable {
    if (coreRegistry.startupFinished) {
      throw new Error('A function can only be registered during app startup.');
    }
    if (!metadata?.name) throw new Error('A function registration needs a name.');
    const functionId = metadata.functionId ?? metadata.name;
    if (coreRegistry.functions.has(functionId)) {
      throw new Error(`A function named "${metadata.name}" is already registered.`);
    }
    coreRegistry.functions.set(functionId, { metadata, functionId, callback });
    return new Disposable(() => {
      if (coreRegistry.startupFinished) throw new Error('A function can only be disposed during app startup.');
      coreRegistry.functions.delete(functionId);
    });
  },
  registerHook(hookName: string, callback: HookCallback): Disposable {
    const known = ['preInvocation', 'postInvocation', 'appStart', 'appTerminate', 'log'];
    if (!known.includes(hookName)) {
      // The worker answers unknown hook names with a RangeError; the library relies on that name.
      throw Object.assign(new RangeError(`Unrecognized hook "${hookName}"`), { isAzureFunctionsSystemError: true });
    }
    const list = coreRegistry.hooks.get(hookName) ?? [];
    list.push(callback);
    coreRegistry.hooks.set(hookName, list);
    return new Disposable(() => {
      const current = coreRegistry.hooks.get(hookName) ?? [];
      coreRegistry.hooks.set(
        hookName,
        current.filter((c) => c !== callback),
      );
    });
  },
  log(level: RpcLogLevel, category: RpcLogCategory, message: string): void {
    coreRegistry.logSink(level, category, message);
  },
};

let installed = false;

/**
 * Makes `require('@azure/functions-core')` return this module, then loads
 * `@azure/functions` as resolved from the app's entry, as the worker does, so
 * the package (and through it the app) binds to this registry.
 */
export function installCoreModule(appEntryPath: string): void {
  if (installed) return;
  installed = true;
  const proto = Module.prototype as unknown as { require: (id: string) => unknown };
  proto.require = new Proxy(proto.require, {
    apply(target, thisArg, args: unknown[]) {
      if (args[0] === '@azure/functions-core') return coreApi;
      return Reflect.apply(target, thisArg, args) as unknown;
    },
  });
  // Loading the package through require (not the ES loader) makes its require('@azure/functions-core') go through
  // the hook above; the app's own import then finds this same, cached instance.
  const requireFromApp = createRequire(appEntryPath);
  try {
    requireFromApp('@azure/functions');
  } catch {
    // An app without @azure/functions registers nothing; the host reports that later.
  }
}

export async function runHooks(hookName: string, context: Record<string, unknown>): Promise<void> {
  for (const callback of coreRegistry.hooks.get(hookName) ?? []) {
    await callback(context);
  }
}
