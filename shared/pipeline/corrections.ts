/**
 * Ways back from a mistake once tokens are on their way to Entra:
 * - withdraw an import file that was not uploaded (the file is deleted, its tokens are `stored` again);
 * - change or delete the assignment of a token: an exported-not-uploaded token's whole file is withdrawn (the next
 *   build lists the file's other tokens again, with the corrected row), an imported token is refused until it was
 *   removed in Entra and marked so here;
 * - mark an imported token removed from Entra, so it can be exported again;
 * - retire a token that sits in a waiting import file: the file is withdrawn, the token retired in the same row write
 *   (InventoryService.retire then disables its secret);
 * - Graph mode: change or delete the assignment of a token assigned in Entra (`assigned` or `activated`): it is
 *   unassigned from its user in Entra (the device stays in Entra's inventory) and `stored` again, so the next build
 *   assigns the same device to the new user (or to nobody).
 *
 * Every change is an ETag-conditional row write (./conditional-update.ts) with a history entry. A withdrawal
 * deletes the file first (the only copy of its secrets outside the vault), then settles the rows: one stopped
 * part-way is finished by the same request again, as the file's rows still name it.
 */
import { leaveRow, updateWithRetry, writeRow, type RowChange } from './conditional-update.js';
import { appendHistory } from './inventory.js';
import type { AssignmentEntity, BlobStore, Clock, EntityTable, HardwareOathDirectory, Logger, TokenEntity, TokenState } from './ports.js';

export interface CorrectionDeps {
  blobs: BlobStore;
  tokens: EntityTable<TokenEntity>;
  assignments: EntityTable<AssignmentEntity>;
  clock: Clock;
  log: Logger;
  importsContainer: string;
  /** Graph mode: a token assigned in Entra is unassigned there before its assignment changes. */
  directory?: HardwareOathDirectory;
}

/** Graph mode: the user a token was unassigned from in Entra by an assignment change. */
export interface UnassignedInEntra {
  upn: string | null;
  deviceId: string;
}

export type WithdrawResult =
  | { status: 'withdrawn'; file: string; deleted: boolean; released: string[]; retired: string[] }
  | { status: 'not-found' }
  /** Some of its tokens are imported (the file was confirmed uploaded) or still being written by a build. */
  | { status: 'refused'; reason: 'imported' | 'exporting'; serials: string[] };

export type AssignmentChangeResult =
  | {
      status: 'changed' | 'unchanged' | 'created' | 'deleted';
      serial: string;
      upn: string | null;
      previousUpn: string | null;
      tokenState: TokenState | null;
      withdrawn: WithdrawResult | null;
      unassignedInEntra: UnassignedInEntra | null;
    }
  | { status: 'not-found' }
  | { status: 'refused'; state: TokenState; file: string | null };

export type RemovedFromEntraResult =
  { status: 'marked'; serial: string; upn: string | null } | { status: 'not-found' } | { status: 'refused'; state: TokenState };

export type RetirePreparation =
  | { status: 'ready'; previousState: TokenState; withdrawn: WithdrawResult | null }
  | { status: 'not-found' }
  | { status: 'refused'; state: TokenState };

export interface AssignmentQuery {
  serial?: string;
  upn?: string;
  /** The token's state, or `pending` for an assignment whose token is not in the inventory (yet). */
  state?: TokenState | 'pending';
  pageSize: number;
  after?: string;
}

export interface AssignmentView {
  serial: string;
  upn: string;
  sourceFile: string;
  line: number;
  createdAt: string;
  tokenState: TokenState | 'pending';
  /** The import file the token is listed in, while exported. */
  exportFile: string | null;
}

export const ASSIGNMENT_STATES = ['stored', 'exporting', 'exported', 'imported', 'assigned', 'activated', 'retired', 'pending'] as const;

export class CorrectionService {
  constructor(private readonly deps: CorrectionDeps) {}

  private now(): string {
    return this.deps.clock.now().toISOString();
  }

  /**
   * Withdraws import file `file`: deletes it, then puts its exported tokens back to `stored` (those in `retire`
   * become `retired` instead). Refused, changing nothing, while any of its tokens is imported or being exported.
   */
  async withdraw(file: string, why: string, retire: ReadonlySet<string> = new Set()): Promise<WithdrawResult> {
    const { deps } = this;
    const present = (await deps.blobs.properties(deps.importsContainer, file)) !== undefined;
    const rows: TokenEntity[] = [];
    for await (const row of deps.tokens.list({ exportFile: file })) rows.push(row.value);
    if (!present && rows.length === 0) return { status: 'not-found' };
    const imported = rows.filter((r) => r.state === 'imported').map((r) => r.serial);
    if (imported.length > 0) return { status: 'refused', reason: 'imported', serials: imported.sort() };
    const exporting = rows.filter((r) => r.state === 'exporting').map((r) => r.serial);
    if (exporting.length > 0) return { status: 'refused', reason: 'exporting', serials: exporting.sort() };

    const deleted = present ? await deps.blobs.delete(deps.importsContainer, file) : false;
    const released: string[] = [];
    const retired: string[] = [];
    for (const { serial } of rows) {
      const outcome = await updateWithRetry(deps.tokens, serial, (row): RowChange<TokenEntity, 'stored' | 'retired' | 'left'> => {
        if (!row || row.value.exportFile !== file || row.value.state !== 'exported') return leaveRow('left');
        const now = this.now();
        const retiring = retire.has(serial);
        const history = appendHistory(row.value.history, now, 'export-withdrawn', `${file}: ${why}`);
        const value: TokenEntity = {
          ...row.value,
          state: retiring ? 'retired' : 'stored',
          upn: null,
          buildId: null,
          exportFile: null,
          exportingSince: null,
          updatedAt: now,
          history: retiring ? appendHistory(history, now, 'retired', why) : history,
        };
        return writeRow(value, () => (retiring ? 'retired' : 'stored'));
      });
      if (outcome === 'stored') released.push(serial);
      if (outcome === 'retired') retired.push(serial);
    }
    deps.log.info('Import file withdrawn', { file, deleted, released: released.length, retired: retired.length });
    return { status: 'withdrawn', file, deleted, released: released.sort(), retired: retired.sort() };
  }

  /**
   * Sets (upn) or deletes (null) the assignment of `serial`. An exported token's file is withdrawn first, so the
   * next build lists the token with its new user (or not at all) and the file's other tokens again.
   */
  async setAssignment(serial: string, upn: string | null): Promise<AssignmentChangeResult> {
    const { deps } = this;
    const existing = await deps.assignments.get(serial);
    const token = await deps.tokens.get(serial);
    const state = token?.value.state ?? null;
    // Graph mode: a token held by a user in Entra. Its row's upn is who holds it, whatever the table says now (a
    // change stopped between the table and Entra is finished by the same request again).
    const heldInEntra = deps.directory !== undefined && (state === 'assigned' || state === 'activated');
    const holder = heldInEntra ? (token!.value.upn ?? null) : null;
    if (upn === null && !existing && !heldInEntra) return { status: 'not-found' };
    const previousUpn = existing?.value.upn ?? holder;
    if (upn !== null && previousUpn === upn && (!heldInEntra || holder?.toLowerCase() === upn.toLowerCase())) {
      return { status: 'unchanged', serial, upn, previousUpn, tokenState: state, withdrawn: null, unassignedInEntra: null };
    }
    if (state === 'imported' || state === 'exporting') return { status: 'refused', state, file: token!.value.exportFile };
    let withdrawn: WithdrawResult | null = null;
    if (state === 'exported' && token!.value.exportFile) {
      withdrawn = await this.withdraw(
        token!.value.exportFile,
        upn === null ? `assignment of ${serial} deleted` : `assignment of ${serial} changed`,
      );
      if (withdrawn.status === 'refused') {
        const again = await deps.tokens.get(serial);
        return { status: 'refused', state: again?.value.state ?? 'exporting', file: again?.value.exportFile ?? null };
      }
    }
    const now = this.now();
    // The table first: a change interrupted after it is finished by the same request (the row still names the holder).
    if (upn === null) {
      if (existing) await deps.assignments.delete(serial);
    } else if (previousUpn !== upn || !existing) {
      await deps.assignments.upsert(serial, { serial, upn, sourceFile: 'PUT /api/assignments', line: 0, createdAt: now });
    }
    const unassignedInEntra = heldInEntra ? await this.unassignInEntra(serial, upn) : null;
    if (token) {
      const event = upn === null ? 'assignment-deleted' : 'assignment-changed';
      const detail = upn === null ? `was ${previousUpn}` : previousUpn ? `${previousUpn} -> ${upn}` : upn;
      await updateWithRetry(deps.tokens, serial, (row) =>
        row
          ? writeRow({ ...row.value, updatedAt: now, history: appendHistory(row.value.history, now, event, detail) }, () => undefined)
          : leaveRow(undefined),
      );
    }
    deps.log.info(upn === null ? 'Assignment deleted' : 'Assignment set', {
      serial,
      withdrawnFile: withdrawn?.status === 'withdrawn' ? withdrawn.file : null,
    });
    const after = (await deps.tokens.get(serial))?.value.state ?? null;
    const status = upn === null ? 'deleted' : existing || unassignedInEntra ? 'changed' : 'created';
    return { status, serial, upn, previousUpn, tokenState: after, withdrawn, unassignedInEntra };
  }

  /**
   * Graph mode: unassigns the token from its holder in Entra (idempotent: a method already gone is fine), then
   * puts the row back to `stored` with no user, keeping its device id; the next build adopts the device (now free)
   * for the new assignment. A Graph failure throws before the row changes: the same request again finishes it.
   */
  private async unassignInEntra(serial: string, newUpn: string | null): Promise<UnassignedInEntra | null> {
    const directory = this.deps.directory!;
    const row = await this.deps.tokens.get(serial);
    if (!row || (row.value.state !== 'assigned' && row.value.state !== 'activated') || !row.value.deviceId) return null;
    const { userId, methodId, deviceId } = row.value;
    if (userId && methodId) await directory.unassign(userId, methodId);
    const from = row.value.upn;
    const done = await updateWithRetry(this.deps.tokens, serial, (current): RowChange<TokenEntity, boolean> => {
      if (!current || current.value.deviceId !== deviceId || (current.value.state !== 'assigned' && current.value.state !== 'activated'))
        return leaveRow(false);
      const now = this.now();
      const value: TokenEntity = {
        ...current.value,
        state: 'stored',
        upn: null,
        userId: null,
        methodId: null,
        buildId: null,
        exportFile: null,
        exportingSince: null,
        // A new holder is a new activation.
        lastAcceptedStep: null,
        activatedBuildId: null,
        updatedAt: now,
        history: appendHistory(
          current.value.history,
          now,
          'unassigned-in-entra',
          `from ${from ?? 'its user'}${newUpn ? `, for ${newUpn}` : ''}; device ${deviceId} stays in Entra`,
        ),
      };
      return writeRow(value, () => true);
    });
    if (!done) return null;
    this.deps.log.info('Token unassigned in Entra for an assignment change', { serial });
    return { upn: from, deviceId };
  }

  /** An imported token an administrator removed in Entra: `stored` again, with no user, so it can be exported again. */
  async markRemovedFromEntra(serial: string): Promise<RemovedFromEntraResult> {
    const result = await updateWithRetry(this.deps.tokens, serial, (row): RowChange<TokenEntity, RemovedFromEntraResult> => {
      if (!row) return leaveRow({ status: 'not-found' });
      if (row.value.state !== 'imported') return leaveRow({ status: 'refused', state: row.value.state });
      const now = this.now();
      const value: TokenEntity = {
        ...row.value,
        state: 'stored',
        upn: null,
        buildId: null,
        exportFile: null,
        exportingSince: null,
        // A new import is a new activation.
        lastAcceptedStep: null,
        activatedBuildId: null,
        updatedAt: now,
        history: appendHistory(row.value.history, now, 'removed-from-entra', row.value.upn ?? undefined),
      };
      return writeRow(value, () => ({ status: 'marked', serial, upn: row.value.upn }));
    });
    if (result.status === 'marked') this.deps.log.info('Token marked removed from Entra', { serial });
    return result;
  }

  /**
   * The first half of retiring: a token listed in a waiting import file is taken out by withdrawing that file, and
   * retired in the same row write. The caller then retires it (InventoryService.retire: a token already retired
   * here is "already retired" there, and its secret is disabled either way).
   */
  async withdrawForRetire(serial: string, reason: string): Promise<RetirePreparation> {
    const { deps } = this;
    const token = await deps.tokens.get(serial);
    if (!token) return { status: 'not-found' };
    const previousState = token.value.state;
    if (previousState === 'exporting') return { status: 'refused', state: previousState };
    if (previousState !== 'exported' || !token.value.exportFile) return { status: 'ready', previousState, withdrawn: null };
    const withdrawn = await this.withdraw(token.value.exportFile, reason ? `retired: ${reason}` : 'retired', new Set([serial]));
    if (withdrawn.status === 'withdrawn' && withdrawn.retired.includes(serial)) return { status: 'ready', previousState, withdrawn };
    const now = await deps.tokens.get(serial);
    return { status: 'refused', state: now?.value.state ?? previousState };
  }

  /** Assignments with their token's state, by serial, paged; filtered by serial, UPN (any case) and state. */
  async list(query: AssignmentQuery): Promise<{ items: AssignmentView[]; continuationToken: string | null }> {
    const { deps } = this;
    const rows: AssignmentEntity[] = [];
    if (query.serial !== undefined) {
      const one = await deps.assignments.get(query.serial);
      if (one) rows.push(one.value);
    } else {
      for await (const row of deps.assignments.list()) rows.push(row.value);
    }
    const upn = query.upn?.toLowerCase();
    const views: AssignmentView[] = [];
    rows.sort((a, b) => (a.serial < b.serial ? -1 : a.serial > b.serial ? 1 : 0));
    const after = query.after;
    for (const a of rows) {
      if (after !== undefined && a.serial <= after) continue;
      if (upn !== undefined && a.upn.toLowerCase() !== upn) continue;
      const token = (await deps.tokens.get(a.serial))?.value;
      const tokenState = token?.state ?? 'pending';
      if (query.state !== undefined && tokenState !== query.state) continue;
      views.push({
        serial: a.serial,
        upn: a.upn,
        sourceFile: a.sourceFile,
        line: a.line,
        createdAt: a.createdAt,
        tokenState,
        exportFile: token?.exportFile ?? null,
      });
      if (views.length > query.pageSize) break;
    }
    const more = views.length > query.pageSize;
    const items = views.slice(0, query.pageSize);
    return { items, continuationToken: more ? Buffer.from(items[items.length - 1]!.serial, 'utf8').toString('base64url') : null };
  }
}
