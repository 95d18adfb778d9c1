/**
 * TOTP (RFC 6238) through otplib, with node:crypto doing the HMACs; HOTP
 * (RFC 4226) on node:crypto directly, because otplib stops at 2^53 and HOTP
 * counters are 64-bit.
 */
import { createHmac, createSecretKey } from 'node:crypto';
import { NodeCryptoPlugin } from '@otplib/plugin-crypto-node';
import { generateSync as totpGenerateSync } from '@otplib/totp';
import { MAX_COUNTER, type HashAlgorithm } from './token.js';

const crypto = new NodeCryptoPlugin();

export interface OtpParameters {
  secret: Uint8Array;
  algorithm: HashAlgorithm;
  digits: number;
  period: number;
}

type OtplibAlgorithm = 'sha1' | 'sha256' | 'sha512';

function otplibAlgorithm(a: HashAlgorithm): OtplibAlgorithm {
  return a.toLowerCase() as OtplibAlgorithm;
}

export function stepAt(unixSeconds: number, period: number): number {
  return Math.floor(unixSeconds / period);
}

export function totpCode(params: OtpParameters, unixSeconds: number): string {
  return totpGenerateSync({
    secret: params.secret,
    algorithm: otplibAlgorithm(params.algorithm),
    digits: params.digits,
    period: params.period,
    epoch: unixSeconds,
    crypto,
  });
}

/** RFC 4226 over the counter's whole unsigned 64-bit range; tests cross-check it with otplib below 2^53. */
export function hotpCode(params: Omit<OtpParameters, 'period'>, counter: bigint | number): string {
  const moving = BigInt(counter);
  if (moving < 0n || moving > MAX_COUNTER) throw new RangeError('The HOTP counter must be an unsigned 64-bit number.');
  const message = Buffer.alloc(8);
  message.writeBigUInt64BE(moving);
  const mac = createHmac(NODE_HASH[params.algorithm], params.secret).update(message).digest();
  const offset = mac[mac.length - 1]! & 0x0f;
  const binary = ((mac[offset]! & 0x7f) << 24) | (mac[offset + 1]! << 16) | (mac[offset + 2]! << 8) | mac[offset + 3]!;
  return String(binary % 10 ** params.digits).padStart(params.digits, '0');
}

export interface StepMatch {
  /** The matching time step (unix seconds / period). */
  step: number;
  /** Steps from the step of `unixSeconds`; positive: the token's clock is ahead. */
  delta: number;
}

/**
 * Looks for `code` within +/- windowSteps of the step at unixSeconds, skipping
 * steps at or before `afterStep` (replay protection).
 */
export function findMatchingStep(
  params: OtpParameters,
  code: string,
  options: { unixSeconds: number; windowSteps: number; afterStep?: number },
): StepMatch | undefined {
  const current = stepAt(options.unixSeconds, params.period);
  const low = Math.max(current - options.windowSteps, options.afterStep === undefined ? 0 : options.afterStep + 1);
  const step = scanSteps(params, code, low, current + options.windowSteps);
  return step === undefined ? undefined : { step, delta: step - current };
}

const NODE_HASH: Record<OtpParameters['algorithm'], string> = { SHA1: 'sha1', SHA256: 'sha256', SHA512: 'sha512' };

/**
 * The lowest step in [lowStep, highStep] whose code is `code`.
 *
 * Written on node:crypto rather than otplib's verify: an activation check
 * scans up to 5,761 steps, and otplib re-validates and re-normalises the secret
 * for every step (about 3x the cost of the HMACs themselves). This loop does one
 * HMAC per step and RFC 4226's dynamic truncation; tests cross-check it against
 * otplib's generator. The comparison is between small integers, which takes the
 * same time whatever their value.
 */
export function scanSteps(params: OtpParameters, code: string, lowStep: number, highStep: number): number | undefined {
  if (!isWellFormedCode(code, params.digits) || highStep < lowStep) return undefined;
  const key = createSecretKey(params.secret);
  const hash = NODE_HASH[params.algorithm];
  const modulus = 10 ** params.digits;
  const wanted = Number(code);
  const counter = Buffer.alloc(8);
  for (let step = Math.max(0, lowStep); step <= highStep; step++) {
    counter.writeUInt32BE(Math.floor(step / 0x1_0000_0000), 0);
    counter.writeUInt32BE(step >>> 0, 4);
    const mac = createHmac(hash, key).update(counter).digest();
    const offset = mac[mac.length - 1]! & 0x0f;
    const binary = ((mac[offset]! & 0x7f) << 24) | (mac[offset + 1]! << 16) | (mac[offset + 2]! << 8) | mac[offset + 3]!;
    if (binary % modulus === wanted) return step;
  }
  return undefined;
}

export function isWellFormedCode(code: string, digits: number): boolean {
  return code.length === digits && /^\d+$/.test(code);
}
