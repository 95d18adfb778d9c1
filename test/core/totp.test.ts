import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { generateSync as otplibHotp } from '@otplib/hotp';
import { NodeCryptoPlugin } from '@otplib/plugin-crypto-node';
import fc from 'fast-check';
import type { HashAlgorithm } from '../../shared/core/token.js';
import { findMatchingStep, hotpCode, scanSteps, totpCode } from '../../shared/core/totp.js';
import { activationWindowSteps, signInWindowSteps } from '../../shared/entra/drift-windows.js';

interface Vectors {
  seeds: Record<HashAlgorithm, string>;
  vectors: ({ time: number } & Record<HashAlgorithm, string>)[];
  wrongSeedCheck: { code: string };
}
const data = JSON.parse(readFileSync(new URL('../fixtures/totp-vectors.json', import.meta.url), 'utf8')) as Vectors;
const ascii = (s: string) => new TextEncoder().encode(s);

describe('TOTP (RFC 6238 Appendix B)', () => {
  for (const algorithm of ['SHA1', 'SHA256', 'SHA512'] as const) {
    for (const v of data.vectors) {
      it(`${algorithm} at t=${v.time} gives ${v[algorithm]}`, () => {
        assert.equal(totpCode({ secret: ascii(data.seeds[algorithm]), algorithm, digits: 8, period: 30 }, v.time), v[algorithm]);
      });
    }
  }

  it('depends on the per-mode seed (the 20-byte seed under SHA256 gives another code)', () => {
    assert.equal(totpCode({ secret: ascii(data.seeds.SHA1), algorithm: 'SHA256', digits: 8, period: 30 }, 59), data.wrongSeedCheck.code);
  });

  it('HOTP matches RFC 4226 Appendix D', () => {
    const expected = ['755224', '287082', '359152', '969429', '338314', '254676', '287922', '162583', '399871', '520489'];
    expected.forEach((code, counter) =>
      assert.equal(hotpCode({ secret: ascii(data.seeds.SHA1), algorithm: 'SHA1', digits: 6 }, counter), code),
    );
  });

  it("HOTP agrees with otplib's below 2^53 and keeps counters above it exact (property)", () => {
    fc.assert(
      fc.property(
        fc.constantFrom<HashAlgorithm>('SHA1', 'SHA256', 'SHA512'),
        fc.constantFrom(6, 8),
        fc.uint8Array({ minLength: 16, maxLength: 64 }),
        fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
        (algorithm, digits, secret, counter) => {
          const ours = hotpCode({ secret, algorithm, digits }, counter);
          if (counter <= BigInt(Number.MAX_SAFE_INTEGER)) {
            assert.equal(
              ours,
              otplibHotp({ secret, algorithm: algorithm.toLowerCase() as 'sha1', digits, counter, crypto: new NodeCryptoPlugin() }),
            );
          }
        },
      ),
      { numRuns: 200 },
    );
    // 2^53 + 1 is not a double: a reader that lost exactness would compute the code of 2^53.
    const secret = ascii(data.seeds.SHA1);
    assert.notEqual(
      hotpCode({ secret, algorithm: 'SHA1', digits: 8 }, (1n << 53n) + 1n),
      hotpCode({ secret, algorithm: 'SHA1', digits: 8 }, 1n << 53n),
    );
    assert.throws(() => hotpCode({ secret, algorithm: 'SHA1', digits: 6 }, 1n << 64n), RangeError);
  });
});

describe('window checks', () => {
  const params = { secret: ascii(data.seeds.SHA1), algorithm: 'SHA1' as const, digits: 6, period: 30 };
  const now = 1_700_000_000;

  it('finds a code inside the window and reports the drift in steps', () => {
    const ahead = totpCode(params, now + 60);
    assert.deepEqual(findMatchingStep(params, ahead, { unixSeconds: now, windowSteps: 2 }), {
      step: Math.floor((now + 60) / 30),
      delta: 2,
    });
    assert.equal(findMatchingStep(params, totpCode(params, now + 90), { unixSeconds: now, windowSteps: 2 }), undefined);
  });

  it('widens to Entra activation windows of +/- 1 day (30 s) and +/- 2 days (60 s)', () => {
    assert.equal(activationWindowSteps(30), 2880);
    assert.equal(activationWindowSteps(60), 2880);
    assert.equal(signInWindowSteps(30), 2);
    assert.equal(signInWindowSteps(60), 2);
    const behind = totpCode(params, now - 86_000);
    const match = findMatchingStep(params, behind, { unixSeconds: now, windowSteps: activationWindowSteps(30) });
    assert.ok(match);
    assert.equal(match.step, Math.floor((now - 86_000) / 30));
  });

  it('skips steps at or before the last accepted one (replay)', () => {
    const code = totpCode(params, now);
    const step = Math.floor(now / 30);
    assert.ok(findMatchingStep(params, code, { unixSeconds: now, windowSteps: 2, afterStep: step - 1 }));
    assert.equal(findMatchingStep(params, code, { unixSeconds: now, windowSteps: 2, afterStep: step }), undefined);
  });

  it('agrees with otplib at every step of a window, for every algorithm and length', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 16, maxLength: 64 }),
        fc.constantFrom('SHA1', 'SHA256', 'SHA512'),
        fc.constantFrom(6, 8),
        fc.constantFrom(30, 60),
        fc.integer({ min: 10_000, max: 4_000_000_000 }),
        fc.integer({ min: -40, max: 40 }),
        (secret, algorithm, digits, period, at, offset) => {
          const p = { secret, algorithm, digits, period };
          const code = totpCode(p, at + offset * period);
          const match = findMatchingStep(p, code, { unixSeconds: at, windowSteps: 40 });
          assert.ok(match);
          // A code can recur at an earlier step by chance; the scan returns the lowest step with that code.
          assert.ok(match.delta <= offset);
          assert.equal(totpCode(p, (Math.floor(at / period) + match.delta) * period), code);
          assert.equal(
            scanSteps(p, code, Math.floor(at / period) + offset, Math.floor(at / period) + offset),
            Math.floor(at / period) + offset,
          );
        },
      ),
      { numRuns: 200 },
    );
  });

  it('rejects malformed codes before any HMAC', () => {
    for (const bad of ['12345', '1234567', 'abcdef', '12 456', ''])
      assert.equal(findMatchingStep(params, bad, { unixSeconds: now, windowSteps: 2 }), undefined);
  });
});
