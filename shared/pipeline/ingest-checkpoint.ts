/**
 * An ingest's progress through one version of a seed file, so a file too large for one invocation (100,000
 * tokens take about 55 minutes of creates at Key Vault's budget) is finished by several, and a timeout, a
 * scale-in or a crash costs only the work since the last save.
 *
 * The record lives in `state` under the file's name and ETag (blob-names.ts ingestCheckpointName): one character
 * per token of the file, in file order, '.' until the token is confirmed (its secret in the vault and its
 * inventory row written), then its outcome. A later invocation parses the file again (a second or two for
 * 100,000 rows) and makes no vault call for a confirmed token. A token confirmed after the last save is found
 * again by the vault's read-before-write, which never writes a second version; its secret's batch tag tells that
 * this batch stored it. Each save is conditional on the ETag of the previous one: an invocation whose turn was
 * taken over (its lease on the seed file lapsed) fails instead of overwriting newer progress.
 */
import { ConflictError, PreconditionFailedError, TransientError } from './errors.js';
import type { Clock, Entity, RecordStore } from './ports.js';

export type TokenOutcome = 'stored' | 'unchanged' | 'conflict' | 'deleted' | 'recovered';

export interface IngestCheckpointRecord extends Entity {
  blob: string;
  etag: string;
  /** One character per token of the file: '.' not confirmed yet, else its outcome's code. */
  outcomes: string;
  /** Invocations that worked on this file version so far (the first included). */
  invocations: number;
  startedAt: string;
  updatedAt: string;
}

const PENDING = '.';
const CODES: Record<TokenOutcome, string> = { stored: 's', unchanged: 'u', recovered: 'r', conflict: 'c', deleted: 'd' };
const OUTCOMES = new Map<number, TokenOutcome>(
  Object.entries(CODES).map(([outcome, code]) => [code.charCodeAt(0), outcome as TokenOutcome]),
);
const PENDING_CODE = PENDING.charCodeAt(0);

export class IngestCheckpoint {
  private saving: Promise<void> = Promise.resolve();
  private dirty = 0;

  private constructor(
    private readonly records: RecordStore<IngestCheckpointRecord>,
    readonly key: string,
    private readonly clock: Clock,
    private readonly codes: Uint8Array,
    private record: IngestCheckpointRecord,
    private etag: string,
    /** Tokens confirmed by earlier invocations. */
    readonly resumedWith: number,
  ) {}

  /**
   * The checkpoint of this file version, created when there is none. One whose token count differs from the
   * file's (written by another version of the reader) is started afresh: the vault's read-before-write still
   * keeps every secret to one version.
   */
  static async open(
    records: RecordStore<IngestCheckpointRecord>,
    key: string,
    clock: Clock,
    file: { blob: string; etag: string; tokens: number },
  ): Promise<IngestCheckpoint> {
    const now = clock.now().toISOString();
    for (let attempt = 0; attempt < 3; attempt++) {
      const existing = await records.get(key);
      if (existing && typeof existing.value.outcomes === 'string' && existing.value.outcomes.length === file.tokens) {
        const codes = Uint8Array.from(Buffer.from(existing.value.outcomes, 'latin1'));
        const record = { ...existing.value, invocations: (Number(existing.value.invocations) || 0) + 1, updatedAt: now };
        const etag = await records.replace(key, record, existing.etag);
        const confirmed = codes.reduce((n, c) => (c === PENDING_CODE ? n : n + 1), 0);
        return new IngestCheckpoint(records, key, clock, codes, record, etag, confirmed);
      }
      const codes = new Uint8Array(file.tokens).fill(PENDING_CODE);
      const record: IngestCheckpointRecord = {
        blob: file.blob,
        etag: file.etag,
        outcomes: PENDING.repeat(file.tokens),
        invocations: 1,
        startedAt: now,
        updatedAt: now,
      };
      try {
        const etag = existing ? await records.replace(key, record, existing.etag) : await records.insert(key, record);
        return new IngestCheckpoint(records, key, clock, codes, record, etag, 0);
      } catch (err) {
        if (!(err instanceof ConflictError || err instanceof PreconditionFailedError)) throw err;
      }
    }
    throw new TransientError(`The checkpoint of ${file.blob} keeps changing under another invocation; retry.`, 503);
  }

  /** When the record was last written (opened or saved), by the clock. */
  get savedAtMs(): number {
    return Date.parse(this.record.updatedAt);
  }

  get invocations(): number {
    return this.record.invocations;
  }

  /** The outcome of token i when an earlier save (or this invocation) confirmed it. */
  outcome(i: number): TokenOutcome | undefined {
    return OUTCOMES.get(this.codes[i]!);
  }

  confirm(i: number, outcome: TokenOutcome): void {
    this.codes[i] = CODES[outcome].charCodeAt(0);
    this.dirty++;
  }

  /** Confirmations not saved yet. */
  get unsaved(): number {
    return this.dirty;
  }

  /** Saves what is confirmed; saves are serialised, and one that finds a newer checkpoint throws. */
  save(): Promise<void> {
    const run = this.saving.then(async () => {
      if (this.dirty === 0) return;
      const taken = this.dirty;
      const record = { ...this.record, outcomes: Buffer.from(this.codes).toString('latin1'), updatedAt: this.clock.now().toISOString() };
      try {
        this.etag = await this.records.replace(this.key, record, this.etag);
      } catch (err) {
        if (err instanceof PreconditionFailedError)
          throw new TransientError(`Another invocation took over the ingest of ${this.record.blob}; this one stops.`, 409);
        throw err;
      }
      this.record = record;
      this.dirty -= taken;
    });
    this.saving = run.catch(() => undefined);
    return run;
  }

  /** The file is done (deleted or quarantined): its checkpoint goes too. */
  async remove(): Promise<void> {
    await this.saving;
    await this.records.delete(this.key).catch(() => undefined);
  }
}

/** The checkpoint's last save, for the reconciler: a recent one means an ingest is at work on the file. */
export async function checkpointUpdatedAt(records: RecordStore<IngestCheckpointRecord>, key: string): Promise<number | undefined> {
  const found = await records.get(key);
  const at = Date.parse(found?.value.updatedAt ?? '');
  return Number.isFinite(at) ? at : undefined;
}
