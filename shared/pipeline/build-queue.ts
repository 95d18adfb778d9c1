/**
 * Coalesced import builds: a seed file and its assignment list dropped a moment apart give one import CSV.
 *
 * A blob trigger no longer builds; it requests a build (a marker blob with a due time, pushed back by every
 * request) and marks its ingest in flight while it runs. A timer runs the due build once the settle period has
 * passed since the last request and no ingest is in flight (an in-flight mark not renewed for a settle period is
 * stale: its invocation died). One build runs at a time across all instances: the runner holds a lease on a lock
 * blob. Everything lives in the reports container under `build-queue/`.
 */
import { createHash } from 'node:crypto';
import { BlobExistsError, PreconditionFailedError } from './errors.js';
import type { BlobStore, Clock, Logger } from './ports.js';

export const BUILD_QUEUE_PREFIX = 'build-queue/';
export const BUILD_REQUEST_BLOB = `${BUILD_QUEUE_PREFIX}request.json`;
const LOCK_BLOB = `${BUILD_QUEUE_PREFIX}lock`;
const IN_FLIGHT_PREFIX = `${BUILD_QUEUE_PREFIX}in-flight/`;
const LOCK_LEASE_SECONDS = 60;
/**
 * An ingest handed to a new invocation (./ingest.ts) keeps its mark this long, so no build starts in the gap
 * before the continuation picks it up (a queue trigger polls at most a minute apart); the continuation renews it.
 */
export const HAND_OFF_HOLD_MS = 5 * 60_000;

export interface BuildQueueDeps {
  blobs: BlobStore;
  clock: Clock;
  log: Logger;
  /** The reports container. */
  container: string;
  settleSeconds: number;
}

export type DueBuildOutcome = 'none' | 'waiting' | 'ingest-in-flight' | 'busy' | 'built';

interface BuildRequest {
  requestedAt: string;
  dueAt: string;
}

interface InFlightMark {
  kind: string;
  since: string;
  renewedAt: string;
  /** Live until this time whatever renewedAt says: the ingest was handed to a new invocation. */
  holdUntil?: string;
}

export class BuildQueue {
  constructor(private readonly deps: BuildQueueDeps) {}

  private get settleMs(): number {
    return this.deps.settleSeconds * 1000;
  }

  /** Asks for a build once things settle: due a settle period from now (a later request pushes it back). */
  async request(reason: string): Promise<void> {
    const { blobs, clock, container, log } = this.deps;
    const now = clock.now();
    const request: BuildRequest = { requestedAt: now.toISOString(), dueAt: new Date(now.getTime() + this.settleMs).toISOString() };
    await blobs.write(container, BUILD_REQUEST_BLOB, JSON.stringify(request), { contentType: 'application/json' });
    log.info('Import build requested', { reason, dueAt: request.dueAt });
  }

  /**
   * Runs `work` (an ingest of `kind` for blob `name`) marked in flight, so no build starts half-way through it;
   * the mark is renewed while it runs and removed after. Requests a build when `wantsBuild` says so. When
   * `handedOff` says the work continues in another invocation, the mark stays, held for HAND_OFF_HOLD_MS.
   */
  async inFlight<T>(
    kind: 'seeds' | 'assignments',
    name: string,
    work: () => Promise<T>,
    wantsBuild: (result: T) => boolean,
    handedOff: (result: T) => boolean = () => false,
  ): Promise<T> {
    const { blobs, clock, container } = this.deps;
    const mark = `${IN_FLIGHT_PREFIX}${kind}-${createHash('sha256').update(name).digest('hex').slice(0, 32)}.json`;
    const since = clock.now().toISOString();
    const writeMark = () =>
      blobs.write(container, mark, JSON.stringify({ kind, since, renewedAt: clock.now().toISOString() } satisfies InFlightMark), {
        contentType: 'application/json',
      });
    await writeMark();
    const renewer = setInterval(() => void writeMark().catch(() => undefined), Math.max(1000, this.settleMs / 3));
    let result: T | undefined;
    try {
      result = await work();
    } finally {
      clearInterval(renewer);
      if (result !== undefined && handedOff(result)) {
        const now = clock.now();
        const held: InFlightMark = {
          kind,
          since,
          renewedAt: now.toISOString(),
          holdUntil: new Date(now.getTime() + HAND_OFF_HOLD_MS).toISOString(),
        };
        await blobs.write(container, mark, JSON.stringify(held), { contentType: 'application/json' }).catch(() => undefined);
      } else {
        await blobs.delete(container, mark).catch(() => undefined);
      }
    }
    if (wantsBuild(result)) await this.request(`${kind} ingested`);
    return result;
  }

  /** Ingests in flight now (marks renewed within the settle period). */
  async ingestsInFlight(): Promise<number> {
    const { blobs, clock, container } = this.deps;
    let live = 0;
    for await (const info of blobs.list(container, IN_FLIGHT_PREFIX)) {
      const blob = await blobs.read(container, info.name);
      if (!blob) continue;
      const mark = parseJson<InFlightMark>(blob.bytes);
      const renewedAt = Date.parse(mark?.renewedAt ?? '');
      const holdUntil = Date.parse(mark?.holdUntil ?? '');
      const now = clock.now().getTime();
      if ((Number.isFinite(renewedAt) && now - renewedAt < this.settleMs) || (Number.isFinite(holdUntil) && now < holdUntil)) live++;
    }
    return live;
  }

  /** Runs the requested build if it is due, no ingest is in flight and no other instance is building. */
  async runDue(build: () => Promise<unknown>): Promise<DueBuildOutcome> {
    const { blobs, clock, container, log } = this.deps;
    const stored = await blobs.read(container, BUILD_REQUEST_BLOB);
    if (!stored) return 'none';
    const request = parseJson<BuildRequest>(stored.bytes);
    const dueAt = Date.parse(request?.dueAt ?? '');
    if (Number.isFinite(dueAt) && clock.now().getTime() < dueAt) return 'waiting';
    if ((await this.ingestsInFlight()) > 0) return 'ingest-in-flight';

    const lease = await this.acquireLock();
    if (!lease) return 'busy';
    const renewer = setInterval(() => void lease.renew().catch(() => undefined), (LOCK_LEASE_SECONDS * 1000) / 3);
    try {
      // Taken under the ETag read: a request made since (a new drop) survives, and is built when it is due.
      try {
        await blobs.delete(container, BUILD_REQUEST_BLOB, { ifMatch: stored.etag });
      } catch (err) {
        if (err instanceof PreconditionFailedError) return 'waiting';
        throw err;
      }
      log.info('Running the requested import build', { requestedAt: request?.requestedAt ?? null });
      try {
        await build();
      } catch (err) {
        // Ask again so the next pass retries; the build itself is safe to repeat.
        await this.request('retry after a failed build').catch(() => undefined);
        throw err;
      }
      return 'built';
    } finally {
      clearInterval(renewer);
      await lease.release().catch(() => undefined);
    }
  }

  private async acquireLock() {
    const { blobs, container } = this.deps;
    try {
      await blobs.write(container, LOCK_BLOB, '', { ifNoneMatch: '*' });
    } catch (err) {
      if (!(err instanceof BlobExistsError) && !(err instanceof PreconditionFailedError)) throw err;
    }
    return blobs.acquireLease(container, LOCK_BLOB, LOCK_LEASE_SECONDS);
  }
}

function parseJson<T>(bytes: Uint8Array): T | undefined {
  try {
    return JSON.parse(Buffer.from(bytes).toString('utf8')) as T;
  } catch {
    return undefined;
  }
}
