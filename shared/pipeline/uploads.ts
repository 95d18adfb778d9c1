/**
 * `POST /api/imports/{file}/uploaded`: the Global Administrator uploaded an
 * import file to Entra. Its tokens become `imported`, then the file (the only
 * copy of their secrets outside the vault) is deleted.
 */
import { quoteValue } from '../core/problems.js';
import { PreconditionFailedError, TransientError } from './errors.js';
import { appendHistory } from './inventory.js';
import type { BlobStore, Clock, EntityTable, Logger, TokenEntity, Versioned } from './ports.js';
import { withRetry } from './rate-limit.js';

export interface UploadDeps {
  blobs: BlobStore;
  tokens: EntityTable<TokenEntity>;
  clock: Clock;
  log: Logger;
  importsContainer: string;
}

export interface ConfirmUploadResult {
  /** false when no such file exists and no token names it. */
  found: boolean;
  /** Serials of the file now `imported`. */
  imported: string[];
  /** false when it stopped part-way: the file is kept, and the same request again finishes the job. */
  complete: boolean;
}

const CONFIRM_RETRY = { maxAttempts: 4, baseDelayMs: 250 };

export class UploadService {
  constructor(private readonly deps: UploadDeps) {}

  /**
   * Marks the file's tokens imported, then deletes it. Rows first, so a failure part-way leaves the file and the
   * rows still naming it, and the same confirmation again finishes; it never throws once it has changed a row.
   */
  async confirm(file: string): Promise<ConfirmUploadResult> {
    const { deps } = this;
    const present = (await deps.blobs.properties(deps.importsContainer, file)) !== undefined;
    const rows: Versioned<TokenEntity>[] = [];
    for await (const row of deps.tokens.list({ exportFile: file })) rows.push(row);
    if (!present && rows.length === 0) return { found: false, imported: [], complete: true };

    const imported: string[] = [];
    try {
      for (const row of rows)
        if (await withRetry(() => this.markImported(row, file, present), CONFIRM_RETRY)) imported.push(row.value.serial);
      if (present) await withRetry(() => deps.blobs.delete(deps.importsContainer, file), CONFIRM_RETRY);
    } catch (err) {
      deps.log.error('Import confirmation stopped part-way; the file is kept until it is confirmed again', {
        file,
        imported: imported.length,
        of: rows.length,
        error: (err as Error).name,
      });
      return { found: true, imported: imported.sort(), complete: false };
    }
    deps.log.info('Import file confirmed uploaded and deleted', { file, imported: imported.length });
    return { found: true, imported: imported.sort(), complete: true };
  }

  /**
   * One token of a confirmed file: exported to it (or still `exporting` while the file exists: the build wrote it
   * and has not marked it yet) becomes imported; already imported counts (a repeated confirmation). Re-reads on 412.
   */
  private async markImported(listed: Versioned<TokenEntity>, file: string, filePresent: boolean): Promise<boolean> {
    const { tokens, clock } = this.deps;
    let row: Versioned<TokenEntity> | undefined = listed;
    for (let tries = 0; tries < 5; tries++) {
      if (!row || row.value.exportFile !== file) return false;
      if (row.value.state === 'imported') return true;
      if (row.value.state !== 'exported' && !(row.value.state === 'exporting' && filePresent)) return false;
      const now = clock.now().toISOString();
      try {
        await tokens.replace(
          row.key,
          {
            ...row.value,
            state: 'imported',
            exportingSince: null,
            updatedAt: now,
            history: appendHistory(row.value.history, now, 'imported', file),
          },
          row.etag,
        );
        return true;
      } catch (err) {
        if (!(err instanceof PreconditionFailedError)) throw err;
      }
      row = await tokens.get(listed.key);
    }
    throw new TransientError(`Serial ${quoteValue(listed.value.serial)}: its inventory row kept changing while it was marked imported.`);
  }
}
