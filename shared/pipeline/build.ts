/**
 * Builds Entra's import CSV from the assignments table and the token inventory.
 *
 * First a plan, from the tables' contents alone (planBuild: which tokens, which rows, which file each goes to);
 * then its application (BuildRun), which touches storage.
 *
 * Two-phase and race-safe: every token is first claimed as `exporting` for this
 * build (an ETag-conditional write, so two builds cannot claim one token), the
 * CSV is written with If-None-Match: *, and only then are the tokens marked
 * `exported`. A build that dies half-way leaves `exporting` rows that the
 * reconciler settles: CSV present, `exported`; absent, back to `stored`.
 * While it runs, a heartbeat (./liveness.ts) keeps the reconciler off its
 * claims, and right before each CSV it checks that the heartbeat and every
 * claim are still its own, so a CSV never lists a token the build lost.
 */
import { randomUUID } from 'node:crypto';
import { decodeBase32, toCanonicalBase32 } from '../core/encoding.js';
import { problem, quoteValue, type Problem } from '../core/problems.js';
import type { HashAlgorithm, TokenType } from '../core/token.js';
import {
  partFileName,
  planImport,
  splitRows,
  writeEntraCsv,
  type EntraRow,
  type ImportCandidate,
  type PlannedRow,
} from '../entra/import-rules.js';
import type { AssignmentRow } from '../formats/assignments.js';
import { buildReportNames, importFileName } from './blob-names.js';
import { leaveRow, updateWithRetry, writeRow, type RowChange } from './conditional-update.js';
import { PreconditionFailedError } from './errors.js';
import { appendHistory, exportedTo, releasedFromExport } from './inventory.js';
import { GraphExportRun, type GraphExportSettings } from './graph-export.js';
import { BuildHeartbeat } from './liveness.js';
import { mapPool } from './map-pool.js';
import type { AssignmentEntity, BlobStore, Clock, EntityTable, Logger, TokenEntity } from './ports.js';
import { writeRunReport, type RunReport } from './report.js';
import type { PacedVault } from './vault.js';

export interface BuildDeps {
  blobs: BlobStore;
  vault: PacedVault;
  tokens: EntityTable<TokenEntity>;
  assignments: EntityTable<AssignmentEntity>;
  clock: Clock;
  log: Logger;
  containers: { imports: string; reports: string };
  maxRows: number;
  concurrency?: number;
  /** Heartbeat renewal interval; HEARTBEAT_INTERVAL_MS unless a test says otherwise. */
  heartbeatMs?: number;
  /** IMPORT_MODE=graph: tokens go to Entra through Microsoft Graph (./graph-export.ts) instead of a CSV. */
  graph?: GraphExportSettings;
}

export interface BuildResult {
  build: string;
  files: string[];
  exported: { serial: string; upn: string; file: string }[];
  notExported: Problem[];
  /** The report's name; null when the build exported nothing and met no problem of its own (no report is written). */
  report: string | null;
}

const CSV_CONTENT_TYPE = 'text/csv; charset=utf-8';
/** Unassigned serials a build report names (the count is always whole). */
const UNASSIGNED_LISTED = 200;

export function newBuildId(): string {
  return randomUUID().replace(/-/g, '').slice(0, 12);
}

/** States a token named for re-export may be in: exported, or refused by Entra on upload (importFailed). */
const REEXPORTABLE_STATES: ReadonlySet<string> = new Set(['exported', 'importFailed']);

/** A token a build may export: stored, or exported (or refused by Entra) and named for re-export. */
export function isExportable(t: TokenEntity, reexport: ReadonlySet<string>): boolean {
  return t.state === 'stored' || (reexport.has(t.serial) && REEXPORTABLE_STATES.has(t.state));
}

/** What a build sets out to export, decided from the tables' contents alone. */
export interface BuildPlan {
  /** Rows to export, in file order. */
  rows: PlannedRow[];
  /** The rows of each import file (one file unless maxRows splits them). */
  parts: PlannedRow[][];
  /** The import file each planned serial goes to. */
  fileOf: ReadonlyMap<string, string>;
  /** Why requested or assigned tokens are not exported (re-export requests first, then the assignment rules). */
  problems: Problem[];
  /** Serials of importable tokens that no assignment names. */
  unassigned: string[];
}

export interface BuildPlanOptions {
  /** Serials of exported tokens to export again. */
  reexport: ReadonlySet<string>;
  /** Rows per file; 0: one file. */
  maxRows: number;
  /** The import file's name (parts are numbered from it). */
  fileName: string;
}

function candidateOf(t: TokenEntity): ImportCandidate {
  return {
    serial: t.serial,
    manufacturer: t.manufacturer,
    model: t.model,
    type: t.type as TokenType,
    algorithm: t.algorithm as HashAlgorithm,
    digits: t.digits,
    period: t.period,
    secretBytes: t.secretBytes,
  };
}

/** Plans a build: which tokens, which rows and which file each goes to. Pure. */
export function planBuild(inventory: readonly TokenEntity[], assignments: readonly AssignmentRow[], options: BuildPlanOptions): BuildPlan {
  const { reexport } = options;
  const tokens = new Map(inventory.map((t) => [t.serial, t]));
  const problems: Problem[] = [];

  // Who holds what already: exported or imported tokens count toward Entra's five.
  const held = new Map<string, number>();
  for (const t of tokens.values()) {
    if ((t.state === 'exported' || t.state === 'imported' || t.state === 'exporting') && t.upn && !reexport.has(t.serial)) {
      held.set(t.upn.toLowerCase(), (held.get(t.upn.toLowerCase()) ?? 0) + 1);
    }
  }
  for (const serial of reexport) {
    const t = tokens.get(serial);
    if (!t) problems.push(problem('TOKEN_NOT_FOUND', 'error', `Re-export of ${quoteValue(serial)}: no token has this serial.`, { serial }));
    else if (!isExportable(t, reexport)) {
      problems.push(
        problem(
          'TOKEN_STATE_INVALID',
          'error',
          `Re-export of ${quoteValue(serial)}: the token is ${t.state}; only stored, exported or importFailed tokens can be exported again.`,
          { serial },
        ),
      );
    }
  }
  const eligible = (t: TokenEntity | undefined): t is TokenEntity => t !== undefined && isExportable(t, reexport);
  const rows = assignments.filter((a) => eligible(tokens.get(a.serial))).sort((a, b) => a.serial.localeCompare(b.serial));
  for (const serial of reexport) {
    if (eligible(tokens.get(serial)) && !assignments.some((a) => a.serial === serial)) {
      problems.push(
        problem('TOKEN_UNASSIGNED', 'error', `Re-export of ${quoteValue(serial)}: no assignment names this token.`, { serial }),
      );
    }
  }
  const plan = planImport([...tokens.values()].filter(eligible).map(candidateOf), rows, { existingTokensPerUser: held });
  problems.push(...plan.problems.filter((p) => p.code !== 'ASSIGNMENT_DUPLICATE_ROW'));

  const parts = splitRows(plan.exported, options.maxRows);
  const fileOf = new Map<string, string>();
  parts.forEach((part, i) => part.forEach((r) => fileOf.set(r.serial, partFileName(options.fileName, i, parts.length))));
  return { rows: plan.exported, parts, fileOf, problems, unassigned: plan.unassigned };
}

export class BuildService {
  constructor(private readonly deps: BuildDeps) {}

  /** Builds from every assignment whose token is `stored`; `reexport` names exported tokens to export again. */
  async build(options: { reexport?: string[] } = {}): Promise<BuildResult> {
    const { deps } = this;
    const startedAt = deps.clock.now();
    const buildId = newBuildId();
    const reexport = new Set(options.reexport ?? []);

    const inventory: TokenEntity[] = [];
    for await (const t of deps.tokens.list()) inventory.push(t.value);
    const assignments: AssignmentRow[] = [];
    for await (const a of deps.assignments.list()) assignments.push({ upn: a.value.upn, serial: a.value.serial, line: a.value.line });
    const plan = planBuild(inventory, assignments, { reexport, maxRows: deps.maxRows, fileName: importFileName(buildId, startedAt) });

    // The heartbeat shows the reconciler that this build is alive for as long as it runs (see ./liveness.ts).
    const heartbeat = await BuildHeartbeat.start(
      { blobs: deps.blobs, container: deps.containers.reports, clock: deps.clock, log: deps.log },
      buildId,
      deps.heartbeatMs,
    );
    try {
      if (deps.graph) return await new GraphExportRun(deps, deps.graph, { buildId, startedAt, plan, heartbeat }).apply();
      return await new BuildRun(deps, { buildId, startedAt, reexport, plan, heartbeat }).apply();
    } finally {
      await heartbeat.stop();
    }
  }
}

/** A token this build holds: its row as last written or read, under that ETag, and the user it goes to. */
interface Claim {
  etag: string;
  value: TokenEntity;
  upn: string;
}

/** One build applying its plan: claims, vault reads, CSV files, marks, report. */
class BuildRun {
  private readonly buildId: string;
  private readonly startedAt: Date;
  private readonly reexport: ReadonlySet<string>;
  private readonly plan: BuildPlan;
  private readonly heartbeat: BuildHeartbeat;
  private readonly concurrency: number;
  private readonly problems: Problem[];
  private readonly claimed = new Map<string, Claim>();
  private readonly secrets = new Map<string, string>();
  /** Files written, in order, and what each holds under which ETag. */
  private readonly files: string[] = [];
  private readonly written = new Map<string, { etag: string; rows: EntraRow[] }>();
  private readonly exported: BuildResult['exported'] = [];

  constructor(
    private readonly deps: BuildDeps,
    run: { buildId: string; startedAt: Date; reexport: ReadonlySet<string>; plan: BuildPlan; heartbeat: BuildHeartbeat },
  ) {
    this.buildId = run.buildId;
    this.startedAt = run.startedAt;
    this.reexport = run.reexport;
    this.plan = run.plan;
    this.heartbeat = run.heartbeat;
    this.concurrency = deps.concurrency ?? 16;
    this.problems = [...run.plan.problems];
  }

  async apply(): Promise<BuildResult> {
    await this.claimAll();
    await this.readSecrets();
    await this.writeFiles();
    await this.markAll();
    return this.finish();
  }

  private fileOf(serial: string): string {
    return this.plan.fileOf.get(serial)!;
  }

  private lost(serial: string, why: string): void {
    this.problems.push(
      problem('EXPORT_CLAIM_LOST', 'error', `Serial ${quoteValue(serial)}: ${why}; it was not exported. A later build exports it.`, {
        serial,
      }),
    );
    this.claimed.delete(serial);
  }

  /** Phase 1: claim every planned token as `exporting` for this build (a token changed meanwhile is skipped). */
  private async claimAll(): Promise<void> {
    await mapPool(this.plan.rows, this.concurrency, async (row) => {
      const claim = await this.claim(row);
      if (claim) this.claimed.set(row.serial, claim);
    });
  }

  /** Phase 2: read the secrets (paced by the vault's read budget). */
  private async readSecrets(): Promise<void> {
    await mapPool([...this.claimed.entries()], this.concurrency, async ([serial, c]) => {
      // Given up on by the reconciler: spend no more of the read budget; phase 3 reports the tokens.
      if (this.heartbeat.lost) return;
      // The version the claimed row records, never a newer one written since (a reprogramming in flight).
      const secret = await this.deps.vault.get(c.value.secretName, c.value.secretVersion || undefined);
      const bytes = secret ? decodeBase32(secret.value) : undefined;
      if (!bytes) {
        this.problems.push(
          problem(
            'EXPORT_SECRET_MISSING',
            'error',
            `Serial ${quoteValue(serial)}: its secret ${c.value.secretName} could not be read from Key Vault; it was not exported.`,
            { serial },
          ),
        );
        await this.release(serial, c);
        this.claimed.delete(serial);
        return;
      }
      this.secrets.set(serial, toCanonicalBase32(bytes));
    });
  }

  /** Phase 3: write the CSV files, never overwriting one, listing only tokens whose claim this build still holds. */
  private async writeFiles(): Promise<void> {
    try {
      // Parts keep the file names recorded at claim time; a part whose claims were lost is just shorter.
      for (const part of this.plan.parts) await this.writeFile(part);
    } catch (err) {
      await this.releaseUnwritten();
      throw err;
    }
  }

  private async writeFile(part: readonly PlannedRow[]): Promise<void> {
    const { deps } = this;
    const mine = part.filter((r) => this.claimed.has(r.serial));
    if (mine.length === 0) return;
    const file = this.fileOf(mine[0]!.serial);
    if (!(await this.heartbeat.confirm())) {
      // The reconciler settles these rows itself; releasing under our ETag only speeds that up.
      for (const r of mine) {
        await this.release(r.serial, this.claimed.get(r.serial)!).catch(() => undefined);
        this.lost(r.serial, 'the reconciler took its claim back (no heartbeat from this build for RECONCILE_MIN_AGE_MINUTES)');
      }
      return;
    }
    // Anything else that changed a claimed row since (an operator, another tool) takes the token out of the file.
    const current = new Map<string, { etag: string; value: TokenEntity }>();
    for await (const row of deps.tokens.list({ buildId: this.buildId })) current.set(row.value.serial, row);
    const entraRows: EntraRow[] = [];
    for (const r of mine) {
      const now = current.get(r.serial);
      if (!now || now.value.state !== 'exporting' || now.value.exportFile !== file) {
        this.lost(r.serial, 'its inventory row was changed by another process before the import file was written');
        continue;
      }
      this.claimed.set(r.serial, { etag: now.etag, value: now.value, upn: r.upn });
      const t = now.value;
      entraRows.push({
        upn: r.upn,
        serial: r.serial,
        secretBase32: this.secrets.get(r.serial)!,
        period: t.period,
        manufacturer: t.manufacturer,
        model: t.model,
      });
    }
    if (entraRows.length === 0) return;
    const { etag } = await deps.blobs.write(deps.containers.imports, file, writeEntraCsv(entraRows), {
      contentType: CSV_CONTENT_TYPE,
      ifNoneMatch: '*',
    });
    this.written.set(file, { etag, rows: entraRows });
    this.files.push(file);
  }

  /**
   * After a failed write, nothing half-done: tokens of a file known to be absent go back to stored. A failed write
   * may still have landed (its answer lost), so a file that exists, or cannot be checked, keeps its claims for the
   * reconciler, which settles them from what reached storage.
   */
  private async releaseUnwritten(): Promise<void> {
    const { deps } = this;
    const absent = new Map<string, Promise<boolean>>();
    const isAbsent = (file: string) => {
      if (!absent.has(file))
        absent.set(
          file,
          deps.blobs.properties(deps.containers.imports, file).then(
            (p) => p === undefined,
            () => false,
          ),
        );
      return absent.get(file)!;
    };
    for (const [serial, c] of this.claimed) {
      const file = this.fileOf(serial);
      if (!this.written.has(file) && (await isAbsent(file))) await this.release(serial, c).catch(() => undefined);
    }
  }

  /** Phase 4: mark exported. A token whose row is no longer ours leaves the result, the report and its file. */
  private async markAll(): Promise<void> {
    const lostAfterWrite = new Map<string, Set<string>>();
    await mapPool([...this.claimed.entries()], this.concurrency, async ([serial, c]) => {
      const file = this.fileOf(serial);
      if (await this.markExported(serial, c, file)) {
        this.exported.push({ serial, upn: c.upn, file });
        return;
      }
      this.lost(
        serial,
        'its inventory row was changed by another process before it was marked exported, so it was taken out of the import file',
      );
      lostAfterWrite.set(file, (lostAfterWrite.get(file) ?? new Set<string>()).add(serial));
    });
    for (const [file, serials] of lostAfterWrite) await this.withdraw(file, serials);
    this.exported.sort((a, b) => a.serial.localeCompare(b.serial));
  }

  /** Rewrites `file` without `serials` (deletes it when none is left), under the ETag this build wrote it with. */
  private async withdraw(file: string, serials: ReadonlySet<string>): Promise<void> {
    const { deps } = this;
    const { etag, rows } = this.written.get(file)!;
    const keep = rows.filter((r) => !serials.has(r.serial));
    try {
      if (keep.length > 0) {
        await deps.blobs.write(deps.containers.imports, file, writeEntraCsv(keep), { contentType: CSV_CONTENT_TYPE, ifMatch: etag });
      } else {
        await deps.blobs.delete(deps.containers.imports, file, { ifMatch: etag });
        this.files.splice(this.files.indexOf(file), 1);
      }
    } catch (err) {
      deps.log.error('Import file still lists tokens this build no longer holds', {
        file,
        tokens: serials.size,
        error: (err as Error).name,
      });
      this.problems.push(
        problem(
          'EXPORT_CLAIM_LOST',
          'error',
          `Import file ${file} could not be rewritten and still lists ${[...serials].sort().join(', ')}, which this build no longer holds: remove those rows before uploading it.`,
        ),
      );
    }
  }

  private async finish(): Promise<BuildResult> {
    const { deps, exported, files, problems } = this;
    const errors = problems.filter((p) => p.severity === 'error');
    const rowsIn = (file: string) => exported.filter((e) => e.file === file).length;
    for (const file of files) deps.log.info('Import file ready', { file, rows: rowsIn(file), build: this.buildId });
    // Nothing exported and nothing new to say (the plan's problems repeat at every build): no report, so a quiet
    // hour of changes does not leave a pile of empty ones.
    if (exported.length === 0 && problems.length === this.plan.problems.length) {
      deps.log.info('Import build finished', { build: this.buildId, exported: 0, files: 0, problems: problems.length });
      return { build: this.buildId, files, exported, notExported: errors, report: null };
    }
    const unassigned = this.plan.unassigned;
    const report: RunReport = {
      kind: 'build',
      subject: this.buildId,
      startedAt: this.startedAt.toISOString(),
      finishedAt: deps.clock.now().toISOString(),
      outcome:
        exported.length === 0 && problems.length === 0 ? 'nothing-to-do' : errors.length > 0 ? 'completed-with-problems' : 'completed',
      summary: exported.length
        ? `${exported.length} tokens exported to ${files.map((f) => `${f} (${rowsIn(f)} rows)`).join(', ')}. Each file holds secrets: upload it in the Entra admin center, then confirm with ${files.map((f) => `POST /api/imports/${f}/uploaded`).join(', ')}.`
        : 'No token was exported.',
      counts: { exported: exported.length, files: files.length, notExported: errors.length, unassigned: unassigned.length },
      details: {
        ...(this.reexport.size > 0 ? { reexport: [...this.reexport].join(', ') } : {}),
        ...(unassigned.length > 0
          ? {
              unassigned:
                unassigned.slice(0, UNASSIGNED_LISTED).join(', ') +
                (unassigned.length > UNASSIGNED_LISTED ? ` and ${unassigned.length - UNASSIGNED_LISTED} more` : ''),
            }
          : {}),
      },
      items: exported.map((e) => ({ serial: e.serial, result: 'exported', upn: e.upn, file: e.file })),
      problems,
    };
    const reportName = await writeRunReport(deps.blobs, deps.containers.reports, buildReportNames(this.buildId), report);
    deps.log.info('Import build finished', {
      build: this.buildId,
      exported: exported.length,
      files: files.length,
      problems: problems.length,
      report: reportName,
    });
    return { build: this.buildId, files, exported, notExported: errors, report: reportName };
  }

  /** Claims the token for this build; undefined when it is no longer exportable (or kept changing). */
  private claim(row: PlannedRow): Promise<Claim | undefined> {
    const file = this.fileOf(row.serial);
    return updateWithRetry(
      this.deps.tokens,
      row.serial,
      (current): RowChange<TokenEntity, Claim | undefined> => {
        if (!current || !isExportable(current.value, this.reexport)) return leaveRow(undefined);
        const now = this.deps.clock.now().toISOString();
        const value: TokenEntity = {
          ...current.value,
          state: 'exporting',
          upn: row.upn,
          buildId: this.buildId,
          exportFile: file,
          exportingSince: now,
          updatedAt: now,
          history: appendHistory(current.value.history, now, 'exporting', this.buildId),
        };
        return writeRow(value, (written) => ({ etag: written.etag, value: written.value, upn: row.upn }));
      },
      { onExhausted: () => undefined },
    );
  }

  private async release(serial: string, claim: Claim): Promise<void> {
    const now = this.deps.clock.now().toISOString();
    await this.deps.tokens.replace(serial, releasedFromExport(claim.value, now, claim.value.buildId ?? undefined), claim.etag);
  }

  /**
   * true when the token ends up exported to `file` by this build; false when its row is no longer this build's
   * claim (the caller takes it out of the file). Throws when it cannot tell: the claim stays for the reconciler,
   * which settles it from the file.
   */
  private markExported(serial: string, claim: Claim, file: string): Promise<boolean> {
    return updateWithRetry(
      this.deps.tokens,
      serial,
      (row): RowChange<TokenEntity, boolean> => {
        // Someone touched the row: a verify check (apply on top), the reconciler or an upload confirmation (already
        // settled from our file), or another process (no longer ours).
        if (!row || row.value.buildId !== claim.value.buildId || row.value.exportFile !== file) return leaveRow(false);
        if (row.value.state === 'exported' || row.value.state === 'imported') return leaveRow(true);
        if (row.value.state !== 'exporting') return leaveRow(false);
        return writeRow(exportedTo(row.value, file, this.deps.clock.now().toISOString()), () => true);
      },
      {
        current: { key: serial, value: claim.value, etag: claim.etag },
        onExhausted: () => {
          throw new PreconditionFailedError(`Serial ${quoteValue(serial)}: its inventory row kept changing while it was marked exported.`);
        },
      },
    );
  }
}
