// dev/azurite.ts: Azurite on disk keeps its data across a restart; in memory it writes nothing and keeps nothing.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { TableClient } from '@azure/data-tables';
import { startAzurite } from '../../dev/azurite.js';

async function rowsAfterRestart(inMemory: boolean, dataDir: string): Promise<{ rows: number; files: string[] }> {
  const first = await startAzurite({ dataDir, ports: 'free', inMemory });
  try {
    const table = TableClient.fromConnectionString(first.connectionString, 'kept', { allowInsecureConnection: true });
    await table.createTable();
    await table.createEntity({ partitionKey: 'p', rowKey: 'r', value: 'x' });
    assert.equal((await table.getEntity('p', 'r')).value, 'x', 'served while it runs');
  } finally {
    await first.close();
  }
  const second = await startAzurite({ dataDir, ports: 'free', inMemory });
  try {
    const table = TableClient.fromConnectionString(second.connectionString, 'kept', { allowInsecureConnection: true });
    let rows = 0;
    try {
      for await (const _ of table.listEntities()) rows++;
    } catch (error) {
      // The table itself is gone with the data.
      if ((error as { statusCode?: number }).statusCode !== 404) throw error;
    }
    const files = await readdir(dataDir).catch(() => []);
    return { rows, files };
  } finally {
    await second.close();
  }
}

void test('on disk: the data folder holds the databases and a restart keeps the rows', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'azurite-disk-'));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  const { rows, files } = await rowsAfterRestart(false, dataDir);
  assert.equal(rows, 1);
  assert.ok(files.includes('__azurite_db_table__.json'), files.join(', '));
});

void test('in memory: nothing is written to the data folder and a restart starts empty', async (t) => {
  const parent = await mkdtemp(join(tmpdir(), 'azurite-memory-'));
  t.after(() => rm(parent, { recursive: true, force: true }));
  const dataDir = join(parent, 'azurite');
  const { rows, files } = await rowsAfterRestart(true, dataDir);
  assert.equal(rows, 0);
  assert.deepEqual(files, [], 'no data folder created');
  assert.deepEqual(await readdir(parent), []);
});
