/**
 * The pool that runs an ingest's or a build's per-token work: once one item
 * fails, no new item starts and the call settles only after the items in
 * flight did. Otherwise a failed ingest keeps writing to the vault after it
 * released its lease, racing the retry (two get-then-set cycles, two versions).
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { mapPool } from '../../shared/pipeline/map-pool.js';

it('starts nothing after a failure and rejects only when the work in flight has settled', async () => {
  const started: number[] = [];
  let inFlight = 0;
  const failure = new Error('item 3 failed');
  const run = mapPool(
    Array.from({ length: 100 }, (_, i) => i),
    4,
    async (i) => {
      started.push(i);
      inFlight++;
      try {
        await sleep(i === 3 ? 5 : 20);
        if (i === 3) throw failure;
        return i;
      } finally {
        inFlight--;
      }
    },
  );
  await assert.rejects(run, (err) => err === failure);
  assert.equal(inFlight, 0, 'the call rejected while items were still running');
  assert.deepEqual(started, [0, 1, 2, 3], 'no item started after the failure');
});

it('keeps results in input order and bounds concurrency', async () => {
  let inFlight = 0;
  let peak = 0;
  const out = await mapPool(
    Array.from({ length: 20 }, (_, i) => i),
    3,
    async (i) => {
      peak = Math.max(peak, ++inFlight);
      await sleep((20 - i) % 4);
      inFlight--;
      return i * 2;
    },
  );
  assert.deepEqual(
    out,
    Array.from({ length: 20 }, (_, i) => i * 2),
  );
  assert.equal(peak, 3);
});
