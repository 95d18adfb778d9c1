// What the azd hooks in scripts/ share (infra/hooks/*): the azd environment they read, the credential they sign in
// with, Azure Resource Manager over fetch with secrets scrubbed from its errors, retries while the Functions host
// starts, and how a hook reports failure.
import { pathToFileURL } from 'node:url';
import { AzureCliCredential, AzureDeveloperCliCredential, ChainedTokenCredential, type TokenCredential } from '@azure/identity';

/** Microsoft.Web (sites, functions, keys) API version. */
export const WEB_API_VERSION = '2024-04-01';

/** A hook's own failure: what went wrong and what to do, never a secret. */
export class HookError extends Error {
  override name = 'HookError';
}

/** How often and how long to ask again while Azure is still getting ready. */
export interface Wait {
  attempts: number;
  delayMs: number;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** azd's own login first (the hooks run inside `azd up`), then the Azure CLI's. */
export function hookCredential(): TokenCredential {
  return new ChainedTokenCredential(new AzureDeveloperCliCredential(), new AzureCliCredential());
}

/**
 * Where a hook reaches Resource Manager and who it is there: ARM_ENDPOINT for sovereign clouds (e.g.
 * https://management.usgovcloudapi.net), else the public cloud; the hook credential.
 */
export function armConnection(env: NodeJS.ProcessEnv): { armEndpoint: string; credential: TokenCredential } {
  return { armEndpoint: env['ARM_ENDPOINT'] || 'https://management.azure.com', credential: hookCredential() };
}

/** Reads required azd environment variables; a missing one is `fail`'s error, naming it. */
export function azdEnvironment(env: NodeJS.ProcessEnv, fail: (message: string) => Error): (name: string) => string {
  return (name) => {
    const value = env[name];
    if (!value) throw fail(`environment variable ${name} is not set (run this as an azd hook after \`azd provision\`)`);
    return value;
  };
}

/** The Function app a hook works on, as `azd provision` leaves it in the environment (outputs of infra/main.bicep). */
export interface FunctionAppTarget {
  subscriptionId: string;
  resourceGroup: string;
  functionAppName: string;
}

export function functionAppFromEnvironment(read: (name: string) => string): FunctionAppTarget {
  return {
    subscriptionId: read('AZURE_SUBSCRIPTION_ID'),
    resourceGroup: read('AZURE_RESOURCE_GROUP'),
    functionAppName: read('AZURE_FUNCTION_APP_NAME'),
  };
}

export function resourceGroupPath(target: FunctionAppTarget): string {
  return `/subscriptions/${target.subscriptionId}/resourceGroups/${target.resourceGroup}`;
}

/** The Function app's Resource Manager path (no api-version). */
export function sitePath(target: FunctionAppTarget): string {
  return `${resourceGroupPath(target)}/providers/Microsoft.Web/sites/${target.functionAppName}`;
}

/** Runs `main` when the module at `moduleUrl` is the script node was started with; a failure is one line and exit code 1. */
export function runAsHook(moduleUrl: string, label: string, main: () => Promise<void>): void {
  if (process.argv[1] === undefined || moduleUrl !== pathToFileURL(process.argv[1]).href) return;
  main().catch((error: unknown) => {
    console.error(`${label}: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  });
}

/** The body of a JSON API's answer; undefined when it is empty or not JSON. */
export async function readJsonBody(response: Response): Promise<unknown> {
  const text = await response.text();
  try {
    return text ? JSON.parse(text) : undefined;
  } catch {
    return undefined;
  }
}

export interface ArmResponse {
  status: number;
  body: unknown;
}

export class ArmClient {
  private readonly redactions: string[] = [];

  constructor(
    private readonly endpoint: string,
    private readonly credential: TokenCredential,
  ) {}

  /** Strings (keys) that must never appear in an error message. */
  redact(value: string): void {
    if (value) this.redactions.push(value);
  }

  scrub(text: string): string {
    let result = text;
    for (const value of this.redactions) {
      result = result.split(value).join('***').split(encodeURIComponent(value)).join('***');
    }
    return result;
  }

  async request(method: 'GET' | 'POST' | 'PUT', path: string, body?: unknown): Promise<ArmResponse> {
    const scope = `${new URL(this.endpoint).origin}/.default`;
    const token = await this.credential.getToken(scope);
    if (!token) throw new HookError(`could not get an Azure Resource Manager token for ${scope}`);
    const init: RequestInit = {
      method,
      headers: { authorization: `Bearer ${token.token}`, 'content-type': 'application/json' },
      signal: AbortSignal.timeout(60_000),
    };
    if (body !== undefined) init.body = JSON.stringify(body);
    const response = await fetch(new URL(path, this.endpoint), init);
    return { status: response.status, body: await readJsonBody(response) };
  }

  describeError(response: ArmResponse): string {
    const error = (response.body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
    const detail = error ? `${String(error.code)}: ${String(error.message)}` : 'no error body';
    return this.scrub(`HTTP ${response.status} (${detail})`);
  }
}

/** Statuses worth asking again: the host answers listkeys with 400/404/409/5xx while it is still starting. */
export function isRetryable(status: number): boolean {
  return status === 400 || status === 404 || status === 408 || status === 409 || status === 429 || status >= 500;
}
