/**
 * Builds Entra's import CSV from the assignments table and the token inventory.
 *
 * Two-phase and race-safe: every token is first claimed as `exporting` for this
 * build (an ETag-conditional write, so two builds cannot claim one token), the
 * CSV is written with If-None-Match: *, and only then are the tokens marked
 * `exported`. A build that dies half-way leaves `exporting` rows that the
 * reconciler settles: CSV present, `exported`; absent, back to `stored`.
 */
import { decodeBase32, toCanonicalBase32 } from '../core/encoding.js';
import { problem, quoteValue, type Problem } from '../core/problems.js';
import type { HashAlgorithm, TokenType } from '../core/token.js';
import { partFileName, planImport, splitRows, writeEntraCsv, type EntraRow, type ImportCandidate } from '../entra/import-rules.js';
import type { AssignmentRow } from '../formats/assignments.js';
import { buildReportNames } from './blob-names.js';
import { PreconditionFailedError } from './errors.js';
import { newBuildId } from './ingest.js';
import { appendHistory } from './inventory.js';
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
}

export interface BuildResult {
  build: string;
  files: string[];
  exported: { serial: string; upn: string; file: string }[];
  notExported: Problem[];
  report: string;
}

export const IMPORT_PREFIX = 'entra-oath-';

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

    // Phase 1: claim.
    const claimed = new Map<string, { etag: string; value: TokenEntity; upn: string }>();
    await mapPool(planned, deps.concurrency ?? 16, async (row) => {
      const claim = await this.claim(row.serial, row.upn, buildId, fileOf.get(row.serial)!, eligible);
      if (claim) claimed.set(row.serial, { ...claim, upn: row.upn });
    });

    // Phase 2: read the secrets (paced by the vault's read budget).
    const secrets = new Map<string, string>();
    await mapPool([...claimed.entries()], deps.concurrency ?? 16, async ([serial, c]) => {
      const secret = await deps.vault.get(c.value.secretName);
      const bytes = secret ? decodeBase32(secret.value) : undefined;
      if (!bytes) {
        problems.push(problem('EXPORT_SECRET_MISSING', 'error', `Serial ${quoteValue(serial)}: its secret ${c.value.secretName} could not be read from Key Vault; it was not exported.`, { serial }));
        await this.release(serial, c.etag, c.value);
        claimed.delete(serial);
        return;
      }
      secrets.set(serial, toCanonicalBase32(bytes));
    });

    // Phase 3: write the CSV files, never overwriting one.
    const files: string[] = [];
    const exported: BuildResult['exported'] = [];
    const written = new Set<string>();
    try {
      // Parts keep the file names recorded at claim time; a part whose claims were lost is just shorter.
      for (const part of parts) {
        const mine = part.filter((r) => claimed.has(r.serial));
        if (mine.length === 0) continue;
        const file = fileOf.get(mine[0]!.serial)!;
        const entraRows: EntraRow[] = mine.map((r) => {
          const t = claimed.get(r.serial)!.value;
          return { upn: r.upn, serial: r.serial, secretBase32: secrets.get(r.serial)!, period: t.period, manufacturer: t.manufacturer, model: t.model };
        });
        await deps.blobs.write(deps.containers.imports, file, writeEntraCsv(entraRows), { contentType: 'text/csv; charset=utf-8', ifNoneMatch: '*' });
        written.add(file);
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

    // Phase 4: mark exported.
    await mapPool([...claimed.entries()], deps.concurrency ?? 16, async ([serial, c]) => {
      await this.markExported(serial, c.etag, c.value, fileOf.get(serial)!);
      exported.push({ serial, upn: c.upn, file: fileOf.get(serial)! });
    });
    exported.sort((a, b) => a.serial.localeCompare(b.serial));

    const { reportJson: reportName, reportHtml } = buildReportNames(buildId);
    const report: RunReport = {
      kind: 'build',
      subject: buildId,
      startedAt: startedAt.toISOString(),
      finishedAt: deps.clock.now().toISOString(),
      outcome: exported.length === 0 && problems.length === 0 ? 'nothing-to-do' : problems.some((p) => p.severity === 'error') ? 'completed-with-problems' : 'completed',
      summary: exported.length
        ? `${exported.length} tokens exported to ${files.join(', ')}. The file holds secrets: upload it in the Entra admin center, then confirm with POST /api/imports/{file}/uploaded.`
        : 'No token was ready to export.',
      counts: { exported: exported.length, files: files.length, notExported: problems.filter((p) => p.severity === 'error').length, unassigned: plan.unassigned.length },
      details: { reexport: [...reexport].join(', ') || null },
      items: exported.map((e) => ({ serial: e.serial, result: 'exported', upn: e.upn, file: e.file })),
      problems,
    };
    await deps.blobs.write(deps.containers.reports, reportName, renderReportJson(report), { contentType: 'application/json' });
    await deps.blobs.write(deps.containers.reports, reportHtml, renderReportHtml(report), { contentType: 'text/html; charset=utf-8' });
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

  private async markExported(serial: string, etag: string, value: TokenEntity, file: string): Promise<void> {
    const now = this.deps.clock.now().toISOString();
    const next: TokenEntity = { ...value, state: 'exported', exportFile: file, exportingSince: null, updatedAt: now, history: appendHistory(value.history, now, 'exported', file) };
    try {
      await this.deps.tokens.replace(serial, next, etag);
    } catch (err) {
      if (!(err instanceof PreconditionFailedError)) throw err;
      // Someone touched the row (a verify check): apply on top if it is still ours.
      const current = await this.deps.tokens.get(serial);
      if (current && current.value.state === 'exporting' && current.value.buildId === value.buildId) {
        await this.deps.tokens.replace(serial, { ...current.value, state: 'exported', exportFile: file, exportingSince: null, updatedAt: now, history: appendHistory(current.value.history, now, 'exported', file) }, current.etag);
      }
    }
  }
}
