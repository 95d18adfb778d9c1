/**
 * TOTP (RFC 6238) and HOTP (RFC 4226) through otplib, with node:crypto doing the HMACs.
 */
import { createGuardrails } from '@otplib/core';
import { generateSync as hotpGenerateSync } from '@otplib/hotp';
import { NodeCryptoPlugin } from '@otplib/plugin-crypto-node';
import { generateSync as totpGenerateSync, verifySync as totpVerifySync } from '@otplib/totp';
import type { HashAlgorithm } from './token.js';

const crypto = new NodeCryptoPlugin();

export interface OtpParameters {
  secret: Uint8Array;
  algorithm: HashAlgorithm;
  digits: number;
  period: number;
}

type OtplibAlgorithm = 'sha1' | 'sha256' | 'sha512';
type OtplibDigits = 6 | 7 | 8;

function otplibAlgorithm(a: HashAlgorithm): OtplibAlgorithm {
  return a.toLowerCase() as OtplibAlgorithm;
}

/** otplib keeps its default guardrails for anything that authenticates; wide activation windows get their own. */
function guardrailsFor(windowSteps: number) {
  return windowSteps > 99 ? createGuardrails({ MAX_WINDOW: windowSteps + 1 }) : undefined;
}

export function stepAt(unixSeconds: number, period: number): number {
  return Math.floor(unixSeconds / period);
}

export function totpCode(params: OtpParameters, unixSeconds: number): string {
  return totpGenerateSync({
    secret: params.secret,
    algorithm: otplibAlgorithm(params.algorithm),
    digits: params.digits as OtplibDigits,
    period: params.period,
    epoch: unixSeconds,
    crypto,
  });
}

export function hotpCode(params: Omit<OtpParameters, 'period'>, counter: number): string {
  return hotpGenerateSync({
    secret: params.secret,
    algorithm: otplibAlgorithm(params.algorithm),
    digits: params.digits as OtplibDigits,
    counter,
    crypto,
  });
}

export interface StepMatch {
  /** The matching time step (unix seconds / period). */
  step: number;
  /** Steps from the step of `unixSeconds`; positive: the token's clock is ahead. */
  delta: number;
}

/**
 * Looks for `code` within +/- windowSteps of the step at unixSeconds, skipping
 * steps at or before `afterStep` (replay protection). Comparison is in constant time.
 */
export function findMatchingStep(
  params: OtpParameters,
  code: string,
  options: { unixSeconds: number; windowSteps: number; afterStep?: number },
): StepMatch | undefined {
  if (!isWellFormedCode(code, params.digits)) return undefined;
  const current = stepAt(options.unixSeconds, params.period);
  // otplib validates afterTimeStep against the window's last step; a replay marker beyond it means nothing can match.
  if (options.afterStep !== undefined && options.afterStep >= current + options.windowSteps) return undefined;
  const result = totpVerifySync({
    secret: params.secret,
    token: code,
    algorithm: otplibAlgorithm(params.algorithm),
    digits: params.digits as OtplibDigits,
    period: params.period,
    epoch: options.unixSeconds,
    epochTolerance: options.windowSteps * params.period,
    afterTimeStep: options.afterStep !== undefined && options.afterStep >= 0 ? options.afterStep : undefined,
    crypto,
    guardrails: guardrailsFor(options.windowSteps * 2 + 1),
  });
  return result.valid ? { step: result.timeStep, delta: result.timeStep - current } : undefined;
}

export function isWellFormedCode(code: string, digits: number): boolean {
  return code.length === digits && /^\d+$/.test(code);
}
