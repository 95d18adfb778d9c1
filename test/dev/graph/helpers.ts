// Shared helpers for the Graph stand-in and adapter tests.
import { createHash, randomBytes } from 'node:crypto';
import type { TestContext } from 'node:test';
import { startGraphStandIn, type GraphStandIn, type GraphStandInOptions } from '../../../dev/graph/server.js';
import { decodeBase32, toCanonicalBase32 } from '../../../shared/core/encoding.js';
import { totpCode } from '../../../shared/core/totp.js';

export const DEVICES = '/beta/directory/authenticationMethodDevices/hardwareOathDevices';

export async function startForTest(t: TestContext, opts: GraphStandInOptions = {}): Promise<GraphStandIn> {
  const graph = await startGraphStandIn({ port: 0, ...opts });
  t.after(() => graph.close());
  return graph;
}

export interface RawResponse {
  status: number;
  headers: Headers;
  text: string;
  body: unknown;
}

/** A request as an authenticated client sends it (any bearer token is accepted). */
export async function raw(
  graph: { url: string },
  method: string,
  pathAndQuery: string,
  body?: unknown,
  init: { auth?: boolean; signal?: AbortSignal; headers?: Record<string, string> } = {},
): Promise<RawResponse> {
  const headers: Record<string, string> = { ...init.headers };
  if (init.auth !== false) headers.authorization = 'Bearer test-token';
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(graph.url + pathAndQuery, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: init.signal,
  });
  const text = await res.text();
  let parsed: unknown = undefined;
  if (text) parsed = JSON.parse(text) as unknown;
  return { status: res.status, headers: res.headers, text, body: parsed };
}

export interface GraphErrorBody {
  error: { code: string; message: string; innerError: { date: string; 'request-id': string; 'client-request-id': string } };
}

/** The error of a Graph error body; fails when the body is not Graph's envelope. */
export function errorOf(res: RawResponse): GraphErrorBody['error'] {
  const e = (res.body as GraphErrorBody | undefined)?.error;
  if (!e || typeof e.code !== 'string' || typeof e.message !== 'string' || typeof e.innerError?.['request-id'] !== 'string') {
    throw new Error(`not a Graph error body: ${res.text}`);
  }
  return e;
}

export function valueOf<T = Record<string, unknown>>(res: RawResponse): T[] {
  const value = (res.body as { value?: unknown } | undefined)?.value;
  if (!Array.isArray(value)) throw new Error(`no value array: ${res.text}`);
  return value as T[];
}

/** A fresh 160-bit base32 secret. */
export function newSecret(): string {
  return toCanonicalBase32(randomBytes(20));
}

/** A 160-bit base32 secret fixed by its label: with a fixed clock, code checks come out the same on every run. */
export function fixedSecret(label: string): string {
  return toCanonicalBase32(createHash('sha256').update(label).digest().subarray(0, 20));
}

/**
 * A well-formed code that matches none of the secret's codes within +/- windowSteps of the time: a wrong code
 * whatever the clock says (a random one would match by chance about once in 170 tries over a day's window).
 */
export function codeOutsideWindow(secret: string, unixSeconds: number, windowSteps: number, period: 30 | 60 = 30): string {
  const taken = new Set<string>();
  for (let step = -windowSteps; step <= windowSteps; step++) taken.add(codeAt(secret, unixSeconds + step * period, { period }));
  for (let n = 0; ; n++) {
    const code = String(n).padStart(6, '0');
    if (!taken.has(code)) return code;
  }
}

export function codeAt(secret: string, unixSeconds: number, options: { period?: 30 | 60; sha256?: boolean } = {}): string {
  const bytes = decodeBase32(secret);
  if (!bytes) throw new Error('bad test secret');
  return totpCode({ secret: bytes, algorithm: options.sha256 ? 'SHA256' : 'SHA1', digits: 6, period: options.period ?? 30 }, unixSeconds);
}

export function uniqueSerial(prefix = 'SN'): string {
  return `${prefix}${randomBytes(5).toString('hex').toUpperCase()}`;
}

export function deviceBody(serialNumber: string, secretKey: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { serialNumber, manufacturer: 'Contoso', model: 'C200', secretKey, timeIntervalInSeconds: 30, hashFunction: 'hmacsha1', ...extra };
}

/** The 12-character pieces of a secret a leak scan looks for. */
export function secretPieces(secret: string): string[] {
  const pieces: string[] = [];
  for (let i = 0; i + 12 <= secret.length; i++) pieces.push(secret.slice(i, i + 12).toUpperCase());
  return pieces;
}

export function assertNoSecret(text: string, secrets: readonly string[]): void {
  const upper = text.toUpperCase();
  for (const secret of secrets) {
    for (const piece of secretPieces(secret)) {
      if (upper.includes(piece))
        throw new Error(`a 12-character piece of a secret appears at offset ${upper.indexOf(piece)} of the scanned text`);
    }
  }
}
