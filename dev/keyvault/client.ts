/**
 * Client settings for the local Key Vault stand-in (dev/keyvault/server.ts). The stand-in speaks plain HTTP on
 * loopback, so the SDK must allow insecure connections and skip the check that the challenge resource matches
 * `*.vault.azure.net`. Retry options stay at the SDK defaults so tests see the production retry behaviour.
 */
import type { TokenCredential } from '@azure/identity';
import { SecretClient, type SecretClientOptions } from '@azure/keyvault-secrets';
import { epochMs, systemClock } from '../../shared/pipeline/clock.js';

const ONE_YEAR_MS = 365 * 24 * 60 * 60 * 1000;

/** Any bearer token satisfies the stand-in; a far expiry keeps the SDK from asking again. */
export const localVaultCredential: TokenCredential = {
  getToken: () => Promise.resolve({ token: 'local-keyvault-stand-in-token', expiresOnTimestamp: epochMs(systemClock) + ONE_YEAR_MS }),
};

export const localSecretClientOptions: SecretClientOptions = {
  allowInsecureConnection: true,
  disableChallengeResourceVerification: true,
};

/** A SecretClient for the stand-in at `vaultUrl`; `overrides` (e.g. retryOptions) are merged over the defaults. */
export function createLocalSecretClient(vaultUrl: string, overrides: SecretClientOptions = {}): SecretClient {
  return new SecretClient(vaultUrl, localVaultCredential, { ...localSecretClientOptions, ...overrides });
}
