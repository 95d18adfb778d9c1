/**
 * How a running import build shows it is alive, so the reconciler never takes back the claims of a build that is
 * only slow (a long queue for the vault's read budget, a 429 back-off), and a build the reconciler gave up on
 * never writes a CSV.
 *
 * The build keeps a heartbeat blob, `reports/build-<id>.heartbeat`, whose `heartbeatat` metadata it renews every
 * interval from the Clock, each renewal conditional on the ETag of the one before. The reconciler treats a build
 * as dead only when that time is older than its minimum age, and first deletes the blob under the ETag it read: if
 * the build renewed in between, the delete fails and the build is left alone; if the delete wins, the build's
 * next renewal fails and it stops. The build renews once more, and waits for the answer, right before each CSV
 * write, so a CSV is written only by a build the reconciler has not given up on, and the reconciler cannot give up
 * on it for a whole minimum age after that.
 */
import { buildHeartbeatName } from './blob-names.js';
import { PreconditionFailedError } from './errors.js';
import { BLOB_CALL_DEADLINE_MS, type BlobStore, type Clock, type Logger } from './ports.js';

/** How often a running build renews its heartbeat. */
export const HEARTBEAT_INTERVAL_MS = 30_000;

/**
 * The least RECONCILE_MIN_AGE_MINUTES that is safe, whatever the vault budgets make a build's length: a renewal
 * starts at most one interval after the previous one ended and may take a whole blob-call deadline, as may the one
 * before it, so a live build's heartbeat is never older than interval + 2 deadlines (4.5 minutes); and a CSV write
 * started right after a renewal lands within one deadline. Rounded up to whole minutes.
 */
export const RECONCILE_MIN_AGE_FLOOR_MINUTES = Math.ceil((HEARTBEAT_INTERVAL_MS + 2 * BLOB_CALL_DEADLINE_MS) / 60_000);

export const HEARTBEAT_METADATA = 'heartbeatat';

export interface HeartbeatDeps {
  blobs: BlobStore;
  container: string;
  clock: Clock;
  log: Logger;
}

/** The build's side: created before the first claim, renewed on a timer, removed when the build ends. */
export class BuildHeartbeat {
  private etag = '';
  private timer: ReturnType<typeof setInterval> | undefined;
  private pending: Promise<void> | undefined;
  private lostIt = false;

  private constructor(
    private readonly deps: HeartbeatDeps,
    private readonly name: string,
  ) {}

  static async start(deps: HeartbeatDeps, buildId: string, intervalMs = HEARTBEAT_INTERVAL_MS): Promise<BuildHeartbeat> {
    const heartbeat = new BuildHeartbeat(deps, buildHeartbeatName(buildId));
    const startedAt = deps.clock.now().toISOString();
    const body = JSON.stringify({
      build: buildId,
      startedAt,
      note: 'Present while the build runs; the reconciler leaves its claims alone while the heartbeat is recent.',
    });
    heartbeat.etag = (
      await deps.blobs.write(deps.container, heartbeat.name, body, {
        contentType: 'application/json',
        ifNoneMatch: '*',
        metadata: { [HEARTBEAT_METADATA]: startedAt },
      })
    ).etag;
    heartbeat.timer = setInterval(() => heartbeat.beat(), intervalMs);
    heartbeat.timer.unref?.();
    return heartbeat;
  }

  /** True once the reconciler has given up on this build: it must write no CSV. */
  get lost(): boolean {
    return this.lostIt;
  }

  private beat(): void {
    if (this.pending || this.lostIt) return;
    this.pending = this.renew()
      .catch((err: unknown) =>
        this.deps.log.warn('Build heartbeat not renewed; retrying at the next beat', { blob: this.name, error: (err as Error).name }),
      )
      .finally(() => (this.pending = undefined));
  }

  private async renew(): Promise<void> {
    const { blobs, container, clock } = this.deps;
    try {
      this.etag = (
        await blobs.setMetadata(container, this.name, { [HEARTBEAT_METADATA]: clock.now().toISOString() }, { ifMatch: this.etag })
      ).etag;
    } catch (err) {
      // Gone or changed: the reconciler took it. Otherwise (a busy service) it is still ours.
      const current = err instanceof PreconditionFailedError ? undefined : await blobs.properties(container, this.name);
      if (current?.etag === this.etag) throw err;
      this.lostIt = true;
    }
  }

  /** Renews now and waits for the answer: true while the build may still write. Throws when storage fails. */
  async confirm(): Promise<boolean> {
    await this.pending;
    if (!this.lostIt) await this.renew();
    return !this.lostIt;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.pending;
    if (this.lostIt) return;
    await this.deps.blobs.delete(this.deps.container, this.name, { ifMatch: this.etag }).catch((err: unknown) => {
      // It ages out: the reconciler deletes a stale heartbeat before it settles the build's rows.
      this.deps.log.warn('Build heartbeat not removed', { blob: this.name, error: (err as Error).name });
    });
  }
}

/**
 * The reconciler's side: whether build `buildId` is alive at `cutoff` (ms). A build whose heartbeat is older is
 * declared dead by deleting the heartbeat under its ETag, which fails if the build renewed it meanwhile.
 */
export async function buildIsAlive(deps: Pick<HeartbeatDeps, 'blobs' | 'container'>, buildId: string, cutoff: number): Promise<boolean> {
  const name = buildHeartbeatName(buildId);
  const heartbeat = await deps.blobs.properties(deps.container, name);
  if (!heartbeat) return false;
  const at = Date.parse(heartbeat.metadata[HEARTBEAT_METADATA] ?? '');
  if (at > cutoff) return true;
  try {
    await deps.blobs.delete(deps.container, name, { ifMatch: heartbeat.etag });
    return false;
  } catch (err) {
    if (err instanceof PreconditionFailedError) return true;
    throw err;
  }
}
