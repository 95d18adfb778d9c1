/**
 * The stand-in's secrets and their durable journal.
 *
 * `VaultSecretState` is the in-memory view (secrets by lower-cased name, each with its versions); it only ever
 * changes by applying `JournalRecord`s, so replaying the journal file rebuilds it exactly. `Journal` is that file:
 * append-only JSON lines, fdatasync'ed before a write is acknowledged, compacted at start.
 *
 * WARNING: the journal holds every secret value IN PLAINTEXT (development and tests only).
 */
import fs from 'node:fs';
import path from 'node:path';

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
export class VaultSecretState {
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

/**
 * Append-only JSON-lines journal. Each acknowledged write is written and fdatasync'ed before the HTTP response
 * goes out, so a SIGKILL loses nothing that was acknowledged. Compacted (atomic rewrite) at start.
 */
export class Journal {
  private fd: number;

  private constructor(
    private readonly filePath: string,
    fd: number,
  ) {
    this.fd = fd;
  }

  /** Replays the file (if any) into `state`, compacts it and opens it for appending. */
  static open(filePath: string, state: VaultSecretState, log: (line: string) => void): Journal {
    fs.mkdirSync(path.dirname(filePath), { recursive: true });
    if (fs.existsSync(filePath)) {
      const lines = fs.readFileSync(filePath, 'utf8').split('\n');
      let lastNonEmpty = lines.length - 1;
      while (lastNonEmpty >= 0 && lines[lastNonEmpty]?.trim() === '') lastNonEmpty--;
      for (let i = 0; i <= lastNonEmpty; i++) {
        const line = lines[i]?.trim() ?? '';
        if (line === '') continue;
        try {
          state.apply(JSON.parse(line) as JournalRecord);
        } catch {
          // Only a torn final line (crash mid-append of an unacknowledged write) is tolerable.
          if (i === lastNonEmpty) {
            log(`keyvault stand-in: ignoring torn last journal line ${i + 1}`);
            continue;
          }
          throw new Error(`Key Vault stand-in journal ${filePath} is corrupt at line ${i + 1}`);
        }
      }
    }
    Journal.compact(filePath, state);
    return new Journal(filePath, fs.openSync(filePath, 'a'));
  }

  private static compact(filePath: string, state: VaultSecretState): void {
    const tmp = `${filePath}.compact-${process.pid}.tmp`;
    const fd = fs.openSync(tmp, 'w', 0o600);
    try {
      let chunk = '';
      for (const record of state.snapshot()) {
        chunk += JSON.stringify(record) + '\n';
        if (chunk.length > 1 << 20) {
          fs.writeSync(fd, chunk);
          chunk = '';
        }
      }
      if (chunk) fs.writeSync(fd, chunk);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, filePath);
    Journal.syncDirectory(filePath);
  }

  private static syncDirectory(filePath: string): void {
    try {
      const dirFd = fs.openSync(path.dirname(filePath), 'r');
      try {
        fs.fsyncSync(dirFd);
      } finally {
        fs.closeSync(dirFd);
      }
    } catch {
      // Some platforms cannot fsync a directory; the rename is still atomic.
    }
  }

  append(records: JournalRecord[]): void {
    fs.writeSync(this.fd, records.map((r) => JSON.stringify(r) + '\n').join(''));
    fs.fdatasyncSync(this.fd);
  }

  truncate(): void {
    fs.ftruncateSync(this.fd, 0);
    fs.writeSync(this.fd, JSON.stringify(HEADER) + '\n');
    fs.fsyncSync(this.fd);
  }

  close(): void {
    fs.closeSync(this.fd);
    this.fd = -1;
  }

  get path(): string {
    return this.filePath;
  }
}
