/**
 * Ingest of a seed file dropped in `seeds`: parse and validate it with the
 * core, move every secret into Key Vault (idempotently, inside the vault's
 * budget), record the inventory, write the reports, and leave no plaintext
 * seed file behind: deleted when everything was stored, moved to `quarantine`
 * otherwise.
 */
import { decodePreSharedKeyHex, parseSecretEncoding, toCanonicalBase32, type SecretEncoding } from '../core/encoding.js';
import { FileError, hasErrors, problem, quoteValue, sortProblems, type Problem } from '../core/problems.js';
import type { OathToken } from '../core/token.js';
import { describePskcKeyNeed, looksLikePskc } from '../formats/pskc.js';
import { readSeedFile } from '../formats/read-seed-file.js';
import type { KeyMaterial, SeedReadResult } from '../formats/types.js';
import { ingestCheckpointName, seedFileBlobNames, type InputBlobNames } from './blob-names.js';
import { checkpointUpdatedAt, IngestCheckpoint, type IngestCheckpointRecord, type TokenOutcome } from './ingest-checkpoint.js';
import { leaveRow, updateWithRetry, writeRow } from './conditional-update.js';
import { TransientError, SecretDeletedError } from './errors.js';
import { logEvent, PipelineEvent } from './events.js';
import { secretNameForSerial } from './secret-names.js';
import type { BlobLease, BlobStore, Clock, EntityTable, Logger, RecordStore, TokenEntity } from './ports.js';
import { mapPool } from './map-pool.js';
import { writeRunReport, writeRunReportJson, type RunReport } from './report.js';
import { checkBlobSize } from './size-limit.js';
import { appendHistory, newTokenEntity } from './inventory.js';
import type { PacedVault } from './vault.js';

export const SECRET_CONTENT_TYPE = 'application/x-oath-seed; encoding=base32';
/** Seed-file blob metadata keys (Azure lower-cases metadata names). */
export const METADATA_SECRET_ENCODING = 'secretencoding';
export const METADATA_TRANSPORT_KEY_SECRET = 'transportkeysecret';

/** The tags of a token's vault secret (every token, however it arrived): its metadata and batch, never the secret. */
export function secretTags(token: OathToken, batch: string): Record<string, string> {
  return {
    serial: token.serial.slice(0, 256),
    manufacturer: token.manufacturer.slice(0, 256),
    model: token.model.slice(0, 256),
    type: token.type,
    algorithm: token.algorithm,
    digits: String(token.digits),
    period: String(token.period),
    batch: batch.slice(0, 256),
  };
}

export interface IngestDeps {
  blobs: BlobStore;
  vault: PacedVault;
  tokens: EntityTable<TokenEntity>;
  clock: Clock;
  log: Logger;
  containers: { seeds: string; reports: string; quarantine: string };
  transportKeyPrefix: string;
  defaultTransportKeySecret?: string;
  maxSeedFileBytes: number;
  recoverDeletedSecrets: boolean;
  /** Parallel vault calls; the limiters pace them, this only bounds memory and sockets. */
  concurrency?: number;
  /** How long to wait for another invocation that holds the blob's lease. */
  leaseWaitMs?: number;
  /** Checkpoints in `state` (./ingest-checkpoint.ts); without them an ingest starts from the top each time. */
  checkpoints?: RecordStore<IngestCheckpointRecord>;
  /**
   * Hands the rest of a file to a new invocation (the function binds it to the continuation queue). With it and
   * a budget, an invocation that has worked invocationBudgetMs saves its checkpoint and stops; without, it runs
   * to the end.
   */
  handOff?: (blobName: string) => void;
  invocationBudgetMs?: number;
  /** Save the checkpoint after this many confirmed tokens (and at every hand-off). */
  checkpointEvery?: number;
}

export interface IngestResult {
  /** in-progress: another invocation holds the file and saved its progress lately (a duplicate delivery). */
  /** continued: the budget ran out; the checkpoint is saved and the rest handed to a new invocation. */
  outcome: 'completed' | 'completed-with-problems' | 'rejected' | 'gone' | 'continued' | 'in-progress';
  blob: string;
  batch?: string;
  reportName?: string;
  quarantinedAs?: string;
  counts?: Record<string, number>;
}

const LEASE_POLL_MS = 500;
const CHECKPOINT_EVERY = 1000;
/** Saved at least this often while tokens are confirmed, so the checkpoint shows the ingest alive. */
const CHECKPOINT_INTERVAL_MS = 30_000;
/** A checkpoint saved within this long belongs to a live ingest (a few save intervals, for a slow vault). */
const CHECKPOINT_FRESH_MS = 3 * 60_000;
const LEASE_SECONDS = 15;

export class IngestService {
  constructor(private readonly deps: IngestDeps) {}

  async ingest(name: string): Promise<IngestResult> {
    const { blobs, containers } = this.deps;
    // A budget needs both a checkpoint to save and a way to hand the rest on.
    const budgetMs = this.deps.handOff && this.deps.checkpoints ? this.deps.invocationBudgetMs : undefined;
    const deadline = budgetMs === undefined ? Infinity : this.deps.clock.now().getTime() + budgetMs;
    const lease = await this.acquireLease(name);
    if (!lease) return { outcome: 'gone', blob: name };
    if (lease === 'in-progress') {
      this.deps.log.info('Seed file is being ingested by another invocation', { blob: name });
      return { outcome: 'in-progress', blob: name };
    }
    // Keep the lease while we work: a duplicate event waits instead of writing twice.
    const renewer = setInterval(() => void lease.renew().catch(() => undefined), (LEASE_SECONDS * 1000) / 3);
    try {
      const startedAt = this.deps.clock.now().toISOString();
      const props = await blobs.properties(containers.seeds, name);
      if (!props) return { outcome: 'gone', blob: name };
      const etag = props.etag.replace(/"/g, '');
      const batch = `${name}@${etag}`;
      const derived = seedFileBlobNames(name, etag);

      let read: SeedReadResult;
      try {
        // Properties first: a file over the limit is refused without loading it, and a read never loads more.
        checkBlobSize(name, props.contentLength, this.deps.maxSeedFileBytes);
        const blob = await blobs.read(containers.seeds, name, { maxBytes: this.deps.maxSeedFileBytes });
        if (!blob) return { outcome: 'gone', blob: name };
        checkBlobSize(name, blob.contentLength, this.deps.maxSeedFileBytes);
        const encoding = this.secretEncoding(name, blob.metadata);
        const keys = await this.keyMaterial(name, blob.bytes, blob.metadata);
        read = readSeedFile(blob.bytes, {
          fileName: name,
          secretEncoding: encoding,
          maxBytes: this.deps.maxSeedFileBytes,
          now: this.deps.clock.now(),
          ...keys,
        });
      } catch (err) {
        if (!(err instanceof FileError)) throw err;
        // A file that can never succeed: report it and move it out of `seeds`.
        const report = this.report(
          name,
          batch,
          startedAt,
          'rejected',
          `The file was rejected as a whole: ${err.message}`,
          { tokensInFile: 0 },
          [],
          [err.toProblem()],
        );
        const reportName = await writeRunReport(this.deps.blobs, this.deps.containers.reports, derived, report);
        const quarantinedAs = await this.quarantine(name, derived, lease, report);
        this.deps.log.warn('Seed file rejected', { blob: name, code: err.code, report: reportName });
        return { outcome: 'rejected', blob: name, batch, reportName, quarantinedAs, counts: report.counts };
      }

      const checkpoint = this.deps.checkpoints
        ? await IngestCheckpoint.open(this.deps.checkpoints, ingestCheckpointName(name, etag), this.deps.clock, {
            blob: name,
            etag,
            tokens: read.tokens.length,
          })
        : undefined;
      if (checkpoint && checkpoint.resumedWith > 0)
        this.deps.log.info('Seed file ingest resumes from its checkpoint', {
          blob: name,
          confirmed: checkpoint.resumedWith,
          tokens: read.tokens.length,
          invocation: checkpoint.invocations,
        });
      const every = this.deps.checkpointEvery ?? CHECKPOINT_EVERY;
      let deferred = 0;
      const storeAll = mapPool(read.tokens, this.deps.concurrency ?? 32, async (token, i): Promise<TokenOutcome | undefined> => {
        // Confirmed by an earlier invocation: no vault call, no table call.
        const known = checkpoint?.outcome(i);
        if (known) return known;
        if (this.deps.clock.now().getTime() >= deadline) {
          deferred++;
          return undefined;
        }
        const outcome = await this.storeToken(token, batch);
        checkpoint?.confirm(i, outcome);
        if (
          checkpoint &&
          (checkpoint.unsaved >= every ||
            (checkpoint.unsaved > 0 && this.deps.clock.now().getTime() - checkpoint.savedAtMs >= CHECKPOINT_INTERVAL_MS))
        )
          await checkpoint.save();
        return outcome;
      });
      const outcomes = await storeAll.catch(async (err: unknown) => {
        // What was confirmed stays confirmed for the retry.
        await checkpoint?.save().catch(() => undefined);
        throw err;
      });
      if (deferred > 0 && checkpoint && this.deps.handOff) {
        await checkpoint.save();
        const confirmed = read.tokens.length - deferred;
        this.deps.log.info('Seed file ingest handed to a new invocation', {
          blob: name,
          confirmed,
          remaining: deferred,
          invocation: checkpoint.invocations,
        });
        this.deps.handOff(name);
        return { outcome: 'continued', blob: name, batch, counts: { tokensInFile: read.tokens.length, confirmed, remaining: deferred } };
      }
      const found: Problem[] = [...read.problems];
      const items: RunReport['items'] = [];
      // A row can carry several errors: count rows (by line and serial), not problems.
      const rejectedRows = new Set(read.problems.filter((p) => p.severity === 'error').map((p) => `${p.line ?? ''}|${p.serial ?? ''}`))
        .size;
      const counts = {
        tokensInFile: read.tokens.length + rejectedRows,
        stored: 0,
        unchanged: 0,
        recovered: 0,
        conflicts: 0,
        deleted: 0,
        rejectedRows,
      };
      read.tokens.forEach((token, i) => {
        const outcome = outcomes[i]!;
        items.push({ serial: token.serial, result: outcome });
        if (outcome === 'stored') counts.stored++;
        else if (outcome === 'unchanged') counts.unchanged++;
        else if (outcome === 'recovered') counts.recovered++;
        else if (outcome === 'conflict') counts.conflicts++;
        else counts.deleted++;
        const trouble = outcomeProblem(token, outcome);
        if (trouble) found.push(trouble);
      });
      const problems = sortProblems(found);

      const clean = !hasErrors(problems);
      const outcome = clean ? 'completed' : 'completed-with-problems';
      const summary = clean
        ? `All ${read.tokens.length} tokens are in Key Vault (${counts.stored} new, ${counts.unchanged} already there); the seed file was deleted.`
        : `${counts.stored + counts.unchanged + counts.recovered} tokens are in Key Vault; ${problems.filter((p) => p.severity === 'error').length} problems need attention. The file was moved to quarantine: fix the rows listed and drop it again.`;
      const report = this.report(name, batch, startedAt, outcome, summary, counts, items, problems, {
        format: read.format,
        secretEncoding: read.secretEncoding ?? null,
        encodingDecidedBy: read.encodingDecidedBy ?? null,
      });
      const reportName = await writeRunReport(this.deps.blobs, this.deps.containers.reports, derived, report);
      let quarantinedAs: string | undefined;
      if (clean) await blobs.delete(containers.seeds, name, { leaseId: lease.id });
      else quarantinedAs = await this.quarantine(name, derived, lease, report);
      await checkpoint?.remove();
      this.deps.log.info('Seed file ingested', { blob: name, outcome, ...counts, report: reportName });
      return { outcome, blob: name, batch, reportName, quarantinedAs, counts };
    } finally {
      clearInterval(renewer);
      await lease.release().catch(() => undefined);
    }
  }

  private async acquireLease(name: string): Promise<BlobLease | 'in-progress' | undefined> {
    // Counted in polls rather than read off a clock: the wait is real time whatever the injected clock says.
    const polls = Math.max(1, Math.ceil((this.deps.leaseWaitMs ?? (LEASE_SECONDS + 5) * 1000) / LEASE_POLL_MS));
    for (let poll = 0; ; poll++) {
      let lease: BlobLease | undefined;
      try {
        lease = await this.deps.blobs.acquireLease(this.deps.containers.seeds, name, LEASE_SECONDS);
      } catch (err) {
        // The blob is gone: an earlier delivery of the same event finished the job.
        if (!(await this.deps.blobs.properties(this.deps.containers.seeds, name))) return undefined;
        throw err;
      }
      if (lease) return lease;
      if (poll >= polls) {
        // A long file: the holder is saving progress, so it (or its continuation) finishes it; nothing to retry.
        if (await this.progressing(name)) return 'in-progress';
        throw new TransientError(`Seed file ${name} is being processed by another invocation.`);
      }
      await new Promise((r) => setTimeout(r, LEASE_POLL_MS));
    }
  }

  /** The file's checkpoint was saved lately: an invocation is working through it. */
  private async progressing(name: string): Promise<boolean> {
    if (!this.deps.checkpoints) return false;
    const props = await this.deps.blobs.properties(this.deps.containers.seeds, name);
    if (!props) return false;
    const savedAt = await checkpointUpdatedAt(this.deps.checkpoints, ingestCheckpointName(name, props.etag.replace(/"/g, '')));
    return savedAt !== undefined && this.deps.clock.now().getTime() - savedAt < CHECKPOINT_FRESH_MS;
  }

  private secretEncoding(name: string, metadata: Record<string, string>): SecretEncoding | undefined {
    const value = metadata[METADATA_SECRET_ENCODING];
    if (value === undefined || value === '') return undefined;
    try {
      return parseSecretEncoding(value);
    } catch {
      throw new FileError(
        'ENCODING_INVALID_OPTION',
        `${name}: blob metadata ${METADATA_SECRET_ENCODING}=${quoteValue(value)} is not base32 or hex.`,
      );
    }
  }

  /** Transport keys come only from vault secrets under the configured prefix. */
  private async keyMaterial(name: string, bytes: Uint8Array, metadata: Record<string, string>): Promise<KeyMaterial> {
    if (!looksLikePskc(bytes)) return {};
    const need = safeKeyNeed(bytes);
    if (!need.encrypted) return {};
    const secretName = metadata[METADATA_TRANSPORT_KEY_SECRET] || this.deps.defaultTransportKeySecret;
    if (!secretName) {
      throw new FileError(
        'PSKC_KEY_REQUIRED',
        `${name}: the PSKC file is encrypted with a ${need.kind === 'password' ? 'password' : 'pre-shared key'}${need.keyName ? ` named ${quoteValue(need.keyName)}` : ''}. Store it in Key Vault under a name starting with "${this.deps.transportKeyPrefix}" and set blob metadata ${METADATA_TRANSPORT_KEY_SECRET}=<that name> (or DEFAULT_TRANSPORT_KEY_SECRET).`,
      );
    }
    if (!secretName.toLowerCase().startsWith(this.deps.transportKeyPrefix.toLowerCase()) || !/^[0-9a-zA-Z-]{1,127}$/.test(secretName)) {
      throw new FileError(
        'TRANSPORT_KEY_NOT_ALLOWED',
        `${name}: ${METADATA_TRANSPORT_KEY_SECRET}=${quoteValue(secretName)} is not under the transport-key prefix "${this.deps.transportKeyPrefix}"; only those vault secrets may serve as keys.`,
      );
    }
    const secret = await this.deps.vault.get(secretName);
    if (!secret)
      throw new FileError(
        'TRANSPORT_KEY_MISSING',
        `${name}: the vault has no secret ${quoteValue(secretName)} to decrypt this file. Store the vendor's key there and drop the file again.`,
      );
    if (need.kind === 'password') return { password: secret.value };
    const psk = decodePreSharedKeyHex(secret.value);
    if (!psk)
      throw new FileError(
        'PSKC_INVALID_KEY_OPTION',
        `${name}: the vault secret ${quoteValue(secretName)} must hold the pre-shared key as 32, 48 or 64 hex digits.`,
      );
    return { psk };
  }

  private async storeToken(token: OathToken, batch: string): Promise<TokenOutcome> {
    const secretName = secretNameForSerial(token.serial);
    const value = toCanonicalBase32(token.secret);
    const tags = secretTags(token, batch);
    let recovered = false;
    let stored;
    try {
      stored = await this.deps.vault.ensureSecret(secretName, value, { contentType: SECRET_CONTENT_TYPE, tags });
    } catch (err) {
      if (!(err instanceof SecretDeletedError)) throw err;
      if (!this.deps.recoverDeletedSecrets) return 'deleted';
      await this.deps.vault.recover(secretName);
      recovered = true;
      stored = await this.deps.vault.ensureSecret(secretName, value, { contentType: SECRET_CONTENT_TYPE, tags });
    }
    if (stored.outcome === 'conflict') return 'conflict';
    await this.recordInventory(token, secretName, stored.version, batch);
    if (recovered) return 'recovered';
    // Found already there with this batch's tag: stored by an earlier invocation of this ingest after its last checkpoint.
    return stored.outcome === 'created' || stored.batch === tags.batch ? 'stored' : 'unchanged';
  }

  private async recordInventory(token: OathToken, secretName: string, version: string, batch: string): Promise<void> {
    const now = this.deps.clock.now().toISOString();
    await updateWithRetry(this.deps.tokens, token.serial, (existing) => {
      if (!existing) return writeRow(newTokenEntity(token, secretName, version, batch, now), () => undefined);
      // Same secret again (a replay or a re-dropped file): the row stays as it is.
      if (existing.value.secretName === secretName && existing.value.secretVersion === version) return leaveRow(undefined);
      return writeRow(
        {
          ...existing.value,
          secretVersion: version,
          updatedAt: now,
          history: appendHistory(existing.value.history, now, 'stored-again', batch),
        },
        () => undefined,
      );
    });
  }

  private report(
    name: string,
    batch: string,
    startedAt: string,
    outcome: RunReport['outcome'],
    summary: string,
    counts: Record<string, number>,
    items: RunReport['items'],
    problems: Problem[],
    details?: RunReport['details'],
  ): RunReport {
    return {
      kind: 'seed-file',
      subject: `${this.deps.containers.seeds}/${name}`,
      batch,
      startedAt,
      finishedAt: this.deps.clock.now().toISOString(),
      outcome,
      summary,
      counts,
      details,
      items,
      problems,
    };
  }

  /** Moves the seed file into the private quarantine container, next to a copy of its report. */
  private async quarantine(name: string, derived: InputBlobNames, lease: BlobLease, report: RunReport): Promise<string> {
    await this.deps.blobs.copy(this.deps.containers.seeds, name, this.deps.containers.quarantine, derived.quarantinedFile);
    await writeRunReportJson(this.deps.blobs, this.deps.containers.quarantine, derived.quarantinedReport, report);
    await this.deps.blobs.delete(this.deps.containers.seeds, name, { leaseId: lease.id });
    logEvent(this.deps.log, 'warn', PipelineEvent.SeedFileQuarantined, {
      blob: name,
      quarantinedAs: derived.quarantinedFile,
      outcome: report.outcome,
    });
    return derived.quarantinedFile;
  }
}

/** The problem a token's outcome is reported with (none for a token that is in the vault). */
function outcomeProblem(token: OathToken, outcome: TokenOutcome): Problem | undefined {
  const where = { line: token.line, serial: token.serial };
  const secretName = secretNameForSerial(token.serial);
  if (outcome === 'deleted') {
    return problem(
      'VAULT_SECRET_DELETED',
      'error',
      `Serial ${quoteValue(token.serial)}: its vault secret ${secretName} is deleted but recoverable. Recover or purge it in Key Vault (or set RECOVER_DELETED_SECRETS=true), then drop the file again.`,
      where,
    );
  }
  if (outcome === 'conflict') {
    return problem(
      'VAULT_SECRET_CONFLICT',
      'error',
      `Serial ${quoteValue(token.serial)}: Key Vault already holds a different secret for this serial (${secretName}); it was not overwritten. Check which seed is right; retire the old token before importing a replacement.`,
      where,
    );
  }
  return undefined;
}

function safeKeyNeed(bytes: Uint8Array): ReturnType<typeof describePskcKeyNeed> {
  try {
    return describePskcKeyNeed(bytes);
  } catch {
    // Malformed files are reported by the reader itself.
    return { encrypted: false };
  }
}
