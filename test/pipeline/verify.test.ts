import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { setImmediate as tick } from 'node:timers/promises';
import type { HttpResponseInit } from '@azure/functions';
import { toCanonicalBase32 } from '../../shared/core/encoding.js';
import { PROBLEM_CODES } from '../../shared/core/problems.js';
import type { HashAlgorithm } from '../../shared/core/token.js';
import { totpCode, type OtpParameters } from '../../shared/core/totp.js';
import { PreconditionFailedError, TransientError } from '../../shared/pipeline/errors.js';
import type { Logger, TokenEntity, Versioned } from '../../shared/pipeline/ports.js';
import { answerVerify, parseVerifyBody, unlockAnswer } from '../../shared/app/http.js';
import {
  isActivated,
  judgeCodes,
  LOCKED_UNTIL_ADMIN,
  planUnlock,
  planVerify,
  VerifyService,
  type LockoutPolicy,
  type VerifyDeps,
  type VerifyPlanInput,
} from '../../shared/pipeline/verify.js';
import { ManualClock } from '../helpers/clock.js';
import { MemorySecretStore, MemoryTable } from '../helpers/memory-ports.js';

const SERIAL = 'TK-0001';
const SECRET_NAME = 'oath-x-544b2d30303031';
const DAY = 86_400;
const HOUR = 3_600;
const MINUTE_MS = 60_000;
/** A fixed, random-looking seed, so every code below is deterministic. */
const SEED = new Uint8Array(createHash('sha1').update('verify.test seed').digest());
const SEED_BASE32 = toCanonicalBase32(SEED);
const T0 = Date.UTC(2025, 0, 15, 12, 0, 10);
const T0_SECONDS = T0 / 1000;

const secondsOf = (clock: ManualClock) => Math.floor(clock.now().getTime() / 1000);

class CapturingLog implements Logger {
  readonly lines: { message: string; data: Record<string, unknown> | undefined }[] = [];
  info(message: string, data?: Record<string, unknown>) {
    this.lines.push({ message, data });
  }
  warn(message: string, data?: Record<string, unknown>) {
    this.lines.push({ message, data });
  }
  error(message: string, data?: Record<string, unknown>) {
    this.lines.push({ message, data });
  }
}

/** Yields between the read and the write, so concurrent checks interleave as they would against a real table. */
class InterleavingTable extends MemoryTable<TokenEntity> {
  override async get(key: string): Promise<Versioned<TokenEntity> | undefined> {
    const row = await super.get(key);
    await tick();
    return row;
  }
}

function tokenEntity(extra: Partial<TokenEntity> = {}): TokenEntity {
  return {
    serial: SERIAL,
    state: 'imported',
    manufacturer: 'Token2',
    model: 'C202',
    type: 'totp',
    algorithm: 'SHA1',
    digits: 6,
    period: 30,
    counter: null,
    secretBytes: SEED.length,
    secretName: SECRET_NAME,
    secretVersion: 'v1',
    batch: 'seeds/batch.csv@"0x1"',
    createdAt: '2025-01-01T00:00:00.000Z',
    updatedAt: '2025-01-01T00:00:00.000Z',
    upn: 'helga@contoso.com',
    buildId: 'b1',
    exportFile: 'imports/x.csv',
    exportingSince: null,
    deviceId: null,
    userId: null,
    methodId: null,
    lastAcceptedStep: null,
    activatedBuildId: null,
    failedAttempts: 0,
    lockedUntil: null,
    lastVerifiedAt: null,
    driftSeconds: null,
    history: '[]',
    ...extra,
  };
}

/** The body of a checked code's 200 answer. */
interface VerifyResult {
  serial: string;
  valid: boolean;
  confirmationRequired: boolean;
  driftSeconds: number | null;
  withinSignInWindow: boolean;
  withinActivationWindow: boolean;
  checkedAt: string;
  attemptsLeft?: number;
  lockedUntil?: string | null;
}

type ErrorBody = { error: { code: string; message: string }; attemptsLeft?: number; lockedUntil?: string | null };
type VerifyOutcome = { status: 200; body: VerifyResult } | { status: 400 | 404 | 409 | 410 | 423; body: ErrorBody };

/** What the endpoint answers: the HTTP module's parsing and mapping around the service. */
function endpoint(service: VerifyService) {
  const wire = (answer: HttpResponseInit) => ({ status: answer.status, body: answer.jsonBody as unknown }) as VerifyOutcome;
  return {
    verify: async (serial: string, body: unknown) => wire(await answerVerify(service, serial, body)),
    unlock: async (serial: string) => wire(unlockAnswer(await service.unlock(serial))),
  };
}

interface Setup {
  service: VerifyService;
  api: ReturnType<typeof endpoint>;
  table: MemoryTable<TokenEntity>;
  secrets: MemorySecretStore;
  clock: ManualClock;
  log: CapturingLog;
  params: OtpParameters;
  /** The code the token shows `offset` seconds from the clock's now. */
  codeAt(offset: number): string;
  entity(): TokenEntity;
}

async function setup(
  options: { token?: Partial<TokenEntity>; deps?: Partial<VerifyDeps>; table?: MemoryTable<TokenEntity>; algorithm?: HashAlgorithm } = {},
): Promise<Setup> {
  const table = options.table ?? new MemoryTable<TokenEntity>();
  const secrets = new MemorySecretStore();
  const clock = new ManualClock(new Date(T0));
  const log = new CapturingLog();
  const { version } = await secrets.set(SECRET_NAME, SEED_BASE32, {
    contentType: 'application/vnd.oath-totp-seed',
    tags: { serial: SERIAL },
  });
  const entity = tokenEntity({ secretVersion: version, ...options.token });
  await table.insert(SERIAL, entity);
  const service = new VerifyService({
    tokens: table,
    secrets,
    clock,
    log,
    lockoutLimit: 10,
    lockoutMinutes: 15,
    lockoutMaxMinutes: 24 * 60,
    ...options.deps,
  });
  const params: OtpParameters = {
    secret: SEED,
    algorithm: (entity.algorithm as HashAlgorithm) ?? 'SHA1',
    digits: entity.digits,
    period: entity.period,
  };
  return {
    service,
    api: endpoint(service),
    table,
    secrets,
    clock,
    log,
    params,
    codeAt: (offset) => totpCode(params, secondsOf(clock) + offset),
    entity: () => table.rows.get(SERIAL)!.value,
  };
}

/** A code that matches no step within +/- `windowSteps` of now, so it is wrong for certain. */
const windowCodes = new Map<string, Set<string>>();
function wrongCode(s: Setup, windowSteps: number, skip = 0): string {
  const key = `${secondsOf(s.clock)}/${windowSteps}/${s.params.period}/${s.params.algorithm}/${s.params.digits}`;
  let used = windowCodes.get(key);
  if (!used) {
    used = new Set<string>();
    for (let d = -windowSteps; d <= windowSteps; d++) used.add(s.codeAt(d * s.params.period));
    windowCodes.set(key, used);
  }
  let found = 0;
  for (let n = 0; n < 10 ** s.params.digits; n++) {
    const code = String(n).padStart(s.params.digits, '0');
    if (!used.has(code) && found++ === skip) return code;
  }
  throw new Error('no wrong code left');
}

function okBody(outcome: VerifyOutcome): VerifyResult {
  assert.equal(outcome.status, 200, JSON.stringify(outcome.body));
  return outcome.body;
}

function errorCode(outcome: unknown): string {
  return (outcome as { body: { error: { code: string } } }).body.error.code;
}

const events = (entity: TokenEntity) => (JSON.parse(entity.history) as { event: string }[]).map((e) => e.event);
const stepNow = (s: Setup) => Math.floor(secondsOf(s.clock) / s.params.period);

void describe('parseVerifyBody', () => {
  void it('accepts a code, an optional nextCode, and the JSON text of the same', () => {
    assert.deepEqual(parseVerifyBody({ code: '123456' }), { code: '123456' });
    assert.deepEqual(parseVerifyBody({ code: '123456', nextCode: '654321' }), { code: '123456', nextCode: '654321' });
    assert.deepEqual(parseVerifyBody({ code: '12345678', nextCode: null }), { code: '12345678' });
    assert.deepEqual(parseVerifyBody('{"code":"000111"}'), { code: '000111' });
  });

  void it('refuses other shapes', () => {
    for (const body of [
      null,
      undefined,
      42,
      [],
      'not json',
      '[]',
      {},
      { code: 123456 },
      { code: '12345' },
      { code: '123456789' },
      { code: '12a456' },
      { code: ' 123456' },
      { code: '１２３４５６' },
      { code: '123456', nextCode: 654321 },
      { code: '123456', next_code: '654321' },
    ]) {
      assert.ok('error' in parseVerifyBody(body), `accepted ${JSON.stringify(body)}`);
    }
  });
});

void describe('planVerify (no storage, no vault)', () => {
  const policy: LockoutPolicy = { limit: 3, minutes: 15, maxMinutes: 60 };
  const now = new Date(T0);
  const params: OtpParameters = { secret: SEED, algorithm: 'SHA1', digits: 6, period: 30 };
  const code = (offset: number) => totpCode(params, T0_SECONDS + offset);
  const input = (
    token: TokenEntity | undefined,
    request: { code: string; nextCode?: string },
    p: LockoutPolicy = policy,
  ): VerifyPlanInput => ({ serial: SERIAL, token, request, now, policy: p });
  const never = () => {
    throw new Error('the codes were judged');
  };

  void it('screens out what needs no HMAC and writes nothing', () => {
    const locked = tokenEntity({ failedAttempts: 3, lockedUntil: new Date(T0 + MINUTE_MS).toISOString() });
    const cases: [TokenEntity | undefined, string, string][] = [
      [undefined, '123456', 'not-found'],
      [tokenEntity({ state: 'retired' }), '123456', 'retired'],
      [tokenEntity({ type: 'hotp' }), '123456', 'not-totp'],
      [tokenEntity(), '12345678', 'request-invalid'],
      [locked, code(0), 'locked'],
    ];
    for (const [token, c, status] of cases) {
      const plan = planVerify(input(token, { code: c }), params, never);
      assert.deepEqual([plan.outcome.status, plan.write], [status, null], status);
    }
    const admin = planVerify(input(tokenEntity({ failedAttempts: 3, lockedUntil: LOCKED_UNTIL_ADMIN }), { code: code(0) }), params, never);
    assert.deepEqual(admin.outcome, { status: 'locked', serial: SERIAL, lockedUntil: null });
  });

  void it('plans an acceptance: the step consumed, the drift, the count cleared, the export activated', () => {
    const token = tokenEntity({ failedAttempts: 2, buildId: 'b7' });
    const before = JSON.stringify(token);
    const plan = planVerify(input(token, { code: code(-30), nextCode: code(0) }), params);
    assert.deepEqual(plan.outcome, {
      status: 'accepted',
      serial: SERIAL,
      driftSeconds: -30,
      withinSignInWindow: true,
      checkedAt: now.toISOString(),
    });
    const step = Math.floor(T0_SECONDS / 30);
    assert.deepEqual(
      [
        plan.write?.lastAcceptedStep,
        plan.write?.failedAttempts,
        plan.write?.activatedBuildId,
        plan.write?.driftSeconds,
        plan.write?.lastVerifiedAt,
      ],
      [step, 0, 'b7', -30, now.toISOString()],
    );
    assert.deepEqual(events(plan.write!), ['verified']);
    assert.equal(JSON.stringify(token), before, 'the row read is not changed');
  });

  void it('plans failures: one more counted, the attempts left, and the lock at the limit', () => {
    const wrong = { kind: 'wrong' } as const;
    const first = planVerify(input(tokenEntity(), { code: '000000' }), params, () => wrong);
    assert.deepEqual(first.outcome, {
      status: 'rejected',
      serial: SERIAL,
      reason: 'wrong',
      attemptsLeft: 2,
      lock: null,
      checkedAt: now.toISOString(),
    });
    assert.deepEqual([first.write?.failedAttempts, first.write?.lockedUntil], [1, null]);

    const until = new Date(T0 + 15 * MINUTE_MS).toISOString();
    const third = planVerify(input(tokenEntity({ failedAttempts: 2 }), { code: '000000' }), params, () => ({ kind: 'replay' }));
    assert.deepEqual(third.outcome, {
      status: 'rejected',
      serial: SERIAL,
      reason: 'replayed',
      attemptsLeft: 0,
      lock: { until },
      checkedAt: now.toISOString(),
    });
    assert.deepEqual([third.write?.failedAttempts, third.write?.lockedUntil, events(third.write!)], [3, until, ['locked']]);

    const unlockedOnly = planVerify(
      input(tokenEntity({ failedAttempts: 2 }), { code: '000000' }, { ...policy, minutes: 0 }),
      params,
      () => ({ kind: 'confirm' }),
    );
    assert.deepEqual(
      [unlockedOnly.outcome.status === 'rejected' && unlockedOnly.outcome.lock, unlockedOnly.write?.lockedUntil],
      [{ until: null }, LOCKED_UNTIL_ADMIN],
    );
  });

  void it('ends an expired lock in the same write, and the next failure locks for twice as long', () => {
    const expired = tokenEntity({ failedAttempts: 3, lockedUntil: new Date(T0 - 1).toISOString() });
    const plan = planVerify(input(expired, { code: '000000' }), params, () => ({ kind: 'wrong' }));
    assert.deepEqual(events(plan.write!), ['unlocked', 'locked']);
    assert.equal(plan.write?.lockedUntil, new Date(T0 + 30 * MINUTE_MS).toISOString());
    assert.equal(plan.outcome.status === 'rejected' && plan.outcome.attemptsLeft, 0);
  });

  void it('judges the codes with the real scans by default: a code of the sign-in window is accepted, a used one replayed', () => {
    const step = Math.floor(T0_SECONDS / 30);
    const check = { params, code: code(0), nextCode: undefined, currentStep: step, signInSteps: 2, activationSteps: 2880 };
    assert.deepEqual(judgeCodes({ ...check, floor: null }), { kind: 'accept', step, acceptedStep: step, delta: 0, withinSignIn: true });
    assert.deepEqual(judgeCodes({ ...check, floor: step }), { kind: 'replay' });
  });

  void it('plans an unlock', () => {
    const locked = tokenEntity({ failedAttempts: 3, lockedUntil: new Date(T0 + MINUTE_MS).toISOString() });
    const plan = planUnlock(SERIAL, locked, now, policy);
    assert.deepEqual(
      [plan.outcome, plan.write?.failedAttempts, plan.write?.lockedUntil, events(plan.write!)],
      [{ status: 'unlocked', serial: SERIAL, wasLocked: true }, 0, null, ['unlocked']],
    );
    assert.deepEqual(planUnlock(SERIAL, tokenEntity(), now, policy), {
      outcome: { status: 'unlocked', serial: SERIAL, wasLocked: false },
      write: null,
    });
    assert.deepEqual(planUnlock(SERIAL, undefined, now, policy).outcome, { status: 'not-found', serial: SERIAL });
    assert.deepEqual(planUnlock(SERIAL, tokenEntity({ state: 'retired' }), now, policy).outcome, { status: 'retired', serial: SERIAL });
  });
});

void describe('VerifyService.verify', () => {
  void it('accepts a code within the sign-in window and records the drift', async () => {
    const s = await setup();
    const body = okBody(await s.api.verify(SERIAL, { code: s.codeAt(30) }));
    assert.deepEqual(body, {
      serial: SERIAL,
      valid: true,
      confirmationRequired: false,
      driftSeconds: 30,
      withinSignInWindow: true,
      withinActivationWindow: true,
      checkedAt: new Date(T0).toISOString(),
    });
    const e = s.entity();
    assert.equal(e.lastAcceptedStep, stepNow(s) + 1);
    assert.equal(e.lastVerifiedAt, new Date(T0).toISOString());
    assert.equal(e.driftSeconds, 30);
    assert.equal(e.failedAttempts, 0);
    assert.deepEqual(events(e), ['verified']);
    assert.equal(s.secrets.gets, 1);
  });

  void it('asks for the next code when the match is outside the sign-in window: no drift or step, counted, nothing consumed', async () => {
    const s = await setup();
    const body = okBody(await s.api.verify(SERIAL, { code: s.codeAt(-3600) }));
    assert.deepEqual(body, {
      serial: SERIAL,
      valid: false,
      confirmationRequired: true,
      driftSeconds: null,
      withinSignInWindow: false,
      withinActivationWindow: true,
      checkedAt: new Date(T0).toISOString(),
    });
    assert.equal(s.entity().failedAttempts, 1, 'an unconfirmed match counts toward the lockout');
    assert.equal(s.entity().lastAcceptedStep, null);
    assert.equal(s.entity().driftSeconds, null);
    assert.ok(
      s.log.lines.every((l) => l.data?.driftSeconds === null),
      'nor does the log say where the code matched',
    );

    // The same code again is still usable, now confirmed by the following step.
    const confirmed = okBody(await s.api.verify(SERIAL, { code: s.codeAt(-3600), nextCode: s.codeAt(-3570) }));
    assert.equal(confirmed.valid, true);
    assert.equal(confirmed.confirmationRequired, false);
    assert.equal(confirmed.driftSeconds, -3600);
    assert.equal(confirmed.withinSignInWindow, false);
    assert.equal(confirmed.withinActivationWindow, true);
    const e = s.entity();
    assert.equal(e.lastAcceptedStep, stepNow(s) - 119, 'the confirming step is consumed');
    assert.equal(e.driftSeconds, -3600);
    assert.equal(e.failedAttempts, 0);
    // Activated now: those steps are outside the only window left, so they are just wrong.
    const again = okBody(await s.api.verify(SERIAL, { code: s.codeAt(-3570) }));
    assert.deepEqual([again.valid, again.confirmationRequired, again.driftSeconds], [false, false, null]);
  });

  void it('counts a wrong nextCode as a failure', async () => {
    const s = await setup();
    const body = okBody(await s.api.verify(SERIAL, { code: s.codeAt(DAY - 600), nextCode: s.codeAt(DAY - 540) }));
    assert.equal(body.valid, false);
    assert.equal(body.confirmationRequired, false);
    assert.equal(body.driftSeconds, null);
    assert.equal(s.entity().failedAttempts, 1);
    assert.equal(s.entity().lastAcceptedStep, null);
  });

  void it('confirms a sign-in window code with nextCode and consumes both steps', async () => {
    const s = await setup();
    assert.equal(okBody(await s.api.verify(SERIAL, { code: s.codeAt(0), nextCode: s.codeAt(30) })).valid, true);
    assert.equal(s.entity().lastAcceptedStep, stepNow(s) + 1);
    assert.equal(errorCode(await s.api.verify(SERIAL, { code: s.codeAt(30) })), 'CODE_REPLAYED');
  });

  void it('finds the confirmed step when the first code recurs earlier in the window', async () => {
    const s = await setup();
    const W = 2880;
    const seen = new Map<string, number>();
    let pair: [number, number] | undefined;
    for (let d = -W; d < W && !pair; d++) {
      const code = s.codeAt(d * 30);
      const earlier = seen.get(code);
      if (earlier !== undefined && earlier < -2 && d > 2) pair = [earlier, d];
      if (earlier === undefined) seen.set(code, d);
    }
    assert.ok(pair, 'a 6-digit code recurs within +/- 1 day for this seed');
    const [, later] = pair;
    const body = okBody(await s.api.verify(SERIAL, { code: s.codeAt(later * 30), nextCode: s.codeAt(later * 30 + 30) }));
    assert.equal(body.valid, true);
    assert.equal(body.driftSeconds, later * 30);
    assert.equal(s.entity().lastAcceptedStep, stepNow(s) + later + 1);
  });

  void it('spans +/- 1 day for 30 s tokens and +/- 2 days for 60 s tokens, until activation', async () => {
    const s30 = await setup();
    assert.equal(okBody(await s30.api.verify(SERIAL, { code: s30.codeAt(-DAY + 30) })).confirmationRequired, true);
    const beyond = okBody(await s30.api.verify(SERIAL, { code: s30.codeAt(1.5 * DAY), nextCode: s30.codeAt(1.5 * DAY + 30) }));
    assert.equal(beyond.valid, false);
    assert.equal(beyond.withinActivationWindow, false);

    // A 60 s token's sign-in window is +/- 2 steps (2 minutes).
    const signIn60 = await setup({ token: { period: 60 } });
    assert.equal(okBody(await signIn60.api.verify(SERIAL, { code: signIn60.codeAt(-120) })).withinSignInWindow, true);

    const s60 = await setup({ token: { period: 60 } });
    const drift = 1.5 * DAY;
    const body = okBody(await s60.api.verify(SERIAL, { code: s60.codeAt(drift), nextCode: s60.codeAt(drift + 60) }));
    assert.equal(body.valid, true);
    assert.equal(body.driftSeconds, (Math.floor((T0_SECONDS + drift) / 60) - Math.floor(T0_SECONDS / 60)) * 60);
    assert.equal(body.driftSeconds, drift);
    assert.equal(body.withinSignInWindow, false);
    const tooFar = okBody(await s60.api.verify(SERIAL, { code: s60.codeAt(2 * DAY + 300), nextCode: s60.codeAt(2 * DAY + 360) }));
    assert.equal(tooFar.valid, false);
    assert.equal(tooFar.withinActivationWindow, false);
    assert.equal(s60.entity().failedAttempts, 1);
    assert.equal(s30.entity().failedAttempts, 2, 'the unconfirmed match and the miss');
  });

  void it('checks 8-digit SHA256 tokens with their own digits', async () => {
    const s = await setup({ token: { algorithm: 'SHA256', digits: 8 } });
    assert.equal(okBody(await s.api.verify(SERIAL, { code: s.codeAt(0) })).valid, true);
    const short = await s.api.verify(SERIAL, { code: '123456' });
    assert.equal(short.status, 400);
  });

  void it('refuses a replayed code and any earlier step of the sign-in window (409), counting each as a failure', async () => {
    const s = await setup();
    const code = s.codeAt(0);
    assert.equal(okBody(await s.api.verify(SERIAL, { code })).valid, true);
    const again = await s.api.verify(SERIAL, { code });
    assert.equal(again.status, 409);
    assert.equal(errorCode(again), 'CODE_REPLAYED');
    assert.equal(errorCode(await s.api.verify(SERIAL, { code: s.codeAt(-30) })), 'CODE_REPLAYED');
    assert.equal(s.entity().failedAttempts, 2);
    // Activated: a far earlier step is outside the only window left, so it is just wrong.
    const far = okBody(await s.api.verify(SERIAL, { code: s.codeAt(-5 * HOUR) }));
    assert.deepEqual([far.valid, far.confirmationRequired, far.driftSeconds, far.withinActivationWindow], [false, false, null, false]);
    assert.equal(s.entity().failedAttempts, 3);
    // The following step is still fresh, and its acceptance clears the count.
    assert.equal(okBody(await s.api.verify(SERIAL, { code: s.codeAt(30) })).valid, true);
    assert.equal(s.entity().failedAttempts, 0);
  });

  void it('counts replays toward the lockout', async () => {
    const s = await setup({ deps: { lockoutLimit: 3 } });
    const code = s.codeAt(0);
    assert.equal(okBody(await s.api.verify(SERIAL, { code })).valid, true);
    for (let i = 1; i <= 3; i++) {
      assert.equal(errorCode(await s.api.verify(SERIAL, { code })), 'CODE_REPLAYED');
      assert.equal(s.entity().failedAttempts, i);
    }
    assert.equal(s.entity().lockedUntil, new Date(T0 + 15 * MINUTE_MS).toISOString());
    assert.equal((await s.api.verify(SERIAL, { code: s.codeAt(30) })).status, 423, 'the next fresh code too');
  });

  void it('counts unconfirmed matches toward the lockout', async () => {
    const s = await setup();
    for (let i = 1; i <= 10; i++) {
      const body = okBody(await s.api.verify(SERIAL, { code: s.codeAt(i * HOUR) }));
      assert.deepEqual([body.valid, body.confirmationRequired, body.driftSeconds], [false, true, null]);
      assert.equal(s.entity().failedAttempts, i);
    }
    assert.equal(s.entity().lastAcceptedStep, null, 'no step consumed');
    assert.equal((await s.api.verify(SERIAL, { code: s.codeAt(0) })).status, 423);
  });

  void it('once a code is accepted, only the sign-in window applies: far codes are wrong, say nothing, and lock the token', async () => {
    // The finding: after activation the +/- 1 day scan still ran, so random guesses revealed codes of known steps.
    const s = await setup();
    assert.equal(okBody(await s.api.verify(SERIAL, { code: s.codeAt(0) })).valid, true);
    assert.equal(isActivated(s.entity()), true);
    for (let h = 1; h <= 10; h++) {
      const body = okBody(await s.api.verify(SERIAL, { code: s.codeAt(h * HOUR) }));
      assert.equal(body.valid, false, `+${h} h`);
      assert.equal(body.driftSeconds, null, `+${h} h`);
      assert.equal(body.confirmationRequired, false, `+${h} h`);
      assert.equal(body.withinActivationWindow, false, `+${h} h`);
    }
    const next = await s.api.verify(SERIAL, { code: s.codeAt(30) });
    assert.equal(next.status, 423, 'the correct current code after 10 failures');
    assert.equal(errorCode(next), 'TOKEN_LOCKED');
    // Nor does a nextCode re-open the wide window.
    const u = await setup();
    assert.equal(okBody(await u.api.verify(SERIAL, { code: u.codeAt(0) })).valid, true);
    const paired = okBody(await u.api.verify(SERIAL, { code: u.codeAt(HOUR), nextCode: u.codeAt(HOUR + 30) }));
    assert.deepEqual([paired.valid, paired.driftSeconds], [false, null]);
  });

  void it('a 60 s token gets +/- 2 days before activation and +/- 2 minutes after it', async () => {
    const s = await setup({ token: { period: 60 } });
    assert.equal(okBody(await s.api.verify(SERIAL, { code: s.codeAt(1.5 * DAY) })).confirmationRequired, true);
    assert.equal(okBody(await s.api.verify(SERIAL, { code: s.codeAt(0) })).valid, true);
    assert.equal(okBody(await s.api.verify(SERIAL, { code: s.codeAt(120) })).valid, true);
    const after = okBody(await s.api.verify(SERIAL, { code: s.codeAt(1.5 * DAY), nextCode: s.codeAt(1.5 * DAY + 60) }));
    assert.deepEqual([after.valid, after.confirmationRequired, after.driftSeconds], [false, false, null]);
  });

  void it('re-opens the activation window for a new export, and closes it again at the next accepted code', async () => {
    const s = await setup({ token: { buildId: 'b1' } });
    assert.equal(okBody(await s.api.verify(SERIAL, { code: s.codeAt(0) })).valid, true);
    assert.equal(s.entity().activatedBuildId, 'b1');
    assert.equal(okBody(await s.api.verify(SERIAL, { code: s.codeAt(HOUR) })).confirmationRequired, false, 'closed');

    // A re-export (build --reexport) gives the token a new build id: Entra asks for activation again.
    const row = s.table.rows.get(SERIAL)!;
    await s.table.replace(SERIAL, { ...row.value, buildId: 'b2', state: 'exported' }, row.etag);
    assert.equal(isActivated(s.entity()), false);
    assert.equal(okBody(await s.api.verify(SERIAL, { code: s.codeAt(2 * HOUR) })).confirmationRequired, true, 're-opened');
    const confirmed = okBody(await s.api.verify(SERIAL, { code: s.codeAt(2 * HOUR), nextCode: s.codeAt(2 * HOUR + 30) }));
    assert.deepEqual([confirmed.valid, confirmed.driftSeconds], [true, 2 * HOUR]);
    assert.equal(s.entity().activatedBuildId, 'b2');
    assert.equal(s.entity().failedAttempts, 0);
    assert.equal(okBody(await s.api.verify(SERIAL, { code: s.codeAt(3 * HOUR) })).confirmationRequired, false, 'closed again');
  });

  void it('answers a replayed sign-in code 409 even where the code recurs later in a re-opened activation window', async () => {
    // Kills the mutation that drops the sign-in window's replay check: the wide scan past the replay floor would
    // find the later recurrence and answer "confirmation required" instead.
    const probe = await setup();
    const base = stepNow(probe);
    const W = 2880;
    const codes = Array.from({ length: 4000 + W }, (_, i) => totpCode(probe.params, (base + i) * 30));
    let recurring: number | undefined;
    for (let i = 0; i < 4000 && recurring === undefined; i++) {
      if (codes.indexOf(codes[i]!, i + 3) !== -1 && codes.indexOf(codes[i]!, i + 3) <= i + W) recurring = i;
    }
    assert.ok(recurring !== undefined, 'some code of this seed recurs within a day');

    const s = await setup({ token: { buildId: 'b1' } });
    s.clock.set(new Date((base + recurring) * 30_000 + 10_000));
    const code = s.codeAt(0);
    assert.equal(okBody(await s.api.verify(SERIAL, { code })).valid, true);
    const row = s.table.rows.get(SERIAL)!;
    await s.table.replace(SERIAL, { ...row.value, buildId: 'b2' }, row.etag);

    const replayed = await s.api.verify(SERIAL, { code });
    assert.equal(replayed.status, 409, JSON.stringify(replayed.body));
    assert.equal(errorCode(replayed), 'CODE_REPLAYED');
    assert.equal(s.entity().failedAttempts, 1);
  });

  void it('counts wrong codes, locks at the limit (423 even for the right code) and unlocks after the timeout', async () => {
    const s = await setup({ deps: { lockoutLimit: 3, lockoutMinutes: 15 } });
    for (let i = 0; i < 3; i++) {
      const body = okBody(await s.api.verify(SERIAL, { code: wrongCode(s, 2880, i) }));
      assert.equal(body.valid, false);
      assert.equal(body.confirmationRequired, false);
      assert.equal(s.entity().failedAttempts, i + 1);
    }
    assert.equal(s.entity().lockedUntil, new Date(T0 + 15 * 60_000).toISOString());
    assert.deepEqual(events(s.entity()), ['locked']);
    const gets = s.secrets.gets;
    const locked = await s.api.verify(SERIAL, { code: s.codeAt(0) });
    assert.equal(locked.status, 423);
    assert.equal(errorCode(locked), 'TOKEN_LOCKED');
    assert.equal(s.secrets.gets, gets, 'no vault read (and no HMAC) while locked');

    s.clock.advance(14 * MINUTE_MS);
    assert.equal((await s.api.verify(SERIAL, { code: s.codeAt(0) })).status, 423);
    s.clock.advance(MINUTE_MS);
    assert.equal(okBody(await s.api.verify(SERIAL, { code: s.codeAt(0) })).valid, true);
    assert.equal(s.entity().failedAttempts, 0);
    assert.equal(s.entity().lockedUntil, null);
    assert.deepEqual(events(s.entity()), ['locked', 'unlocked', 'verified']);
  });

  void it('after an expired lock the count goes on: the next failure locks again for twice as long, up to the cap', async () => {
    const s = await setup({ deps: { lockoutLimit: 2, lockoutMinutes: 15, lockoutMaxMinutes: 60 } });
    await s.api.verify(SERIAL, { code: wrongCode(s, 2880, 0) });
    await s.api.verify(SERIAL, { code: wrongCode(s, 2880, 1) });
    const lockMinutes: number[] = [];
    const recordLock = () => lockMinutes.push((Date.parse(s.entity().lockedUntil!) - s.clock.now().getTime()) / MINUTE_MS);
    recordLock();
    for (let i = 2; i < 6; i++) {
      s.clock.set(new Date(Date.parse(s.entity().lockedUntil!)));
      assert.equal(okBody(await s.api.verify(SERIAL, { code: wrongCode(s, 2880, i) })).valid, false);
      recordLock();
    }
    assert.deepEqual(lockMinutes, [15, 30, 60, 60, 60]);
    assert.equal(s.entity().failedAttempts, 6);
    assert.deepEqual(events(s.entity()), [
      'locked',
      'unlocked',
      'locked',
      'unlocked',
      'locked',
      'unlocked',
      'locked',
      'unlocked',
      'locked',
    ]);

    // Only an acceptance clears the count: the next lock is the first again.
    s.clock.set(new Date(Date.parse(s.entity().lockedUntil!)));
    assert.equal(okBody(await s.api.verify(SERIAL, { code: s.codeAt(0) })).valid, true);
    assert.equal(s.entity().failedAttempts, 0);
    await s.api.verify(SERIAL, { code: wrongCode(s, 2880, 0) });
    assert.equal(s.entity().lockedUntil, null, 'one failure after an acceptance does not lock');
    await s.api.verify(SERIAL, { code: wrongCode(s, 2880, 1) });
    assert.equal(Date.parse(s.entity().lockedUntil!) - s.clock.now().getTime(), 15 * MINUTE_MS);
  });

  void it("an administrator's unlock clears the escalation too", async () => {
    const s = await setup({ deps: { lockoutLimit: 1, lockoutMinutes: 10, lockoutMaxMinutes: 24 * 60 } });
    await s.api.verify(SERIAL, { code: wrongCode(s, 2880, 0) });
    s.clock.advance(10 * MINUTE_MS);
    await s.api.verify(SERIAL, { code: wrongCode(s, 2880, 1) });
    assert.equal(Date.parse(s.entity().lockedUntil!) - s.clock.now().getTime(), 20 * MINUTE_MS);
    assert.equal((await s.api.unlock(SERIAL)).status, 200);
    await s.api.verify(SERIAL, { code: wrongCode(s, 2880, 2) });
    assert.equal(Date.parse(s.entity().lockedUntil!) - s.clock.now().getTime(), 10 * MINUTE_MS);
  });

  void it('caps the lock at lockoutMaxMinutes however many came before', async () => {
    const s = await setup({ deps: { lockoutLimit: 3, lockoutMinutes: 15, lockoutMaxMinutes: 24 * 60 } });
    assert.deepEqual(
      [3, 4, 5, 6, 7, 8, 9, 10, 11].map((n) => s.service.lockMinutes(n)),
      [15, 30, 60, 120, 240, 480, 960, 1440, 1440],
    );
    assert.equal(s.service.lockMinutes(5000), 24 * 60, 'no overflow');
    for (let i = 0; i < 12; i++) {
      await s.api.verify(SERIAL, { code: wrongCode(s, 2, i) });
      if (s.entity().lockedUntil) s.clock.set(new Date(Date.parse(s.entity().lockedUntil!)));
    }
    assert.equal(s.entity().failedAttempts, 12);
    assert.equal(s.clock.now().getTime() - T0, (15 + 30 + 60 + 120 + 240 + 480 + 960 + 1440 + 1440 + 1440) * MINUTE_MS);
  });

  void it('a success resets the failure counter', async () => {
    const s = await setup({ deps: { lockoutLimit: 3 } });
    await s.api.verify(SERIAL, { code: wrongCode(s, 2880, 0) });
    await s.api.verify(SERIAL, { code: wrongCode(s, 2880, 1) });
    assert.equal(okBody(await s.api.verify(SERIAL, { code: s.codeAt(0) })).valid, true);
    await s.api.verify(SERIAL, { code: wrongCode(s, 2880, 2) });
    await s.api.verify(SERIAL, { code: wrongCode(s, 2880, 3) });
    assert.equal(s.entity().failedAttempts, 2);
    assert.equal(okBody(await s.api.verify(SERIAL, { code: s.codeAt(30) })).valid, true);
  });

  void it('with lockoutMinutes 0 stays locked until an administrator unlocks', async () => {
    const s = await setup({ deps: { lockoutLimit: 2, lockoutMinutes: 0 } });
    await s.api.verify(SERIAL, { code: wrongCode(s, 2880, 0) });
    await s.api.verify(SERIAL, { code: wrongCode(s, 2880, 1) });
    assert.equal(s.entity().lockedUntil, LOCKED_UNTIL_ADMIN);
    s.clock.advance(365 * DAY * 1000);
    assert.equal((await s.api.verify(SERIAL, { code: s.codeAt(0) })).status, 423);

    assert.deepEqual(await s.api.unlock(SERIAL), { status: 200, body: { serial: SERIAL, unlocked: true, wasLocked: true } });
    assert.equal(s.entity().failedAttempts, 0);
    assert.equal(s.entity().lockedUntil, null);
    assert.deepEqual(events(s.entity()), ['locked', 'unlocked']);
    assert.equal(okBody(await s.api.verify(SERIAL, { code: s.codeAt(0) })).valid, true);
    assert.deepEqual(await s.api.unlock(SERIAL), { status: 200, body: { serial: SERIAL, unlocked: true, wasLocked: false } });
  });

  void it('tells a wrong code how many attempts are left and, at the limit, until when the token is locked', async () => {
    const s = await setup({ deps: { lockoutLimit: 3, lockoutMinutes: 15 } });
    const until = new Date(T0 + 15 * MINUTE_MS).toISOString();
    const answers = [];
    for (let i = 0; i < 3; i++) answers.push(okBody(await s.api.verify(SERIAL, { code: wrongCode(s, 2880, i) })));
    assert.deepEqual(
      answers.map((b) => [b.valid, b.attemptsLeft, b.lockedUntil]),
      [
        [false, 2, undefined],
        [false, 1, undefined],
        [false, 0, until],
      ],
    );
    const locked = await s.api.verify(SERIAL, { code: s.codeAt(0) });
    assert.deepEqual(
      [locked.status, locked.body],
      [423, { error: { code: 'TOKEN_LOCKED', message: PROBLEM_CODES.TOKEN_LOCKED }, lockedUntil: until }],
    );

    // After the lock ran out the failures stay counted: the next wrong code has none left and locks for twice as long.
    s.clock.set(new Date(until));
    const again = okBody(await s.api.verify(SERIAL, { code: wrongCode(s, 2880, 3) }));
    assert.deepEqual([again.attemptsLeft, again.lockedUntil], [0, new Date(Date.parse(until) + 30 * MINUTE_MS).toISOString()]);
  });

  void it('gives a replay the attempts left; an unconfirmed match asks for the next code and gives none', async () => {
    const s = await setup({ deps: { lockoutLimit: 5 } });
    const unconfirmed = okBody(await s.api.verify(SERIAL, { code: s.codeAt(-HOUR) }));
    assert.deepEqual([unconfirmed.confirmationRequired, 'attemptsLeft' in unconfirmed, 'lockedUntil' in unconfirmed], [true, false, false]);
    assert.equal(okBody(await s.api.verify(SERIAL, { code: s.codeAt(0) })).valid, true);
    const replayed = await s.api.verify(SERIAL, { code: s.codeAt(0) });
    assert.deepEqual(
      [replayed.status, replayed.body],
      [409, { error: { code: 'CODE_REPLAYED', message: PROBLEM_CODES.CODE_REPLAYED }, attemptsLeft: 4 }],
    );
  });

  void it('says lockedUntil null for a lock that only an administrator ends', async () => {
    const s = await setup({ deps: { lockoutLimit: 1, lockoutMinutes: 0 } });
    const wrong = okBody(await s.api.verify(SERIAL, { code: wrongCode(s, 2880, 0) }));
    assert.deepEqual([wrong.attemptsLeft, wrong.lockedUntil], [0, null]);
    assert.equal(s.entity().lockedUntil, LOCKED_UNTIL_ADMIN);
    const locked = await s.api.verify(SERIAL, { code: s.codeAt(0) });
    assert.deepEqual([locked.status, (locked.body as ErrorBody).lockedUntil], [423, null]);
  });

  void it('answers 400 for malformed bodies and codes, before any vault read, without counting', async () => {
    const s = await setup();
    for (const body of [
      null,
      'not json',
      {},
      { code: 123456 },
      { code: '12345' },
      { code: '1234567' },
      { code: '12345678' },
      { code: 'abcdef' },
      { code: '123456', nextCode: '1234567' },
      { code: '123456', extra: true },
    ]) {
      const outcome = await s.api.verify(SERIAL, body);
      assert.equal(outcome.status, 400, JSON.stringify(body));
      assert.equal(errorCode(outcome), 'REQUEST_INVALID');
    }
    assert.equal(s.entity().failedAttempts, 0);
    assert.equal(s.secrets.gets, 0);
    assert.equal(okBody(await s.api.verify(SERIAL, JSON.stringify({ code: s.codeAt(0) }))).valid, true, 'JSON text is accepted');
  });

  void it('answers 404 for an unknown serial and 410 for a retired token', async () => {
    const s = await setup();
    const missing = await s.api.verify('NOPE', { code: '123456' });
    assert.equal(missing.status, 404);
    assert.equal(errorCode(missing), 'TOKEN_NOT_FOUND');
    assert.equal((await s.api.unlock('NOPE')).status, 404);

    const r = await setup({ token: { state: 'retired' } });
    const retired = await r.api.verify(SERIAL, { code: r.codeAt(0) });
    assert.equal(retired.status, 410);
    assert.equal(errorCode(retired), 'TOKEN_RETIRED');
    assert.equal((await r.api.unlock(SERIAL)).status, 410);
  });

  void it('lets exactly one of 20 concurrent checks of the same code succeed; the replays count until the lock', async () => {
    const s = await setup({ table: new InterleavingTable() });
    const code = s.codeAt(0);
    const outcomes = await Promise.all(Array.from({ length: 20 }, () => s.api.verify(SERIAL, { code })));
    const valid = outcomes.filter((o) => o.status === 200 && o.body.valid);
    assert.equal(valid.length, 1);
    assert.equal(outcomes.filter((o) => o.status === 409 && errorCode(o) === 'CODE_REPLAYED').length, 10, 'VERIFY_LOCKOUT_LIMIT replays');
    assert.equal(outcomes.filter((o) => o.status === 423 && errorCode(o) === 'TOKEN_LOCKED').length, 9);
    assert.equal(s.entity().lastAcceptedStep, stepNow(s));
    assert.equal(s.entity().failedAttempts, 10);
    assert.deepEqual(events(s.entity()), ['verified', 'locked']);
  });

  void it('loses no failure when wrong codes race', async () => {
    const s = await setup({ table: new InterleavingTable(), deps: { lockoutLimit: 100, maxWriteAttempts: 30 } });
    const codes = Array.from({ length: 8 }, (_, i) => wrongCode(s, 2880, i));
    const outcomes = await Promise.all(codes.map((code) => s.api.verify(SERIAL, { code })));
    assert.ok(outcomes.every((o) => o.status === 200 && !o.body.valid));
    assert.equal(s.entity().failedAttempts, 8);
  });

  void it('gives up with a TransientError when the entity keeps changing', async () => {
    class AlwaysStale extends MemoryTable<TokenEntity> {
      override replace(): Promise<string> {
        return Promise.reject(new PreconditionFailedError('changed'));
      }
    }
    const s = await setup({ table: new AlwaysStale(), deps: { maxWriteAttempts: 3 } });
    await assert.rejects(s.api.verify(SERIAL, { code: s.codeAt(0) }), TransientError);
  });

  void it('never puts the secret, or a piece of it, or a submitted code in a response or log line', async () => {
    const s = await setup({ deps: { lockoutLimit: 2 } });
    const submitted = [s.codeAt(0), s.codeAt(-3600), s.codeAt(-3570), wrongCode(s, 2880, 0), wrongCode(s, 2880, 1)];
    const outcomes: unknown[] = [];
    outcomes.push(await s.api.verify(SERIAL, { code: submitted[1] }));
    outcomes.push(await s.api.verify(SERIAL, { code: submitted[1], nextCode: submitted[2] }));
    outcomes.push(await s.api.verify(SERIAL, { code: submitted[0] }));
    outcomes.push(await s.api.verify(SERIAL, { code: submitted[0] }));
    outcomes.push(await s.api.verify(SERIAL, { code: submitted[3] }));
    outcomes.push(await s.api.verify(SERIAL, { code: submitted[4] }));
    outcomes.push(await s.api.verify(SERIAL, { code: submitted[0] }));
    outcomes.push(await s.api.verify(SERIAL, { code: 'x' }));
    outcomes.push(await s.api.verify('NOPE', { code: submitted[0] }));
    outcomes.push(await s.api.unlock(SERIAL));
    assert.deepEqual(
      outcomes.map((o) => (o as { status: number }).status),
      [200, 200, 200, 409, 200, 423, 423, 400, 404, 200],
    );
    const text = JSON.stringify(outcomes) + JSON.stringify(s.log.lines) + s.entity().history;
    const hex = Buffer.from(SEED).toString('hex');
    for (let i = 0; i + 8 <= SEED_BASE32.length; i++) assert.ok(!text.includes(SEED_BASE32.slice(i, i + 8)), 'base32 piece leaked');
    for (let i = 0; i + 8 <= hex.length; i++) assert.ok(!text.toLowerCase().includes(hex.slice(i, i + 8)), 'hex piece leaked');
    for (const code of submitted)
      assert.ok(!JSON.stringify(outcomes).includes(code) && !JSON.stringify(s.log.lines).includes(code), 'code echoed');
    for (const line of s.log.lines) {
      for (const key of Object.keys(line.data ?? {})) assert.ok(['serial', 'outcome', 'driftSeconds'].includes(key), `log field ${key}`);
    }
  });
});
