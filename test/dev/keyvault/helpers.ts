// Shared helpers for the Key Vault stand-in conformance tests.
import type { TestContext } from 'node:test';
import { startKeyVaultStandIn, type KeyVaultStandIn, type KeyVaultStandInOptions, type Wait } from '../../../dev/keyvault/server.js';

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

export interface PendingWait {
  /** How long the stand-in asked to wait. */
  ms: number;
  /** Ends the wait as if its time had passed. */
  release(): void;
  /** How the wait ended: released by the test, or aborted by the stand-in (client gone, or closing). */
  readonly outcome: Promise<'released' | 'aborted'>;
}

/**
 * A `Wait` for the stand-in that lasts until the test releases it, so latency and held requests are driven by the
 * test instead of by the wall clock.
 */
export class ManualWaits {
  readonly started: PendingWait[] = [];
  private listeners: (() => boolean)[] = [];
  private handedOut = 0;

  readonly wait: Wait = (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      let settle: (how: 'released' | 'aborted') => void = () => undefined;
      const outcome = new Promise<'released' | 'aborted'>((r) => (settle = r));
      const pending: PendingWait = {
        ms,
        outcome,
        release: () => {
          settle('released');
          resolve();
        },
      };
      const abort = (): void => {
        settle('aborted');
        reject(new Error('wait aborted'));
      };
      if (signal.aborted) abort();
      else signal.addEventListener('abort', abort, { once: true });
      this.started.push(pending);
      this.listeners = this.listeners.filter((done) => !done());
    });

  /** The next wait the stand-in starts, in order, as soon as it has started. */
  next(): Promise<PendingWait> {
    const index = this.handedOut++;
    return new Promise((resolve) => {
      const done = (): boolean => {
        const pending = this.started[index];
        if (pending) resolve(pending);
        return pending !== undefined;
      };
      if (!done()) this.listeners.push(done);
    });
  }
}
