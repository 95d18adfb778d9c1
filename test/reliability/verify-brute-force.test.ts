/**
 * The verify endpoint under attack, over HTTP through the local host:
 * - brute force: 10,000 wrong codes for one token from 20 concurrent clients.
 *   The token must lock after VERIFY_LOCKOUT_LIMIT (10, the default) checked
 *   codes, no answer may ever say valid or give a drift, the right code after
 *   the lock must get 423, and the number of codes checked before the lock is
 *   printed;
 * - replay race: one correct code sent 20 times at once is accepted once, and
 *   the replays count toward the lockout.
 *
 * Wrong codes are random 6-digit codes other than those of the sign-in window.
 * The target was never verified, so its +/- 1 day activation window is open: a
 * random code matches some step of it about 0.6% of the time. The service
 * answers that "confirmation required", with no drift, and counts it like a
 * wrong code; the figure shows how many there were.
 */
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { before, describe, it } from 'node:test';
import { totpCode } from '../../shared/core/totp.js';
import { signInWindowSteps } from '../../shared/entra/drift-windows.js';
import { startTestStack, suiteScope, type TestStack } from '../helpers/stack.js';
import { elapsedSeconds, randomTokens, seedCsv, upload, type SeedToken } from './helpers.js';

const LIMIT = 10;
const ATTEMPTS = 10_000;
const CLIENTS = 20;

interface Answer {
  status: number;
  valid?: boolean;
  confirmationRequired?: boolean;
  driftSeconds?: number | null;
  code?: string;
}

describe('verify under brute force and replay races (local stack)', () => {
  let stack: TestStack;
  const [target, racer] = randomTokens('BRUTE', 2) as [SeedToken, SeedToken];
  const scope = suiteScope();

  const codeAt = (t: SeedToken, unixSeconds: number) =>
    totpCode({ secret: t.bytes, algorithm: 'SHA1', digits: 6, period: 30 }, unixSeconds);
  const verify = async (serial: string, code: string): Promise<Answer> => {
    const res = await fetch(`${stack.functionsUrl}/api/tokens/${serial}/verify`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ code }),
    });
    const body = (await res.json()) as {
      valid?: boolean;
      confirmationRequired?: boolean;
      driftSeconds?: number | null;
      error?: { code: string };
    };
    return {
      status: res.status,
      valid: body.valid,
      confirmationRequired: body.confirmationRequired,
      driftSeconds: body.driftSeconds,
      code: body.error?.code,
    };
  };

  before(async () => {
    stack = await startTestStack(scope, {
      settings: {
        VERIFY_LOCKOUT_LIMIT: String(LIMIT),
        VERIFY_LOCKOUT_MINUTES: '15',
        RECONCILE_SCHEDULE: '0 0 0 1 1 *',
        KEY_VAULT_RETRY_BASE_MS: '20',
      },
    });
    await upload(stack.connectionString, 'seeds', 'brute.csv', seedCsv([target, racer]));
    await stack.idle();
  });

  it(
    `locks after ${LIMIT} failures under ${ATTEMPTS.toLocaleString('en-US')} wrong codes from ${CLIENTS} clients`,
    { timeout: 180_000 },
    async () => {
      const now = Math.floor(Date.now() / 1000);
      // Codes of the sign-in window, with a minute of margin for the run's duration.
      const window = signInWindowSteps(30) + 4;
      const right = new Set(Array.from({ length: 2 * window + 1 }, (_, i) => codeAt(target, now + (i - window) * 30)));
      const wrongCodes: string[] = [];
      while (wrongCodes.length < ATTEMPTS) {
        const c = String(randomInt(1_000_000)).padStart(6, '0');
        if (!right.has(c)) wrongCodes.push(c);
      }

      const answers: Answer[] = [];
      let next = 0;
      const started = Date.now();
      await Promise.all(
        Array.from({ length: CLIENTS }, async () => {
          while (next < wrongCodes.length) answers.push(await verify(target.serial, wrongCodes[next++]!));
        }),
      );
      const seconds = elapsedSeconds(started);
      const afterLock = await verify(target.serial, codeAt(target, Math.floor(Date.now() / 1000)));

      const byStatus = new Map<number, number>();
      for (const a of answers) byStatus.set(a.status, (byStatus.get(a.status) ?? 0) + 1);
      const wrong = answers.filter((a) => a.status === 200 && a.valid === false && !a.confirmationRequired).length;
      const confirmations = answers.filter((a) => a.status === 200 && a.confirmationRequired).length;
      const checked = answers.filter((a) => a.status === 200).length;
      const locked = answers.filter((a) => a.status === 423 && a.code === 'TOKEN_LOCKED').length;

      assert.equal(answers.length, ATTEMPTS);
      assert.equal(answers.filter((a) => a.valid === true).length, 0, 'a wrong code was accepted');
      assert.equal(answers.filter((a) => a.status === 200 && a.driftSeconds !== null).length, 0, 'an answer told where a code matched');
      assert.equal(checked, LIMIT, `codes checked before the lock: ${checked} (${wrong} wrong, ${confirmations} confirmation required)`);
      assert.equal(checked + locked, ATTEMPTS, `unexpected answers: ${JSON.stringify([...byStatus])}`);
      assert.deepEqual(
        [afterLock.status, afterLock.code, afterLock.valid],
        [423, 'TOKEN_LOCKED', undefined],
        'the right code after the lock',
      );

      console.log(
        `[reliability] brute force: ${ATTEMPTS.toLocaleString('en-US')} wrong codes from ${CLIENTS} concurrent clients: ${checked} codes checked before the lock ` +
          `(= VERIFY_LOCKOUT_LIMIT: ${wrong} wrong, ${confirmations} "confirmation required", each counted), ${locked.toLocaleString('en-US')} answered 423, 0 valid, 0 drifts; ` +
          `the right code after the lock: 423; ${seconds} s (${Math.round(ATTEMPTS / Number(seconds))} requests/s)`,
      );
    },
  );

  it('accepts one correct code sent 20 times at once exactly once; the replays count until the lock', { timeout: 30_000 }, async () => {
    const code = codeAt(racer, Math.floor(Date.now() / 1000));
    const answers = await Promise.all(Array.from({ length: 20 }, () => verify(racer.serial, code)));
    const accepted = answers.filter((a) => a.status === 200 && a.valid === true).length;
    const replayed = answers.filter((a) => a.status === 409 && a.code === 'CODE_REPLAYED').length;
    const locked = answers.filter((a) => a.status === 423 && a.code === 'TOKEN_LOCKED').length;
    assert.equal(accepted, 1, JSON.stringify(answers));
    assert.equal(replayed, LIMIT, JSON.stringify(answers));
    assert.equal(locked, 20 - 1 - LIMIT, JSON.stringify(answers));
    console.log(
      `[reliability] replay race: one correct code sent 20 times at once: ${accepted} accepted, ${replayed} answered 409 CODE_REPLAYED (each counted), ${locked} answered 423 after the lock`,
    );
  });
});
