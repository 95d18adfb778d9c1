/**
 * Blob triggers, found by polling: Azurite raises no Event Grid events, so
 * every registration is served by listing its container, whatever `source`
 * it declares. Behaviour follows the polling host:
 * - a blob is processed once per ETag; the proof is a blob receipt in
 *   `azure-webjobs-hosts/blobreceipts/<hostId>/<functionId>/<etag>/<container>/<blob>`,
 *   so restarts do not reprocess;
 * - several hosts of one app (same host id, same storage) share the receipts: a host works on a blob only while it
 *   holds a lease on its receipt (created with If-None-Match: *), renewed while the invocation runs. A crashed
 *   host's lease lapses within `receiptLeaseSeconds` and another host takes the blob over (Azure's instances
 *   coordinate through the same receipts and an internal queue);
 * - each attempt is counted in the receipt before the function runs (as Azure counts dequeues), so an attempt cut
 *   short by a crash counts too; after `poisonBlobThreshold` failed attempts (host.json
 *   `extensions.blobs.poisonBlobThreshold`, 5 by default) a message goes to the queue `webjobs-blobtrigger-poison`
 *   and the blob is not tried again;
 * - at most `maxDegreeOfParallelism` blobs are worked on at once in one host (host.json
 *   `extensions.blobs.maxDegreeOfParallelism`); a blob whose invocation is still running is not started again;
 * - a binding registered with deferred binding (`sdkBinding: true`) gets a reference to the blob (model binding
 *   data: connection, container and name, source AzureStorageBlobs), and the host downloads nothing.
 */
import { randomUUID } from 'node:crypto';
import {
  BlobServiceClient,
  RestError,
  type BlobGetPropertiesResponse,
  type BlobLeaseClient,
  type BlockBlobClient,
  type ContainerClient,
} from '@azure/storage-blob';
import { QueueServiceClient } from '@azure/storage-queue';
import type { FunctionDescription } from './core-module.js';
import type { RpcModelBindingData, RpcTypedData } from './core-types.js';
import { resolveAppSettingExpressions, resolveStorageConnection, textOption } from './settings.js';

export const hostsContainer = 'azure-webjobs-hosts';
export const blobPoisonQueue = 'webjobs-blobtrigger-poison';
/** Blob leases last 15 to 60 seconds; the shortest makes a crashed host's claim lapse soonest. */
export const DEFAULT_RECEIPT_LEASE_SECONDS = 15;

export interface BlobTriggerInvocation {
  fn: FunctionDescription;
  triggerName: string;
  data: RpcTypedData;
  triggerMetadata: Record<string, RpcTypedData>;
  retryCount: number;
}

export interface BlobPollerOptions {
  functions: FunctionDescription[];
  hostStorage: string;
  hostId: string;
  pollIntervalMs: number;
  /** Blobs worked on at once by this host (host.json extensions.blobs.maxDegreeOfParallelism). */
  maxDegreeOfParallelism: number;
  /** Failed attempts before the blob goes to the poison queue (host.json extensions.blobs.poisonBlobThreshold). */
  poisonBlobThreshold: number;
  /** Lease on a receipt while a blob is worked on (15-60 s): how long a crashed host's claim blocks others. */
  receiptLeaseSeconds?: number;
  invoke: (call: BlobTriggerInvocation) => Promise<void>;
  log: (line: string) => void;
}

interface BlobWatch {
  fn: FunctionDescription;
  functionId: string;
  triggerName: string;
  container: ContainerClient;
  containerName: string;
  prefix: string;
  pattern: RegExp;
  variables: string[];
  dataType: string | undefined;
  connectionName: string;
  deferred: boolean;
}

interface Candidate {
  watch: BlobWatch;
  blobName: string;
  etag: string;
  key: string;
}

/** `container/path/{name}.csv` -> container, listing prefix and a matcher for the blob name. */
export function compileBlobPath(path: string): { container: string; prefix: string; pattern: RegExp; variables: string[] } {
  const slash = path.indexOf('/');
  const container = slash < 0 ? path : path.slice(0, slash);
  const rest = slash < 0 ? '' : path.slice(slash + 1);
  if (container.includes('{')) throw new Error(`Blob trigger path "${path}": the container name cannot be a pattern.`);
  const variables: string[] = [];
  let source = '^';
  for (const part of rest.split(/(\{[^}]*\})/)) {
    if (part === '') continue;
    if (part.startsWith('{') && part.endsWith('}')) {
      variables.push(part.slice(1, -1));
      source += '(.+?)';
    } else {
      source += part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    }
  }
  // A path of only the container (or ending in "/") takes every blob under it.
  if (rest === '' || rest.endsWith('/')) source += '.*';
  source += '$';
  const brace = rest.indexOf('{');
  const prefix = brace < 0 ? (rest.endsWith('/') ? rest : '') : rest.slice(0, brace);
  return { container, prefix, pattern: new RegExp(source), variables };
}

/** Blob properties shaped like the host's serialized BlobProperties (PascalCase; the library camel-cases them). */
function propertiesJson(p: BlobGetPropertiesResponse): string {
  return JSON.stringify({
    LastModified: p.lastModified?.toISOString(),
    CreatedOn: p.createdOn?.toISOString(),
    Metadata: p.metadata ?? {},
    BlobType: p.blobType ?? 'BlockBlob',
    ContentLength: p.contentLength,
    ContentType: p.contentType,
    ETag: p.etag,
    ContentHash: p.contentMD5 ? Buffer.from(p.contentMD5).toString('base64') : null,
    ContentEncoding: p.contentEncoding ?? null,
    ContentDisposition: p.contentDisposition ?? null,
    ContentLanguage: p.contentLanguage ?? null,
    CacheControl: p.cacheControl ?? null,
    AccessTier: p.accessTier ?? null,
    AccessTierInferred: p.accessTierInferred ?? null,
    LeaseState: p.leaseState ?? null,
    LeaseStatus: p.leaseStatus ?? null,
    IsServerEncrypted: p.isServerEncrypted ?? null,
  });
}

function isNotFound(error: unknown): boolean {
  return error instanceof RestError && error.statusCode === 404;
}

/** What a receipt records, or undefined when no host has written one yet. */
async function receiptState(receipt: BlockBlobClient): Promise<{ completed: boolean; tries: number } | undefined> {
  try {
    const metadata = (await receipt.getProperties()).metadata ?? {};
    return { completed: metadata.completed === 'true', tries: Number(metadata.tries ?? '0') || 0 };
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

export class BlobTriggerPoller {
  #options: BlobPollerOptions;
  #watches: BlobWatch[];
  #receipts: ContainerClient;
  #queues: QueueServiceClient;
  #done = new Set<string>();
  #running = new Map<string, Promise<void>>();
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #cycle: Promise<void> | undefined;
  #lastCyclePending = 0;
  #cycleWaiters: (() => void)[] = [];
  #missingContainers = new Set<string>();
  #leaseSeconds: number;
  #polls = 0;

  constructor(options: BlobPollerOptions) {
    this.#options = options;
    this.#leaseSeconds = options.receiptLeaseSeconds ?? DEFAULT_RECEIPT_LEASE_SECONDS;
    if (!(this.#leaseSeconds >= 15 && this.#leaseSeconds <= 60))
      throw new Error(`Receipt lease of ${this.#leaseSeconds} s: a blob lease lasts 15 to 60 seconds.`);
    const hostBlobs = BlobServiceClient.fromConnectionString(options.hostStorage);
    this.#receipts = hostBlobs.getContainerClient(hostsContainer);
    this.#queues = QueueServiceClient.fromConnectionString(options.hostStorage);
    this.#watches = [];
    const clients = new Map<string, BlobServiceClient>();
    for (const fn of options.functions) {
      for (const [triggerName, binding] of Object.entries(fn.metadata.bindings)) {
        if (binding.type?.toLowerCase() !== 'blobtrigger') continue;
        const connection = resolveStorageConnection(binding.connection);
        let client = clients.get(connection);
        if (!client) {
          client = BlobServiceClient.fromConnectionString(connection);
          clients.set(connection, client);
        }
        const compiled = compileBlobPath(resolveAppSettingExpressions(textOption(binding.path)));
        this.#watches.push({
          fn,
          functionId: `Host.Functions.${fn.metadata.name}`,
          triggerName,
          container: client.getContainerClient(compiled.container),
          containerName: compiled.container,
          prefix: compiled.prefix,
          pattern: compiled.pattern,
          variables: compiled.variables,
          dataType: typeof binding.dataType === 'string' ? binding.dataType : undefined,
          connectionName: textOption(binding.connection),
          deferred: binding.properties?.supportsDeferredBinding === 'true',
        });
      }
    }
  }

  /** Complete polls so far (the local admin status shows it, so a test can wait for polls instead of time). */
  get polls(): number {
    return this.#polls;
  }

  get watching(): boolean {
    return this.#watches.length > 0;
  }

  async start(): Promise<void> {
    if (this.#watches.length === 0) return;
    await this.#receipts.createIfNotExists();
    this.#schedule(0);
  }

  #schedule(delay: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#cycle = this.#poll()
        .catch((error: unknown) =>
          this.#options.log(`[host] Blob polling failed: ${error instanceof Error ? error.message : String(error)}`),
        )
        .finally(() => {
          this.#polls += 1;
          this.#cycle = undefined;
          const waiters = this.#cycleWaiters.splice(0);
          waiters.forEach((w) => w());
          this.#schedule(this.#options.pollIntervalMs);
        });
    }, delay);
  }

  /** Resolves after a complete poll that started after this call. */
  #nextCycle(): Promise<void> {
    return new Promise((resolve) => {
      if (this.#stopped || this.#watches.length === 0) return resolve();
      // A cycle already running may have listed before the caller's change: wait for the one after it.
      const waitOne = (): Promise<void> => new Promise<void>((r) => this.#cycleWaiters.push(r));
      if (this.#cycle) void waitOne().then(waitOne).then(resolve);
      else void waitOne().then(resolve);
    });
  }

  /** True while a blob is running, or the last poll found blobs not yet done (new, or waiting for another try). */
  get busy(): boolean {
    return this.#running.size > 0 || this.#lastCyclePending > 0;
  }

  /** Resolves once a poll finds every matching blob done and nothing is running. */
  async settle(): Promise<void> {
    for (;;) {
      if (this.#stopped || this.#watches.length === 0) return;
      await this.#nextCycle();
      await Promise.allSettled([...this.#running.values()]);
      if (!this.busy) return;
    }
  }

  async #poll(): Promise<void> {
    const maxConcurrency = this.#options.maxDegreeOfParallelism;
    let pending = 0;
    for (const watch of this.#watches) {
      if (this.#stopped) return;
      let iterator;
      try {
        iterator = watch.container.listBlobsFlat(watch.prefix ? { prefix: watch.prefix } : {});
        for await (const item of iterator) {
          const match = watch.pattern.exec(item.name);
          if (!match) continue;
          const listed = item.properties.etag;
          if (!listed) continue;
          // Listings give the ETag bare, headers quoted; receipts and poison messages use the quoted form, as the host does.
          const etag = listed.startsWith('"') ? listed : `"${listed}"`;
          const key = `${watch.functionId}/${etag}/${watch.containerName}/${item.name}`;
          if (this.#done.has(key)) continue;
          pending += 1;
          if (this.#running.has(key) || this.#running.size >= maxConcurrency || this.#stopped) continue;
          const candidate: Candidate = { watch, blobName: item.name, etag, key };
          // Claimed before it takes a slot: a blob another host works on must not crowd out one nobody holds.
          const claimed = await this.#claimCandidate(candidate).catch((error: unknown) => {
            this.#options.log(`[host] Blob ${watch.containerName}/${item.name}: ${error instanceof Error ? error.message : String(error)}`);
            return undefined;
          });
          if (!claimed) continue;
          const run = this.#process(candidate, claimed)
            .catch((error: unknown) =>
              this.#options.log(
                `[host] Blob ${watch.containerName}/${item.name}: ${error instanceof Error ? error.message : String(error)}`,
              ),
            )
            .finally(() => this.#running.delete(key));
          this.#running.set(key, run);
        }
        this.#missingContainers.delete(watch.containerName);
      } catch (error) {
        if (isNotFound(error)) {
          if (!this.#missingContainers.has(watch.containerName)) {
            this.#missingContainers.add(watch.containerName);
            this.#options.log(
              `[host] Container "${watch.containerName}" for function ${watch.fn.metadata.name} does not exist yet; waiting for it.`,
            );
          }
          continue;
        }
        throw error;
      }
    }
    this.#lastCyclePending = pending;
  }

  /** What the host's blob extension sends for a deferred binding. */
  #blobReference(c: Candidate): RpcModelBindingData {
    const content = JSON.stringify({ Connection: c.watch.connectionName, ContainerName: c.watch.containerName, BlobName: c.blobName });
    return { version: '1.0', source: 'AzureStorageBlobs', contentType: 'application/json', content: Buffer.from(content, 'utf8') };
  }

  #receiptName(c: Candidate): string {
    return `blobreceipts/${this.#options.hostId}/${c.watch.functionId}/${c.etag}/${c.watch.containerName}/${c.blobName}`;
  }

  /** Creates the receipt if no host has yet (If-None-Match: *, so concurrent hosts never overwrite each other's). */
  async #ensureReceipt(receipt: BlockBlobClient): Promise<void> {
    try {
      await receipt.upload('', 0, { metadata: { completed: 'false', tries: '0' }, conditions: { ifNoneMatch: '*' } });
    } catch (error) {
      if (error instanceof RestError && (error.statusCode === 409 || error.statusCode === 412)) return;
      throw error;
    }
  }

  /** The receipt's lease, or undefined when another host holds it (that host is working on the blob). */
  async #claim(receipt: BlockBlobClient): Promise<BlobLeaseClient | undefined> {
    const lease = receipt.getBlobLeaseClient();
    try {
      await lease.acquireLease(this.#leaseSeconds);
      return lease;
    } catch (error) {
      if (error instanceof RestError && error.statusCode === 409) return undefined;
      throw error;
    }
  }

  /** The receipt's lease when this host may work on the blob; undefined when it is done or another host holds it. */
  async #claimCandidate(c: Candidate): Promise<{ receipt: BlockBlobClient; lease: BlobLeaseClient } | undefined> {
    const receipt = this.#receipts.getBlockBlobClient(this.#receiptName(c));
    // Cheap check first: most listed blobs are done, and taking a lease to learn that would cost two more calls.
    const seen = await receiptState(receipt);
    if (seen?.completed) {
      this.#done.add(c.key);
      return undefined;
    }
    if (!seen) await this.#ensureReceipt(receipt);
    const lease = await this.#claim(receipt);
    return lease && { receipt, lease };
  }

  async #process(c: Candidate, { receipt, lease }: { receipt: BlockBlobClient; lease: BlobLeaseClient }): Promise<void> {
    const leaseConditions = { conditions: { leaseId: lease.leaseId } };
    // Renewed while this host works on the blob; if this host dies the lease lapses and another host takes over.
    const renewal = setInterval(
      () => {
        lease
          .renewLease()
          .catch((error: unknown) =>
            this.#options.log(
              `[host] Blob ${c.watch.containerName}/${c.blobName}: lease renewal failed: ${error instanceof Error ? error.message : String(error)}`,
            ),
          );
      },
      (this.#leaseSeconds * 1000) / 3,
    );
    try {
      // Read again under the lease: another host may have finished it between the check and the claim.
      const state = (await receiptState(receipt)) ?? { completed: false, tries: 0 };
      if (state.completed) {
        this.#done.add(c.key);
        return;
      }
      if (state.tries >= this.#options.poisonBlobThreshold) {
        await this.#poison(c, receipt, state.tries, leaseConditions);
        return;
      }
      await this.#attempt(c, receipt, state.tries, leaseConditions);
    } finally {
      clearInterval(renewal);
      await lease.releaseLease().catch(() => undefined);
    }
  }

  async #attempt(
    c: Candidate,
    receipt: BlockBlobClient,
    tries: number,
    leaseConditions: { conditions: { leaseId: string } },
  ): Promise<void> {
    const blob = c.watch.container.getBlobClient(c.blobName);
    let content: Buffer | undefined;
    let properties: BlobGetPropertiesResponse;
    try {
      properties = await blob.getProperties({ conditions: { ifMatch: c.etag } });
      if (!c.watch.deferred) content = await blob.downloadToBuffer(undefined, undefined, { conditions: { ifMatch: c.etag } });
    } catch (error) {
      // Changed or deleted since listing: the new ETag (if any) is a new candidate on the next poll.
      if (error instanceof RestError && (error.statusCode === 412 || error.statusCode === 404)) return;
      throw error;
    }

    const match = c.watch.pattern.exec(c.blobName);
    const triggerMetadata: Record<string, RpcTypedData> = {
      BlobTrigger: { string: `${c.watch.containerName}/${c.blobName}` },
      Uri: { string: blob.url },
      Properties: { json: propertiesJson(properties) },
      Metadata: { json: JSON.stringify(properties.metadata ?? {}) },
      sys: { json: JSON.stringify({ MethodName: c.watch.fn.metadata.name, UtcNow: new Date().toISOString(), RandGuid: randomUUID() }) },
    };
    c.watch.variables.forEach((variable, i) => {
      const value = match?.[i + 1];
      if (variable && value !== undefined) triggerMetadata[variable] = { string: value };
    });
    const data: RpcTypedData = !content
      ? { modelBindingData: this.#blobReference(c) }
      : c.watch.dataType === 'string'
        ? { string: content.toString('utf8') }
        : { bytes: content };

    // Counted before the function runs, as Azure counts a dequeue: an attempt cut short by a crash still counts.
    const attempt = tries + 1;
    await receipt.setMetadata({ completed: 'false', tries: String(attempt) }, leaseConditions);
    try {
      await this.#options.invoke({ fn: c.watch.fn, triggerName: c.watch.triggerName, data, triggerMetadata, retryCount: tries });
    } catch {
      if (attempt >= this.#options.poisonBlobThreshold) await this.#poison(c, receipt, attempt, leaseConditions);
      return;
    }
    await receipt.setMetadata({ completed: 'true', tries: String(attempt) }, leaseConditions);
    this.#done.add(c.key);
  }

  async #poison(
    c: Candidate,
    receipt: BlockBlobClient,
    tries: number,
    leaseConditions: { conditions: { leaseId: string } },
  ): Promise<void> {
    const queue = this.#queues.getQueueClient(blobPoisonQueue);
    await queue.createIfNotExists();
    const message = JSON.stringify({
      Type: 'BlobTrigger',
      FunctionId: c.watch.functionId,
      BlobType: 'BlockBlob',
      ContainerName: c.watch.containerName,
      BlobName: c.blobName,
      ETag: c.etag,
    });
    // Queue messages are base64 text, the Functions storage extension's default encoding.
    await queue.sendMessage(Buffer.from(message, 'utf8').toString('base64'));
    await receipt.setMetadata({ completed: 'true', poisoned: 'true', tries: String(tries) }, leaseConditions);
    this.#done.add(c.key);
    this.#options.log(
      `[host] Blob ${c.watch.containerName}/${c.blobName} failed ${tries} times in ${c.watch.fn.metadata.name}; moved to queue ${blobPoisonQueue}.`,
    );
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#cycleWaiters.splice(0).forEach((w) => w());
    await this.#cycle?.catch(() => undefined);
    await Promise.allSettled([...this.#running.values()]);
  }
}
