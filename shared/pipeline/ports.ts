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

export interface ReadBlobOptions {
  /**
   * Load at most this many bytes plus one, whatever the blob's size: a caller with a size limit never holds more
   * than the limit in memory, and sees a larger blob as bytes.length > maxBytes. contentLength stays the whole size.
   */
  maxBytes?: number;
}

export interface BlobStore {
  /** undefined when the blob does not exist. */
  read(container: string, name: string, options?: ReadBlobOptions): Promise<StoredBlob | undefined>;
  properties(container: string, name: string): Promise<BlobInfo | undefined>;
  write(container: string, name: string, content: string | Uint8Array, options?: WriteBlobOptions): Promise<{ etag: string }>;
  /** false when the blob did not exist. Throws PreconditionFailedError when ifMatch does not match. */
  delete(container: string, name: string, options?: { ifMatch?: string; leaseId?: string }): Promise<boolean>;
  /** Replaces a blob's metadata. Throws PreconditionFailedError when ifMatch does not match. */
  setMetadata(container: string, name: string, metadata: Record<string, string>, options?: { ifMatch?: string }): Promise<{ etag: string }>;
  /** Copies a blob (content and metadata) to another container, overwriting the target, in bounded memory. */
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
  /** Every version's metadata (never a value), for audits; empty when the name does not exist. */
  listVersions(name: string): Promise<SecretVersionInfo[]>;
}

export interface SecretVersionInfo {
  version: string;
  enabled: boolean;
  /** ISO time; null when the store does not say. */
  createdOn: string | null;
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
 * Records read and replaced under their ETag: the contract updateWithRetry (./conditional-update.ts) works on. A
 * table row is one; so is a small JSON record every instance shares, such as the vault's budget ledger or an
 * ingest's checkpoint (RecordStore in the `state` container, adapter shared/azure/blob-records.ts).
 */
export interface RecordStore<T extends Entity> {
  get(key: string): Promise<Versioned<T> | undefined>;
  /** Throws ConflictError when the key exists. */
  insert(key: string, value: T): Promise<string>;
  /** Throws PreconditionFailedError when etag is stale (or the record is gone). Returns the new etag. */
  replace(key: string, value: T, etag: string): Promise<string>;
  /** false when absent. Throws PreconditionFailedError when etag is given and stale. */
  delete(key: string, etag?: string): Promise<boolean>;
}

/**
 * One table with a single logical partition, addressed by a free-form key (a
 * serial). Adapters escape keys for the characters tables forbid.
 */
export interface EntityTable<T extends Entity> extends RecordStore<T> {
  upsert(key: string, value: T): Promise<string>;
  /** Every entity, optionally only those whose fields equal the given values. */
  list(where?: Partial<Record<keyof T & string, string | number | boolean>>): AsyncIterable<Versioned<T>>;
  /**
   * One page in the store's key order, filtered by the store: at most `limit` rows, reading no more than one row
   * past them, so a page costs the same however large the table is.
   */
  page(query: PageQuery<T>): Promise<EntityPage<T>>;
  /** How many entities hold each value of `field`, reading only that field (a value the field lacks counts as ''). */
  countBy(field: keyof T & string, where?: Partial<Record<keyof T & string, string | number | boolean>>): Promise<Record<string, number>>;
}

export interface PageQuery<T extends Entity> {
  /** Only entities whose fields equal these values. */
  where?: Partial<Record<keyof T & string, string | number | boolean>>;
  /** Only keys that start with this text. */
  keyPrefix?: string;
  /** Only keys after this one (the last key of the previous page). */
  after?: string;
  /** 1 to 1000. */
  limit: number;
}

export interface EntityPage<T> {
  rows: Versioned<T>[];
  /** True when more rows match after the last one returned. */
  more: boolean;
}

/** assigned / activated: Graph mode (in Entra through Microsoft Graph, then activated there). */
/** importFailed: Entra refused the token's row on upload (its failure file came back); it can be exported again. */
export type TokenState = 'stored' | 'exporting' | 'exported' | 'imported' | 'importFailed' | 'assigned' | 'activated' | 'retired';

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
  /**
   * HOTP moving factor as the seed file gave it, decimal text (64-bit unsigned: a number column loses exactness
   * above 2^53); null when the file gave none. Rows written before the field existed lack it: read it as null.
   */
  counter: string | null;
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
  /** Graph mode: Entra's device id, and the holder's object id and method id once assigned. */
  deviceId: string | null;
  userId: string | null;
  methodId: string | null;
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

/** Status of a hardware OATH token in Entra, as Graph reports it on the device. */
export type HardwareOathStatus = 'available' | 'assigned' | 'activated' | 'failedActivation' | 'unknownFutureValue';

export type HardwareOathHashFunction = 'hmacsha1' | 'hmacsha256';

/** A user as the directory knows it. `userType` and `accountEnabled` are null when the directory gives none. */
export interface DirectoryUser {
  id: string;
  userPrincipalName: string;
  displayName: string | null;
  /** 'Member' or 'Guest' (other values are passed through as given). */
  userType: string | null;
  accountEnabled: boolean | null;
}

/** A directory role the directory labels privileged, held by a user actively or as a PIM eligibility. */
export interface PrivilegedRole {
  displayName: string;
  /** The role's template id (the same in every tenant). */
  templateId: string;
  assignment: 'active' | 'eligible';
}

/** A token in Entra's hardware OATH inventory. The secret never comes back. */
export interface HardwareOathDevice {
  id: string;
  serialNumber: string;
  manufacturer: string;
  model: string;
  displayName: string | null;
  timeIntervalInSeconds: number;
  hashFunction: HardwareOathHashFunction;
  status: HardwareOathStatus;
  /** Object id (and display name) of the user holding it, or null when unassigned. */
  assignedTo: { id: string; displayName: string | null } | null;
  lastUsedDateTime: string | null;
}

export interface NewHardwareOathDevice {
  serialNumber: string;
  manufacturer: string;
  model: string;
  /** Base32 (A-Z, 2-7). Sent once, never logged, never put in an error. */
  secretKey: string;
  timeIntervalInSeconds: 30 | 60;
  hashFunction: HardwareOathHashFunction;
  displayName?: string;
}

/**
 * Entra ID's hardware OATH tokens and the directory reads that guard them (Microsoft Graph, beta device and
 * method endpoints, v1.0 user and membership reads). Adapters honour 429/503 Retry-After with bounded retries and
 * throw the typed errors of ./errors.ts:
 * - TransientError: throttled or unavailable, and the call changed nothing (retry later);
 * - UncertainOutcomeError (a TransientError): a write timed out or failed with 5xx, so it may or may not have been
 *   applied. Never re-send it blindly: look the serial or device up first;
 * - ConflictError: the serial already exists, the token is held by another user, or it is still assigned;
 * - DirectoryRefusedError: any other refusal (bad input, guest, five-method limit, wrong code, missing
 *   permission), with Graph's status and error code.
 */
export interface HardwareOathDirectory {
  /** By UPN or object id; undefined when no such user exists. */
  findUser(upnOrId: string): Promise<DirectoryUser | undefined>;
  /** The privileged directory roles the user holds, active (directly or through groups) or eligible. */
  userPrivilegedRoles(userId: string): Promise<PrivilegedRole[]>;
  /** Transitive membership of one group (false when the user is unknown). */
  isGroupMember(userId: string, groupId: string): Promise<boolean>;
  /** Every device whose serial matches (Graph compares without case); a legacy CSV token may share a serial. */
  findDevicesBySerial(serialNumber: string): Promise<HardwareOathDevice[]>;
  /** undefined when no device has that id. Its `status` is the token's state in Entra. */
  getDevice(deviceId: string): Promise<HardwareOathDevice | undefined>;
  /** Creates an unassigned device. Never retried after an uncertain outcome: look the serial up instead. */
  createDevice(device: NewHardwareOathDevice): Promise<HardwareOathDevice>;
  /** Assigns the device to the user; returns the user's method id for it (observed equal to the device id). */
  assignDevice(userId: string, deviceId: string): Promise<{ methodId: string }>;
  /** Activates an assigned token with a code read from it. DirectoryRefusedError when Graph refuses the code. */
  activate(userId: string, methodId: string, verificationCode: string): Promise<void>;
  /** Unassigns the token (back to the inventory, status available); false when the user holds no such method. */
  unassign(userId: string, methodId: string): Promise<boolean>;
  /** Deletes an unassigned device; false when it does not exist; ConflictError while it is assigned. */
  deleteDevice(deviceId: string): Promise<boolean>;
}
