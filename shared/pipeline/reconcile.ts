/**
 * What triggers miss, the reconciler catches: seed and assignment files still
 * waiting after a while (a lost event, retries exhausted) are processed again,
 * or quarantined after repeated failures; builds interrupted half-way are
 * settled from what reached storage (never a build whose heartbeat is recent:
 * it is slow, not dead).
 */
import { appendHistory, exportedTo, releasedFromExport } from './inventory.js';
import { ingestCheckpointName, seedFileBlobNames } from './blob-names.js';
import { checkpointUpdatedAt, type IngestCheckpointRecord } from './ingest-checkpoint.js';
import { PreconditionFailedError } from './errors.js';
import { buildIsAlive } from './liveness.js';
import { logEvent, PipelineEvent } from './events.js';
import type { AssignmentService } from './assignments.js';
import type { IngestService } from './ingest.js';
import type { BlobInfo, BlobStore, Clock, EntityTable, HardwareOathDirectory, Logger, RecordStore, TokenEntity } from './ports.js';

export interface ReconcileDeps {
  blobs: BlobStore;
  tokens: EntityTable<TokenEntity>;
  ingest: IngestService;
  assignments: AssignmentService;
  clock: Clock;
  log: Logger;
  containers: { seeds: string; assignments: string; imports: string; reports: string; quarantine: string };
  /** Age of a waiting file, an `exporting` claim and a build's last heartbeat before the reconciler acts on it. */
  minAgeMinutes: number;
  /** Runs of a stuck file before it is quarantined. */
  maxAttempts?: number;
  /** Graph mode: `assigned` tokens mirror the status Entra reports (users who activate in My Security Info). */
  directory?: HardwareOathDirectory;
  /** Ingest checkpoints: a seed file whose checkpoint moved within the minimum age is being ingested, not stuck. */
  checkpoints?: RecordStore<IngestCheckpointRecord>;
}

export interface ReconcileResult {
  seedsRetried: number;
  seedsQuarantined: number;
  /** Seed files whose ingest failed in this run (each then counted toward its quarantine, or quarantined). */
  seedsFailed: number;
  /** Old seed files left alone: their ingest saved progress within the minimum age (a large file, handed on). */
  seedsInProgress: number;
  assignmentsRetried: number;
  assignmentsFailed: number;
  exportsSettled: number;
  exportsReleased: number;
  /** `exporting` rows left alone because their build's heartbeat is recent. */
  exportsOfLiveBuilds: number;
  /** Graph mode: `assigned` tokens found activated in Entra (counted only in Graph mode). */
  graphActivationsMirrored?: number;
}

export const METADATA_RECONCILE_ATTEMPTS = 'reconcileattempts';

export class Reconciler {
  constructor(private readonly deps: ReconcileDeps) {}

  async run(): Promise<ReconcileResult> {
    const result: ReconcileResult = {
      seedsRetried: 0,
      seedsQuarantined: 0,
      seedsFailed: 0,
      seedsInProgress: 0,
      assignmentsRetried: 0,
      assignmentsFailed: 0,
      exportsSettled: 0,
      exportsReleased: 0,
      exportsOfLiveBuilds: 0,
    };
    const cutoff = this.deps.clock.now().getTime() - this.deps.minAgeMinutes * 60_000;
    const old = (d?: Date) => (d ? d.getTime() <= cutoff : true);

    // Collect first: processing deletes and rewrites blobs, which a live listing would trip over.
    const waiting: BlobInfo[] = [];
    for await (const blob of this.deps.blobs.list(this.deps.containers.seeds)) if (old(blob.lastModified)) waiting.push(blob);
    // Each file on its own: one that keeps failing (even to be quarantined) is logged and counted, never stops the run.
    for (const blob of waiting) {
      if (await this.ingestProgressing(blob, cutoff)) result.seedsInProgress++;
      else await this.retrySeed(blob, result);
    }

    const lists: BlobInfo[] = [];
    for await (const blob of this.deps.blobs.list(this.deps.containers.assignments)) if (old(blob.lastModified)) lists.push(blob);
    for (const blob of lists) {
      try {
        await this.deps.assignments.ingest(blob.name);
        result.assignmentsRetried++;
      } catch (err) {
        result.assignmentsFailed++;
        this.deps.log.warn('Reconciler could not process assignment list', { blob: blob.name, error: (err as Error).name });
      }
    }

    // Builds killed half-way: settle each `exporting` row from what reached storage. A build is declared dead
    // (its heartbeat deleted, which stops it writing) before any of its rows is touched; a live one is left alone.
    const alive = new Map<string, Promise<boolean>>();
    const isAlive = (buildId: string) => {
      if (!alive.has(buildId))
        alive.set(buildId, buildIsAlive({ blobs: this.deps.blobs, container: this.deps.containers.reports }, buildId, cutoff));
      return alive.get(buildId)!;
    };
    for await (const row of this.deps.tokens.list({ state: 'exporting' })) {
      const since = row.value.exportingSince ? Date.parse(row.value.exportingSince) : 0;
      if (since > cutoff) continue;
      if (row.value.buildId && (await isAlive(row.value.buildId))) {
        result.exportsOfLiveBuilds++;
        continue;
      }
      const file = row.value.exportFile;
      const present = file ? await this.deps.blobs.properties(this.deps.containers.imports, file) : undefined;
      const now = this.deps.clock.now().toISOString();
      const value =
        present && file
          ? exportedTo(row.value, file, now, `${file} (settled by reconciler)`)
          : releasedFromExport(row.value, now, 'interrupted build (reconciler)');
      try {
        await this.deps.tokens.replace(row.key, value, row.etag);
        if (present) result.exportsSettled++;
        else result.exportsReleased++;
      } catch (err) {
        if (!(err instanceof PreconditionFailedError)) throw err;
      }
    }
    // An import CSV holds seeds in clear until the Global Administrator confirms its upload: say how long it has waited.
    for await (const blob of this.deps.blobs.list(this.deps.containers.imports)) {
      if (!blob.lastModified || !old(blob.lastModified)) continue;
      const waitingMinutes = Math.floor((this.deps.clock.now().getTime() - blob.lastModified.getTime()) / 60_000);
      logEvent(this.deps.log, 'warn', PipelineEvent.ImportWaiting, { file: blob.name, waitingMinutes });
    }
    if (this.deps.directory) await this.mirrorGraphStatus(this.deps.directory, result);
    if (Object.values(result).some((n) => n > 0)) this.deps.log.info('Reconciler run', { ...result });
    return result;
  }

  /** Tokens assigned in Entra but activated there since (by their user, in My Security Info) become `activated`. */
  private async mirrorGraphStatus(directory: HardwareOathDirectory, result: ReconcileResult): Promise<void> {
    result.graphActivationsMirrored = 0;
    for await (const row of this.deps.tokens.list({ state: 'assigned' })) {
      if (!row.value.deviceId) continue;
      try {
        const device = await directory.getDevice(row.value.deviceId);
        if (device?.status !== 'activated') continue;
        const now = this.deps.clock.now().toISOString();
        await this.deps.tokens.replace(
          row.key,
          {
            ...row.value,
            state: 'activated',
            updatedAt: now,
            history: appendHistory(row.value.history, now, 'activated', 'in Entra (mirrored by reconciler)'),
          },
          row.etag,
        );
        result.graphActivationsMirrored++;
      } catch (err) {
        // A row changed meanwhile, or Graph unavailable: the next run looks again.
        this.deps.log.warn('Reconciler could not mirror a Graph status', { serial: row.value.serial, error: (err as Error).name });
      }
    }
  }

  /** A checkpoint saved since the cutoff: an ingest (or its continuation) is working through this file. */
  private async ingestProgressing(blob: BlobInfo, cutoff: number): Promise<boolean> {
    if (!this.deps.checkpoints) return false;
    const savedAt = await checkpointUpdatedAt(this.deps.checkpoints, ingestCheckpointName(blob.name, blob.etag.replace(/"/g, '')));
    return savedAt !== undefined && savedAt > cutoff;
  }

  private async retrySeed(blob: BlobInfo, result: ReconcileResult): Promise<void> {
    // The count lives on the blob itself, so it survives instance restarts and scale-to-zero.
    const tries = (Number(blob.metadata[METADATA_RECONCILE_ATTEMPTS]) || 0) + 1;
    try {
      await this.deps.ingest.ingest(blob.name);
      result.seedsRetried++;
      return;
    } catch (err) {
      result.seedsFailed++;
      this.deps.log.warn('Reconciler could not ingest seed file', { blob: blob.name, attempt: tries, error: (err as Error).name });
    }
    if (tries < (this.deps.maxAttempts ?? 3)) {
      await this.deps.blobs
        .setMetadata(this.deps.containers.seeds, blob.name, { ...blob.metadata, [METADATA_RECONCILE_ATTEMPTS]: String(tries) })
        .catch(() => undefined);
      return;
    }
    try {
      if (await this.quarantineStuck(blob.name)) result.seedsQuarantined++;
    } catch (err) {
      // Left in `seeds`: the next run tries again.
      this.deps.log.error('Reconciler could not quarantine seed file', { blob: blob.name, attempt: tries, error: (err as Error).name });
    }
  }

  /** A seed file that keeps failing leaves `seeds` for quarantine, so no plaintext seed lingers. false: already gone. */
  private async quarantineStuck(name: string): Promise<boolean> {
    const current = await this.deps.blobs.properties(this.deps.containers.seeds, name);
    if (!current) return false;
    const quarantinedAs = seedFileBlobNames(name, current.etag).quarantinedFile;
    await this.deps.blobs.copy(this.deps.containers.seeds, name, this.deps.containers.quarantine, quarantinedAs);
    await this.deps.blobs.delete(this.deps.containers.seeds, name, { ifMatch: current.etag }).catch(() => undefined);
    this.deps.log.error('Seed file quarantined after repeated failures', { blob: name });
    logEvent(this.deps.log, 'error', PipelineEvent.SeedFileQuarantined, { blob: name, quarantinedAs, outcome: 'stuck' });
    return true;
  }
}
