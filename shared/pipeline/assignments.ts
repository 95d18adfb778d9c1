/**
 * Assignment lists dropped in `assignments`: checked with the core's rules,
 * merged into the `assignments` table (an existing assignment to another user
 * stands), reported, and the file removed (or quarantined when rows were refused).
 */
import { FileError, hasErrors, problem, quoteValue, sortProblems, type Problem, type ProblemCode } from '../core/problems.js';
import { screenAssignments, upnProblem } from '../entra/import-rules.js';
import { readAssignments } from '../formats/assignments.js';
import { assignmentFileBlobNames } from './blob-names.js';
import { leaveRow, updateWithRetry, writeRow, type RowChange } from './conditional-update.js';
import { PreconditionFailedError } from './errors.js';
import { appendHistory } from './inventory.js';
import type { AssignmentEntity, BlobStore, Clock, EntityTable, Logger, TokenEntity } from './ports.js';
import { writeRunReport, type RunReport } from './report.js';
import { checkBlobSize } from './size-limit.js';

export interface AssignmentDeps {
  blobs: BlobStore;
  assignments: EntityTable<AssignmentEntity>;
  tokens: EntityTable<TokenEntity>;
  clock: Clock;
  log: Logger;
  containers: { assignments: string; reports: string; quarantine: string };
  maxFileBytes: number;
}

export interface AssignmentIngestResult {
  outcome: RunReport['outcome'] | 'gone';
  added: number;
  unchanged: number;
  reportName?: string;
}

type UpsertOutcome = { kind: 'added' | 'unchanged' } | { kind: 'conflict'; existingUpn: string };

export type DeleteAssignmentResult = { status: 'deleted' } | { status: 'not-found' } | { status: 'refused'; state: string };

/** Data rows of a list: those taken, plus those refused (a refused row counts once, however many problems it has). */
function rowCount(taken: number, problems: readonly Problem[]): number {
  const refusedLines = new Set<number>();
  let unlocated = 0;
  for (const p of problems) {
    // A conflict with the table is reported on a row that is also among the items.
    if (p.severity !== 'error' || p.code === 'ASSIGNMENT_TABLE_CONFLICT') continue;
    if (p.line === undefined) unlocated++;
    else refusedLines.add(p.line);
  }
  return taken + refusedLines.size + unlocated;
}

export type ReassignResult =
  | { status: 'assigned'; previousUpn: string | null }
  | { status: 'unchanged' }
  | { status: 'not-found' }
  | { status: 'refused'; state: string }
  | { status: 'invalid'; code: ProblemCode };

export class AssignmentService {
  constructor(private readonly deps: AssignmentDeps) {}

  async ingest(name: string): Promise<AssignmentIngestResult> {
    const { blobs, containers } = this.deps;
    const startedAt = this.deps.clock.now().toISOString();
    const props = await blobs.properties(containers.assignments, name);
    if (!props) return { outcome: 'gone', added: 0, unchanged: 0 };
    // The version this run worked on (the blob can be replaced meanwhile: that one triggers its own run).
    let version = props.etag;
    const problems: Problem[] = [];
    const items: RunReport['items'] = [];
    let added = 0;
    let unchanged = 0;
    let pending = 0;
    try {
      // Properties first: a list over the limit is refused without loading it, and a read never loads more.
      checkBlobSize(name, props.contentLength, this.deps.maxFileBytes);
      const blob = await blobs.read(containers.assignments, name, { maxBytes: this.deps.maxFileBytes });
      if (!blob) return { outcome: 'gone', added: 0, unchanged: 0 };
      version = blob.etag;
      checkBlobSize(name, blob.contentLength, this.deps.maxFileBytes);
      const list = readAssignments(blob.bytes, name, this.deps.maxFileBytes);
      problems.push(...list.problems);
      const screened = screenAssignments(list.rows);
      problems.push(...screened.problems);
      for (const row of screened.accepted) {
        const outcome = await this.upsert(row.serial, row.upn, name, row.line);
        if (outcome.kind === 'conflict') {
          problems.push(
            problem(
              'ASSIGNMENT_TABLE_CONFLICT',
              'error',
              `Line ${row.line}: serial ${quoteValue(row.serial)} is already assigned to ${quoteValue(outcome.existingUpn)}; that assignment stands. To reassign it, PUT /api/assignments/${row.serial} with { "upn": ${quoteValue(row.upn)} }.`,
              { line: row.line, serial: row.serial },
            ),
          );
          items.push({ serial: row.serial, result: 'conflict', upn: row.upn });
          continue;
        }
        if (outcome.kind === 'added') added++;
        else unchanged++;
        items.push({ serial: row.serial, result: outcome.kind, upn: row.upn });
        if (!(await this.deps.tokens.get(row.serial))) {
          pending++;
          problems.push(
            problem(
              'ASSIGNMENT_TOKEN_PENDING',
              'info',
              `Line ${row.line}: no token with serial ${quoteValue(row.serial)} has been ingested yet; the assignment is kept and used once the seed file arrives.`,
              { line: row.line, serial: row.serial },
            ),
          );
        }
      }
    } catch (err) {
      if (!(err instanceof FileError)) throw err;
      problems.push(err.toProblem());
    }
    const reported = sortProblems(problems);
    const failed = hasErrors(reported);
    const etag = version.replace(/"/g, '');
    const derived = assignmentFileBlobNames(name, etag);
    const report: RunReport = {
      kind: 'assignments',
      subject: `${containers.assignments}/${name}`,
      batch: `${name}@${etag}`,
      startedAt,
      finishedAt: this.deps.clock.now().toISOString(),
      outcome: failed ? (added + unchanged === 0 ? 'rejected' : 'completed-with-problems') : 'completed',
      summary: `${added} assignments added, ${unchanged} already known${pending ? `, ${pending} waiting for their token` : ''}${failed ? '; rows with errors were not taken and the file was moved to quarantine' : ''}.`,
      counts: {
        rows: rowCount(items.length, reported),
        added,
        unchanged,
        pending,
        errors: reported.filter((p) => p.severity === 'error').length,
      },
      items,
      problems: reported,
    };
    const reportName = await writeRunReport(blobs, containers.reports, derived, report);
    if (failed) await blobs.copy(containers.assignments, name, containers.quarantine, derived.quarantinedFile);
    await blobs.delete(containers.assignments, name, { ifMatch: version }).catch((err: unknown) => {
      // Replaced by a newer upload meanwhile: that one triggers its own run.
      if (!(err instanceof PreconditionFailedError)) throw err;
    });
    this.deps.log.info('Assignment list processed', { blob: name, outcome: report.outcome, added, unchanged, pending });
    return { outcome: report.outcome, added, unchanged, reportName };
  }

  private upsert(serial: string, upn: string, sourceFile: string, line: number): Promise<UpsertOutcome> {
    return updateWithRetry(
      this.deps.assignments,
      serial,
      (existing): RowChange<AssignmentEntity, UpsertOutcome> => {
        if (existing)
          return leaveRow(
            existing.value.upn.toLowerCase() === upn.toLowerCase()
              ? { kind: 'unchanged' }
              : { kind: 'conflict', existingUpn: existing.value.upn },
          );
        return writeRow({ serial, upn, sourceFile, line, createdAt: this.deps.clock.now().toISOString() }, () => ({ kind: 'added' }));
      },
      { onExhausted: async () => ({ kind: 'conflict', existingUpn: (await this.deps.assignments.get(serial))?.value.upn ?? '' }) },
    );
  }

  /**
   * Assigns a stored token (not yet on its way to Entra) to another user, replacing its assignment, and notes it in
   * the token's history. The UPN passes the same rules as a row of an assignment list. A token already exported
   * or imported is refused: Entra holds it (or will) for the user of its import file.
   */
  async reassign(serial: string, upn: string): Promise<ReassignResult> {
    const refused = upnProblem(upn, 0, serial);
    if (refused) return { status: 'invalid', code: refused.code };
    const token = await this.deps.tokens.get(serial);
    if (!token) return { status: 'not-found' };
    if (token.value.state !== 'stored') return { status: 'refused', state: token.value.state };
    const now = this.deps.clock.now().toISOString();
    const result = await updateWithRetry(this.deps.assignments, serial, (existing): RowChange<AssignmentEntity, ReassignResult> => {
      if (existing?.value.upn === upn) return leaveRow({ status: 'unchanged' });
      return writeRow({ serial, upn, sourceFile: 'console', line: 0, createdAt: now }, () => ({
        status: 'assigned',
        previousUpn: existing?.value.upn ?? null,
      }));
    });
    if (result.status !== 'assigned') return result;
    // A record for people, on the token row as it is now.
    await updateWithRetry(this.deps.tokens, serial, (row): RowChange<TokenEntity, void> =>
      row
        ? writeRow({ ...row.value, updatedAt: now, history: appendHistory(row.value.history, now, 'assigned', upn) }, () => undefined)
        : leaveRow(undefined),
    );
    this.deps.log.info('Assignment changed', { serial });
    return result;
  }

  /** Removes an assignment whose token is not yet on its way to Entra (stored, or not ingested yet). */
  async remove(serial: string): Promise<DeleteAssignmentResult> {
    const existing = await this.deps.assignments.get(serial);
    if (!existing) return { status: 'not-found' };
    const token = await this.deps.tokens.get(serial);
    if (token && token.value.state !== 'stored' && token.value.state !== 'retired') return { status: 'refused', state: token.value.state };
    await this.deps.assignments.delete(serial, existing.etag);
    this.deps.log.info('Assignment deleted', { serial });
    return { status: 'deleted' };
  }
}
