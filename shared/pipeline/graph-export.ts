/**
 * Graph mode's build (IMPORT_MODE=graph): instead of writing Entra's import CSV, each planned token is created in
 * Entra through Microsoft Graph with the secret read from Key Vault at that moment, and assigned to its user.
 *
 * Same claims as the CSV path (stored -> exporting for this build, ETag-conditional, under a heartbeat), then per
 * token: the user is resolved and guarded (guests, missing or disabled accounts, privileged roles, the optional
 * group), the serial is looked up before anything is created, and the row ends `assigned` (or `activated` when an
 * adopted device already is) with the device and method ids. Idempotent: a device is never created twice, also
 * after an uncertain outcome (the serial is looked up again instead of re-posting). A token that cannot be finished
 * goes back to `stored` (the reconciler does the same for a dead build's claims); the next build looks its serial
 * up first and adopts what an earlier attempt created.
 */
import { decodeBase32, toCanonicalBase32 } from '../core/encoding.js';
import { problem, quoteValue, type Problem } from '../core/problems.js';
import type { BuildDeps, BuildPlan, BuildResult } from './build.js';
import { leaveRow, updateWithRetry, writeRow, type RowChange } from './conditional-update.js';
import { ConflictError, DirectoryRefusedError, TransientError, UncertainOutcomeError } from './errors.js';
import { appendHistory, releasedFromExport } from './inventory.js';
import type { BuildHeartbeat } from './liveness.js';
import { mapPool } from './map-pool.js';
import type { DirectoryUser, HardwareOathDevice, HardwareOathDirectory, HardwareOathHashFunction, TokenEntity } from './ports.js';
import { writeRunReport, type RunReport } from './report.js';
import { buildReportNames } from './blob-names.js';

export interface GraphExportSettings {
  directory: HardwareOathDirectory;
  /** Assign tokens to holders of privileged directory roles too (GRAPH_ALLOW_PRIVILEGED_USERS). */
  allowPrivilegedUsers: boolean;
  /** Only members of this group get tokens (GRAPH_ALLOWED_GROUP_ID). */
  allowedGroupId?: string;
}

export interface GraphAssigned {
  serial: string;
  upn: string;
  deviceId: string;
  state: 'assigned' | 'activated';
  /** created: a new device; adopted: one already in Entra (an earlier attempt, or created elsewhere for this user). */
  how: 'created' | 'adopted';
}

export interface GraphBuildResult extends BuildResult {
  mode: 'graph';
  assigned: GraphAssigned[];
}

/** A token this build holds as `exporting`. */
interface Claim {
  etag: string;
  value: TokenEntity;
  upn: string;
}

/** Why a token is not assigned: a problem to report; the claim is released. */
class NotAssigned extends Error {
  constructor(readonly problem: Problem) {
    super(problem.message);
  }
}

const HASH_FUNCTIONS: Record<string, HardwareOathHashFunction> = { SHA1: 'hmacsha1', SHA256: 'hmacsha256' };

export class GraphExportRun {
  private readonly problems: Problem[];
  private readonly assigned: GraphAssigned[] = [];

  constructor(
    private readonly deps: BuildDeps,
    private readonly graph: GraphExportSettings,
    private readonly run: { buildId: string; startedAt: Date; plan: BuildPlan; heartbeat: BuildHeartbeat },
  ) {
    this.problems = [...run.plan.problems];
  }

  async apply(): Promise<GraphBuildResult> {
    // Graph throttles per app: the adapter bounds its own calls in flight; a few tokens at a time is enough here.
    await mapPool(this.run.plan.rows, Math.min(this.deps.concurrency ?? 4, 4), async (row) => {
      if (this.run.heartbeat.lost) return;
      const claim = await this.claim(row.serial, row.upn);
      if (!claim) return;
      await this.exportOne(claim);
    });
    return this.finish();
  }

  private async exportOne(claim: Claim): Promise<void> {
    const serial = claim.value.serial;
    try {
      const user = await this.resolveUser(serial, claim.upn);
      const { device, how } = await this.deviceFor(claim, user);
      const methodId = device.assignedTo?.id === user.id ? device.id : await this.assign(serial, user.id, device.id);
      const state = device.status === 'activated' ? 'activated' : 'assigned';
      if (await this.markAssigned(claim, { deviceId: device.id, userId: user.id, methodId, state })) {
        this.assigned.push({ serial, upn: claim.upn, deviceId: device.id, state, how });
      } else {
        this.problems.push(
          problem(
            'EXPORT_CLAIM_LOST',
            'error',
            `Serial ${quoteValue(serial)}: its inventory row was changed by another process while it was assigned in Entra (device ${device.id}); a later build adopts the device.`,
            { serial },
          ),
        );
      }
    } catch (err) {
      this.problems.push(this.problemOf(serial, err));
      await this.release(claim).catch(() => undefined);
    }
  }

  private problemOf(serial: string, err: unknown): Problem {
    if (err instanceof NotAssigned) return err.problem;
    const s = quoteValue(serial);
    if (err instanceof ConflictError) return problem('GRAPH_DEVICE_CONFLICT', 'error', `Serial ${s}: ${err.message}`, { serial });
    if (err instanceof DirectoryRefusedError) return problem('GRAPH_REFUSED', 'error', `Serial ${s}: ${err.message}`, { serial });
    if (err instanceof TransientError)
      return problem('GRAPH_UNAVAILABLE', 'error', `Serial ${s}: ${err.message}. It is back in stored; a later build finishes it.`, {
        serial,
      });
    this.deps.log.error('Graph export of one token failed', { serial, error: (err as Error).name });
    return problem(
      'GRAPH_UNAVAILABLE',
      'error',
      `Serial ${s}: the Graph export failed unexpectedly (${(err as Error).name}); it is back in stored and a later build retries it.`,
      { serial },
    );
  }

  /** The member account the token goes to, after the guards; NotAssigned otherwise. */
  private async resolveUser(serial: string, upn: string): Promise<DirectoryUser> {
    const { directory } = this.graph;
    const where = { serial };
    const who = `Serial ${quoteValue(serial)} for ${quoteValue(upn)}`;
    const user = await directory.findUser(upn);
    if (!user) throw new NotAssigned(problem('GRAPH_USER_NOT_FOUND', 'error', `${who}: no such user in the directory.`, where));
    if (user.userType !== null && user.userType.toLowerCase() === 'guest')
      throw new NotAssigned(problem('GRAPH_USER_GUEST', 'error', `${who}: the user is a guest.`, where));
    if (user.accountEnabled === false)
      throw new NotAssigned(problem('GRAPH_USER_DISABLED', 'error', `${who}: the account is disabled.`, where));
    if (!this.graph.allowPrivilegedUsers) {
      const roles = await directory.userPrivilegedRoles(user.id);
      if (roles.length > 0) {
        const names = [...new Set(roles.map((r) => `${r.displayName} (${r.assignment})`))].sort().join(', ');
        throw new NotAssigned(problem('GRAPH_USER_PRIVILEGED', 'error', `${who}: the user holds ${names}.`, where));
      }
    }
    if (this.graph.allowedGroupId && !(await directory.isGroupMember(user.id, this.graph.allowedGroupId))) {
      throw new NotAssigned(
        problem('GRAPH_USER_NOT_IN_GROUP', 'error', `${who}: the user is not a member of group ${this.graph.allowedGroupId}.`, where),
      );
    }
    return user;
  }

  /** The device to assign: one already in Entra for this serial (adopted when free or this user's), else a new one. */
  private async deviceFor(claim: Claim, user: DirectoryUser): Promise<{ device: HardwareOathDevice; how: 'created' | 'adopted' }> {
    const serial = claim.value.serial;
    const existing = await this.usableDevice(serial, user);
    if (existing) return { device: existing, how: 'adopted' };
    const secretKey = await this.secretOf(claim);
    const hashFunction = HASH_FUNCTIONS[claim.value.algorithm.toUpperCase()];
    const period = claim.value.period;
    if (!hashFunction || (period !== 30 && period !== 60)) {
      throw new NotAssigned(
        problem(
          'TOKEN_STATE_INVALID',
          'error',
          `Serial ${quoteValue(serial)}: Entra takes SHA1 or SHA256 tokens with a 30 or 60 s period; this one is ${claim.value.algorithm}, ${period} s.`,
          { serial },
        ),
      );
    }
    try {
      const device = await this.graph.directory.createDevice({
        serialNumber: serial,
        manufacturer: claim.value.manufacturer,
        model: claim.value.model,
        secretKey,
        timeIntervalInSeconds: period,
        hashFunction,
      });
      return { device, how: 'created' };
    } catch (err) {
      // Applied or not? Read it back instead of posting again.
      if (!(err instanceof UncertainOutcomeError) && !(err instanceof ConflictError)) throw err;
      const found = await this.usableDevice(serial, user);
      if (found) return { device: found, how: 'created' };
      throw err;
    }
  }

  /** undefined: no device has the serial. ConflictError when one is held by someone else or several share it. */
  private async usableDevice(serial: string, user: DirectoryUser): Promise<HardwareOathDevice | undefined> {
    const devices = await this.graph.directory.findDevicesBySerial(serial);
    if (devices.length === 0) return undefined;
    if (devices.length > 1)
      throw new ConflictError(
        `Entra holds ${devices.length} tokens with this serial (a legacy CSV upload among them); remove the extra ones in Entra first.`,
      );
    const device = devices[0]!;
    if (device.assignedTo && device.assignedTo.id !== user.id)
      throw new ConflictError(
        `Entra already holds it as device ${device.id}, assigned to another user (${device.assignedTo.id}); unassign it there first.`,
      );
    return device;
  }

  private async assign(serial: string, userId: string, deviceId: string): Promise<string> {
    try {
      return (await this.graph.directory.assignDevice(userId, deviceId)).methodId;
    } catch (err) {
      if (!(err instanceof UncertainOutcomeError)) throw err;
      const device = await this.graph.directory.getDevice(deviceId);
      if (device?.assignedTo?.id === userId) return device.id;
      this.deps.log.warn('Graph assignment outcome unknown and not applied', { serial });
      throw err;
    }
  }

  /** The base32 secret of the version the claimed row records (never a newer one written since). */
  private async secretOf(claim: Claim): Promise<string> {
    const serial = claim.value.serial;
    const secret = await this.deps.vault.get(claim.value.secretName, claim.value.secretVersion || undefined);
    const bytes = secret ? decodeBase32(secret.value) : undefined;
    if (!bytes)
      throw new NotAssigned(
        problem(
          'EXPORT_SECRET_MISSING',
          'error',
          `Serial ${quoteValue(serial)}: its secret ${claim.value.secretName} could not be read from Key Vault; it was not assigned.`,
          { serial },
        ),
      );
    return toCanonicalBase32(bytes);
  }

  private claim(serial: string, upn: string): Promise<Claim | undefined> {
    return updateWithRetry(
      this.deps.tokens,
      serial,
      (current): RowChange<TokenEntity, Claim | undefined> => {
        if (!current || current.value.state !== 'stored') return leaveRow(undefined);
        const now = this.deps.clock.now().toISOString();
        const value: TokenEntity = {
          ...current.value,
          state: 'exporting',
          upn,
          buildId: this.run.buildId,
          exportFile: null,
          exportingSince: now,
          updatedAt: now,
          history: appendHistory(current.value.history, now, 'exporting', `${this.run.buildId} (graph)`),
        };
        return writeRow(value, (written) => ({ etag: written.etag, value: written.value, upn }));
      },
      { onExhausted: () => undefined },
    );
  }

  private async release(claim: Claim): Promise<void> {
    const now = this.deps.clock.now().toISOString();
    const current = await this.deps.tokens.get(claim.value.serial);
    if (!current || current.value.state !== 'exporting' || current.value.buildId !== this.run.buildId) return;
    await this.deps.tokens.replace(claim.value.serial, releasedFromExport(current.value, now, this.run.buildId), current.etag);
  }

  /** true when the row ends assigned by this build; false when the claim was lost meanwhile. */
  private markAssigned(
    claim: Claim,
    ids: { deviceId: string; userId: string; methodId: string; state: 'assigned' | 'activated' },
  ): Promise<boolean> {
    return updateWithRetry(
      this.deps.tokens,
      claim.value.serial,
      (row): RowChange<TokenEntity, boolean> => {
        if (!row || row.value.buildId !== this.run.buildId || row.value.state !== 'exporting') return leaveRow(false);
        const now = this.deps.clock.now().toISOString();
        return writeRow(
          {
            ...row.value,
            ...ids,
            exportFile: null,
            exportingSince: null,
            updatedAt: now,
            history: appendHistory(row.value.history, now, ids.state, `device ${ids.deviceId}`),
          },
          () => true,
        );
      },
      { onExhausted: () => false },
    );
  }

  private async finish(): Promise<GraphBuildResult> {
    const { deps, problems, assigned } = this;
    assigned.sort((a, b) => a.serial.localeCompare(b.serial));
    const errors = problems.filter((p) => p.severity === 'error');
    const report: RunReport = {
      kind: 'build',
      subject: this.run.buildId,
      startedAt: this.run.startedAt.toISOString(),
      finishedAt: deps.clock.now().toISOString(),
      outcome:
        assigned.length === 0 && problems.length === 0 ? 'nothing-to-do' : errors.length > 0 ? 'completed-with-problems' : 'completed',
      summary: assigned.length
        ? `${assigned.length} tokens created and assigned in Entra through Microsoft Graph. Activate each with POST /api/tokens/{serial}/verify and a code read from the token.`
        : 'No token was ready to assign.',
      counts: { assigned: assigned.length, notAssigned: errors.length, unassigned: this.run.plan.unassigned.length },
      details: { mode: 'graph' },
      items: assigned.map((a) => ({ serial: a.serial, result: a.state, upn: a.upn, device: a.deviceId, how: a.how })),
      problems,
    };
    const reportName = await writeRunReport(deps.blobs, deps.containers.reports, buildReportNames(this.run.buildId), report);
    deps.log.info('Graph build finished', { build: this.run.buildId, assigned: assigned.length, problems: problems.length });
    return {
      mode: 'graph',
      build: this.run.buildId,
      files: [],
      exported: assigned.map((a) => ({ serial: a.serial, upn: a.upn, file: '' })),
      assigned,
      notExported: errors,
      report: reportName,
    };
  }
}
