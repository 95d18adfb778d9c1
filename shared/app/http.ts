/**
 * HTTP plumbing shared by the function files: JSON answers, the project's
 * error shape `{ "error": { "code", "message" } }`, and a guard that turns
 * unexpected failures into a generic 500 without echoing internals.
 */
import type { HttpResponseInit, InvocationContext } from '@azure/functions';
import { ConfigError } from '../config.js';
import { checkSerial } from '../core/validate.js';
import type { Logger } from '../pipeline/ports.js';

export function json(status: number, body: unknown): HttpResponseInit {
  return { status, jsonBody: body, headers: { 'cache-control': 'no-store' } };
}

export function errorResponse(status: number, code: string, message: string): HttpResponseInit {
  return json(status, { error: { code, message } });
}

export function invocationLogger(context: InvocationContext): Logger {
  const fmt = (message: string, data?: Record<string, unknown>) => (data ? `${message} ${JSON.stringify(data)}` : message);
  return {
    info: (m, d) => context.log(fmt(m, d)),
    warn: (m, d) => context.warn(fmt(m, d)),
    error: (m, d) => context.error(fmt(m, d)),
  };
}

/** Runs a handler; unexpected errors become 500/503 answers with a stable code and no internals. */
export async function guarded(context: InvocationContext, handler: () => Promise<HttpResponseInit>): Promise<HttpResponseInit> {
  try {
    return await handler();
  } catch (err) {
    if (err instanceof ConfigError) {
      context.error(err.message);
      return errorResponse(500, 'CONFIG_INVALID', err.message);
    }
    // Only the error's class goes to the log: SDK messages can quote request bodies.
    context.error(`Unhandled ${(err as Error)?.name ?? 'error'} in ${context.functionName}`);
    const transient = (err as Error)?.name === 'TransientError';
    return errorResponse(transient ? 503 : 500, 'INTERNAL_ERROR', transient ? 'A backing service is busy or unavailable; retry shortly.' : 'The service failed unexpectedly; retry, and check the function logs if it persists.');
  }
}

/**
 * The `{serial}` route parameter, judged by the same rule as a serial in a
 * seed file. One no token can have (too long, control or invisible
 * characters) gets a 400 answer before any storage call: Azure Table refuses
 * keys past 1 KiB, which would otherwise surface as a 500.
 */
export function serialFromRoute(request: { params: Record<string, string | undefined> }): { serial: string } | { invalid: HttpResponseInit } {
  const serial = request.params['serial'] ?? '';
  const refused = checkSerial(serial);
  if (!refused) return { serial };
  const message = serial === '' ? 'The path names no serial.' : `The serial in the path is not one a token can have: ${refused.message}`;
  return { invalid: errorResponse(400, refused.code, message) };
}

export async function readJsonBody(request: { text(): Promise<string> }): Promise<{ ok: true; value: unknown } | { ok: false }> {
  const text = await request.text();
  if (text.trim() === '') return { ok: true, value: undefined };
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch {
    return { ok: false };
  }
}

/** POST /api/imports body: empty, {}, or { "reexport": ["serial", ...] }. undefined when malformed. */
export function parseBuildRequest(value: unknown): { reexport?: string[] } | undefined {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) return undefined;
  const keys = Object.keys(value);
  if (keys.some((k) => k !== 'reexport')) return undefined;
  const reexport = (value as { reexport?: unknown }).reexport;
  if (reexport === undefined) return {};
  if (!Array.isArray(reexport) || reexport.length > 1000) return undefined;
  if (!reexport.every((s): s is string => typeof s === 'string' && s.length > 0 && s.length <= 128)) return undefined;
  return { reexport };
}
