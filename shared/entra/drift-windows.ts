/**
 * The clock-drift windows Entra applies to OATH TOTP tokens (see docs/entra-facts.md):
 * at activation +/- 1 day for 30 s tokens and +/- 2 days for 60 s tokens; at
 * sign-in +/- 1 minute and +/- 2 minutes.
 */
const DAY = 86_400;

export function signInWindowSteps(period: number): number {
  return Math.floor((period === 60 ? 120 : 60) / period);
}

export function activationWindowSteps(period: number): number {
  return Math.floor((period === 60 ? 2 * DAY : DAY) / period);
}
