/**
 * SecretStore over @azure/keyvault-secrets. The client must be built with SDK retries off
 * (`retryOptions: { maxRetries: 0 }`): the pipeline paces Key Vault calls and backs off itself, and needs to see
 * every 429 to do so. Errors never carry the SDK's request object, which holds the secret value.
 */
import type { SecretClient } from '@azure/keyvault-secrets';
import { SecretDeletedError } from '../pipeline/errors.js';
import type { SecretStore, SecretValue, SecretVersionInfo, SetSecretOptions } from '../pipeline/ports.js';
import { asTransient, errorCodeOf, innerErrorCodeOf, statusOf } from './errors.js';

export interface KeyVaultSecretStoreOptions {
  /** Deadline of each call in ms; a call that takes longer fails with TransientError. Default 15 s. */
  timeoutMs?: number;
  /** Deadline of a whole recovery (recover call plus polling until the secret is readable). Default 60 s. */
  recoverTimeoutMs?: number;
  /** Polling interval while a recovery completes. Default 1 s. */
  recoverPollMs?: number;
}

/** A plain error with the service's code and message only (no request, no headers, no body). */
function safeError(error: unknown, operation: string): Error {
  const status = statusOf(error);
  const code = errorCodeOf(error);
  const inner = innerErrorCodeOf(error);
  const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
  const described = new Error(
    `Key Vault ${operation} failed${status ? ` (HTTP ${status}${code ? ` ${code}` : ''}${inner ? `/${inner}` : ''})` : ''}: ${message}`,
  );
  described.name = 'KeyVaultError';
  return Object.assign(described, { statusCode: status, code });
}

/** 403 with inner code SecretDisabled: the version asked for (or the newest one) is disabled. */
function isDisabled(error: unknown): boolean {
  return statusOf(error) === 403 && innerErrorCodeOf(error) === 'SecretDisabled';
}

export class KeyVaultSecretStore implements SecretStore {
  private readonly timeoutMs: number;
  private readonly recoverTimeoutMs: number;
  private readonly recoverPollMs: number;

  constructor(
    private readonly client: SecretClient,
    options: KeyVaultSecretStoreOptions = {},
  ) {
    this.timeoutMs = options.timeoutMs ?? 15_000;
    this.recoverTimeoutMs = options.recoverTimeoutMs ?? 60_000;
    this.recoverPollMs = options.recoverPollMs ?? 1_000;
  }

  private fail(error: unknown, name: string, operation: string): never {
    if (statusOf(error) === 409) {
      const inner = innerErrorCodeOf(error);
      if (inner === 'ObjectIsDeletedButRecoverable') throw new SecretDeletedError(name);
      if (inner === 'ObjectIsBeingDeleted') throw new SecretDeletedError(name, true);
    }
    throw asTransient(error, `Key Vault ${operation} ${name}`) ?? safeError(error, `${operation} ${name}`);
  }

  async get(name: string, version?: string): Promise<SecretValue | undefined> {
    try {
      const secret = await this.client.getSecret(name, { version, abortSignal: AbortSignal.timeout(this.timeoutMs) });
      return {
        value: secret.value ?? '',
        version: secret.properties.version ?? '',
        contentType: secret.properties.contentType,
        tags: { ...(secret.properties.tags ?? {}) },
      };
    } catch (error) {
      // 404 covers names never written and soft-deleted secrets alike.
      if (statusOf(error) === 404) return undefined;
      if (isDisabled(error)) return version === undefined ? this.newestEnabled(name) : undefined;
      this.fail(error, name, 'get');
    }
  }

  /**
   * The name's newest version is disabled (a version the pipeline took back): the active secret is the newest
   * enabled one. Versions list in no defined order, so they are compared by creation time.
   */
  private async newestEnabled(name: string): Promise<SecretValue | undefined> {
    let newest: { version: string; created: number } | undefined;
    try {
      for await (const properties of this.client.listPropertiesOfSecretVersions(name, {
        abortSignal: AbortSignal.timeout(this.timeoutMs),
      })) {
        if (properties.enabled === false || !properties.version) continue;
        const created = properties.createdOn?.getTime() ?? 0;
        // Creation times have one-second resolution; the version id breaks a tie, so the choice is stable.
        if (!newest || created > newest.created || (created === newest.created && properties.version > newest.version))
          newest = { version: properties.version, created };
      }
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      this.fail(error, name, 'list versions of');
    }
    return newest ? this.get(name, newest.version) : undefined;
  }

  async set(name: string, value: string, options: SetSecretOptions): Promise<{ version: string }> {
    try {
      const secret = await this.client.setSecret(name, value, {
        contentType: options.contentType,
        tags: options.tags,
        abortSignal: AbortSignal.timeout(this.timeoutMs),
      });
      return { version: secret.properties.version ?? '' };
    } catch (error) {
      this.fail(error, name, 'set');
    }
  }

  async disable(name: string, version: string): Promise<void> {
    try {
      await this.client.updateSecretProperties(name, version, { enabled: false, abortSignal: AbortSignal.timeout(this.timeoutMs) });
    } catch (error) {
      // Nothing to disable: the version (or the whole secret) is gone.
      if (statusOf(error) === 404) return;
      this.fail(error, name, 'disable');
    }
  }

  async listVersions(name: string): Promise<SecretVersionInfo[]> {
    const versions: SecretVersionInfo[] = [];
    try {
      for await (const properties of this.client.listPropertiesOfSecretVersions(name, {
        abortSignal: AbortSignal.timeout(this.timeoutMs),
      })) {
        if (!properties.version) continue;
        versions.push({
          version: properties.version,
          enabled: properties.enabled !== false,
          createdOn: properties.createdOn?.toISOString() ?? null,
        });
      }
    } catch (error) {
      if (statusOf(error) === 404) return [];
      this.fail(error, name, 'list versions of');
    }
    return versions;
  }

  /** Recovers a soft-deleted secret and waits until it can be read. A name that is not deleted is left as is. */
  async recover(name: string): Promise<void> {
    const abortSignal = AbortSignal.timeout(this.recoverTimeoutMs);
    try {
      const poller = await this.client.beginRecoverDeletedSecret(name, { intervalInMs: this.recoverPollMs, abortSignal });
      await poller.pollUntilDone({ abortSignal });
    } catch (error) {
      // Nothing deleted under that name (never written, purged, or already recovered by someone else).
      if (statusOf(error) === 404) return;
      this.fail(error, name, 'recover');
    }
  }
}
