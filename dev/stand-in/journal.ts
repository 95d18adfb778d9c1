/**
 * The append-only JSON-lines journal both stand-ins keep their state in. Each acknowledged change is written and
 * fdatasync'ed before the HTTP answer goes out, so a SIGKILL loses nothing a client was told about. At open the
 * file is replayed into the stand-in's state, then compacted (an atomic rewrite of the current state).
 *
 * The file holds what the stand-in holds, secrets included, IN PLAINTEXT: development and tests only.
 */
import fs from 'node:fs';
import path from 'node:path';

/** The in-memory state a journal rebuilds. */
export interface JournalHost<R> {
  /** Applies one record, replayed or newly committed. */
  apply(record: R): void;
  /** Records that rebuild the current state, written at compaction and after a wipe. */
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

  /**
   * Replays `filePath` (when it exists) into `host`, compacts it and opens it for appending. A torn last line, from
   * a crash in the middle of an unacknowledged append, is skipped and logged; a bad line anywhere else refuses to
   * start, naming `label`, the file and the line.
   */
  static open<R>(filePath: string, host: JournalHost<R>, log: (line: string) => void, label: string): JsonLinesJournal<R> {
    fs.mkdirSync(path.dirname(filePath), { recursive: true });
    if (fs.existsSync(filePath)) {
      const lines = fs.readFileSync(filePath, 'utf8').split('\n');
      let last = lines.length - 1;
      while (last >= 0 && lines[last]?.trim() === '') last--;
      for (let i = 0; i <= last; i++) {
        const line = lines[i]?.trim() ?? '';
        if (line === '') continue;
        try {
          host.apply(JSON.parse(line) as R);
        } catch {
          if (i === last) {
            log(`${label}: ignoring torn last journal line ${i + 1}`);
            continue;
          }
          throw new Error(`${label} journal ${filePath} is corrupt at line ${i + 1}`);
        }
      }
    }
    writeAtomically(filePath, host.snapshot());
    return new JsonLinesJournal<R>(filePath, fs.openSync(filePath, 'a', 0o600));
  }

  append(records: readonly R[]): void {
    if (records.length === 0) return;
    fs.writeSync(this.fd, records.map((r) => JSON.stringify(r) + '\n').join(''));
    fs.fdatasyncSync(this.fd);
  }

  /** Empties the file and writes `records` (the state after a wipe: a header, say), durably. */
  replaceWith(records: Iterable<R>): void {
    fs.ftruncateSync(this.fd, 0);
    let text = '';
    for (const record of records) text += JSON.stringify(record) + '\n';
    if (text) fs.writeSync(this.fd, text);
    fs.fsyncSync(this.fd);
  }

  close(): void {
    if (this.fd < 0) return;
    fs.closeSync(this.fd);
    this.fd = -1;
  }
}

/** Writes the records to a temporary file, syncs it and renames it over `filePath`. */
function writeAtomically<R>(filePath: string, records: Iterable<R>): void {
  const tmp = `${filePath}.compact-${process.pid}.tmp`;
  const fd = fs.openSync(tmp, 'w', 0o600);
  try {
    let chunk = '';
    for (const record of records) {
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
