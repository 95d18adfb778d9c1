/** BlobStore over @azure/storage-blob (Azure Storage or Azurite). */
import { Readable } from 'node:stream';
import type { BlobServiceClient } from '@azure/storage-blob';
import { BlobExistsError, PreconditionFailedError } from '../pipeline/errors.js';
import {
  BLOB_CALL_DEADLINE_MS,
  type BlobInfo,
  type BlobLease,
  type BlobStore,
  type ReadBlobOptions,
  type StoredBlob,
  type WriteBlobOptions,
} from '../pipeline/ports.js';
import { asTransient, callSignal, errorCodeOf, pagesOf, rethrow, statusOf } from './errors.js';

export interface AzureBlobStoreOptions {
  /** Per-call deadline in ms (SDK retries included); 0 disables (tests only). Default and most BLOB_CALL_DEADLINE_MS (120 s: seed files can be 20 MB). */
  timeoutMs?: number;
  /** Page size of list(); the service maximum (5000) by default. Small values are for tests. */
  listPageSize?: number;
}

/** A copy streams through blocks of this size, a few in flight: its memory does not grow with the blob. */
const COPY_BLOCK_BYTES = 4 * 1024 * 1024;
const COPY_BLOCKS_IN_FLIGHT = 2;

const LEASE_LOST_CODES = new Set([
  'LeaseIdMismatchWithLeaseOperation',
  'LeaseNotPresentWithLeaseOperation',
  'LeaseLost',
  'LeaseIsBrokenAndCannotBeRenewed',
]);

async function streamToBytes(stream: NodeJS.ReadableStream | undefined): Promise<Uint8Array> {
  if (!stream) return new Uint8Array();
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return new Uint8Array(Buffer.concat(chunks));
}

/** The whole blob's size from a ranged download's Content-Range ("bytes 0-1023/4096"). */
function totalSizeOf(contentRange: string | undefined): number | undefined {
  const match = /\/(\d+)$/.exec(contentRange ?? '');
  return match ? Number(match[1]) : undefined;
}

/** Listings give the ETag bare (0x8D...) where headers quote it; the ports compare etags as strings. */
function quotedEtag(etag: string): string {
  return etag.startsWith('"') || etag.startsWith('W/') ? etag : `"${etag}"`;
}

function preconditionOrRethrow(error: unknown, what: string): never {
  const status = statusOf(error);
  if (status === 412) throw new PreconditionFailedError(`${what}: ${errorCodeOf(error) ?? 'condition not met'}`);
  rethrow(error, what);
}

export class AzureBlobStore implements BlobStore {
  private readonly timeoutMs: number;
  private readonly listPageSize: number;

  constructor(
    private readonly service: BlobServiceClient,
    options: AzureBlobStoreOptions = {},
  ) {
    this.timeoutMs = options.timeoutMs ?? BLOB_CALL_DEADLINE_MS;
    if (this.timeoutMs > BLOB_CALL_DEADLINE_MS)
      throw new RangeError(`timeoutMs must be at most ${BLOB_CALL_DEADLINE_MS} (the reconciler's minimum age is derived from it).`);
    this.listPageSize = options.listPageSize ?? 5000;
  }

  private blob(container: string, name: string) {
    return this.service.getContainerClient(container).getBlockBlobClient(name);
  }

  async read(container: string, name: string, options: ReadBlobOptions = {}): Promise<StoredBlob | undefined> {
    const what = `read blob ${container}/${name}`;
    // A ranged download: a caller with a size limit never receives more than the limit and one byte.
    const count = options.maxBytes === undefined ? undefined : options.maxBytes + 1;
    try {
      const response = await this.blob(container, name).download(0, count, { abortSignal: callSignal(this.timeoutMs) });
      const bytes = await streamToBytes(response.readableStreamBody);
      return {
        name,
        etag: response.etag ?? '',
        contentLength: totalSizeOf(response.contentRange) ?? bytes.length,
        createdOn: response.createdOn,
        lastModified: response.lastModified,
        metadata: { ...(response.metadata ?? {}) },
        bytes,
      };
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      // A range of an empty blob is not satisfiable: the blob is there, with no content.
      if (statusOf(error) === 416 && count !== undefined) {
        const info = await this.properties(container, name);
        return info ? { ...info, bytes: new Uint8Array() } : undefined;
      }
      rethrow(error, what);
    }
  }

  async properties(container: string, name: string): Promise<BlobInfo | undefined> {
    try {
      const p = await this.blob(container, name).getProperties({ abortSignal: callSignal(this.timeoutMs) });
      return {
        name,
        etag: p.etag ?? '',
        contentLength: p.contentLength ?? 0,
        createdOn: p.createdOn,
        lastModified: p.lastModified,
        metadata: { ...(p.metadata ?? {}) },
      };
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      rethrow(error, `blob properties ${container}/${name}`);
    }
  }

  async write(container: string, name: string, content: string | Uint8Array, options: WriteBlobOptions = {}): Promise<{ etag: string }> {
    const body =
      typeof content === 'string' ? Buffer.from(content, 'utf8') : Buffer.from(content.buffer, content.byteOffset, content.byteLength);
    try {
      const response = await this.blob(container, name).upload(body, body.length, {
        abortSignal: callSignal(this.timeoutMs),
        blobHTTPHeaders: options.contentType ? { blobContentType: options.contentType } : undefined,
        metadata: options.metadata,
        conditions: options.ifNoneMatch === '*' ? { ifNoneMatch: '*' } : options.ifMatch ? { ifMatch: options.ifMatch } : undefined,
      });
      return { etag: response.etag ?? '' };
    } catch (error) {
      const status = statusOf(error);
      // With If-None-Match: * the service answers 409 BlobAlreadyExists (or 412 when the blob is leased): it exists either way.
      if (options.ifNoneMatch === '*' && (status === 409 || status === 412)) throw new BlobExistsError(name);
      // If-Match on a blob that is gone: the condition fails as surely as on a changed one.
      if (options.ifMatch && status === 404) throw new PreconditionFailedError(`write blob ${container}/${name}: BlobNotFound`);
      preconditionOrRethrow(error, `write blob ${container}/${name}`);
    }
  }

  async delete(container: string, name: string, options: { ifMatch?: string; leaseId?: string } = {}): Promise<boolean> {
    try {
      await this.blob(container, name).delete({
        abortSignal: callSignal(this.timeoutMs),
        deleteSnapshots: 'include',
        conditions: { ifMatch: options.ifMatch, leaseId: options.leaseId },
      });
      return true;
    } catch (error) {
      if (statusOf(error) === 404) return false;
      preconditionOrRethrow(error, `delete blob ${container}/${name}`);
    }
  }

  async setMetadata(
    container: string,
    name: string,
    metadata: Record<string, string>,
    options: { ifMatch?: string } = {},
  ): Promise<{ etag: string }> {
    try {
      const response = await this.blob(container, name).setMetadata(metadata, {
        abortSignal: callSignal(this.timeoutMs),
        conditions: { ifMatch: options.ifMatch },
      });
      return { etag: response.etag ?? '' };
    } catch (error) {
      preconditionOrRethrow(error, `set metadata of blob ${container}/${name}`);
    }
  }

  /**
   * Download and upload instead of a server-side copy: a server-side copy needs a source URL the service can read
   * (a SAS, or roles on both ends), and Azurite cannot copy from itself without one. Streamed block by block, so a
   * blob far above the pipeline's size limits (quarantined unread) costs a few blocks of memory, not its size.
   */
  async copy(fromContainer: string, name: string, toContainer: string, toName: string): Promise<void> {
    const abortSignal = callSignal(this.timeoutMs);
    let source;
    try {
      source = await this.blob(fromContainer, name).download(0, undefined, { abortSignal });
    } catch (error) {
      if (statusOf(error) === 404) throw new Error(`copy: ${fromContainer}/${name} does not exist`);
      rethrow(error, `copy blob ${fromContainer}/${name}`);
    }
    const body = source.readableStreamBody ? Readable.from(source.readableStreamBody) : Readable.from([]);
    try {
      await this.blob(toContainer, toName).uploadStream(body, COPY_BLOCK_BYTES, COPY_BLOCKS_IN_FLIGHT, {
        abortSignal,
        metadata: { ...(source.metadata ?? {}) },
        blobHTTPHeaders: source.contentType ? { blobContentType: source.contentType } : undefined,
      });
    } catch (error) {
      body.destroy();
      preconditionOrRethrow(error, `copy blob ${fromContainer}/${name} to ${toContainer}/${toName}`);
    }
  }

  async *list(container: string, prefix?: string): AsyncIterable<BlobInfo> {
    const pages = this.service
      .getContainerClient(container)
      .listBlobsFlat({ prefix: prefix || undefined, includeMetadata: true })
      .byPage({ maxPageSize: this.listPageSize });
    // Same as the in-memory store: a missing container lists nothing.
    for await (const page of pagesOf(pages, `list blobs ${container}/${prefix ?? ''}`, true)) {
      for (const item of page.segment.blobItems) {
        yield {
          name: item.name,
          etag: quotedEtag(item.properties.etag),
          contentLength: item.properties.contentLength ?? 0,
          createdOn: item.properties.createdOn,
          lastModified: item.properties.lastModified,
          metadata: { ...(item.metadata ?? {}) },
        };
      }
    }
  }

  async acquireLease(container: string, name: string, seconds: number): Promise<BlobLease | undefined> {
    const what = `lease blob ${container}/${name}`;
    const leaseClient = this.blob(container, name).getBlobLeaseClient();
    try {
      await leaseClient.acquireLease(seconds, { abortSignal: callSignal(this.timeoutMs) });
    } catch (error) {
      const status = statusOf(error);
      if (status === 409 && errorCodeOf(error) === 'LeaseAlreadyPresent') return undefined;
      if (status === 404) throw new Error(`lease: ${container}/${name} does not exist`);
      rethrow(error, what);
    }
    const id = leaseClient.leaseId;
    return {
      id,
      renew: async () => {
        try {
          await leaseClient.renewLease({ abortSignal: callSignal(this.timeoutMs) });
        } catch (error) {
          // The lease expired and someone else took it (or the blob is gone): the holder must stop.
          const status = statusOf(error);
          if (status === 404 || status === 412 || (status === 409 && LEASE_LOST_CODES.has(errorCodeOf(error) ?? ''))) {
            throw new PreconditionFailedError(`${what}: lease ${errorCodeOf(error) ?? 'lost'}`);
          }
          rethrow(error, what);
        }
      },
      release: async () => {
        try {
          await leaseClient.releaseLease({ abortSignal: callSignal(this.timeoutMs) });
        } catch (error) {
          // Releasing a lease that is no longer ours, or a deleted blob, leaves nothing to release.
          const status = statusOf(error);
          if (status === 404 || status === 412 || (status === 409 && LEASE_LOST_CODES.has(errorCodeOf(error) ?? ''))) return;
          throw asTransient(error, what) ?? error;
        }
      },
    };
  }
}
