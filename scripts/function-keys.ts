// Post-deploy step of `azd up` (infra/hooks/postdeploy.*), after the Event Grid subscriptions: gives each
// group of callers its own function-level key on exactly the functions it may call. The helpdesk's key opens
// the verify endpoint and nothing else; administrators' tools hold the `admin` key of the admin functions.
// Nobody is handed the master key or a host key (which would open every function). Per-function keys can
// only be made once the code is deployed (the functions must exist), hence a hook rather than Bicep.
// A key that exists is left alone, so running the hook again never rotates one; values are never printed.
import { randomBytes } from 'node:crypto';
import type { TokenCredential } from '@azure/identity';
import {
  ArmClient,
  HookError,
  WEB_API_VERSION,
  armConnection,
  azdEnvironment,
  functionAppFromEnvironment,
  isRetryable,
  runAsHook,
  sitePath as functionAppPath,
  sleep,
  type FunctionAppTarget,
  type Wait,
} from './azure-hook.js';

/** Who holds which key, on which functions (names as the app registers them). */
export const FUNCTION_KEY_HOLDERS = [
  { keyName: 'helpdesk', holder: 'helpdesk tools (activation checks)', functions: ['verifyActivationCode'] },
  {
    keyName: 'admin',
    holder: "administrators' tools and the Global Administrator's upload step",
    functions: [
      'activateFromSeed',
      'buildImport',
      'confirmImportUploaded',
      'deleteAssignment',
      'getToken',
      'auditSecrets',
      'listAssignments',
      'listTokens',
      'markRemovedFromEntra',
      'programTokens',
      'reprogramToken',
      'retireToken',
      'setAssignment',
      'unlockToken',
      'withdrawImport',
    ],
  },
] as const;

export class FunctionKeysHookError extends HookError {
  override name = 'FunctionKeysHookError';
}

export type FunctionKeysTarget = FunctionAppTarget;

export interface FunctionKeysOptions extends FunctionKeysTarget {
  armEndpoint: string;
  credential: TokenCredential;
  /** How long to wait for a function to appear after the deployment (the host syncs its triggers). */
  functionWait?: Wait;
  log?: (line: string) => void;
}

/** A new key: 40 random bytes, URL-safe, so it works as `?code=` as well as in `x-functions-key`. */
export function newFunctionKey(): string {
  return randomBytes(40).toString('base64url');
}

async function existingKeyNames(arm: ArmClient, functionPath: string, name: string, wait: Wait): Promise<string[]> {
  let last = 'no answer yet';
  for (let attempt = 1; attempt <= wait.attempts; attempt++) {
    const response = await arm.request('POST', `${functionPath}/listkeys?api-version=${WEB_API_VERSION}`);
    if (response.status === 200) {
      const keys = (response.body ?? {}) as Record<string, unknown>;
      // Only the names leave this function; the values are scrubbed from any later error text.
      for (const value of Object.values(keys)) if (typeof value === 'string') arm.redact(value);
      return Object.keys(keys);
    }
    if (!isRetryable(response.status))
      throw new FunctionKeysHookError(`listing the keys of function ${name} failed: ${arm.describeError(response)}`);
    last = arm.describeError(response);
    if (attempt < wait.attempts) await sleep(wait.delayMs);
  }
  throw new FunctionKeysHookError(
    `function ${name} is not there after ${wait.attempts} tries (${last}); is the code deployed? Re-run \`azd deploy\` or \`azd hooks run postdeploy\`.`,
  );
}

/**
 * Makes sure each function of FUNCTION_KEY_HOLDERS has its holder's named key. Returns what it created
 * (`function/keyName`); safe to run again.
 */
export async function ensureFunctionKeys(options: FunctionKeysOptions): Promise<string[]> {
  const log = options.log ?? ((line: string) => console.log(line));
  const arm = new ArmClient(options.armEndpoint, options.credential);
  const sitePath = functionAppPath(options);
  const created: string[] = [];
  for (const { keyName, holder, functions } of FUNCTION_KEY_HOLDERS) {
    for (const name of functions) {
      const functionPath = `${sitePath}/functions/${name}`;
      const names = await existingKeyNames(arm, functionPath, name, options.functionWait ?? { attempts: 40, delayMs: 15_000 });
      if (names.includes(keyName)) continue;
      const value = newFunctionKey();
      arm.redact(value);
      const response = await arm.request('PUT', `${functionPath}/keys/${keyName}?api-version=${WEB_API_VERSION}`, {
        properties: { name: keyName, value },
      });
      if (response.status !== 200 && response.status !== 201) {
        throw new FunctionKeysHookError(`creating key ${keyName} on function ${name} failed: ${arm.describeError(response)}`);
      }
      created.push(`${name}/${keyName}`);
    }
    log(`function key "${keyName}" (for ${holder}) is on: ${functions.join(', ')}`);
  }
  log(
    'hand out function keys, never the master key or a host key: ' +
      `az functionapp function keys list -g ${options.resourceGroup} -n ${options.functionAppName} --function-name <function> --query <key name> -o tsv`,
  );
  return created;
}

export function functionKeysTargetFromEnvironment(env: NodeJS.ProcessEnv): FunctionKeysTarget {
  return functionAppFromEnvironment(azdEnvironment(env, (message) => new FunctionKeysHookError(message)));
}

runAsHook(import.meta.url, 'post-deploy', async () => {
  await ensureFunctionKeys({
    ...functionKeysTargetFromEnvironment(process.env),
    ...armConnection(process.env),
  });
});
