/**
 * What triggers miss, the reconciler catches: seed and assignment files still
 * waiting after a while (a lost event, retries exhausted) are processed again,
 * or quarantined after repeated failures; builds interrupted half-way are
 * settled from what reached storage; imports confirmed uploaded are removed.
 */
import { appendHistory } from './inventory.js';
import { seedFileBlobNames } from './blob-names.js';
import { PreconditionFailedError } from './errors.js';
import type { AssignmentService } from './assignments.js';
import type { IngestService } from './ingest.js';
import type { BlobInfo, BlobStore, Clock, EntityTable, Logger, TokenEntity } from './ports.js';

export interface ReconcileDeps {
  blobs: BlobStore;
  tokens: EntityTable<TokenEntity>;
  ingest: IngestService;
  assignments: AssignmentService;
  clock: Clock;
  log: Logger;
  containers: { seeds: string; assignments: string; imports: string; quarantine: string };
  minAgeMinutes: number;
  /** Runs of a stuck file before it is quarantined. */
  maxAttempts?: number;
}

export interface ReconcileResult {
  seedsRetried: number;
  seedsQuarantined: number;
  /** Seed files whose ingest failed in this run (each then counted toward its quarantine, or quarantined). */
  seedsFailed: number;
  assignmentsRetried: number;
  assignmentsFailed: number;
  exportsSettled: number;
  exportsReleased: number;
}

export const METADATA_RECONCILE_ATTEMPTS = 'reconcileattempts';

export class Reconciler {
  constructor(private readonly deps: ReconcileDeps) {}

  async run(): Promise<ReconcileResult> {
    const result: ReconcileResult = { seedsRetried: 0, seedsQuarantined: 0, seedsFailed: 0, assignmentsRetried: 0, assignmentsFailed: 0, exportsSettled: 0, exportsReleased: 0 };
    const cutoff = this.deps.clock.now().getTime() - this.deps.minAgeMinutes * 60_000;
    const old = (d?: Date) => (d ? d.getTime() <= cutoff : true);

    // Collect first: processing deletes and rewrites blobs, which a live listing would trip over.
    const waiting: BlobInfo[] = [];
    for await (const blob of this.deps.blobs.list(this.deps.containers.seeds)) if (old(blob.lastModified)) waiting.push(blob);
    // Each file on its own: one that keeps failing (even to be quarantined) is logged and counted, never stops the run.
    for (const blob of waiting) await this.retrySeed(blob, result);

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

    // Builds killed half-way: settle each `exporting` row from what reached storage.
    for await (const row of this.deps.tokens.list({ state: 'exporting' })) {
      const since = row.value.exportingSince ? new Date(row.value.exportingSince).getTime() : 0;
      if (since > cutoff) continue;
      const file = row.value.exportFile;
      const present = file ? await this.deps.blobs.properties(this.deps.containers.imports, file) : undefined;
      const now = this.deps.clock.now().toISOString();
      const value: TokenEntity = present
        ? { ...row.value, state: 'exported', exportingSince: null, updatedAt: now, history: appendHistory(row.value.history, now, 'exported', `${file} (settled by reconciler)`) }
        : { ...row.value, state: 'stored', buildId: null, exportFile: null, exportingSince: null, upn: null, updatedAt: now, history: appendHistory(row.value.history, now, 'export-released', 'interrupted build (reconciler)') };
      try {
        await this.deps.tokens.replace(row.key, value, row.etag);
        if (present) result.exportsSettled++;
        else result.exportsReleased++;
      } catch (err) {
        if (!(err instanceof PreconditionFailedError)) throw err;
      }
    }
    if (Object.values(result).some((n) => n > 0)) this.deps.log.info('Reconciler run', { ...result });
    return result;
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
      await this.deps.blobs.setMetadata(this.deps.containers.seeds, blob.name, { ...blob.metadata, [METADATA_RECONCILE_ATTEMPTS]: String(tries) }).catch(() => undefined);
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
    await this.deps.blobs.copy(this.deps.containers.seeds, name, this.deps.containers.quarantine, seedFileBlobNames(name, current.etag).quarantinedFile);
    await this.deps.blobs.delete(this.deps.containers.seeds, name, { ifMatch: current.etag }).catch(() => undefined);
    this.deps.log.error('Seed file quarantined after repeated failures', { blob: name });
    return true;
  }
}

export interface ConfirmUploadDeps {
  blobs: BlobStore;
  tokens: EntityTable<TokenEntity>;
  clock: Clock;
  log: Logger;
  importsContainer: string;
}

/**
 * The Global Administrator uploaded an import file: delete it at once (the
 * only copy of the secrets outside the vault) and mark its tokens imported.
 */
export async function confirmUpload(deps: ConfirmUploadDeps, file: string): Promise<{ found: boolean; imported: string[] }> {
  const imported: string[] = [];
  const rows: { key: string; etag: string; value: TokenEntity }[] = [];
  for await (const row of deps.tokens.list({ exportFile: file })) rows.push(row);
  const existed = await deps.blobs.delete(deps.importsContainer, file);
  if (!existed && rows.length === 0) return { found: false, imported };
  for (const row of rows) {
    if (row.value.state !== 'exported' && row.value.state !== 'exporting') continue;
    const now = deps.clock.now().toISOString();
    await deps.tokens.replace(row.key, { ...row.value, state: 'imported', exportingSince: null, updatedAt: now, history: appendHistory(row.value.history, now, 'imported', file) }, row.etag);
    imported.push(row.value.serial);
  }
  deps.log.info('Import file confirmed uploaded and deleted', { file, imported: imported.length });
  return { found: true, imported: imported.sort() };
}
