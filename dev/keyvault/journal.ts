/**
 * The stand-in's secrets and their durable journal.
 *
 * `VaultSecretState` is the in-memory view (secrets by lower-cased name, each with its versions); it only ever
 * changes by applying `JournalRecord`s, so replaying the journal file (dev/stand-in/journal.ts: append-only JSON
 * lines, fdatasync'ed before a write is acknowledged, compacted at start) rebuilds it exactly.
 *
 * WARNING: the journal holds every secret value IN PLAINTEXT (development and tests only).
 */
import type { JournalHost } from '../stand-in/journal.js';

export interface VersionRecord {
  version: string;
  value: string;
  contentType?: string;
  tags?: Record<string, string>;
  enabled: boolean;
  nbf?: number;
  exp?: number;
  /** Epoch seconds, as the service reports them. */
  created: number;
  updated: number;
}

export interface DeletionInfo {
  deletedDate: number;
  scheduledPurgeDate: number;
}

export interface SecretRecord {
  /** Name as first written; lookups are case-insensitive through the map key. */
  name: string;
  versions: Map<string, VersionRecord>;
  latest: string;
  deleted?: DeletionInfo;
}

export type JournalRecord =
  | { t: 'header'; format: 'keyvault-standin-journal'; formatVersion: 1 }
  | { t: 'version'; key: string; name: string; v: VersionRecord; latest: boolean }
  | { t: 'deleted'; key: string; d: DeletionInfo }
  | { t: 'recovered'; key: string }
  | { t: 'purged'; key: string };

const HEADER: JournalRecord = { t: 'header', format: 'keyvault-standin-journal', formatVersion: 1 };

/** The vault's secrets as the journal records built them. */
export class VaultSecretState implements JournalHost<JournalRecord> {
  readonly secrets = new Map<string, SecretRecord>();

  apply(record: JournalRecord): void {
    switch (record.t) {
      case 'header':
        return;
      case 'version': {
        let secret = this.secrets.get(record.key);
        if (!secret) {
          secret = { name: record.name, versions: new Map(), latest: record.v.version };
          this.secrets.set(record.key, secret);
        }
        secret.versions.set(record.v.version, record.v);
        if (record.latest) secret.latest = record.v.version;
        return;
      }
      case 'deleted': {
        const secret = this.secrets.get(record.key);
        if (secret) secret.deleted = record.d;
        return;
      }
      case 'recovered': {
        const secret = this.secrets.get(record.key);
        if (secret) delete secret.deleted;
        return;
      }
      case 'purged':
        this.secrets.delete(record.key);
        return;
    }
  }

  /** Records that rebuild the current state, used to compact the journal. */
  *snapshot(): Generator<JournalRecord> {
    yield HEADER;
    for (const [key, secret] of this.secrets) {
      for (const v of secret.versions.values()) {
        if (v.version !== secret.latest) yield { t: 'version', key, name: secret.name, v, latest: false };
      }
      const latest = secret.versions.get(secret.latest);
      if (latest) yield { t: 'version', key, name: secret.name, v: latest, latest: true };
      if (secret.deleted) yield { t: 'deleted', key, d: secret.deleted };
    }
  }
}
