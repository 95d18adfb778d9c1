/**
 * The small interfaces the pipeline services use to reach storage and the
 * vault. The Azure adapters (shared/azure) implement them with the Azure SDKs;
 * nothing here imports Azure.
 */

export interface BlobInfo {
  name: string;
  etag: string;
  contentLength: number;
  createdOn?: Date;
  lastModified?: Date;
  metadata: Record<string, string>;
}

export interface StoredBlob extends BlobInfo {
  bytes: Uint8Array;
}

export interface BlobLease {
  readonly id: string;
  renew(): Promise<void>;
  release(): Promise<void>;
}

export interface WriteBlobOptions {
  contentType?: string;
  /** '*' : fail with BlobExistsError when the blob exists. */
  ifNoneMatch?: '*';
  /** Replace only the blob with this ETag: PreconditionFailedError when it changed or is gone. */
  ifMatch?: string;
  metadata?: Record<string, string>;
}

/**
 * The longest a BlobStore call may take, retries included; adapters abort a call past it. The reconciler's minimum
 * age is derived from it (shared/pipeline/liveness.ts), so an adapter must not allow its calls longer.
 */
export const BLOB_CALL_DEADLINE_MS = 120_000;

export interface BlobStore {
  /** undefined when the blob does not exist. */
  read(container: string, name: string): Promise<StoredBlob | undefined>;
  properties(container: string, name: string): Promise<BlobInfo | undefined>;
  write(container: string, name: string, content: string | Uint8Array, options?: WriteBlobOptions): Promise<{ etag: string }>;
  /** false when the blob did not exist. Throws PreconditionFailedError when ifMatch does not match. */
  delete(container: string, name: string, options?: { ifMatch?: string; leaseId?: string }): Promise<boolean>;
  /** Replaces a blob's metadata. Throws PreconditionFailedError when ifMatch does not match. */
  setMetadata(container: string, name: string, metadata: Record<string, string>, options?: { ifMatch?: string }): Promise<{ etag: string }>;
  /** Copies a blob (content and metadata) to another container, overwriting the target. */
  copy(fromContainer: string, name: string, toContainer: string, toName: string): Promise<void>;
  list(container: string, prefix?: string): AsyncIterable<BlobInfo>;
  /** undefined when another holder has the lease. seconds: 15-60. */
  acquireLease(container: string, name: string, seconds: number): Promise<BlobLease | undefined>;
}

export interface SecretValue {
  value: string;
  version: string;
  contentType?: string;
  tags: Record<string, string>;
}

export interface SetSecretOptions {
  contentType: string;
  tags: Record<string, string>;
}

/**
 * Key Vault secrets. Adapters translate service answers into the typed errors of
 * ./errors.ts: TransientError (429, 5xx, timeouts), SecretDeletedError (409
 * ObjectIsDeletedButRecoverable / ObjectIsBeingDeleted).
 *
 * A name's active secret is its newest enabled version. Key Vault itself refuses to read a name whose newest
 * version is disabled (403 SecretDisabled); the pipeline leaves one behind only when it takes back a version it
 * had just written (a failed programming request), and then the version before it is the one that counts.
 */
export interface SecretStore {
  /**
   * Without version: the active secret, undefined when the name has no enabled version (never written, deleted,
   * or every version disabled). With version: that version, undefined when it does not exist or is disabled.
   */
  get(name: string, version?: string): Promise<SecretValue | undefined>;
  set(name: string, value: string, options: SetSecretOptions): Promise<{ version: string }>;
  /** Disables one version (it stays in the vault, unreadable); disabling a disabled version changes nothing. */
  disable(name: string, version: string): Promise<void>;
  recover(name: string): Promise<void>;
}

/** Entity values are flat records of primitives (Azure Tables' model). */
export type EntityValue = string | number | boolean | null;
export type Entity = Record<string, EntityValue>;

export interface Versioned<T> {
  key: string;
  value: T;
  etag: string;
}

/**
 * One table with a single logical partition, addressed by a free-form key (a
 * serial). Adapters escape keys for the characters tables forbid.
 */
export interface EntityTable<T extends Entity> {
  get(key: string): Promise<Versioned<T> | undefined>;
  /** Throws ConflictError when the key exists. */
  insert(key: string, value: T): Promise<string>;
  /** Throws PreconditionFailedError when etag is stale. Returns the new etag. */
  replace(key: string, value: T, etag: string): Promise<string>;
  upsert(key: string, value: T): Promise<string>;
  /** false when absent. Throws PreconditionFailedError when etag is given and stale. */
  delete(key: string, etag?: string): Promise<boolean>;
  /** Every entity, optionally only those whose fields equal the given values. */
  list(where?: Partial<Record<keyof T & string, string | number | boolean>>): AsyncIterable<Versioned<T>>;
}

export type TokenState = 'stored' | 'exporting' | 'exported' | 'imported' | 'retired';

/** One row of the `tokens` inventory table. No secret, ever. */
export interface TokenEntity extends Entity {
  serial: string;
  state: TokenState;
  manufacturer: string;
  model: string;
  type: string;
  algorithm: string;
  digits: number;
  period: number;
  secretBytes: number;
  secretName: string;
  secretVersion: string;
  /** Blob name + ETag of the seed file that brought the token. */
  batch: string;
  createdAt: string;
  updatedAt: string;
  /** Set while exporting / once exported. */
  upn: string | null;
  buildId: string | null;
  exportFile: string | null;
  exportingSince: string | null;
  /** Verification state. */
  lastAcceptedStep: number | null;
  /**
   * The buildId the token had when a code was last accepted (null: accepted before any export). The token is
   * activated while this equals its buildId and lastAcceptedStep is set; a new export re-opens the activation
   * window. Rows written before the field existed read it as null.
   */
  activatedBuildId: string | null;
  failedAttempts: number;
  lockedUntil: string | null;
  lastVerifiedAt: string | null;
  driftSeconds: number | null;
  /** JSON array of { at, event, detail? }, newest last, bounded. */
  history: string;
}

/** One row of the `assignments` table. */
export interface AssignmentEntity extends Entity {
  serial: string;
  upn: string;
  sourceFile: string;
  line: number;
  createdAt: string;
}

export interface Clock {
  now(): Date;
}

export interface Logger {
  info(message: string, data?: Record<string, unknown>): void;
  warn(message: string, data?: Record<string, unknown>): void;
  error(message: string, data?: Record<string, unknown>): void;
}
