/**
 * Codes that are wrong for certain. "The real code + 1" is the code of some other step now and then (about 0.6% of
 * runs for a 30 s token over its activation window), and then a test that expects a failure sees an acceptance.
 */
import { stepAt, totpCode, type OtpParameters } from '../../shared/core/totp.js';
import { activationWindowSteps } from '../../shared/entra/drift-windows.js';

/**
 * The first code (000000 upwards) the token shows at no step of the widest window a verifier accepts around
 * `unixSeconds` (Entra's activation window), widened by `marginSteps` on each side for the time a test runs.
 */
export function codeProvenWrong(params: OtpParameters, unixSeconds: number, marginSteps = 20): string {
  const reach = activationWindowSteps(params.period) + marginSteps;
  const now = stepAt(unixSeconds, params.period);
  const shown = new Set<string>();
  for (let step = now - reach; step <= now + reach; step++) shown.add(totpCode(params, step * params.period));
  for (let n = 0; n < 10 ** params.digits; n++) {
    const code = String(n).padStart(params.digits, '0');
    if (!shown.has(code)) return code;
  }
  throw new Error('every code is shown somewhere in the window');
}
