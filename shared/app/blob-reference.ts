/**
 * The seed and assignment triggers bind with `sdkBinding: true` (deferred binding): the Functions host hands the
 * function a reference to the blob (its "model binding data": connection, container and name as JSON, source
 * `AzureStorageBlobs`) instead of downloading the content, so a blob far over the size limit costs the instance
 * nothing before the service has read its properties. @azure/functions turns that reference into the function's
 * argument through the factory registered for its source; this one parses it into a plain BlobReference and opens
 * no client (the services reach storage through their own adapter, properties first).
 */
import { createRequire } from 'node:module';
import type { ModelBindingData, ResourceFactoryResolver } from '@azure/functions-extensions-base';

export const BLOB_BINDING_SOURCE = 'AzureStorageBlobs';

export interface BlobReference {
  /** The app setting (connection) name, not a connection string. */
  connection: string;
  container: string;
  name: string;
}

export function parseBlobReference(data: ModelBindingData | ModelBindingData[]): BlobReference {
  const first = Array.isArray(data) ? data[0] : data;
  if (!first?.content || first.source !== BLOB_BINDING_SOURCE) throw new Error(`Expected a blob reference from ${BLOB_BINDING_SOURCE}.`);
  const parsed = JSON.parse(Buffer.from(first.content).toString('utf8')) as {
    Connection?: unknown;
    ContainerName?: unknown;
    BlobName?: unknown;
  };
  if (typeof parsed.ContainerName !== 'string' || typeof parsed.BlobName !== 'string')
    throw new Error('The blob reference names no container and blob.');
  return {
    connection: typeof parsed.Connection === 'string' ? parsed.Connection : '',
    container: parsed.ContainerName,
    name: parsed.BlobName,
  };
}

export function isBlobReference(value: unknown): value is BlobReference {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as BlobReference).name === 'string' &&
    typeof (value as BlobReference).container === 'string'
  );
}

/**
 * Registers the factory once per process. @azure/functions is CommonJS and reaches the registry through require();
 * an ES import would load the package's ES build, a second instance with its own empty registry.
 */
export function registerBlobReferenceFactory(): void {
  const base = createRequire(import.meta.url)('@azure/functions-extensions-base') as {
    ResourceFactoryResolver: typeof ResourceFactoryResolver;
  };
  const resolver = base.ResourceFactoryResolver.getInstance();
  if (!resolver.hasResourceFactory(BLOB_BINDING_SOURCE)) resolver.registerResourceFactory(BLOB_BINDING_SOURCE, parseBlobReference);
}
