/**
 * The Key Vault secrets REST surface of the stand-in: routes, request bodies and query parameters, documented
 * limits, error bodies and the JSON shapes of secret bundles, items and deleted secrets (Key Vault REST API
 * reference, api-version 7.x).
 */
import type { Reply } from '../stand-in/http.js';
import type { DeletionInfo, SecretRecord, VersionRecord } from './journal.js';

export type { Reply } from '../stand-in/http.js';

export type KeyVaultOperation =
  | 'setSecret'
  | 'getSecret'
  | 'updateSecret'
  | 'deleteSecret'
  | 'getSecrets'
  | 'getSecretVersions'
  | 'getDeletedSecrets'
  | 'getDeletedSecret'
  | 'recoverDeletedSecret'
  | 'purgeDeletedSecret';

export const OPERATIONS: readonly KeyVaultOperation[] = [
  'setSecret',
  'getSecret',
  'updateSecret',
  'deleteSecret',
  'getSecrets',
  'getSecretVersions',
  'getDeletedSecrets',
  'getDeletedSecret',
  'recoverDeletedSecret',
  'purgeDeletedSecret',
];

/** Tenant announced in the bearer challenge; any made-up GUID works for local credentials. */
export const LOCAL_TENANT_ID = '6f1c2a3b-9d4e-4c5f-8a7b-0e1d2c3b4a59';

/** Documented service limits. "25k bytes" is read as 25 KiB. */
export const LIMITS = {
  nameMaxLength: 127,
  valueMaxBytes: 25 * 1024,
  maxTags: 15,
  tagNameMaxLength: 256,
  tagValueMaxLength: 256,
  contentTypeMaxLength: 255,
  pageSizeMax: 25,
  recoverableDays: 90,
} as const;

export const SERVICE_VERSION = '1.9.0.0-local';
export const NAME_PATTERN = /^[0-9a-zA-Z-]{1,127}$/;
export const MAX_REQUEST_BYTES = 2 * 1024 * 1024;
const RECOVERY_LEVEL = 'Recoverable+Purgeable';

// ---------------------------------------------------------------------------------------------------------------
// Errors and replies

export class KeyVaultError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly innerCode?: string,
  ) {
    super(message);
  }
}

export const badParameter = (message: string): KeyVaultError => new KeyVaultError(400, 'BadParameter', message);

export function secretNotFound(name: string, version?: string): KeyVaultError {
  const id = version ? `${name}/${version}` : name;
  return new KeyVaultError(
    404,
    'SecretNotFound',
    `A secret with (name/id) ${id} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182`,
  );
}

export const deletedSecretNotFound = (name: string): KeyVaultError =>
  new KeyVaultError(404, 'SecretNotFound', `Deleted Secret not found: ${name}`);

export function errorBody(err: KeyVaultError): unknown {
  return {
    error: {
      code: err.code,
      message: err.message,
      ...(err.innerCode ? { innererror: { code: err.innerCode } } : {}),
    },
  };
}

export function errorReply(err: KeyVaultError): Reply {
  return { status: err.status, body: errorBody(err) };
}

// ---------------------------------------------------------------------------------------------------------------
// Requests

export function parseJsonObject(raw: Buffer): Record<string, unknown> {
  if (raw.length === 0) throw badParameter('The request body is missing.');
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString('utf8'));
  } catch {
    throw badParameter('The request body is not valid JSON.');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw badParameter('The request body must be a JSON object.');
  }
  return parsed as Record<string, unknown>;
}

export interface Route {
  op: KeyVaultOperation;
  name?: string;
  version?: string;
}

/** Maps method and path to an operation; throws 404/405 KeyVaultErrors as the service answers them. */
export function route(method: string, pathname: string): Route {
  let segments: string[];
  try {
    segments = pathname
      .split('/')
      .slice(1)
      .map((s) => decodeURIComponent(s));
  } catch {
    throw badParameter('The request URI is not valid.');
  }
  const [collection, name, third, fourth] = segments;
  const notFound = (): KeyVaultError => new KeyVaultError(404, 'NotFound', `The requested resource ${pathname} was not found.`);
  const notAllowed = (): KeyVaultError =>
    new KeyVaultError(405, 'MethodNotAllowed', `The HTTP method ${method} is not supported for ${pathname}.`);
  if (segments.length > 4 || (fourth !== undefined && fourth !== '')) throw notFound();

  if (collection === 'secrets') {
    if (name === undefined || name === '') {
      if (third !== undefined) throw notFound();
      if (method === 'GET') return { op: 'getSecrets' };
      throw notAllowed();
    }
    if (third === undefined || third === '') {
      if (method === 'GET') return { op: 'getSecret', name };
      if (method === 'PATCH') return { op: 'updateSecret', name };
      if (third === undefined && method === 'PUT') return { op: 'setSecret', name };
      if (third === undefined && method === 'DELETE') return { op: 'deleteSecret', name };
      throw notAllowed();
    }
    if (third === 'versions') {
      if (method === 'GET') return { op: 'getSecretVersions', name };
      throw notAllowed();
    }
    if (method === 'GET') return { op: 'getSecret', name, version: third };
    if (method === 'PATCH') return { op: 'updateSecret', name, version: third };
    throw notAllowed();
  }
  if (collection === 'deletedsecrets') {
    if (name === undefined || name === '') {
      if (third !== undefined) throw notFound();
      if (method === 'GET') return { op: 'getDeletedSecrets' };
      throw notAllowed();
    }
    if (third === undefined || third === '') {
      if (method === 'GET') return { op: 'getDeletedSecret', name };
      if (method === 'DELETE') return { op: 'purgeDeletedSecret', name };
      throw notAllowed();
    }
    if (third === 'recover') {
      if (method === 'POST') return { op: 'recoverDeletedSecret', name };
      throw notAllowed();
    }
  }
  throw notFound();
}

export function readContentType(input: unknown): string | undefined {
  if (input === undefined || input === null) return undefined;
  if (typeof input !== 'string') throw badParameter('contentType must be a string.');
  if (input.length > LIMITS.contentTypeMaxLength) {
    throw badParameter(`contentType is ${input.length} characters; the maximum is ${LIMITS.contentTypeMaxLength}.`);
  }
  return input;
}

export function readTags(input: unknown): Record<string, string> | undefined {
  if (input === undefined || input === null) return undefined;
  if (typeof input !== 'object' || Array.isArray(input)) throw badParameter('tags must be an object of string values.');
  const entries = Object.entries(input as Record<string, unknown>);
  if (entries.length > LIMITS.maxTags) {
    throw badParameter(`The number of tags (${entries.length}) exceeds the maximum of ${LIMITS.maxTags}.`);
  }
  const tags: Record<string, string> = {};
  for (const [k, v] of entries) {
    if (typeof v !== 'string') throw badParameter(`The value of tag '${k.slice(0, 64)}' must be a string.`);
    if (k.length === 0 || k.length > LIMITS.tagNameMaxLength) {
      throw badParameter(`Tag names must be 1-${LIMITS.tagNameMaxLength} characters; got ${k.length}.`);
    }
    if (v.length > LIMITS.tagValueMaxLength) {
      throw badParameter(`The value of tag '${k.slice(0, 64)}' is ${v.length} characters; the maximum is ${LIMITS.tagValueMaxLength}.`);
    }
    tags[k] = v;
  }
  return tags;
}

export function readAttributes(input: unknown): { enabled?: boolean; nbf?: number; exp?: number } {
  if (input === undefined || input === null) return {};
  if (typeof input !== 'object' || Array.isArray(input)) throw badParameter('attributes must be an object.');
  const a = input as Record<string, unknown>;
  const out: { enabled?: boolean; nbf?: number; exp?: number } = {};
  if (a.enabled !== undefined && a.enabled !== null) {
    if (typeof a.enabled !== 'boolean') throw badParameter('attributes.enabled must be a boolean.');
    out.enabled = a.enabled;
  }
  for (const field of ['nbf', 'exp'] as const) {
    const v = a[field];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'number' || !Number.isFinite(v))
      throw badParameter(`attributes.${field} must be a number of seconds since the epoch.`);
    out[field] = Math.floor(v);
  }
  return out;
}

export function readPageSize(url: URL): number {
  const raw = url.searchParams.get('maxresults');
  if (raw === null || raw === '') return LIMITS.pageSizeMax;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > LIMITS.pageSizeMax) {
    throw badParameter(`Invalid maxresults parameter '${raw.slice(0, 20)}'. The value must be between 1 and ${LIMITS.pageSizeMax}.`);
  }
  return n;
}

export function readSkipToken(url: URL): string | undefined {
  const token = url.searchParams.get('$skiptoken');
  if (token === null || token === '') return undefined;
  return Buffer.from(token, 'base64url').toString('utf8');
}

// ---------------------------------------------------------------------------------------------------------------
// Response shapes

export function pageLink(base: string, collectionPath: string, url: URL, pageSize: number, cursor: string): string {
  const apiVersion = url.searchParams.get('api-version') ?? '7.6';
  const token = Buffer.from(cursor, 'utf8').toString('base64url');
  return `${base}${collectionPath}?api-version=${encodeURIComponent(apiVersion)}&$skiptoken=${token}&maxresults=${pageSize}`;
}

function attributesOf(v: VersionRecord): Record<string, unknown> {
  return {
    enabled: v.enabled,
    ...(v.nbf !== undefined ? { nbf: v.nbf } : {}),
    ...(v.exp !== undefined ? { exp: v.exp } : {}),
    created: v.created,
    updated: v.updated,
    recoveryLevel: RECOVERY_LEVEL,
    recoverableDays: LIMITS.recoverableDays,
  };
}

export function secretBundle(base: string, name: string, v: VersionRecord, withValue: boolean): Record<string, unknown> {
  return {
    ...(withValue ? { value: v.value } : {}),
    id: `${base}/secrets/${name}/${v.version}`,
    ...(v.contentType !== undefined ? { contentType: v.contentType } : {}),
    ...(v.tags !== undefined ? { tags: v.tags } : {}),
    attributes: attributesOf(v),
  };
}

export function secretItem(id: string, v: VersionRecord): Record<string, unknown> {
  return {
    id,
    ...(v.contentType !== undefined ? { contentType: v.contentType } : {}),
    ...(v.tags !== undefined ? { tags: v.tags } : {}),
    attributes: attributesOf(v),
  };
}

export function deletedSecretBundle(base: string, secret: SecretRecord): Record<string, unknown> {
  const latest = secret.versions.get(secret.latest) as VersionRecord;
  const deleted = secret.deleted as DeletionInfo;
  return {
    recoveryId: `${base}/deletedsecrets/${secret.name}`,
    deletedDate: deleted.deletedDate,
    scheduledPurgeDate: deleted.scheduledPurgeDate,
    ...secretBundle(base, secret.name, latest, false),
  };
}
