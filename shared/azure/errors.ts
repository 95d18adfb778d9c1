/**
 * Reads Azure SDK failures by shape (RestError's statusCode / code / details / response headers), so this module
 * imports no SDK and the adapters share one idea of what "transient" means.
 */
import { epochMs, systemClock } from '../pipeline/clock.js';
import { TransientError } from '../pipeline/errors.js';

export interface AzureErrorShape {
  name?: string;
  message?: string;
  statusCode?: number;
  code?: string;
  details?: unknown;
  response?: { headers?: { get(name: string): string | undefined } };
}

function shapeOf(error: unknown): AzureErrorShape {
  return typeof error === 'object' && error !== null ? error : {};
}

export function statusOf(error: unknown): number | undefined {
  const status = shapeOf(error).statusCode;
  return typeof status === 'number' ? status : undefined;
}

/** The service's error code. Storage and Key Vault set `code`; the Tables SDK leaves it in `details.errorCode`. */
export function errorCodeOf(error: unknown): string | undefined {
  const shape = shapeOf(error);
  if (typeof shape.code === 'string') return shape.code;
  const fromDetails = (shape.details as { errorCode?: unknown } | undefined)?.errorCode;
  return typeof fromDetails === 'string' ? fromDetails : undefined;
}

/** Key Vault's `error.innererror.code` (e.g. ObjectIsDeletedButRecoverable), wherever the SDK left the body. */
export function innerErrorCodeOf(error: unknown): string | undefined {
  const shape = shapeOf(error);
  const candidates: unknown[] = [shape.details, (shape.details as { error?: unknown } | undefined)?.error];
  for (const candidate of candidates) {
    const inner = (candidate as { innererror?: { code?: unknown }; innerError?: { code?: unknown } } | undefined) ?? {};
    const code = inner.innererror?.code ?? inner.innerError?.code;
    if (typeof code === 'string') return code;
  }
  // Some SDK versions only keep the body text in the message.
  const match = /"innererror"\s*:\s*\{\s*"code"\s*:\s*"([A-Za-z]+)"/.exec(shape.message ?? '');
  return match?.[1];
}

const TRANSIENT_NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'UND_ERR_SOCKET',
  'REQUEST_SEND_ERROR',
]);

/** Milliseconds from Retry-After (seconds or HTTP date) or the millisecond variants some services send. */
export function retryAfterMsOf(error: unknown, now = epochMs(systemClock)): number | undefined {
  const headers = shapeOf(error).response?.headers;
  if (!headers || typeof headers.get !== 'function') return undefined;
  for (const name of ['retry-after-ms', 'x-ms-retry-after-ms']) {
    const raw = headers.get(name);
    if (raw !== undefined && /^\d+(\.\d+)?$/.test(raw.trim())) return Math.round(Number(raw));
  }
  const raw = headers.get('retry-after')?.trim();
  if (!raw) return undefined;
  if (/^\d+(\.\d+)?$/.test(raw)) return Math.round(Number(raw) * 1000);
  const at = Date.parse(raw);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** True for what a later retry may fix: 408, 429, 5xx, timeouts, aborted calls and dropped connections. */
export function isTransient(error: unknown): boolean {
  const shape = shapeOf(error);
  const status = statusOf(error);
  if (status !== undefined && status !== 0) return status === 408 || status === 429 || status >= 500;
  if (shape.name === 'AbortError' || shape.name === 'TimeoutError') return true;
  const code = errorCodeOf(error);
  if (code && TRANSIENT_NETWORK_CODES.has(code)) return true;
  // A RestError without a status is a failure to send or receive (connection reset, socket closed).
  return shape.name === 'RestError';
}

/** Returns a TransientError for `error` when it is transient, otherwise undefined. Never includes request bodies. */
export function asTransient(error: unknown, operation: string): TransientError | undefined {
  if (error instanceof TransientError) return error;
  if (!isTransient(error)) return undefined;
  const shape = shapeOf(error);
  const status = statusOf(error);
  const code = errorCodeOf(error);
  const reason = status
    ? `HTTP ${status}${code ? ` ${code}` : ''}`
    : shape.name === 'AbortError' || shape.name === 'TimeoutError'
      ? 'timed out'
      : (code ?? 'connection failed');
  return new TransientError(`${operation}: ${reason}`, status, retryAfterMsOf(error));
}

/** Throws the typed transient error for `error`, or `error` itself. */
export function rethrow(error: unknown, operation: string): never {
  throw asTransient(error, operation) ?? error;
}

/**
 * The pages of an SDK listing, one at a time; a failed page is rethrown as the typed transient error, or ends the
 * listing quietly when `endOnNotFound` and the service answered 404 (a container that does not exist lists nothing).
 */
export async function* pagesOf<T>(pages: AsyncIterator<T>, operation: string, endOnNotFound = false): AsyncGenerator<T> {
  while (true) {
    let page: IteratorResult<T>;
    try {
      page = await pages.next();
    } catch (error) {
      if (endOnNotFound && statusOf(error) === 404) return;
      rethrow(error, operation);
    }
    if (page.done) return;
    yield page.value;
  }
}

/** An abort signal that ends one call after `timeoutMs` (none when 0 or unset). */
export function callSignal(timeoutMs: number | undefined): AbortSignal | undefined {
  return timeoutMs && timeoutMs > 0 ? AbortSignal.timeout(timeoutMs) : undefined;
}
