// The journal both stand-ins keep their state in (dev/stand-in/journal.ts): replay, compaction, a torn last line,
// corruption elsewhere, a wipe, and a file only its owner can read.
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { JsonLinesJournal, type JournalHost } from '../../../dev/stand-in/journal.js';

type CountRecord = { t: 'set'; key: string; value: number } | { t: 'drop'; key: string };

/** A map rebuilt from set/drop records. */
class Counts implements JournalHost<CountRecord> {
  readonly values = new Map<string, number>();
  apply(record: CountRecord): void {
    if (record.t === 'set') this.values.set(record.key, record.value);
    else if (record.t === 'drop') this.values.delete(record.key);
    else throw new Error('unknown record');
  }
  *snapshot(): Generator<CountRecord> {
    for (const [key, value] of this.values) yield { t: 'set', key, value };
  }
}

function tempFile(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'stand-in-journal-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'nested', 'state.jsonl');
}

const lines = (file: string): string[] =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '');

void test('appended records are replayed at the next open, which compacts the file to the current state', (t) => {
  const file = tempFile(t);
  const first = new Counts();
  const journal = JsonLinesJournal.open(file, first, () => undefined, 'test stand-in');
  const records: CountRecord[] = [
    { t: 'set', key: 'a', value: 1 },
    { t: 'set', key: 'b', value: 2 },
    { t: 'set', key: 'a', value: 3 },
    { t: 'drop', key: 'b' },
  ];
  journal.append(records);
  for (const r of records) first.apply(r);
  journal.close();
  assert.equal(lines(file).length, 4);
  assert.equal(statSync(file).mode & 0o777, 0o600, 'plaintext secrets: owner only');

  const second = new Counts();
  JsonLinesJournal.open(file, second, () => undefined, 'test stand-in').close();
  assert.deepEqual([...second.values], [['a', 3]]);
  assert.deepEqual(lines(file), ['{"t":"set","key":"a","value":3}'], 'compacted');
});

void test('a torn last line is skipped and logged; a bad line before it refuses to open, naming file and line', (t) => {
  const file = tempFile(t);
  JsonLinesJournal.open(file, new Counts(), () => undefined, 'test stand-in').close();
  appendFileSync(file, '{"t":"set","key":"a","value":1}\n{"t":"set","ke');
  const logs: string[] = [];
  const host = new Counts();
  JsonLinesJournal.open(file, host, (l) => logs.push(l), 'test stand-in').close();
  assert.deepEqual([...host.values], [['a', 1]]);
  assert.deepEqual(logs, ['test stand-in: ignoring torn last journal line 2']);

  writeFileSync(file, '{"t":"set","key":"a","value":1}\nnot json\n{"t":"set","key":"b","value":2}\n');
  assert.throws(
    () => JsonLinesJournal.open(file, new Counts(), () => undefined, 'test stand-in'),
    (err: Error) => err.message === `test stand-in journal ${file} is corrupt at line 2`,
  );
  // A record the state refuses counts as corrupt as well.
  writeFileSync(file, '{"t":"unknown"}\n{"t":"set","key":"b","value":2}\n');
  assert.throws(() => JsonLinesJournal.open(file, new Counts(), () => undefined, 'test stand-in'), /corrupt at line 1/);
});

void test('replaceWith empties the file and writes the given records: a wipe that survives a restart', (t) => {
  const file = tempFile(t);
  const journal = JsonLinesJournal.open(file, new Counts(), () => undefined, 'test stand-in');
  journal.append([{ t: 'set', key: 'a', value: 1 }]);
  journal.replaceWith([{ t: 'set', key: 'fresh', value: 0 }]);
  journal.append([{ t: 'set', key: 'b', value: 2 }]);
  journal.close();
  const host = new Counts();
  JsonLinesJournal.open(file, host, () => undefined, 'test stand-in').close();
  assert.deepEqual(
    [...host.values],
    [
      ['fresh', 0],
      ['b', 2],
    ],
  );
});
