/**
 * In-memory implementations of the pipeline's own ports (not of any Azure SDK),
 * for unit tests of the services. The adapters are tested against Azurite and
 * the Key Vault stand-in separately.
 */
import { randomBytes } from 'node:crypto';
import { ManualClock } from './clock.js';
import { BlobExistsError, ConflictError, PreconditionFailedError, SecretDeletedError } from '../../shared/pipeline/errors.js';
import type {
  BlobInfo,
  Clock,
  RecordStore,
  SecretVersionInfo,
  BlobLease,
  BlobStore,
  Entity,
  EntityPage,
  EntityTable,
  PageQuery,
  ReadBlobOptions,
  SecretStore,
  SecretValue,
  SetSecretOptions,
  StoredBlob,
  Versioned,
  WriteBlobOptions,
} from '../../shared/pipeline/ports.js';

const etag = () => `"0x${randomBytes(8).toString('hex').toUpperCase()}"`;

/**
 * Azure's blob-name rule as the service applies it: 1 to 1,024 characters, counted in UTF-16 code units (an
 * emoji counts two), and at most 254 path segments. Azure answers 400 OutOfRangeInput; Azurite checks neither.
 */
function blobNameError(name: string): Error | undefined {
  if (name.length >= 1 && name.length <= 1024 && name.split('/').length <= 254) return undefined;
  return Object.assign(new Error('The specified resource name length is not within the permissible limits.'), {
    name: 'RestError',
    statusCode: 400,
    code: 'OutOfRangeInput',
  });
}

type MemoryBlob = StoredBlob & { contentType?: string; leaseId?: string; leaseUntil?: number };

export class MemoryBlobStore implements BlobStore {
  readonly containers = new Map<string, Map<string, MemoryBlob>>();

  /** Blob times and lease expiry follow this clock, like every other time source of the pipeline. */
  constructor(private readonly clock: Clock = new ManualClock()) {}

  private nowMs(): number {
    return this.clock.now().getTime();
  }

  private container(name: string) {
    let c = this.containers.get(name);
    if (!c) this.containers.set(name, (c = new Map<string, MemoryBlob>()));
    return c;
  }

  names(container: string): string[] {
    return [...this.container(container).keys()].sort();
  }

  text(container: string, name: string): string | undefined {
    const b = this.container(container).get(name);
    return b ? Buffer.from(b.bytes).toString('utf8') : undefined;
  }

  read(container: string, name: string, options: ReadBlobOptions = {}): Promise<StoredBlob | undefined> {
    const invalid = blobNameError(name);
    if (invalid) return Promise.reject(invalid);
    const b = this.container(container).get(name);
    const end = options.maxBytes === undefined ? undefined : options.maxBytes + 1;
    return Promise.resolve(b ? { ...b, bytes: b.bytes.slice(0, end), metadata: { ...b.metadata } } : undefined);
  }

  properties(container: string, name: string): Promise<BlobInfo | undefined> {
    const invalid = blobNameError(name);
    if (invalid) return Promise.reject(invalid);
    const b = this.container(container).get(name);
    if (!b) return Promise.resolve(undefined);
    const { bytes: _bytes, contentType: _contentType, leaseId: _leaseId, leaseUntil: _leaseUntil, ...info } = b;
    return Promise.resolve({ ...info, metadata: { ...info.metadata } });
  }

  write(container: string, name: string, content: string | Uint8Array, options: WriteBlobOptions = {}): Promise<{ etag: string }> {
    const invalid = blobNameError(name);
    if (invalid) return Promise.reject(invalid);
    const c = this.container(container);
    if (options.ifNoneMatch === '*' && c.has(name)) return Promise.reject(new BlobExistsError(name));
    if (options.ifMatch && c.get(name)?.etag !== options.ifMatch)
      return Promise.reject(new PreconditionFailedError(`etag mismatch for ${name}`));
    const bytes = typeof content === 'string' ? new TextEncoder().encode(content) : content.slice();
    const now = this.clock.now();
    const entry = {
      name,
      bytes,
      etag: etag(),
      contentLength: bytes.length,
      createdOn: c.get(name)?.createdOn ?? now,
      lastModified: now,
      metadata: { ...(options.metadata ?? {}) },
      contentType: options.contentType,
    };
    c.set(name, entry);
    return Promise.resolve({ etag: entry.etag });
  }

  delete(container: string, name: string, options: { ifMatch?: string; leaseId?: string } = {}): Promise<boolean> {
    const invalid = blobNameError(name);
    if (invalid) return Promise.reject(invalid);
    const c = this.container(container);
    const b = c.get(name);
    if (!b) return Promise.resolve(false);
    if (options.ifMatch && options.ifMatch !== b.etag) return Promise.reject(new PreconditionFailedError(`etag mismatch for ${name}`));
    if (b.leaseId && (b.leaseUntil ?? 0) > this.nowMs() && b.leaseId !== options.leaseId)
      return Promise.reject(new PreconditionFailedError(`${name} is leased`));
    c.delete(name);
    return Promise.resolve(true);
  }

  setMetadata(
    container: string,
    name: string,
    metadata: Record<string, string>,
    options: { ifMatch?: string } = {},
  ): Promise<{ etag: string }> {
    const invalid = blobNameError(name);
    if (invalid) return Promise.reject(invalid);
    const b = this.container(container).get(name);
    if (!b) return Promise.reject(new Error(`setMetadata: ${container}/${name} does not exist`));
    if (options.ifMatch && options.ifMatch !== b.etag) return Promise.reject(new PreconditionFailedError(`etag mismatch for ${name}`));
    b.metadata = { ...metadata };
    b.etag = etag();
    return Promise.resolve({ etag: b.etag });
  }

  async copy(fromContainer: string, name: string, toContainer: string, toName: string): Promise<void> {
    const invalid = blobNameError(toName);
    if (invalid) throw invalid;
    const b = this.container(fromContainer).get(name);
    if (!b) throw new Error(`copy: ${fromContainer}/${name} does not exist`);
    await this.write(toContainer, toName, b.bytes, { metadata: b.metadata });
  }

  async *list(container: string, prefix = ''): AsyncIterable<BlobInfo> {
    for (const name of this.names(container)) {
      if (!name.startsWith(prefix)) continue;
      const info = await this.properties(container, name);
      if (info) yield info;
    }
  }

  acquireLease(container: string, name: string, seconds: number): Promise<BlobLease | undefined> {
    const invalid = blobNameError(name);
    if (invalid) return Promise.reject(invalid);
    const b = this.container(container).get(name);
    if (!b) return Promise.reject(new Error(`lease: ${container}/${name} does not exist`));
    if (b.leaseId && (b.leaseUntil ?? 0) > this.nowMs()) return Promise.resolve(undefined);
    const id = randomBytes(8).toString('hex');
    b.leaseId = id;
    b.leaseUntil = this.nowMs() + seconds * 1000;
    return Promise.resolve({
      id,
      renew: () => {
        b.leaseUntil = this.nowMs() + seconds * 1000;
        return Promise.resolve();
      },
      release: () => {
        if (b.leaseId === id) b.leaseId = undefined;
        return Promise.resolve();
      },
    });
  }
}

type MemorySecretVersion = SecretValue & { enabled: boolean };

export class MemorySecretStore implements SecretStore {
  /** Versions per lower-cased name, oldest first (the fake has no clock of its own: order is creation order). */
  readonly secrets = new Map<string, MemorySecretVersion[]>();
  readonly deleted = new Set<string>();
  sets = 0;
  gets = 0;
  disables = 0;

  versions(name: string): number {
    return this.secrets.get(name.toLowerCase())?.length ?? 0;
  }

  /** Every version of a name, with its enabled flag, oldest first. */
  history(name: string): { version: string; value: string; enabled: boolean }[] {
    return (this.secrets.get(name.toLowerCase()) ?? []).map((v) => ({ version: v.version, value: v.value, enabled: v.enabled }));
  }

  get(name: string, version?: string): Promise<SecretValue | undefined> {
    this.gets++;
    const key = name.toLowerCase();
    if (this.deleted.has(key)) return Promise.resolve(undefined);
    const list = this.secrets.get(key) ?? [];
    const found = version === undefined ? list.findLast((v) => v.enabled) : list.find((v) => v.version === version && v.enabled);
    if (!found) return Promise.resolve(undefined);
    const { enabled: _enabled, ...value } = found;
    return Promise.resolve({ ...value, tags: { ...value.tags } });
  }

  set(name: string, value: string, options: SetSecretOptions): Promise<{ version: string }> {
    if (this.deleted.has(name.toLowerCase())) return Promise.reject(new SecretDeletedError(name));
    this.sets++;
    const version = randomBytes(16).toString('hex');
    const list = this.secrets.get(name.toLowerCase()) ?? [];
    list.push({ value, version, contentType: options.contentType, tags: { ...options.tags }, enabled: true });
    this.secrets.set(name.toLowerCase(), list);
    return Promise.resolve({ version });
  }

  disable(name: string, version: string): Promise<void> {
    this.disables++;
    const found = this.secrets.get(name.toLowerCase())?.find((v) => v.version === version);
    if (found) found.enabled = false;
    return Promise.resolve();
  }

  recover(name: string): Promise<void> {
    this.deleted.delete(name.toLowerCase());
    return Promise.resolve();
  }

  listVersions(name: string): Promise<SecretVersionInfo[]> {
    if (this.deleted.has(name.toLowerCase())) return Promise.resolve([]);
    return Promise.resolve(this.history(name).map((v) => ({ version: v.version, enabled: v.enabled, createdOn: null })));
  }
}

export class MemoryTable<T extends Entity> implements EntityTable<T> {
  readonly rows = new Map<string, { value: T; etag: string }>();

  get(key: string): Promise<Versioned<T> | undefined> {
    const r = this.rows.get(key);
    return Promise.resolve(r ? { key, value: { ...r.value }, etag: r.etag } : undefined);
  }

  insert(key: string, value: T): Promise<string> {
    if (this.rows.has(key)) return Promise.reject(new ConflictError(`${key} exists`));
    const e = etag();
    this.rows.set(key, { value: { ...value }, etag: e });
    return Promise.resolve(e);
  }

  replace(key: string, value: T, expected: string): Promise<string> {
    const r = this.rows.get(key);
    if (!r || r.etag !== expected) return Promise.reject(new PreconditionFailedError(`${key} changed`));
    const e = etag();
    this.rows.set(key, { value: { ...value }, etag: e });
    return Promise.resolve(e);
  }

  upsert(key: string, value: T): Promise<string> {
    const e = etag();
    this.rows.set(key, { value: { ...value }, etag: e });
    return Promise.resolve(e);
  }

  delete(key: string, expected?: string): Promise<boolean> {
    const r = this.rows.get(key);
    if (!r) return Promise.resolve(false);
    if (expected && r.etag !== expected) return Promise.reject(new PreconditionFailedError(`${key} changed`));
    this.rows.delete(key);
    return Promise.resolve(true);
  }

  async *list(where: Partial<Record<keyof T & string, string | number | boolean>> = {}): AsyncIterable<Versioned<T>> {
    for (const [key, r] of [...this.rows.entries()]) {
      if (Object.entries(where).every(([k, v]) => r.value[k] === v)) yield { key, value: { ...r.value }, etag: r.etag };
      await Promise.resolve();
    }
  }

  /** Rows page() handed back from the store (one past the page at most), so tests can prove a page never loads the table. */
  rowsTransferredByPages = 0;

  page(query: PageQuery<T>): Promise<EntityPage<T>> {
    const rows: Versioned<T>[] = [];
    // Key order, as a table keeps its rows sorted (Azure sorts by the escaped key; plain keys order alike).
    const keys = [...this.rows.keys()]
      .filter((k) => (query.after === undefined || k > query.after) && k.startsWith(query.keyPrefix ?? ''))
      .sort();
    for (const key of keys) {
      const r = this.rows.get(key)!;
      if (!Object.entries(query.where ?? {}).every(([k, v]) => r.value[k] === v)) continue;
      this.rowsTransferredByPages++;
      rows.push({ key, value: { ...r.value }, etag: r.etag });
      if (rows.length > query.limit) break;
    }
    return Promise.resolve({ rows: rows.slice(0, query.limit), more: rows.length > query.limit });
  }

  countBy(
    field: keyof T & string,
    where: Partial<Record<keyof T & string, string | number | boolean>> = {},
  ): Promise<Record<string, number>> {
    const counts: Record<string, number> = {};
    for (const r of this.rows.values()) {
      if (!Object.entries(where).every(([k, v]) => r.value[k] === v)) continue;
      const value = r.value[field];
      const key = value === undefined || value === null ? '' : String(value);
      counts[key] = (counts[key] ?? 0) + 1;
    }
    return Promise.resolve(counts);
  }
}

/** Shared records (the vault's budget ledger, ingest checkpoints) in memory, counting the writes that landed. */
export class MemoryRecordStore<T extends Entity> implements RecordStore<T> {
  private readonly table = new MemoryTable<T>();
  writes = 0;

  get(key: string): Promise<Versioned<T> | undefined> {
    return this.table.get(key);
  }

  async insert(key: string, value: T): Promise<string> {
    const etag = await this.table.insert(key, value);
    this.writes++;
    return etag;
  }

  async replace(key: string, value: T, expected: string): Promise<string> {
    const etag = await this.table.replace(key, value, expected);
    this.writes++;
    return etag;
  }

  delete(key: string, expected?: string): Promise<boolean> {
    return this.table.delete(key, expected);
  }

  keys(): string[] {
    return [...this.table.rows.keys()].sort();
  }
}
