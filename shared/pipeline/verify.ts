/**
 * The activation-code check behind `POST /api/tokens/{serial}/verify` and
 * `POST /api/tokens/{serial}/unlock`. Pure TypeScript over the ports: the HTTP
 * function only maps `VerifyOutcome` to a response.
 *
 * Order of a check: body shape (400) -> token (404 / 410 / 409 not TOTP) ->
 * code length for the token (400) -> lock (423) -> vault read -> HMAC scans.
 * Nothing before the scans costs a failure or an HMAC; every answer after them
 * that is not an acceptance (wrong, confirmation required, replay) counts one.
 *
 * The wide activation window (+/- 1 day, 2 days for 60 s tokens) is open only
 * until a code is accepted for the token's current export (its activation);
 * after that only the sign-in window applies, so the endpoint cannot be used to
 * look up codes of far steps. Each lock after the first lasts twice as long as
 * the one before (up to lockoutMaxMinutes); the count of failures behind it is
 * cleared only by an acceptance or an administrator's unlock.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { decodeBase32 } from '../core/encoding.js';
import { PROBLEM_CODES, type ProblemCode } from '../core/problems.js';
import { parseHashAlgorithm } from '../core/token.js';
import { isWellFormedCode, scanSteps, stepAt, type OtpParameters } from '../core/totp.js';
import { activationWindowSteps, signInWindowSteps } from '../entra/windows.js';
import { PreconditionFailedError, TransientError } from './errors.js';
import type { Clock, EntityTable, Logger, SecretStore, TokenEntity, Versioned } from './ports.js';

/** The verify and unlock endpoints' error codes, from the project's one list of codes. */
export type VerifyErrorCode = Extract<ProblemCode, 'REQUEST_INVALID' | 'TOKEN_NOT_FOUND' | 'TOKEN_RETIRED' | 'TOKEN_NOT_TOTP' | 'TOKEN_LOCKED' | 'CODE_REPLAYED'>;

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
  /** Attempts of the read-compute-write cycle when the entity changes underneath (default 10). */
  maxWriteAttempts?: number;
}

export interface VerifyRequest {
  code: string;
  nextCode?: string;
}

export interface VerifyResult {
  serial: string;
  valid: boolean;
  confirmationRequired: boolean;
  /** Positive: the token's clock is ahead. Only on an acceptance; null otherwise (an unconfirmed match included). */
  driftSeconds: number | null;
  withinSignInWindow: boolean;
  withinActivationWindow: boolean;
  /** ISO 8601 UTC. */
  checkedAt: string;
}

export interface ErrorBody {
  error: { code: string; message: string };
}

export type VerifyOutcome =
  | { status: 200; body: VerifyResult }
  | { status: 400 | 404 | 409 | 410 | 423; body: ErrorBody };

export type UnlockOutcome =
  | Exclude<VerifyOutcome, { status: 200 }>
  | { status: 200; body: { serial: string; unlocked: true; wasLocked: boolean } };

export interface HistoryEvent {
  at: string;
  event: string;
  detail?: string;
}

export const HISTORY_LIMIT = 50;
/** Stands for "until an administrator unlocks it" (lockoutMinutes = 0). */
export const LOCKED_UNTIL_ADMIN = '9999-12-31T23:59:59.999Z';
const CODE_SHAPE = /^[0-9]{6,8}$/;

/** Checks the JSON shape of a verify body. Accepts the parsed value or its JSON text. */
export function parseVerifyBody(body: unknown): VerifyRequest | { error: string } {
  let value = body;
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value) as unknown;
    } catch {
      return { error: 'The body is not valid JSON.' };
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { error: 'The body must be a JSON object { "code": "123456", "nextCode"?: "654321" }.' };
  }
  const record = value as Record<string, unknown>;
  // Strict about names, so a misspelt "next_code" is an error rather than a silent "confirmation required".
  const unknownFields = Object.keys(record).filter((k) => k !== 'code' && k !== 'nextCode');
  if (unknownFields.length > 0) {
    return { error: `Unknown field(s) ${unknownFields.map((k) => JSON.stringify(k.slice(0, 40))).join(', ')}: only "code" and "nextCode" are accepted.` };
  }
  const { code, nextCode } = record;
  if (typeof code !== 'string' || !CODE_SHAPE.test(code)) {
    return { error: '"code" must be a string of 6 to 8 digits, as the token shows it.' };
  }
  if (nextCode === undefined || nextCode === null) return { code };
  if (typeof nextCode !== 'string' || !CODE_SHAPE.test(nextCode)) {
    return { error: '"nextCode", when given, must be a string of 6 to 8 digits, as the token shows it.' };
  }
  return { code, nextCode };
}

function errorOutcome(status: 400 | 404 | 409 | 410 | 423, code: VerifyErrorCode, message?: string): { status: typeof status; body: ErrorBody } {
  return { status, body: { error: { code, message: message ?? PROBLEM_CODES[code] } } };
}

function appendHistory(history: string, event: HistoryEvent): string {
  let events: HistoryEvent[] = [];
  try {
    const parsed = JSON.parse(history || '[]') as unknown;
    if (Array.isArray(parsed)) events = parsed as HistoryEvent[];
  } catch {
    // A damaged history is replaced rather than blocking verification.
  }
  events.push(event);
  return JSON.stringify(events.slice(-HISTORY_LIMIT));
}

/** What the codes say about the token, independent of its lock state. */
type Decision =
  | { kind: 'accept'; step: number; acceptedStep: number; delta: number; withinSignIn: boolean }
  | { kind: 'confirm' }
  | { kind: 'replay' }
  | { kind: 'wrong' };

interface CheckContext {
  params: OtpParameters;
  code: string;
  nextCode: string | undefined;
  currentStep: number;
  signInSteps: number;
  /** Half-width of the activation window; null once the token is activated (the window is closed). */
  activationSteps: number | null;
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
function confirmedStep(ctx: CheckContext, low: number, high: number): number | undefined {
  for (const step of stepsShowing(ctx.params, ctx.code, low, high)) {
    if (ctx.nextCode === undefined || scanSteps(ctx.params, ctx.nextCode, step + 1, step + 1) !== undefined) return step;
  }
  return undefined;
}

/** Whether a step in [low, high] at or before the replay floor shows the code. */
function usedStepShows(ctx: CheckContext, floor: number | null, low: number, high: number): boolean {
  return floor !== null && scanSteps(ctx.params, ctx.code, low, Math.min(floor, high)) !== undefined;
}

/** `floor` is the last accepted step: it and every step before it are used. */
function decide(ctx: CheckContext, floor: number | null): Decision {
  const current = ctx.currentStep;
  const fresh = floor === null ? 0 : floor + 1;
  const accept = (step: number): Decision => ({
    kind: 'accept',
    step,
    acceptedStep: ctx.nextCode === undefined ? step : step + 1,
    delta: step - current,
    withinSignIn: Math.abs(step - current) <= ctx.signInSteps,
  });

  // Entra's sign-in window.
  const signIn = { low: current - ctx.signInSteps, high: current + ctx.signInSteps };
  const near = confirmedStep(ctx, Math.max(signIn.low, fresh), signIn.high);
  if (near !== undefined) return accept(near);
  // A code of a used step inside the sign-in window is the usual replay (a resubmission, a lost race): answer it
  // before the wide scan, which could otherwise find a chance later recurrence of the same code.
  if (usedStepShows(ctx, floor, signIn.low, signIn.high)) return { kind: 'replay' };
  if (ctx.activationSteps === null) return { kind: 'wrong' };

  // The activation window, ascending. A 6-digit code recurs about 0.6% of the time within +/- 1 day, so with a
  // nextCode look past a step whose successor does not match. Without one, a match is only a hint: it consumes
  // nothing and says nothing about where it was.
  const wide = { low: current - ctx.activationSteps, high: current + ctx.activationSteps };
  const far = confirmedStep(ctx, Math.max(wide.low, fresh), wide.high);
  if (far !== undefined) return ctx.nextCode === undefined ? { kind: 'confirm' } : accept(far);
  if (usedStepShows(ctx, floor, wide.low, wide.high)) return { kind: 'replay' };
  return { kind: 'wrong' };
}

/** Activated: a code was accepted since the token's current export (or, never exported, at all). */
export function isActivated(entity: TokenEntity): boolean {
  return entity.lastAcceptedStep !== null && (entity.activatedBuildId ?? null) === (entity.buildId ?? null);
}

type LockView = { locked: boolean; expired: boolean; failedAttempts: number };

export class VerifyService {
  private readonly maxWriteAttempts: number;

  constructor(private readonly deps: VerifyDeps) {
    if (!Number.isInteger(deps.lockoutLimit) || deps.lockoutLimit < 1) throw new RangeError('lockoutLimit must be an integer >= 1.');
    if (!Number.isFinite(deps.lockoutMinutes) || deps.lockoutMinutes < 0) throw new RangeError('lockoutMinutes must be >= 0.');
    if (!Number.isFinite(deps.lockoutMaxMinutes) || deps.lockoutMaxMinutes < deps.lockoutMinutes) throw new RangeError('lockoutMaxMinutes must be >= lockoutMinutes.');
    this.maxWriteAttempts = deps.maxWriteAttempts ?? 10;
  }

  private lockView(entity: TokenEntity, now: Date): LockView {
    const until = entity.lockedUntil ? Date.parse(entity.lockedUntil) : NaN;
    if (!Number.isNaN(until) && until <= now.getTime()) {
      // The timeout ran out. The failures stay counted, so the next one locks again, for longer.
      return { locked: false, expired: true, failedAttempts: entity.failedAttempts };
    }
    const locked = !Number.isNaN(until) && entity.failedAttempts >= this.deps.lockoutLimit;
    return { locked, expired: false, failedAttempts: entity.failedAttempts };
  }

  /** The minutes of the lock that `failedAttempts` failures set: the first lock at the limit, then doubling up to the cap. */
  lockMinutes(failedAttempts: number): number {
    const doublings = Math.max(0, failedAttempts - this.deps.lockoutLimit);
    return Math.min(this.deps.lockoutMinutes * 2 ** doublings, this.deps.lockoutMaxMinutes);
  }

  private lockedUntilFrom(now: Date, failedAttempts: number): string {
    if (this.deps.lockoutMinutes === 0) return LOCKED_UNTIL_ADMIN;
    return new Date(now.getTime() + this.lockMinutes(failedAttempts) * 60_000).toISOString();
  }

  private log(serial: string, outcome: string, driftSeconds: number | null = null): void {
    // Only serial, outcome and drift: never a code or anything derived from the secret.
    this.deps.log.info('verify', { serial, outcome, driftSeconds });
  }

  /** Reads the seed once per request; the caller zeroes it. */
  private async loadParams(entity: TokenEntity): Promise<OtpParameters> {
    // The version the inventory records: a version written but not (or not yet) recorded is never used.
    const stored = await this.deps.secrets.get(entity.secretName, entity.secretVersion || undefined);
    if (!stored) throw new Error(`Token ${entity.serial}: its secret ${entity.secretName} is not in the vault.`);
    const secret = decodeBase32(stored.value);
    if (!secret) throw new Error(`Token ${entity.serial}: its secret ${entity.secretName} is not base32.`);
    const algorithm = parseHashAlgorithm(entity.algorithm);
    if (!algorithm) throw new Error(`Token ${entity.serial}: unsupported algorithm ${JSON.stringify(entity.algorithm)}.`);
    return { secret, algorithm, digits: entity.digits, period: entity.period };
  }

  async verify(serial: string, body: unknown): Promise<VerifyOutcome> {
    const request = parseVerifyBody(body);
    if ('error' in request) {
      this.log(serial, 'request-invalid');
      return errorOutcome(400, 'REQUEST_INVALID', request.error);
    }
    const now = this.deps.clock.now();
    const checkedAt = now.toISOString();
    let params: OtpParameters | undefined;
    // The scans depend only on the replay floor and the activation state, so a retry after a concurrent write
    // rescans only if one of them changed.
    const decisions = new Map<string, Decision>();

    try {
      for (let attempt = 1; attempt <= this.maxWriteAttempts; attempt++) {
        const current = await this.deps.tokens.get(serial);
        if (!current) {
          this.log(serial, 'not-found');
          return errorOutcome(404, 'TOKEN_NOT_FOUND');
        }
        const entity = current.value;
        if (entity.state === 'retired') {
          this.log(serial, 'retired');
          return errorOutcome(410, 'TOKEN_RETIRED');
        }
        if (entity.type && entity.type.toLowerCase() !== 'totp') {
          this.log(serial, 'not-totp');
          return errorOutcome(409, 'TOKEN_NOT_TOTP');
        }
        const wellFormed = isWellFormedCode(request.code, entity.digits) && (request.nextCode === undefined || isWellFormedCode(request.nextCode, entity.digits));
        if (!wellFormed) {
          this.log(serial, 'request-invalid');
          return errorOutcome(400, 'REQUEST_INVALID', `This token shows ${entity.digits}-digit codes: "code" and "nextCode" must have ${entity.digits} digits.`);
        }
        const lock = this.lockView(entity, now);
        if (lock.locked) {
          this.log(serial, 'locked');
          return errorOutcome(423, 'TOKEN_LOCKED');
        }

        params ??= await this.loadParams(entity);
        const floor = entity.lastAcceptedStep;
        const activated = isActivated(entity);
        const decisionKey = `${floor}/${activated}`;
        let decision = decisions.get(decisionKey);
        if (!decision) {
          decision = decide(
            {
              params,
              code: request.code,
              nextCode: request.nextCode,
              currentStep: stepAt(Math.floor(now.getTime() / 1000), entity.period),
              signInSteps: signInWindowSteps(entity.period),
              activationSteps: activated ? null : activationWindowSteps(entity.period),
            },
            floor,
          );
          decisions.set(decisionKey, decision);
        }

        const result: VerifyResult = {
          serial,
          valid: false,
          confirmationRequired: false,
          driftSeconds: null,
          withinSignInWindow: false,
          withinActivationWindow: false,
          checkedAt,
        };

        let updated: TokenEntity = { ...entity, updatedAt: checkedAt };
        if (lock.expired) {
          updated = { ...updated, lockedUntil: null, history: appendHistory(updated.history, { at: checkedAt, event: 'unlocked', detail: 'lockout timeout' }) };
        }
        let outcome: string;
        let answer: VerifyOutcome;
        if (decision.kind === 'accept') {
          const driftSeconds = decision.delta * entity.period;
          updated = {
            ...updated,
            failedAttempts: 0,
            lockedUntil: null,
            lastAcceptedStep: decision.acceptedStep,
            activatedBuildId: entity.buildId ?? null,
            lastVerifiedAt: checkedAt,
            driftSeconds,
            history: appendHistory(updated.history, {
              at: checkedAt,
              event: 'verified',
              detail: `drift ${driftSeconds} s${decision.acceptedStep !== decision.step ? ', confirmed by the next code' : ''}`,
            }),
          };
          outcome = 'valid';
          answer = { status: 200, body: { ...result, valid: true, driftSeconds, withinSignInWindow: decision.withinSignIn, withinActivationWindow: true } };
        } else {
          // Wrong, unconfirmed and replayed codes all count: each is a guess checked against the secret.
          const failedAttempts = lock.failedAttempts + 1;
          updated = { ...updated, failedAttempts };
          if (decision.kind === 'replay') {
            outcome = 'replayed';
            answer = errorOutcome(409, 'CODE_REPLAYED');
          } else if (decision.kind === 'confirm') {
            // The step stays unused: the caller asks again with nextCode. No drift or step: that would tell a
            // guesser which step the code belongs to.
            outcome = 'confirmation-required';
            answer = { status: 200, body: { ...result, confirmationRequired: true, withinActivationWindow: true } };
          } else {
            outcome = 'invalid';
            answer = { status: 200, body: result };
          }
          if (failedAttempts >= this.deps.lockoutLimit) {
            const duration = this.deps.lockoutMinutes === 0 ? 'until unlocked' : `for ${this.lockMinutes(failedAttempts)} min`;
            updated = {
              ...updated,
              lockedUntil: this.lockedUntilFrom(now, failedAttempts),
              history: appendHistory(updated.history, { at: checkedAt, event: 'locked', detail: `${failedAttempts} failed checks, locked ${duration}` }),
            };
            outcome += '-locked';
          }
        }

        if (await this.tryReplace(serial, current, updated, attempt)) {
          this.log(serial, outcome, answer.status === 200 ? answer.body.driftSeconds : null);
          return answer;
        }
      }
      throw this.keptChanging(serial);
    } finally {
      params?.secret.fill(0);
    }
  }

  async unlock(serial: string): Promise<UnlockOutcome> {
    const now = this.deps.clock.now();
    const at = now.toISOString();
    for (let attempt = 1; attempt <= this.maxWriteAttempts; attempt++) {
      const current = await this.deps.tokens.get(serial);
      if (!current) return errorOutcome(404, 'TOKEN_NOT_FOUND');
      if (current.value.state === 'retired') return errorOutcome(410, 'TOKEN_RETIRED');
      const entity = current.value;
      const wasLocked = entity.lockedUntil !== null && this.lockView(entity, now).locked;
      if (entity.failedAttempts === 0 && entity.lockedUntil === null) {
        this.deps.log.info('unlock', { serial, outcome: 'not-locked' });
        return { status: 200, body: { serial, unlocked: true, wasLocked: false } };
      }
      const updated: TokenEntity = {
        ...entity,
        failedAttempts: 0,
        lockedUntil: null,
        updatedAt: at,
        history: wasLocked ? appendHistory(entity.history, { at, event: 'unlocked', detail: 'administrator' }) : entity.history,
      };
      if (await this.tryReplace(serial, current, updated, attempt)) {
        this.deps.log.info('unlock', { serial, outcome: wasLocked ? 'unlocked' : 'reset' });
        return { status: 200, body: { serial, unlocked: true, wasLocked } };
      }
    }
    throw this.keptChanging(serial);
  }

  private keptChanging(serial: string): TransientError {
    return new TransientError(`Token ${serial} kept changing during the check (${this.maxWriteAttempts} attempts); try again.`, 503);
  }

  /** false when another writer got there first: the caller re-reads and recomputes, within its attempts. */
  private async tryReplace(serial: string, current: Versioned<TokenEntity>, updated: TokenEntity, attempt: number): Promise<boolean> {
    try {
      await this.deps.tokens.replace(serial, updated, current.etag);
      return true;
    } catch (e) {
      if (!(e instanceof PreconditionFailedError)) throw e;
      // Jitter spreads a burst of writers so each round lets one through.
      if (attempt < this.maxWriteAttempts) await sleep(Math.floor(Math.random() * 5 * attempt));
      return false;
    }
  }
}
