/**
 * The activation-code check behind `POST /api/tokens/{serial}/verify` and
 * `POST /api/tokens/{serial}/unlock`. Pure TypeScript over the ports; it answers
 * domain outcomes (`VerifyOutcome`, `UnlockOutcome`), which shared/app/http.ts
 * maps to HTTP.
 *
 * Each check is planned, then applied. `planVerify` is a pure decision from the
 * token's row, the codes, the clock's now and the lockout policy (plus the seed,
 * for the HMAC scans): the answer and the row to write. The service applies it
 * with one write conditional on the ETag it read; when another writer got there
 * first it reads again and plans again.
 *
 * Order of a check: token (not found / retired / not TOTP) -> code length for
 * the token -> lock -> vault read -> HMAC scans. Nothing before the scans costs
 * a failure or an HMAC; every answer after them that is not an acceptance
 * (wrong, confirmation required, replay) counts one.
 *
 * The wide activation window (+/- 1 day, 2 days for 60 s tokens) is open only
 * until a code is accepted for the token's current export (its activation);
 * after that only the sign-in window applies, so the endpoint cannot be used to
 * look up codes of far steps. Each lock after the first lasts twice as long as
 * the one before (up to lockoutMaxMinutes); the count of failures behind it is
 * cleared only by an acceptance or an administrator's unlock.
 */
import { decodeBase32 } from '../core/encoding.js';
import { parseHashAlgorithm } from '../core/token.js';
import { isWellFormedCode, scanSteps, stepAt, totpCode, type OtpParameters } from '../core/totp.js';
import { activationWindowSteps, signInWindowSteps } from '../entra/drift-windows.js';
import { ROW_UPDATE_ATTEMPTS, leaveRow, updateWithRetry, writeRow } from './conditional-update.js';
import { DirectoryRefusedError, TransientError } from './errors.js';
import { appendHistory } from './inventory.js';
import { logEvent, PipelineEvent } from './events.js';
import type { Clock, EntityTable, HardwareOathDirectory, Logger, SecretStore, TokenEntity } from './ports.js';
import type { SeedCache } from './seed-cache.js';

/** What an activation from the stored seed did (GRAPH_ACTIVATE_FROM_SEED). Never carries the code. */
export type SeedActivationOutcome =
  | { status: 'activated'; serial: string }
  /** The setting is off, or the app is not in Graph mode. */
  | { status: 'disabled' }
  | { status: 'not-found' }
  /** Not `assigned` in Entra (stored, already activated, retired...). */
  | { status: 'refused'; state: TokenEntity['state'] }
  /** Graph refused the code or the call (message without secret), or was unavailable: the token stays `assigned`. */
  | { status: 'entra-refused' | 'unavailable'; message: string };

export interface VerifyDeps {
  tokens: EntityTable<TokenEntity>;
  secrets: SecretStore;
  clock: Clock;
  log: Logger;
  /** Consecutive failures that lock the token (>= 1). */
  lockoutLimit: number;
  /** How long the first lock lasts (each further one twice as long as the one before); 0: until an administrator unlocks it. */
  lockoutMinutes: number;
  /** The cap on a lock's duration (>= lockoutMinutes). */
  lockoutMaxMinutes: number;
  /** Attempts of the read-plan-write cycle when the entity changes underneath (default 10). */
  maxWriteAttempts?: number;
  /** Graph mode: an accepted code for an `assigned` token activates it in Entra with that same code. */
  directory?: HardwareOathDirectory;
  /**
   * Graph mode (GRAPH_ACTIVATE_FROM_SEED): an administrator may activate an `assigned` token in Entra with a code
   * computed from the stored seed (activateFromSeed). Off by default: it proves nothing about the token in hand and
   * records it in Entra as in sync whatever its clock.
   */
  activateFromSeed?: boolean;
  /** Decoded seeds of pinned versions kept in process (seed-cache.ts); without it every check reads the vault. */
  seeds?: SeedCache;
}

/** The lockout settings a plan needs (VERIFY_LOCKOUT_LIMIT, _MINUTES, _MAX_MINUTES). */
export interface LockoutPolicy {
  limit: number;
  minutes: number;
  maxMinutes: number;
}

/** A verify request whose shape the HTTP layer has checked: codes of 6 to 8 digits. */
export interface VerifyRequest {
  code: string;
  nextCode?: string;
}

/** When a lock ends: an ISO 8601 UTC time, or null for a lock that only an administrator's unlock ends. */
export type LockEnd = string | null;

/** Why a checked code was not accepted; each counts one failure toward the lockout. */
export type RejectReason = 'wrong' | 'confirmation-required' | 'replayed';

export type VerifyOutcome =
  | { status: 'request-invalid'; serial: string; reason: string }
  | { status: 'not-found'; serial: string }
  | { status: 'retired'; serial: string }
  | { status: 'not-totp'; serial: string }
  /** A lock in force: nothing was checked or counted. */
  | { status: 'locked'; serial: string; lockedUntil: LockEnd }
  | {
      status: 'accepted';
      serial: string;
      /** Positive: the token's clock is ahead. */
      driftSeconds: number;
      withinSignInWindow: boolean;
      checkedAt: string;
      /** Graph mode, for a token in `assigned` state: whether Entra took the code and the token is now activated. */
      entraActivation?: 'activated' | 'refused' | 'unavailable';
    }
  | {
      status: 'rejected';
      serial: string;
      reason: RejectReason;
      /** Failures left before the lock (0 once this one locked the token). */
      attemptsLeft: number;
      /** The lock this failure set, if it reached the limit. */
      lock: { until: LockEnd } | null;
      checkedAt: string;
    };

export type UnlockOutcome =
  | { status: 'unlocked'; serial: string; wasLocked: boolean }
  | { status: 'not-found'; serial: string }
  | { status: 'retired'; serial: string };

/** Stands for "until an administrator unlocks it" (lockoutMinutes = 0) in the stored row. */
export const LOCKED_UNTIL_ADMIN = '9999-12-31T23:59:59.999Z';

/** What the codes say about the token, independent of its lock state. */
export type CodeDecision =
  | { kind: 'accept'; step: number; acceptedStep: number; delta: number; withinSignIn: boolean }
  | { kind: 'confirm' }
  | { kind: 'replay' }
  | { kind: 'wrong' };

/** Everything the HMAC scans depend on. */
export interface CodeCheck {
  params: OtpParameters;
  code: string;
  nextCode: string | undefined;
  currentStep: number;
  signInSteps: number;
  /** Half-width of the activation window; null once the token is activated (the window is closed). */
  activationSteps: number | null;
  /**
   * The replay floor, the token's lastAcceptedStep: the last step used, which is the step after the accepted one
   * when a nextCode confirmed it. It and every step before it count as used; null: none yet.
   */
  floor: number | null;
}

/**
 * The steps in [low, high] that show `code`, ascending. At most high - low + 1 of them: the bound holds even if
 * a scan failed to move past the previous match, so no input can keep this loop going.
 */
function* stepsShowing(params: OtpParameters, code: string, low: number, high: number): Generator<number> {
  let from = low;
  for (let found = 0; found <= high - low && from <= high; found++) {
    const step = scanSteps(params, code, from, high);
    if (step === undefined) return;
    yield step;
    from = step + 1;
  }
}

/** The first step in [low, high] that shows the code and, when a nextCode is given, whose successor shows it. */
function confirmedStep(check: CodeCheck, low: number, high: number): number | undefined {
  for (const step of stepsShowing(check.params, check.code, low, high)) {
    if (check.nextCode === undefined || scanSteps(check.params, check.nextCode, step + 1, step + 1) !== undefined) return step;
  }
  return undefined;
}

/** Whether a used step (at or before the floor) in [low, high] shows the code. */
function usedStepShows(check: CodeCheck, low: number, high: number): boolean {
  return check.floor !== null && scanSteps(check.params, check.code, low, Math.min(check.floor, high)) !== undefined;
}

/**
 * Judges the codes in Entra's sign-in window, then, until activation, in the activation window. Only a step after
 * the floor can be accepted, and outside the sign-in window only with the nextCode shown by the step after it
 * (without a nextCode such a match asks for one). A code no fresh step takes but a used step of the window shows
 * is a replay; anything else is wrong.
 */
export function judgeCodes(check: CodeCheck): CodeDecision {
  const current = check.currentStep;
  const fresh = check.floor === null ? 0 : check.floor + 1;
  const accept = (step: number): CodeDecision => ({
    kind: 'accept',
    step,
    acceptedStep: check.nextCode === undefined ? step : step + 1,
    delta: step - current,
    withinSignIn: Math.abs(step - current) <= check.signInSteps,
  });

  // Entra's sign-in window.
  const signIn = { low: current - check.signInSteps, high: current + check.signInSteps };
  const near = confirmedStep(check, Math.max(signIn.low, fresh), signIn.high);
  if (near !== undefined) return accept(near);
  // A code of a used step inside the sign-in window is the usual replay (a resubmission, a lost race): answer it
  // before the wide scan, which could otherwise find a chance later recurrence of the same code.
  if (usedStepShows(check, signIn.low, signIn.high)) return { kind: 'replay' };
  if (check.activationSteps === null) return { kind: 'wrong' };

  // The activation window, ascending. A 6-digit code recurs about 0.6% of the time within +/- 1 day, so with a
  // nextCode look past a step whose successor does not match. Without one, a match is only a hint: it consumes
  // nothing and says nothing about where it was.
  const wide = { low: current - check.activationSteps, high: current + check.activationSteps };
  const far = confirmedStep(check, Math.max(wide.low, fresh), wide.high);
  if (far !== undefined) return check.nextCode === undefined ? { kind: 'confirm' } : accept(far);
  if (usedStepShows(check, wide.low, wide.high)) return { kind: 'replay' };
  return { kind: 'wrong' };
}

/** Activated: a code was accepted since the token's current export (or, never exported, at all). */
export function isActivated(entity: TokenEntity): boolean {
  return entity.lastAcceptedStep !== null && (entity.activatedBuildId ?? null) === (entity.buildId ?? null);
}

/** The minutes of the lock that `failedAttempts` failures set: the first lock at the limit, then doubling up to the cap. */
export function lockMinutes(policy: LockoutPolicy, failedAttempts: number): number {
  const doublings = Math.max(0, failedAttempts - policy.limit);
  return Math.min(policy.minutes * 2 ** doublings, policy.maxMinutes);
}

type LockView = { locked: boolean; expired: boolean };

function lockView(entity: TokenEntity, now: Date, policy: LockoutPolicy): LockView {
  const until = entity.lockedUntil ? Date.parse(entity.lockedUntil) : NaN;
  // A lock whose timeout ran out is over; the failures stay counted, so the next one locks again, for longer.
  if (!Number.isNaN(until) && until <= now.getTime()) return { locked: false, expired: true };
  return { locked: !Number.isNaN(until) && entity.failedAttempts >= policy.limit, expired: false };
}

/** The stored lockedUntil of a new lock. */
function lockedUntilFrom(now: Date, failedAttempts: number, policy: LockoutPolicy): string {
  if (policy.minutes === 0) return LOCKED_UNTIL_ADMIN;
  return new Date(now.getTime() + lockMinutes(policy, failedAttempts) * 60_000).toISOString();
}

function lockEnd(storedLockedUntil: string): LockEnd {
  return storedLockedUntil === LOCKED_UNTIL_ADMIN ? null : storedLockedUntil;
}

export interface VerifyPlanInput {
  serial: string;
  /** The token's row as read; undefined when there is none. */
  token: TokenEntity | undefined;
  request: VerifyRequest;
  now: Date;
  policy: LockoutPolicy;
}

export interface VerifyPlan {
  outcome: VerifyOutcome;
  /** The row to write, conditional on the ETag it was read with; null when the answer changes nothing. */
  write: TokenEntity | null;
}

/** The answers that need neither the seed nor a write: no such token, retired, not TOTP, codes of another length, a lock in force. */
export function screenVerify(input: VerifyPlanInput): VerifyOutcome | undefined {
  const { serial, token, request } = input;
  if (!token) return { status: 'not-found', serial };
  if (token.state === 'retired') return { status: 'retired', serial };
  if (token.type && token.type.toLowerCase() !== 'totp') return { status: 'not-totp', serial };
  const wellFormed =
    isWellFormedCode(request.code, token.digits) && (request.nextCode === undefined || isWellFormedCode(request.nextCode, token.digits));
  if (!wellFormed)
    return {
      status: 'request-invalid',
      serial,
      reason: `This token shows ${token.digits}-digit codes: "code" and "nextCode" must have ${token.digits} digits.`,
    };
  if (lockView(token, input.now, input.policy).locked) return { status: 'locked', serial, lockedUntil: lockEnd(token.lockedUntil!) };
  return undefined;
}

/** The scans' input for a token that passed the screen. */
export function codeCheckFor(input: VerifyPlanInput & { token: TokenEntity }, params: OtpParameters): CodeCheck {
  const { token, request, now } = input;
  return {
    params,
    code: request.code,
    nextCode: request.nextCode,
    currentStep: stepAt(Math.floor(now.getTime() / 1000), token.period),
    signInSteps: signInWindowSteps(token.period),
    activationSteps: isActivated(token) ? null : activationWindowSteps(token.period),
    floor: token.lastAcceptedStep,
  };
}

/**
 * The whole decision of one check, with no I/O: the answer, and the row that records it (the acceptance and its
 * drift, or one more failure and the lock it may set, and the end of an expired lock). `judge` is the HMAC
 * decision, replaceable so a caller can reuse one across retries.
 */
export function planVerify(
  input: VerifyPlanInput,
  params: OtpParameters,
  judge: (check: CodeCheck) => CodeDecision = judgeCodes,
): VerifyPlan {
  const screened = screenVerify(input);
  if (screened) return { outcome: screened, write: null };
  const token = input.token!;
  const { serial, now, policy } = input;
  const checkedAt = now.toISOString();
  const decision = judge(codeCheckFor({ ...input, token }, params));

  let write: TokenEntity = { ...token, updatedAt: checkedAt };
  if (lockView(token, now, policy).expired) {
    write = { ...write, lockedUntil: null, history: appendHistory(write.history, checkedAt, 'unlocked', 'lockout timeout') };
  }

  if (decision.kind === 'accept') {
    const driftSeconds = decision.delta * token.period;
    write = {
      ...write,
      failedAttempts: 0,
      lockedUntil: null,
      lastAcceptedStep: decision.acceptedStep,
      activatedBuildId: token.buildId ?? null,
      lastVerifiedAt: checkedAt,
      driftSeconds,
      history: appendHistory(
        write.history,
        checkedAt,
        'verified',
        `drift ${driftSeconds} s${decision.acceptedStep !== decision.step ? ', confirmed by the next code' : ''}`,
      ),
    };
    return { outcome: { status: 'accepted', serial, driftSeconds, withinSignInWindow: decision.withinSignIn, checkedAt }, write };
  }

  // Wrong, unconfirmed and replayed codes all count: each is a guess checked against the secret. An unconfirmed
  // match leaves its step unused and says nothing of where it was: that would tell a guesser which step it is.
  const reason: RejectReason = decision.kind === 'replay' ? 'replayed' : decision.kind === 'confirm' ? 'confirmation-required' : 'wrong';
  const failedAttempts = token.failedAttempts + 1;
  write = { ...write, failedAttempts };
  let lock: { until: LockEnd } | null = null;
  if (failedAttempts >= policy.limit) {
    const lockedUntil = lockedUntilFrom(now, failedAttempts, policy);
    const duration = policy.minutes === 0 ? 'until unlocked' : `for ${lockMinutes(policy, failedAttempts)} min`;
    write = {
      ...write,
      lockedUntil,
      history: appendHistory(write.history, checkedAt, 'locked', `${failedAttempts} failed checks, locked ${duration}`),
    };
    lock = { until: lockEnd(lockedUntil) };
  }
  return {
    outcome: { status: 'rejected', serial, reason, attemptsLeft: Math.max(0, policy.limit - failedAttempts), lock, checkedAt },
    write,
  };
}

/** An administrator's unlock: clears the lock and the failure count behind it. */
export function planUnlock(
  serial: string,
  token: TokenEntity | undefined,
  now: Date,
  policy: LockoutPolicy,
): { outcome: UnlockOutcome; write: TokenEntity | null } {
  if (!token) return { outcome: { status: 'not-found', serial }, write: null };
  if (token.state === 'retired') return { outcome: { status: 'retired', serial }, write: null };
  if (token.failedAttempts === 0 && token.lockedUntil === null)
    return { outcome: { status: 'unlocked', serial, wasLocked: false }, write: null };
  const at = now.toISOString();
  const wasLocked = token.lockedUntil !== null && lockView(token, now, policy).locked;
  const write: TokenEntity = {
    ...token,
    failedAttempts: 0,
    lockedUntil: null,
    updatedAt: at,
    history: wasLocked ? appendHistory(token.history, at, 'unlocked', 'administrator') : token.history,
  };
  return { outcome: { status: 'unlocked', serial, wasLocked }, write };
}

/** The outcome's name in the log. */
function logName(outcome: VerifyOutcome): string {
  if (outcome.status === 'accepted') return 'valid';
  if (outcome.status !== 'rejected') return outcome.status;
  const name = { wrong: 'invalid', 'confirmation-required': 'confirmation-required', replayed: 'replayed' }[outcome.reason];
  return outcome.lock ? `${name}-locked` : name;
}

export class VerifyService {
  private readonly maxWriteAttempts: number;
  private readonly policy: LockoutPolicy;

  constructor(private readonly deps: VerifyDeps) {
    if (!Number.isInteger(deps.lockoutLimit) || deps.lockoutLimit < 1) throw new RangeError('lockoutLimit must be an integer >= 1.');
    if (!Number.isFinite(deps.lockoutMinutes) || deps.lockoutMinutes < 0) throw new RangeError('lockoutMinutes must be >= 0.');
    if (!Number.isFinite(deps.lockoutMaxMinutes) || deps.lockoutMaxMinutes < deps.lockoutMinutes)
      throw new RangeError('lockoutMaxMinutes must be >= lockoutMinutes.');
    this.maxWriteAttempts = deps.maxWriteAttempts ?? ROW_UPDATE_ATTEMPTS;
    this.policy = { limit: deps.lockoutLimit, minutes: deps.lockoutMinutes, maxMinutes: deps.lockoutMaxMinutes };
  }

  /** The minutes of the lock that `failedAttempts` failures set. */
  lockMinutes(failedAttempts: number): number {
    return lockMinutes(this.policy, failedAttempts);
  }

  /** A request the HTTP layer found malformed: answered and logged like any other check, and not counted. */
  invalidRequest(serial: string, reason: string): VerifyOutcome {
    return this.answered({ status: 'request-invalid', serial, reason });
  }

  async verify(serial: string, request: VerifyRequest): Promise<VerifyOutcome> {
    const now = this.deps.clock.now();
    let params: OtpParameters | undefined;
    // The scans depend only on the replay floor and the activation state, so a retry after a concurrent write
    // rescans only if one of them changed.
    const judged = new Map<string, CodeDecision>();
    const judge = (check: CodeCheck): CodeDecision => {
      const key = `${check.floor}/${check.activationSteps}`;
      let decision = judged.get(key);
      if (!decision) judged.set(key, (decision = judgeCodes(check)));
      return decision;
    };

    try {
      // The state of the row the outcome was decided on: an accepted code on an assigned token activates it in Entra.
      let decidedOn: TokenEntity['state'] | undefined;
      const outcome = await updateWithRetry(
        this.deps.tokens,
        serial,
        async (current) => {
          const input: VerifyPlanInput = { serial, token: current?.value, request, now, policy: this.policy };
          const screened = screenVerify(input);
          if (screened) return leaveRow(screened);
          // screenVerify answers for a missing row, so one is here.
          params ??= await this.loadParams(current!.value);
          decidedOn = current!.value.state;
          const plan = planVerify(input, params, judge);
          return plan.write ? writeRow(plan.write, () => plan.outcome) : leaveRow(plan.outcome);
        },
        this.retries(serial),
      );
      if (outcome.status === 'accepted' && decidedOn === 'assigned' && this.deps.directory) {
        outcome.entraActivation = await this.activateInEntra(serial, request);
      }
      return this.answered(outcome);
    } finally {
      params?.secret.fill(0);
    }
  }

  async unlock(serial: string): Promise<UnlockOutcome> {
    const now = this.deps.clock.now();
    return updateWithRetry(
      this.deps.tokens,
      serial,
      (current) => {
        const plan = planUnlock(serial, current?.value, now, this.policy);
        const { outcome } = plan;
        if (!plan.write) {
          if (outcome.status === 'unlocked') this.deps.log.info('unlock', { serial, outcome: 'not-locked' });
          return leaveRow(outcome);
        }
        return writeRow(plan.write, () => {
          if (outcome.status === 'unlocked') this.deps.log.info('unlock', { serial, outcome: outcome.wasLocked ? 'unlocked' : 'reset' });
          return outcome;
        });
      },
      this.retries(serial),
    );
  }

  /**
   * An administrator's activation without the token in hand: the current code is computed from the stored seed and
   * sent to Entra. Only behind GRAPH_ACTIVATE_FROM_SEED; never logs or returns the code.
   */
  async activateFromSeed(serial: string): Promise<SeedActivationOutcome> {
    const directory = this.deps.directory;
    if (!directory || this.deps.activateFromSeed !== true) return { status: 'disabled' };
    const row = await this.deps.tokens.get(serial);
    if (!row) return { status: 'not-found' };
    const token = row.value;
    if (token.state !== 'assigned' || !token.userId || !token.methodId) return { status: 'refused', state: token.state };
    const params = await this.loadParams(token);
    let code: string;
    try {
      code = totpCode(params, Math.floor(this.deps.clock.now().getTime() / 1000));
    } finally {
      params.secret.fill(0);
    }
    try {
      await directory.activate(token.userId, token.methodId, code);
    } catch (err) {
      this.deps.log.warn('Entra activation from the seed failed', { serial, error: (err as Error).name });
      if (err instanceof DirectoryRefusedError) return { status: 'entra-refused', message: err.message };
      if (err instanceof TransientError) return { status: 'unavailable', message: err.message };
      throw err;
    }
    await this.markActivated(serial, 'in Entra, with a code computed from the stored seed (GRAPH_ACTIVATE_FROM_SEED)');
    this.deps.log.info('Token activated in Entra from its stored seed', { serial });
    return { status: 'activated', serial };
  }

  private answered(outcome: VerifyOutcome): VerifyOutcome {
    // Only serial, outcome and drift: never a code or anything derived from the secret.
    this.deps.log.info('verify', {
      serial: outcome.serial,
      outcome: logName(outcome),
      driftSeconds: outcome.status === 'accepted' ? outcome.driftSeconds : null,
    });
    if (outcome.status === 'rejected' && outcome.lock)
      logEvent(this.deps.log, 'warn', PipelineEvent.VerifyLockout, { serial: outcome.serial });
    return outcome;
  }

  /**
   * Activation by possession: Entra gets the code just accepted from the token in hand (the confirming nextCode when
   * one was sent, the later of the two). Refused or unavailable, the token stays `assigned`: a new verify retries,
   * and the reconciler mirrors an activation done elsewhere.
   */
  private async activateInEntra(serial: string, request: VerifyRequest): Promise<'activated' | 'refused' | 'unavailable'> {
    const directory = this.deps.directory!;
    const row = await this.deps.tokens.get(serial);
    const token = row?.value;
    if (!token || token.state !== 'assigned' || !token.userId || !token.methodId) return 'unavailable';
    try {
      await directory.activate(token.userId, token.methodId, request.nextCode ?? request.code);
    } catch (err) {
      const refused = err instanceof DirectoryRefusedError;
      this.deps.log.warn('Entra activation failed', { serial, error: (err as Error).name });
      if (!refused && !(err instanceof TransientError)) throw err;
      return refused ? 'refused' : 'unavailable';
    }
    await this.markActivated(serial, 'in Entra, with the code from the token');
    return 'activated';
  }

  /** The row of a token Entra just activated becomes `activated` (left as it is when no longer `assigned`). */
  private async markActivated(serial: string, detail: string): Promise<void> {
    await updateWithRetry(
      this.deps.tokens,
      serial,
      (current) => {
        if (!current || current.value.state !== 'assigned') return leaveRow(undefined);
        const now = this.deps.clock.now().toISOString();
        const activated: TokenEntity = {
          ...current.value,
          state: 'activated',
          updatedAt: now,
          history: appendHistory(current.value.history, now, 'activated', detail),
        };
        return writeRow(activated, () => undefined);
      },
      this.retries(serial),
    );
  }

  /** Reads the seed at most once per request (none when the seed cache holds it); the caller zeroes it. */
  private async loadParams(entity: TokenEntity): Promise<OtpParameters> {
    const { seeds } = this.deps;
    // The version the inventory records: a version written but not (or not yet) recorded is never used.
    const version = entity.secretVersion || undefined;
    let secret = version !== undefined ? seeds?.get(entity.secretName, version) : undefined;
    if (!secret) {
      const stored = await this.deps.secrets.get(entity.secretName, version);
      if (!stored) throw new Error(`Token ${entity.serial}: its secret ${entity.secretName} is not in the vault.`);
      secret = decodeBase32(stored.value);
      if (!secret) throw new Error(`Token ${entity.serial}: its secret ${entity.secretName} is not base32.`);
      if (version !== undefined) seeds?.set(entity.secretName, version, secret);
    }
    const algorithm = parseHashAlgorithm(entity.algorithm);
    if (!algorithm) throw new Error(`Token ${entity.serial}: unsupported algorithm ${JSON.stringify(entity.algorithm)}.`);
    return { secret, algorithm, digits: entity.digits, period: entity.period };
  }

  /** How many times a check re-reads a row that keeps changing, and what it answers then (503: try again). */
  private retries(serial: string): { attempts: number; onExhausted: () => never } {
    return {
      attempts: this.maxWriteAttempts,
      onExhausted: () => {
        throw new TransientError(`Token ${serial} kept changing during the check (${this.maxWriteAttempts} attempts); try again.`, 503);
      },
    };
  }
}
