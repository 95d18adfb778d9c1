/**
 * Append-only JSON-lines journal for the Graph stand-in's state. Each acknowledged change is written and
 * fdatasync'ed before the HTTP answer goes out, so a SIGKILL loses nothing the client was told about. At open the
 * journal is replayed, then compacted (atomic rewrite of the current state).
 *
 * The file holds token secrets IN PLAINTEXT (the stand-in needs them to check codes): development only.
 */
import fs from 'node:fs';
import path from 'node:path';

export interface JournalHost<R> {
  /** Applies one replayed record to the in-memory state. */
  apply(record: R): void;
  /** Records that rebuild the current state, written at compaction. */
  snapshot(): Iterable<R>;
}

export class JsonLinesJournal<R> {
  private fd: number;

  private constructor(
    readonly filePath: string,
    fd: number,
  ) {
    this.fd = fd;
  }

  /** Replays `filePath` into `host` (a torn last line, from a crash mid-append, is skipped), then compacts it. */
  static open<R>(filePath: string, host: JournalHost<R>, log: (line: string) => void, label: string): JsonLinesJournal<R> {
    fs.mkdirSync(path.dirname(filePath), { recursive: true });
    if (fs.existsSync(filePath)) {
      const lines = fs.readFileSync(filePath, 'utf8').split('\n');
      let last = lines.length - 1;
      while (last >= 0 && lines[last]?.trim() === '') last--;
      for (let i = 0; i <= last; i++) {
        const line = lines[i]?.trim() ?? '';
        if (line === '') continue;
        let record: R;
        try {
          record = JSON.parse(line) as R;
        } catch {
          if (i === last) {
            log(`${label}: ignoring torn last journal line ${i + 1}`);
            continue;
          }
          throw new Error(`${label} journal ${filePath} is corrupt at line ${i + 1}`);
        }
        host.apply(record);
      }
    }
    JsonLinesJournal.compact(filePath, host);
    return new JsonLinesJournal<R>(filePath, fs.openSync(filePath, 'a', 0o600));
  }

  private static compact<R>(filePath: string, host: JournalHost<R>): void {
    const tmp = `${filePath}.compact-${process.pid}.tmp`;
    const fd = fs.openSync(tmp, 'w', 0o600);
    try {
      let chunk = '';
      for (const record of host.snapshot()) {
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

  append(records: readonly R[]): void {
    if (records.length === 0) return;
    fs.writeSync(this.fd, records.map((r) => JSON.stringify(r) + '\n').join(''));
    fs.fdatasyncSync(this.fd);
  }

  truncate(): void {
    fs.ftruncateSync(this.fd, 0);
    fs.fsyncSync(this.fd);
  }

  close(): void {
    if (this.fd < 0) return;
    fs.closeSync(this.fd);
    this.fd = -1;
  }
}
