/**
 * The activation-code check behind `POST /api/tokens/{serial}/verify` and
 * `POST /api/tokens/{serial}/unlock`. Pure TypeScript over the ports: the HTTP
 * function only maps `VerifyOutcome` to a response.
 *
 * Order of a check: body shape (400) -> token (404 / 410 / 409 not TOTP) ->
 * code length for the token (400) -> lock (423) -> vault read -> HMAC scans.
 * Nothing before the scans costs a failure or an HMAC.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { decodeBase32 } from '../core/encoding.js';
import { PROBLEM_CODES, type ProblemCode } from '../core/problems.js';
import { parseHashAlgorithm } from '../core/token.js';
import { findMatchingStep, isWellFormedCode, scanSteps, stepAt, type OtpParameters, type StepMatch } from '../core/totp.js';
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
  /** How long a lock lasts; 0: until an administrator unlocks it. */
  lockoutMinutes: number;
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
  /** Positive: the token's clock is ahead. null when no step matched. */
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
  | { kind: 'accept'; match: StepMatch; acceptedStep: number; withinSignIn: boolean }
  | { kind: 'confirm'; match: StepMatch }
  | { kind: 'replay' }
  | { kind: 'wrong' };

interface CheckContext {
  params: OtpParameters;
  code: string;
  nextCode: string | undefined;
  unixSeconds: number;
  signInSteps: number;
  activationSteps: number;
}

/** The lowest step in [low, high] whose code is `code`, ignoring any replay floor. */
function decide(ctx: CheckContext, floor: number | null): Decision {
  const { params, code, nextCode, unixSeconds } = ctx;
  const current = stepAt(unixSeconds, params.period);
  const afterStep = floor ?? undefined;
  const nextMatches = (step: number) =>
    nextCode !== undefined && findMatchingStep(params, nextCode, { unixSeconds: (step + 1) * params.period, windowSteps: 0 }) !== undefined;

  // Fast path: Entra's sign-in window.
  const near = findMatchingStep(params, code, { unixSeconds, windowSteps: ctx.signInSteps, afterStep });
  if (near && (nextCode === undefined || nextMatches(near.step))) {
    return { kind: 'accept', match: near, acceptedStep: nextCode === undefined ? near.step : near.step + 1, withinSignIn: true };
  }

  // A code of a used step inside the sign-in window is the usual replay (a resubmission, a lost race):
  // answer it before the wide scan, which could otherwise find a chance recurrence of the code.
  if (floor !== null && floor >= current - ctx.signInSteps) {
    const high = Math.min(floor, current + ctx.signInSteps);
    if (scanSteps(params, code, current - ctx.signInSteps, high) !== undefined) return { kind: 'replay' };
  }

  // Activation window, ascending. A 6-digit code recurs about 0.6% of the time in +/- 1 day, so with a
  // nextCode keep looking past a step whose successor does not match.
  let wide = findMatchingStep(params, code, { unixSeconds, windowSteps: ctx.activationSteps, afterStep });
  while (wide) {
    if (nextCode === undefined) return { kind: 'confirm', match: wide };
    if (wide.step !== near?.step && nextMatches(wide.step)) {
      return { kind: 'accept', match: wide, acceptedStep: wide.step + 1, withinSignIn: Math.abs(wide.delta) <= ctx.signInSteps };
    }
    wide = findMatchingStep(params, code, { unixSeconds, windowSteps: ctx.activationSteps, afterStep: wide.step });
  }

  // Nothing fresh matched: a code of an already accepted step (further back) is a replay, not a wrong code.
  if (floor !== null) {
    const low = current - ctx.activationSteps;
    const high = Math.min(floor, current + ctx.activationSteps);
    if (scanSteps(params, code, low, high) !== undefined) return { kind: 'replay' };
  }
  return { kind: 'wrong' };
}

type LockView = { locked: boolean; expired: boolean; failedAttempts: number };

export class VerifyService {
  private readonly maxWriteAttempts: number;

  constructor(private readonly deps: VerifyDeps) {
    if (!Number.isInteger(deps.lockoutLimit) || deps.lockoutLimit < 1) throw new RangeError('lockoutLimit must be an integer >= 1.');
    if (!Number.isFinite(deps.lockoutMinutes) || deps.lockoutMinutes < 0) throw new RangeError('lockoutMinutes must be >= 0.');
    this.maxWriteAttempts = deps.maxWriteAttempts ?? 10;
  }

  private lockView(entity: TokenEntity, now: Date): LockView {
    const until = entity.lockedUntil ? Date.parse(entity.lockedUntil) : NaN;
    if (!Number.isNaN(until) && until <= now.getTime()) {
      // The timeout ran out: the lock and the failures that caused it are forgotten.
      return { locked: false, expired: true, failedAttempts: 0 };
    }
    const locked = !Number.isNaN(until) && entity.failedAttempts >= this.deps.lockoutLimit;
    return { locked, expired: false, failedAttempts: entity.failedAttempts };
  }

  private lockedUntilFrom(now: Date): string {
    if (this.deps.lockoutMinutes === 0) return LOCKED_UNTIL_ADMIN;
    return new Date(now.getTime() + this.deps.lockoutMinutes * 60_000).toISOString();
  }

  private log(serial: string, outcome: string, driftSeconds: number | null = null): void {
    // Only serial, outcome and drift: never a code or anything derived from the secret.
    this.deps.log.info('verify', { serial, outcome, driftSeconds });
  }

  /** Reads the seed once per request; the caller zeroes it. */
  private async loadParams(entity: TokenEntity): Promise<OtpParameters> {
    const stored = await this.deps.secrets.get(entity.secretName);
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
    // The scans depend only on the replay floor, so a retry after a concurrent write rescans only if it moved.
    const decisions = new Map<number | null, Decision>();

    try {
      for (let attempt = 1; ; attempt++) {
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
        let decision = decisions.get(floor);
        if (!decision) {
          decision = decide(
            {
              params,
              code: request.code,
              nextCode: request.nextCode,
              unixSeconds: Math.floor(now.getTime() / 1000),
              signInSteps: signInWindowSteps(entity.period),
              activationSteps: activationWindowSteps(entity.period),
            },
            floor,
          );
          decisions.set(floor, decision);
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

        if (decision.kind === 'replay') {
          this.log(serial, 'replayed');
          return errorOutcome(409, 'CODE_REPLAYED');
        }
        if (decision.kind === 'confirm') {
          // Not a failure and the step stays unused: the caller asks again with nextCode.
          const driftSeconds = decision.match.delta * entity.period;
          this.log(serial, 'confirmation-required', driftSeconds);
          return { status: 200, body: { ...result, confirmationRequired: true, driftSeconds, withinActivationWindow: true } };
        }

        let updated: TokenEntity = { ...entity, updatedAt: checkedAt };
        if (lock.expired) {
          updated = { ...updated, failedAttempts: 0, lockedUntil: null, history: appendHistory(updated.history, { at: checkedAt, event: 'unlocked', detail: 'lockout timeout' }) };
        }
        let outcome: string;
        let response: VerifyResult;
        if (decision.kind === 'accept') {
          const driftSeconds = decision.match.delta * entity.period;
          updated = {
            ...updated,
            failedAttempts: 0,
            lockedUntil: null,
            lastAcceptedStep: decision.acceptedStep,
            lastVerifiedAt: checkedAt,
            driftSeconds,
            history: appendHistory(updated.history, {
              at: checkedAt,
              event: 'verified',
              detail: `drift ${driftSeconds} s${decision.acceptedStep !== decision.match.step ? ', confirmed by the next code' : ''}`,
            }),
          };
          outcome = 'valid';
          response = { ...result, valid: true, driftSeconds, withinSignInWindow: decision.withinSignIn, withinActivationWindow: true };
        } else {
          const failedAttempts = lock.failedAttempts + 1;
          updated = { ...updated, failedAttempts };
          outcome = 'invalid';
          if (failedAttempts >= this.deps.lockoutLimit) {
            updated = {
              ...updated,
              lockedUntil: this.lockedUntilFrom(now),
              history: appendHistory(updated.history, { at: checkedAt, event: 'locked', detail: `${failedAttempts} consecutive wrong codes` }),
            };
            outcome = 'invalid-locked';
          }
          response = result;
        }

        if (await this.tryReplace(serial, current, updated, attempt)) {
          this.log(serial, outcome, response.driftSeconds);
          return { status: 200, body: response };
        }
      }
    } finally {
      params?.secret.fill(0);
    }
  }

  async unlock(serial: string): Promise<UnlockOutcome> {
    const now = this.deps.clock.now();
    const at = now.toISOString();
    for (let attempt = 1; ; attempt++) {
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
  }

  /** false when another writer got there first (re-read and recompute); throws once the attempts are spent. */
  private async tryReplace(serial: string, current: Versioned<TokenEntity>, updated: TokenEntity, attempt: number): Promise<boolean> {
    try {
      await this.deps.tokens.replace(serial, updated, current.etag);
      return true;
    } catch (e) {
      if (!(e instanceof PreconditionFailedError)) throw e;
      if (attempt >= this.maxWriteAttempts) {
        throw new TransientError(`Token ${serial} kept changing during the check (${attempt} attempts); try again.`, 503);
      }
      // Jitter spreads a burst of writers so each round lets one through.
      await sleep(Math.floor(Math.random() * 5 * attempt));
      return false;
    }
  }
}
