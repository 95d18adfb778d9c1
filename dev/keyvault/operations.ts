/**
 * What the stand-in's vault does for each secrets operation once a request has passed authentication, faults and
 * throttling: validation, soft delete, recovery, purge, versions and paged listings, following the Key Vault
 * secrets REST API reference. Every change goes through the journal first (durable, then visible).
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { epochMs } from '../../shared/pipeline/clock.js';
import type { Clock } from '../../shared/pipeline/ports.js';
import { JsonLinesJournal } from '../stand-in/journal.js';
import { VaultSecretState, type DeletionInfo, type JournalRecord, type SecretRecord, type VersionRecord } from './journal.js';
import {
  KeyVaultError,
  LIMITS,
  NAME_PATTERN,
  badParameter,
  deletedSecretBundle,
  deletedSecretNotFound,
  pageLink,
  parseJsonObject,
  readAttributes,
  readContentType,
  readPageSize,
  readSkipToken,
  readTags,
  secretBundle,
  secretItem,
  secretNotFound,
  type Reply,
  type Route,
} from './rest.js';

export class SecretOperations {
  private readonly state = new VaultSecretState();
  private readonly journal: JsonLinesJournal<JournalRecord> | undefined;

  constructor(
    private readonly clock: Clock,
    persistPath: string | undefined,
    log: (line: string) => void,
  ) {
    if (persistPath) this.journal = JsonLinesJournal.open(path.resolve(persistPath), this.state, log, 'Key Vault stand-in');
  }

  /** The secrets as they stand (read-only use: counting for stats). */
  get secrets(): ReadonlyMap<string, SecretRecord> {
    return this.state.secrets;
  }

  /** Forgets every secret, in memory and in the journal. */
  wipe(): void {
    this.state.secrets.clear();
    this.journal?.replaceWith(this.state.snapshot());
  }

  close(): void {
    this.journal?.close();
  }

  /** Runs one routed request; throws KeyVaultError for answers the service gives as errors. */
  execute(route: Route, url: URL, raw: Buffer, base: string): Reply {
    switch (route.op) {
      case 'getSecrets':
        return this.listSecrets(url, base);
      case 'getDeletedSecrets':
        return this.listDeletedSecrets(url, base);
      default:
        break;
    }
    const name = route.name ?? '';
    if (!NAME_PATTERN.test(name)) {
      throw badParameter(
        `The request URI contains an invalid name: ${name.slice(0, 140)}. Secret names must be 1-127 characters of 0-9, a-z, A-Z and -.`,
      );
    }
    const key = name.toLowerCase();
    switch (route.op) {
      case 'setSecret':
        return this.setSecret(key, name, raw, base);
      case 'getSecret':
        return this.getSecret(key, name, route.version, base);
      case 'updateSecret':
        return this.updateSecret(key, name, route.version, raw, base);
      case 'deleteSecret':
        return this.deleteSecret(key, name, base);
      case 'getSecretVersions':
        return this.listVersions(key, name, url, base);
      case 'getDeletedSecret':
        return this.getDeletedSecret(key, name, base);
      case 'recoverDeletedSecret':
        return this.recoverDeletedSecret(key, name, base);
      case 'purgeDeletedSecret':
        return this.purgeDeletedSecret(key, name);
      default:
        throw new KeyVaultError(404, 'NotFound', 'Unknown operation.');
    }
  }

  private nowSeconds(): number {
    return Math.floor(epochMs(this.clock) / 1000);
  }

  private commit(records: JournalRecord[]): void {
    // Durable first, then visible: a failed append leaves memory untouched.
    this.journal?.append(records);
    for (const record of records) this.state.apply(record);
  }

  private setSecret(key: string, name: string, raw: Buffer, base: string): Reply {
    const body = parseJsonObject(raw);
    const value = body.value;
    if (typeof value !== 'string') throw badParameter("The parameter 'value' is required and must be a string.");
    const bytes = Buffer.byteLength(value, 'utf8');
    if (bytes > LIMITS.valueMaxBytes) {
      throw badParameter(`The secret value is ${bytes} bytes; the maximum allowed size is ${LIMITS.valueMaxBytes} bytes.`);
    }
    const contentType = readContentType(body.contentType);
    const tags = readTags(body.tags);
    const attributes = readAttributes(body.attributes);

    const existing = this.state.secrets.get(key);
    if (existing?.deleted) {
      throw new KeyVaultError(
        409,
        'Conflict',
        `Secret ${existing.name} is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the secret can only be recovered or purged.`,
        'ObjectIsDeletedButRecoverable',
      );
    }
    const now = this.nowSeconds();
    const record: VersionRecord = {
      version: randomBytes(16).toString('hex'),
      value,
      ...(contentType !== undefined ? { contentType } : {}),
      ...(tags !== undefined ? { tags } : {}),
      enabled: attributes.enabled ?? true,
      ...(attributes.nbf !== undefined ? { nbf: attributes.nbf } : {}),
      ...(attributes.exp !== undefined ? { exp: attributes.exp } : {}),
      created: now,
      updated: now,
    };
    const displayName = existing?.name ?? name;
    this.commit([{ t: 'version', key, name: displayName, v: record, latest: true }]);
    return { status: 200, body: secretBundle(base, displayName, record, true) };
  }

  private activeSecret(key: string, name: string): SecretRecord {
    const secret = this.state.secrets.get(key);
    if (!secret || secret.deleted) throw secretNotFound(name);
    return secret;
  }

  private findVersion(secret: SecretRecord, name: string, version: string | undefined): VersionRecord {
    const record = secret.versions.get(version || secret.latest);
    if (!record) throw secretNotFound(name, version);
    return record;
  }

  private getSecret(key: string, name: string, version: string | undefined, base: string): Reply {
    const secret = this.activeSecret(key, name);
    const record = this.findVersion(secret, name, version);
    if (!record.enabled) {
      throw new KeyVaultError(403, 'Forbidden', 'Operation get is not allowed on a disabled secret.', 'SecretDisabled');
    }
    return { status: 200, body: secretBundle(base, secret.name, record, true) };
  }

  private updateSecret(key: string, name: string, version: string | undefined, raw: Buffer, base: string): Reply {
    const secret = this.activeSecret(key, name);
    const current = this.findVersion(secret, name, version);
    const body = raw.length > 0 ? parseJsonObject(raw) : {};
    if ('value' in body) throw badParameter('The value of a secret cannot be changed by an update; set a new version instead.');
    const contentType = readContentType(body.contentType);
    const tags = readTags(body.tags);
    const attributes = readAttributes(body.attributes);
    const next: VersionRecord = { ...current, updated: this.nowSeconds() };
    if (contentType !== undefined) next.contentType = contentType;
    if (tags !== undefined) next.tags = tags; // Tags given replace the whole set, as the service does.
    if (attributes.enabled !== undefined) next.enabled = attributes.enabled;
    if (attributes.nbf !== undefined) next.nbf = attributes.nbf;
    if (attributes.exp !== undefined) next.exp = attributes.exp;
    this.commit([{ t: 'version', key, name: secret.name, v: next, latest: current.version === secret.latest }]);
    return { status: 200, body: secretBundle(base, secret.name, next, false) };
  }

  private deleteSecret(key: string, name: string, base: string): Reply {
    const secret = this.activeSecret(key, name);
    const deletedDate = this.nowSeconds();
    const d: DeletionInfo = { deletedDate, scheduledPurgeDate: deletedDate + LIMITS.recoverableDays * 86_400 };
    this.commit([{ t: 'deleted', key, d }]);
    return { status: 200, body: deletedSecretBundle(base, secret) };
  }

  private deletedSecret(key: string, name: string): SecretRecord & { deleted: DeletionInfo } {
    const secret = this.state.secrets.get(key);
    if (!secret?.deleted) throw deletedSecretNotFound(name);
    return secret as SecretRecord & { deleted: DeletionInfo };
  }

  private getDeletedSecret(key: string, name: string, base: string): Reply {
    return { status: 200, body: deletedSecretBundle(base, this.deletedSecret(key, name)) };
  }

  private recoverDeletedSecret(key: string, name: string, base: string): Reply {
    const secret = this.deletedSecret(key, name);
    this.commit([{ t: 'recovered', key }]);
    const latest = this.findVersion(secret, name, undefined);
    return { status: 200, body: secretBundle(base, secret.name, latest, false) };
  }

  private purgeDeletedSecret(key: string, name: string): Reply {
    this.deletedSecret(key, name);
    this.commit([{ t: 'purged', key }]);
    return { status: 204 };
  }

  private listSecrets(url: URL, base: string): Reply {
    const pageSize = readPageSize(url);
    const after = readSkipToken(url);
    const keys = [...this.state.secrets.entries()]
      .filter(([k, s]) => !s.deleted && (after === undefined || k > after))
      .map(([k]) => k)
      .sort();
    const page = keys.slice(0, pageSize);
    const value = page.map((k) => {
      const secret = this.state.secrets.get(k) as SecretRecord;
      const latest = secret.versions.get(secret.latest) as VersionRecord;
      return secretItem(`${base}/secrets/${secret.name}`, latest);
    });
    const lastKey = page[page.length - 1];
    const nextLink = keys.length > pageSize && lastKey !== undefined ? pageLink(base, '/secrets', url, pageSize, lastKey) : null;
    return { status: 200, body: { value, nextLink } };
  }

  private listVersions(key: string, name: string, url: URL, base: string): Reply {
    const pageSize = readPageSize(url);
    const offset = Number(readSkipToken(url) ?? '0');
    if (!Number.isInteger(offset) || offset < 0) throw badParameter('The $skiptoken parameter is not valid.');
    const secret = this.state.secrets.get(key);
    // A missing (or deleted) secret has no versions to list: an empty page, not an error.
    const versions = secret && !secret.deleted ? [...secret.versions.values()] : [];
    const page = versions.slice(offset, offset + pageSize);
    const value = page.map((v) => secretItem(`${base}/secrets/${secret?.name ?? name}/${v.version}`, v));
    const next = offset + pageSize;
    const nextLink =
      versions.length > next ? pageLink(base, `/secrets/${secret?.name ?? name}/versions`, url, pageSize, String(next)) : null;
    return { status: 200, body: { value, nextLink } };
  }

  private listDeletedSecrets(url: URL, base: string): Reply {
    const pageSize = readPageSize(url);
    const after = readSkipToken(url);
    const keys = [...this.state.secrets.entries()]
      .filter(([k, s]) => s.deleted && (after === undefined || k > after))
      .map(([k]) => k)
      .sort();
    const page = keys.slice(0, pageSize);
    const value = page.map((k) => {
      const secret = this.state.secrets.get(k) as SecretRecord & { deleted: DeletionInfo };
      const latest = secret.versions.get(secret.latest) as VersionRecord;
      return {
        ...secretItem(`${base}/secrets/${secret.name}`, latest),
        recoveryId: `${base}/deletedsecrets/${secret.name}`,
        deletedDate: secret.deleted.deletedDate,
        scheduledPurgeDate: secret.deleted.scheduledPurgeDate,
      };
    });
    const lastKey = page[page.length - 1];
    const nextLink = keys.length > pageSize && lastKey !== undefined ? pageLink(base, '/deletedsecrets', url, pageSize, lastKey) : null;
    return { status: 200, body: { value, nextLink } };
  }
}
