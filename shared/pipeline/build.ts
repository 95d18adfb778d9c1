/**
 * Builds Entra's import CSV from the assignments table and the token inventory.
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
import { decodeBase32, toCanonicalBase32 } from '../core/encoding.js';
import { problem, quoteValue, type Problem } from '../core/problems.js';
import type { HashAlgorithm, TokenType } from '../core/token.js';
import { partFileName, planImport, splitRows, writeEntraCsv, type EntraRow, type ImportCandidate, type PlannedRow } from '../entra/import-rules.js';
import type { AssignmentRow } from '../formats/assignments.js';
import { PreconditionFailedError } from './errors.js';
import { newBuildId } from './ingest.js';
import { appendHistory } from './inventory.js';
import { BuildHeartbeat } from './liveness.js';
import type { AssignmentEntity, BlobStore, Clock, EntityTable, Logger, TokenEntity, Versioned } from './ports.js';
import { mapPool } from './rate-limit.js';
import { renderReportHtml, renderReportJson, type RunReport } from './report.js';
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
}

export interface BuildResult {
  build: string;
  files: string[];
  exported: { serial: string; upn: string; file: string }[];
  notExported: Problem[];
  report: string;
}

export const IMPORT_PREFIX = 'entra-oath-';
const CSV_CONTENT_TYPE = 'text/csv; charset=utf-8';

function candidateOf(t: TokenEntity): ImportCandidate {
  return { serial: t.serial, manufacturer: t.manufacturer, model: t.model, type: t.type as TokenType, algorithm: t.algorithm as HashAlgorithm, digits: t.digits, period: t.period, secretBytes: t.secretBytes };
}

function timestamp(d: Date): string {
  return d.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
}

export class BuildService {
  constructor(private readonly deps: BuildDeps) {}

  /** Builds from every assignment whose token is `stored`; `reexport` names exported tokens to export again. */
  async build(options: { reexport?: string[] } = {}): Promise<BuildResult> {
    const { deps } = this;
    const startedAt = deps.clock.now();
    const buildId = newBuildId();
    const reexport = new Set(options.reexport ?? []);
    const problems: Problem[] = [];

    const tokens = new Map<string, Versioned<TokenEntity>>();
    for await (const t of deps.tokens.list()) tokens.set(t.value.serial, t);
    const assignmentRows: AssignmentRow[] = [];
    for await (const a of deps.assignments.list()) assignmentRows.push({ upn: a.value.upn, serial: a.value.serial, line: a.value.line });

    // Who holds what already: exported or imported tokens count toward Entra's five.
    const held = new Map<string, number>();
    for (const t of tokens.values()) {
      if ((t.value.state === 'exported' || t.value.state === 'imported' || t.value.state === 'exporting') && t.value.upn && !reexport.has(t.value.serial)) {
        held.set(t.value.upn.toLowerCase(), (held.get(t.value.upn.toLowerCase()) ?? 0) + 1);
      }
    }
    for (const serial of reexport) {
      const t = tokens.get(serial);
      if (!t) problems.push(problem('TOKEN_NOT_FOUND', 'error', `Re-export of ${quoteValue(serial)}: no token has this serial.`, { serial }));
      else if (t.value.state !== 'exported' && t.value.state !== 'stored') {
        problems.push(problem('TOKEN_STATE_INVALID', 'error', `Re-export of ${quoteValue(serial)}: the token is ${t.value.state}; only stored or exported tokens can be exported again.`, { serial }));
      }
    }
    const eligible = (t: TokenEntity) => t.state === 'stored' || (reexport.has(t.serial) && t.state === 'exported');
    const rows = assignmentRows
      .filter((a) => {
        const t = tokens.get(a.serial);
        return t !== undefined && eligible(t.value);
      })
      .sort((a, b) => a.serial.localeCompare(b.serial));
    for (const serial of reexport) {
      const t = tokens.get(serial);
      if (t && eligible(t.value) && !assignmentRows.some((a) => a.serial === serial)) {
        problems.push(problem('TOKEN_UNASSIGNED', 'error', `Re-export of ${quoteValue(serial)}: no assignment names this token.`, { serial }));
      }
    }
    const plan = planImport(
      [...tokens.values()].filter((t) => eligible(t.value)).map((t) => candidateOf(t.value)),
      rows,
      { existingTokensPerUser: held },
    );
    problems.push(...plan.problems.filter((p) => p.code !== 'ASSIGNMENT_DUPLICATE_ROW'));

    const stamp = timestamp(startedAt);
    const planned = plan.exported;
    const parts = splitRows(planned, deps.maxRows);
    const baseName = `${IMPORT_PREFIX}${stamp}-${buildId}.csv`;
    const fileOf = new Map<string, string>();
    parts.forEach((part, i) => part.forEach((r) => fileOf.set(r.serial, partFileName(baseName, i, parts.length))));

    // The heartbeat shows the reconciler that this build is alive for as long as it runs (see ./liveness.ts).
    const heartbeat = await BuildHeartbeat.start({ blobs: deps.blobs, container: deps.containers.reports, clock: deps.clock, log: deps.log }, buildId, deps.heartbeatMs);
    try {
      return await this.exportPlanned({ buildId, startedAt, reexport, problems, planned, parts, fileOf, eligible, unassigned: plan.unassigned.length, heartbeat });
    } finally {
      await heartbeat.stop();
    }
  }

  private async exportPlanned(run: {
    buildId: string;
    startedAt: Date;
    reexport: Set<string>;
    problems: Problem[];
    planned: PlannedRow[];
    parts: PlannedRow[][];
    fileOf: Map<string, string>;
    eligible: (t: TokenEntity) => boolean;
    unassigned: number;
    heartbeat: BuildHeartbeat;
  }): Promise<BuildResult> {
    const { deps } = this;
    const { buildId, startedAt, reexport, problems, planned, parts, fileOf, eligible, heartbeat } = run;
    const claimed = new Map<string, { etag: string; value: TokenEntity; upn: string }>();
    const lost = (serial: string, why: string) => {
      problems.push(problem('EXPORT_CLAIM_LOST', 'error', `Serial ${quoteValue(serial)}: ${why}; it was not exported. A later build exports it.`, { serial }));
      claimed.delete(serial);
    };

    // Phase 1: claim.
    await mapPool(planned, deps.concurrency ?? 16, async (row) => {
      const claim = await this.claim(row.serial, row.upn, buildId, fileOf.get(row.serial)!, eligible);
      if (claim) claimed.set(row.serial, { ...claim, upn: row.upn });
    });

    // Phase 2: read the secrets (paced by the vault's read budget).
    const secrets = new Map<string, string>();
    await mapPool([...claimed.entries()], deps.concurrency ?? 16, async ([serial, c]) => {
      // Given up on by the reconciler: spend no more of the read budget; phase 3 reports the tokens.
      if (heartbeat.lost) return;
      // The version the claimed row records, never a newer one written since (a reprogramming in flight).
      const secret = await deps.vault.get(c.value.secretName, c.value.secretVersion || undefined);
      const bytes = secret ? decodeBase32(secret.value) : undefined;
      if (!bytes) {
        problems.push(problem('EXPORT_SECRET_MISSING', 'error', `Serial ${quoteValue(serial)}: its secret ${c.value.secretName} could not be read from Key Vault; it was not exported.`, { serial }));
        await this.release(serial, c.etag, c.value);
        claimed.delete(serial);
        return;
      }
      secrets.set(serial, toCanonicalBase32(bytes));
    });

    // Phase 3: write the CSV files, never overwriting one, listing only tokens whose claim this build still holds.
    const files: string[] = [];
    const exported: BuildResult['exported'] = [];
    const written = new Map<string, { etag: string; rows: EntraRow[] }>();
    try {
      // Parts keep the file names recorded at claim time; a part whose claims were lost is just shorter.
      for (const part of parts) {
        const mine = part.filter((r) => claimed.has(r.serial));
        if (mine.length === 0) continue;
        const file = fileOf.get(mine[0]!.serial)!;
        if (!(await heartbeat.confirm())) {
          // The reconciler settles these rows itself; releasing under our ETag only speeds that up.
          for (const r of mine) {
            const c = claimed.get(r.serial)!;
            await this.release(r.serial, c.etag, c.value).catch(() => undefined);
            lost(r.serial, 'the reconciler took its claim back (no heartbeat from this build for RECONCILE_MIN_AGE_MINUTES)');
          }
          continue;
        }
        // Anything else that changed a claimed row since (an operator, another tool) takes the token out of the file.
        const current = new Map<string, Versioned<TokenEntity>>();
        for await (const row of deps.tokens.list({ buildId })) current.set(row.value.serial, row);
        const entraRows: EntraRow[] = [];
        for (const r of mine) {
          const now = current.get(r.serial);
          if (!now || now.value.state !== 'exporting' || now.value.exportFile !== file) {
            lost(r.serial, 'its inventory row was changed by another process before the import file was written');
            continue;
          }
          claimed.set(r.serial, { etag: now.etag, value: now.value, upn: r.upn });
          const t = now.value;
          entraRows.push({ upn: r.upn, serial: r.serial, secretBase32: secrets.get(r.serial)!, period: t.period, manufacturer: t.manufacturer, model: t.model });
        }
        if (entraRows.length === 0) continue;
        const { etag } = await deps.blobs.write(deps.containers.imports, file, writeEntraCsv(entraRows), { contentType: CSV_CONTENT_TYPE, ifNoneMatch: '*' });
        written.set(file, { etag, rows: entraRows });
        files.push(file);
      }
    } catch (err) {
      // Nothing half-done: tokens of a file known to be absent go back to stored. A failed write may
      // still have landed (its answer lost), so a file that exists, or cannot be checked, keeps its
      // claims for the reconciler, which settles them from what reached storage.
      const absent = new Map<string, Promise<boolean>>();
      const isAbsent = (file: string) => {
        if (!absent.has(file)) absent.set(file, deps.blobs.properties(deps.containers.imports, file).then((p) => p === undefined, () => false));
        return absent.get(file)!;
      };
      for (const [serial, c] of claimed) {
        const file = fileOf.get(serial)!;
        if (!written.has(file) && (await isAbsent(file))) await this.release(serial, c.etag, c.value).catch(() => undefined);
      }
      throw err;
    }

    // Phase 4: mark exported. A token whose row is no longer ours leaves the result, the report and its file.
    const lostAfterWrite = new Map<string, Set<string>>();
    await mapPool([...claimed.entries()], deps.concurrency ?? 16, async ([serial, c]) => {
      const file = fileOf.get(serial)!;
      if (await this.markExported(serial, c.etag, c.value, file)) {
        exported.push({ serial, upn: c.upn, file });
        return;
      }
      lost(serial, 'its inventory row was changed by another process before it was marked exported, so it was taken out of the import file');
      lostAfterWrite.set(file, (lostAfterWrite.get(file) ?? new Set<string>()).add(serial));
    });
    for (const [file, serials] of lostAfterWrite) {
      const { etag, rows } = written.get(file)!;
      const keep = rows.filter((r) => !serials.has(r.serial));
      try {
        if (keep.length > 0) {
          await deps.blobs.write(deps.containers.imports, file, writeEntraCsv(keep), { contentType: CSV_CONTENT_TYPE, ifMatch: etag });
        } else {
          await deps.blobs.delete(deps.containers.imports, file, { ifMatch: etag });
          files.splice(files.indexOf(file), 1);
        }
      } catch (err) {
        deps.log.error('Import file still lists tokens this build no longer holds', { file, tokens: serials.size, error: (err as Error).name });
        problems.push(problem('EXPORT_CLAIM_LOST', 'error', `Import file ${file} could not be rewritten and still lists ${[...serials].sort().join(', ')}, which this build no longer holds: remove those rows before uploading it.`));
      }
    }
    exported.sort((a, b) => a.serial.localeCompare(b.serial));

    const reportName = `build-${buildId}.json`;
    const report: RunReport = {
      kind: 'build',
      subject: buildId,
      startedAt: startedAt.toISOString(),
      finishedAt: deps.clock.now().toISOString(),
      outcome: exported.length === 0 && problems.length === 0 ? 'nothing-to-do' : problems.some((p) => p.severity === 'error') ? 'completed-with-problems' : 'completed',
      summary: exported.length
        ? `${exported.length} tokens exported to ${files.join(', ')}. The file holds secrets: upload it in the Entra admin center, then confirm with POST /api/imports/{file}/uploaded.`
        : 'No token was ready to export.',
      counts: { exported: exported.length, files: files.length, notExported: problems.filter((p) => p.severity === 'error').length, unassigned: run.unassigned },
      details: { reexport: [...reexport].join(', ') || null },
      items: exported.map((e) => ({ serial: e.serial, result: 'exported', upn: e.upn, file: e.file })),
      problems,
    };
    await deps.blobs.write(deps.containers.reports, reportName, renderReportJson(report), { contentType: 'application/json' });
    await deps.blobs.write(deps.containers.reports, `build-${buildId}.html`, renderReportHtml(report), { contentType: 'text/html; charset=utf-8' });
    deps.log.info('Import build finished', { build: buildId, exported: exported.length, files: files.length, problems: problems.length });
    return { build: buildId, files, exported, notExported: problems.filter((p) => p.severity === 'error'), report: reportName };
  }

  private async claim(serial: string, upn: string, buildId: string, file: string, eligible: (t: TokenEntity) => boolean): Promise<{ etag: string; value: TokenEntity } | undefined> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const current = await this.deps.tokens.get(serial);
      if (!current || !eligible(current.value)) return undefined;
      const now = this.deps.clock.now().toISOString();
      const value: TokenEntity = { ...current.value, state: 'exporting', upn, buildId, exportFile: file, exportingSince: now, updatedAt: now, history: appendHistory(current.value.history, now, 'exporting', buildId) };
      try {
        return { etag: await this.deps.tokens.replace(serial, value, current.etag), value };
      } catch (err) {
        if (!(err instanceof PreconditionFailedError)) throw err;
      }
    }
    return undefined;
  }

  private async release(serial: string, etag: string, value: TokenEntity): Promise<void> {
    const now = this.deps.clock.now().toISOString();
    await this.deps.tokens.replace(serial, { ...value, state: 'stored', buildId: null, exportFile: null, exportingSince: null, upn: null, updatedAt: now, history: appendHistory(value.history, now, 'export-released', value.buildId ?? undefined) }, etag);
  }

  /**
   * true when the token ends up exported to `file` by this build; false when its row is no longer this build's
   * claim (the caller takes it out of the file). Throws when it cannot tell: the claim stays for the reconciler,
   * which settles it from the file.
   */
  private async markExported(serial: string, etag: string, value: TokenEntity, file: string): Promise<boolean> {
    const exportedNow = (row: TokenEntity): TokenEntity => {
      const now = this.deps.clock.now().toISOString();
      return { ...row, state: 'exported', exportFile: file, exportingSince: null, updatedAt: now, history: appendHistory(row.history, now, 'exported', file) };
    };
    let attempt = { etag, value };
    for (let tries = 0; tries < 5; tries++) {
      try {
        await this.deps.tokens.replace(serial, exportedNow(attempt.value), attempt.etag);
        return true;
      } catch (err) {
        if (!(err instanceof PreconditionFailedError)) throw err;
      }
      // Someone touched the row: a verify check (apply on top), the reconciler or an upload confirmation (already
      // settled from our file), or another process (no longer ours).
      const current = await this.deps.tokens.get(serial);
      if (!current || current.value.buildId !== value.buildId || current.value.exportFile !== file) return false;
      if (current.value.state === 'exported' || current.value.state === 'imported') return true;
      if (current.value.state !== 'exporting') return false;
      attempt = { etag: current.etag, value: current.value };
    }
    throw new PreconditionFailedError(`Serial ${quoteValue(serial)}: its inventory row kept changing while it was marked exported.`);
  }
}
