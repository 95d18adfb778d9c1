/**
 * How Azurite's table emulation keeps up as a table grows, with the inventory's layout (every row in one
 * partition) and with one partition per row. It explains the 100,000-token scale run: Azurite indexes
 * PartitionKey, so in a single partition each point read or insert scans the whole partition, and an
 * ingest slows down as the inventory grows; Table Storage itself serves both at a steady cost.
 *
 *   node --import tsx bench/azurite-partitions.ts [rows=60000] [layout=both|one|spread]
 *
 * Prints one line per 5,000 rows (an insert and a point read each, 16 at a time) with the rate of that
 * stretch; no figure is asserted. Each layout runs against its own fresh Azurite.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TableClient } from '@azure/data-tables';
import { startAzurite } from '../dev/azurite.js';

const STRETCH = 5_000;
const IN_FLIGHT = 16;

async function probe(layout: 'one' | 'spread', rows: number): Promise<void> {
  const dataDir = await mkdtemp(join(tmpdir(), `azurite-${layout}-`));
  const azurite = await startAzurite({ dataDir, ports: 'free' });
  try {
    const table = TableClient.fromConnectionString(azurite.connectionString, 'probe', { allowInsecureConnection: true });
    await table.createTable();
    // About the size of an inventory row with a few history entries.
    const history = 'h'.repeat(600);
    let next = 0;
    let stretchStart = performance.now();
    const worker = async (): Promise<void> => {
      while (next < rows) {
        const i = next++;
        const rowKey = `SERIAL${String(i).padStart(8, '0')}`;
        const partitionKey = layout === 'one' ? 'token' : rowKey;
        await table.createEntity({ partitionKey, rowKey, state: 'stored', history });
        await table.getEntity(partitionKey, rowKey);
        if ((i + 1) % STRETCH === 0) {
          const now = performance.now();
          console.log(`${layout}: rows ${i + 1 - STRETCH}-${i + 1}: ${Math.round(STRETCH / ((now - stretchStart) / 1000))} rows/s`);
          stretchStart = now;
        }
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  } finally {
    await azurite.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

const rows = Number(process.argv[2] ?? 60_000);
const layout = process.argv[3] ?? 'both';
if (!Number.isInteger(rows) || rows < STRETCH)
  throw new Error(`rows must be a whole number of at least ${STRETCH}, not ${process.argv[2]}.`);
if (!['both', 'one', 'spread'].includes(layout)) throw new Error(`layout must be both, one or spread, not ${layout}.`);
console.log(`Azurite table throughput, ${rows} rows, an insert and a point read per row, ${IN_FLIGHT} in flight`);
if (layout !== 'spread') await probe('one', rows);
if (layout !== 'one') await probe('spread', rows);
