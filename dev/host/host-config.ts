/**
 * The parts of the app's host.json that the local host honours:
 * - `extensions.http.routePrefix`: HTTP functions are served under `/<prefix>/` ("" serves them at the root);
 * - `functionTimeout`: how long one invocation may run (`hh:mm:ss`, `d.hh:mm:ss`, or -1 for no limit);
 * - `extensions.blobs.maxDegreeOfParallelism`: blob-trigger invocations at once in one host;
 * - `extensions.blobs.poisonBlobThreshold`: tries of a blob before it goes to the poison queue;
 * - `extensions.queues.maxPollingInterval`: the longest wait between two polls of a queue (Azure backs off up to it
 *   while a queue is empty; this host polls at its own interval, never longer than this).
 * Absent values take Azure's defaults (timeout: Flex Consumption's 30 minutes). A malformed value stops the host
 * with the file, the property, what is wrong and what to write instead: Azure refuses such a file too.
 */
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';

export interface HostConfig {
  /** Where host.json was read from; undefined when the app has none (defaults apply). */
  source: string | undefined;
  routePrefix: string;
  /** Milliseconds one invocation may run; undefined for no limit (`functionTimeout: "-1"`). */
  functionTimeoutMs: number | undefined;
  /** The text of functionTimeout as written (or the default), for log lines shaped like Azure's. */
  functionTimeoutText: string;
  blobs: { maxDegreeOfParallelism: number; poisonBlobThreshold: number };
  queues: { maxPollingIntervalMs: number };
}

/** Flex Consumption's default; the project's plan. */
export const DEFAULT_FUNCTION_TIMEOUT = '00:30:00';
export const DEFAULT_ROUTE_PREFIX = 'api';
export const DEFAULT_POISON_BLOB_THRESHOLD = 5;
/** Azure's default for queue triggers: one minute. */
export const DEFAULT_QUEUE_MAX_POLLING_INTERVAL = '00:01:00';

/** Azure's default for blob triggers: 8 per available core. */
export function defaultBlobParallelism(): number {
  return 8 * availableParallelism();
}

export function defaultHostConfig(): HostConfig {
  return {
    source: undefined,
    routePrefix: DEFAULT_ROUTE_PREFIX,
    functionTimeoutMs: parseTimeSpan(DEFAULT_FUNCTION_TIMEOUT),
    functionTimeoutText: DEFAULT_FUNCTION_TIMEOUT,
    blobs: { maxDegreeOfParallelism: defaultBlobParallelism(), poisonBlobThreshold: DEFAULT_POISON_BLOB_THRESHOLD },
    queues: { maxPollingIntervalMs: parseTimeSpan(DEFAULT_QUEUE_MAX_POLLING_INTERVAL)! },
  };
}

/** `[d.]hh:mm:ss[.fff]` (a .NET TimeSpan as host.json takes it) in milliseconds; undefined if it is not one. */
export function parseTimeSpan(text: string): number | undefined {
  const match = /^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d{1,7}))?$/.exec(text);
  if (!match) return undefined;
  const [, days, hours, minutes, seconds, fraction] = match;
  if (Number(hours) > 23 || Number(minutes) > 59 || Number(seconds) > 59) return undefined;
  const ms = Math.round(Number(`0.${fraction ?? '0'}`) * 1000);
  return (((Number(days ?? '0') * 24 + Number(hours)) * 60 + Number(minutes)) * 60 + Number(seconds)) * 1000 + ms;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Reads a property path, insisting that every level on the way is an object. */
function lookup(root: Record<string, unknown>, path: string[], where: string): unknown {
  let node: unknown = root;
  for (let i = 0; i < path.length; i++) {
    if (node === undefined) return undefined;
    if (!isObject(node)) throw new Error(`${where}: "${path.slice(0, i).join('.')}" must be an object.`);
    node = node[path[i]!];
  }
  return node;
}

function positiveInteger(value: unknown, property: string, where: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new Error(
      `${where}: "${property}" must be a whole number of at least 1, got ${JSON.stringify(value)}. Remove it for the default (${fallback}).`,
    );
  }
  return value;
}

/** Interprets a parsed host.json; `where` names it in errors. */
export function hostConfigFrom(json: unknown, where: string): HostConfig {
  if (!isObject(json)) throw new Error(`${where}: the file must hold a JSON object.`);
  const config = defaultHostConfig();
  config.source = where;

  const prefix = lookup(json, ['extensions', 'http', 'routePrefix'], where);
  if (prefix !== undefined) {
    if (typeof prefix !== 'string')
      throw new Error(`${where}: "extensions.http.routePrefix" must be a string ("" for none), got ${JSON.stringify(prefix)}.`);
    const trimmed = prefix.replace(/^\/+|\/+$/g, '');
    if (/[?#\s{}]/.test(trimmed))
      throw new Error(
        `${where}: "extensions.http.routePrefix" ${JSON.stringify(prefix)} must be a plain path such as "api" (no spaces, ?, #, { or }).`,
      );
    config.routePrefix = trimmed;
  }

  const timeout = json.functionTimeout;
  if (timeout !== undefined) {
    const text = typeof timeout === 'number' ? String(timeout) : timeout;
    if (text === '-1') {
      config.functionTimeoutMs = undefined;
      config.functionTimeoutText = '-1';
    } else {
      const ms = typeof text === 'string' ? parseTimeSpan(text) : undefined;
      if (ms === undefined || ms <= 0) {
        throw new Error(
          `${where}: "functionTimeout" must be a duration "hh:mm:ss" above zero (for example "00:10:00") or "-1" for no limit, got ${JSON.stringify(timeout)}.`,
        );
      }
      config.functionTimeoutMs = ms;
      config.functionTimeoutText = text as string;
    }
  }

  config.blobs.maxDegreeOfParallelism = positiveInteger(
    lookup(json, ['extensions', 'blobs', 'maxDegreeOfParallelism'], where),
    'extensions.blobs.maxDegreeOfParallelism',
    where,
    config.blobs.maxDegreeOfParallelism,
  );
  config.blobs.poisonBlobThreshold = positiveInteger(
    lookup(json, ['extensions', 'blobs', 'poisonBlobThreshold'], where),
    'extensions.blobs.poisonBlobThreshold',
    where,
    config.blobs.poisonBlobThreshold,
  );
  const maxPolling = lookup(json, ['extensions', 'queues', 'maxPollingInterval'], where);
  if (maxPolling !== undefined) {
    const ms = typeof maxPolling === 'string' ? parseTimeSpan(maxPolling) : undefined;
    // Azure's floor for this setting is 100 ms.
    if (ms === undefined || ms < 100)
      throw new Error(
        `${where}: "extensions.queues.maxPollingInterval" must be a duration "hh:mm:ss" of at least 100 ms (for example "00:00:02"), got ${JSON.stringify(maxPolling)}.`,
      );
    config.queues.maxPollingIntervalMs = ms;
  }
  return config;
}

/** Reads host.json at `path`; a missing file gives the defaults, an unreadable or malformed one an error. */
export async function readHostConfig(path: string, options: { required?: boolean } = {}): Promise<HostConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' && !options.required) return defaultHostConfig();
    throw new Error(`${path}: cannot read host.json (${(error as Error).message}).`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new Error(`${path}: host.json is not valid JSON (${(error as Error).message}). Fix the file or remove it.`);
  }
  return hostConfigFrom(json, path);
}
