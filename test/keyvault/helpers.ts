// Shared helpers for the Key Vault stand-in conformance tests.
import type { TestContext } from 'node:test';
import { startKeyVaultStandIn, type KeyVaultStandIn, type KeyVaultStandInOptions } from '../../dev/keyvault/server.js';

export const API = 'api-version=7.6';
/** The percent-encoded query key the SDK sends. */
export const API_ENCODED = 'api%2Dversion=7.6';

export async function startForTest(t: TestContext, opts: KeyVaultStandInOptions = {}): Promise<KeyVaultStandIn> {
  const kv = await startKeyVaultStandIn(opts);
  t.after(() => kv.close());
  return kv;
}

export interface RawResponse {
  status: number;
  headers: Headers;
  body: unknown;
}

/** A request as an authenticated client would send it (any bearer token is accepted). */
export async function raw(
  kv: KeyVaultStandIn,
  method: string,
  pathAndQuery: string,
  body?: unknown,
  init: { auth?: boolean; signal?: AbortSignal } = {},
): Promise<RawResponse> {
  const headers: Record<string, string> = {};
  if (init.auth !== false) headers.authorization = 'Bearer test-token';
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(kv.url + pathAndQuery, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: init.signal,
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? (JSON.parse(text) as unknown) : undefined };
}

export interface KeyVaultErrorBody {
  error: { code: string; message: string; innererror?: { code: string } };
}

export function errorOf(body: unknown): KeyVaultErrorBody['error'] {
  const e = (body as KeyVaultErrorBody | undefined)?.error;
  if (!e || typeof e.code !== 'string' || typeof e.message !== 'string') {
    throw new Error(`not a Key Vault error body: ${JSON.stringify(body)}`);
  }
  return e;
}

/** What the SDK's RestError carries (checked by shape: core-rest-pipeline is not a direct dependency). */
export interface SdkRestError extends Error {
  statusCode?: number;
  code?: string;
  details?: unknown;
  response?: { headers: { get(name: string): string | undefined } };
}

/** Runs `fn`, expecting the SDK to throw a RestError; returns it for inspection. */
export async function restErrorOf(fn: () => Promise<unknown>): Promise<SdkRestError> {
  try {
    await fn();
  } catch (err) {
    if (err instanceof Error && err.name === 'RestError') return err;
    throw err;
  }
  throw new Error('expected the call to fail');
}

export const VERSION_PATTERN = /^[0-9a-f]{32}$/;

export function uniqueName(prefix: string): string {
  return `${prefix}-${Math.random().toString(16).slice(2, 10)}`;
}
