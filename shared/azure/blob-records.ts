/**
 * RecordStore (shared/pipeline/ports.ts) as one small JSON blob per record in a container (`state`): the blob's
 * ETag is the record's, and every write is conditional on it (If-None-Match: * to insert, If-Match to replace), so
 * instances that share the record through updateWithRetry never overwrite each other's change.
 */
import { BlobExistsError, ConflictError } from '../pipeline/errors.js';
import type { BlobStore, Entity, RecordStore, Versioned } from '../pipeline/ports.js';

export class BlobRecordStore<T extends Entity> implements RecordStore<T> {
  constructor(
    private readonly blobs: BlobStore,
    private readonly container: string,
  ) {}

  async get(key: string): Promise<Versioned<T> | undefined> {
    const blob = await this.blobs.read(this.container, key);
    if (!blob) return undefined;
    let value: T;
    try {
      value = JSON.parse(Buffer.from(blob.bytes).toString('utf8')) as T;
    } catch {
      // Never written by this code (a partial upload cannot happen: a blob write is atomic). Start afresh.
      return { key, value: {} as T, etag: blob.etag };
    }
    return { key, value, etag: blob.etag };
  }

  async insert(key: string, value: T): Promise<string> {
    try {
      return (await this.blobs.write(this.container, key, JSON.stringify(value), { contentType: 'application/json', ifNoneMatch: '*' }))
        .etag;
    } catch (err) {
      if (err instanceof BlobExistsError) throw new ConflictError(`Record ${key} exists.`);
      throw err;
    }
  }

  async replace(key: string, value: T, etag: string): Promise<string> {
    return (await this.blobs.write(this.container, key, JSON.stringify(value), { contentType: 'application/json', ifMatch: etag })).etag;
  }

  delete(key: string, etag?: string): Promise<boolean> {
    return this.blobs.delete(this.container, key, etag ? { ifMatch: etag } : {});
  }
}
