import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { leaveRow, ROW_UPDATE_ATTEMPTS, updateWithRetry, writeRow, type RowChange } from '../../shared/pipeline/conditional-update.js';
import { ConflictError, TransientError } from '../../shared/pipeline/errors.js';
import type { Entity, Versioned } from '../../shared/pipeline/ports.js';
import { MemoryTable } from '../helpers/memory-ports.js';

interface Counter extends Entity {
  n: number;
}

const increment = (row: Versioned<Counter> | undefined): RowChange<Counter, number> =>
  writeRow({ n: (row?.value.n ?? 0) + 1 }, (written) => written.value.n);

/** A table where another writer changes (or creates) the row right after each of the first `races` reads. */
class RacingTable extends MemoryTable<Counter> {
  reads = 0;
  constructor(private races: number) {
    super();
  }
  override async get(key: string): Promise<Versioned<Counter> | undefined> {
    this.reads++;
    const seen = await super.get(key);
    if (this.races > 0) {
      this.races--;
      await this.upsert(key, { n: (seen?.value.n ?? 0) + 100 });
    }
    return seen;
  }
}

void describe('updateWithRetry', () => {
  void it('inserts an absent row and replaces a present one, returning what the caller derives from the row written', async () => {
    const table = new MemoryTable<Counter>();
    assert.equal(await updateWithRetry(table, 'k', increment), 1);
    assert.equal(await updateWithRetry(table, 'k', increment), 2);
    assert.equal((await table.get('k'))?.value.n, 2);
  });

  void it('decides again on the newer row after losing a race, on replace (412) and on insert (409)', async () => {
    const replaced = new RacingTable(3);
    await replaced.insert('k', { n: 0 });
    assert.equal(await updateWithRetry(replaced, 'k', increment), 301, 'applied on top of every concurrent change');
    assert.equal(replaced.reads, 4);

    const inserted = new RacingTable(1);
    assert.equal(await updateWithRetry(inserted, 'k', increment), 101, 'the lost insert becomes a replace of the row that won');
  });

  void it('leaves the row untouched when the caller says so', async () => {
    const table = new MemoryTable<Counter>();
    await table.insert('k', { n: 5 });
    const before = (await table.get('k'))!.etag;
    assert.equal(await updateWithRetry(table, 'k', (row) => leaveRow(row?.value.n)), 5);
    assert.equal((await table.get('k'))!.etag, before);
  });

  void it('decides first on the row the caller already holds, without reading it again', async () => {
    const table = new RacingTable(0);
    await table.insert('k', { n: 7 });
    const held = (await table.get('k'))!;
    table.reads = 0;
    assert.equal(await updateWithRetry(table, 'k', increment, { current: held }), 8);
    assert.equal(table.reads, 0);
  });

  void it(`gives up after ${ROW_UPDATE_ATTEMPTS} lost races with a TransientError (503), or what the caller chose`, async () => {
    const always = new RacingTable(Number.MAX_SAFE_INTEGER);
    await always.insert('k', { n: 0 });
    await assert.rejects(
      updateWithRetry(always, 'k', increment),
      (err: unknown) => err instanceof TransientError && err.name === 'TransientError' && err.status === 503,
    );
    assert.equal(always.reads, ROW_UPDATE_ATTEMPTS);

    always.reads = 0;
    assert.equal(await updateWithRetry(always, 'k', increment, { attempts: 2, onExhausted: () => -1 }), -1);
    assert.equal(always.reads, 2);
  });

  void it('passes other failures through at once', async () => {
    class Broken extends MemoryTable<Counter> {
      override replace(): Promise<string> {
        return Promise.reject(new Error('storage down'));
      }
    }
    const table = new Broken();
    await table.insert('k', { n: 0 });
    await assert.rejects(updateWithRetry(table, 'k', increment), /storage down/);
    // A 409 is a lost race only for an insert: answered to a replace, it is someone else's failure.
    class ConflictOnReplace extends MemoryTable<Counter> {
      attempts = 0;
      override replace(): Promise<string> {
        this.attempts++;
        return Promise.reject(new ConflictError('odd'));
      }
    }
    const odd = new ConflictOnReplace();
    await odd.insert('k', { n: 0 });
    await assert.rejects(updateWithRetry(odd, 'k', increment), ConflictError);
    assert.equal(odd.attempts, 1);
  });
});
