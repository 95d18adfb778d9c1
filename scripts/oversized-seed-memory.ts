/**
 * What one seed file 10 times MAX_SEED_FILE_BYTES costs the instance: runs the local stack (Azurite in its own
 * process; the Functions host, the app and the vault stand-in in this one, as the worker shares the host's
 * instance), drops the file into `seeds` from a separate process (so this one never holds it), waits until the
 * pipeline has dealt with it, and prints this process's resident memory before and its peak.
 *
 *   node --import tsx scripts/oversized-seed-memory.ts [limitMiB=20] [factor=10]
 *
 * A measurement, not a test: it prints figures and asserts only that the file left `seeds` for quarantine.
 */
import { fork } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { BlobServiceClient } from '@azure/storage-blob';
import { repoRoot, startStack } from '../dev/stack.js';

const MiB = 1024 * 1024;

/** Child process: uploads `bytes` of CSV-looking filler as seeds/oversized.csv, streamed in 4 MiB blocks. */
async function upload(connectionString: string, bytes: number): Promise<void> {
  const line = Buffer.from(',1001,JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP,30,Vendor,Model\n');
  let sent = 0;
  const body = Readable.from(
    (function* () {
      yield Buffer.from('upn,serial number,secret key,time interval,manufacturer,model\n');
      while (sent < bytes) {
        const chunk = Buffer.alloc(Math.min(MiB, bytes - sent));
        for (let i = 0; i < chunk.length; i += line.length) line.copy(chunk, i);
        sent += chunk.length;
        yield chunk;
      }
    })(),
  );
  const blob = BlobServiceClient.fromConnectionString(connectionString).getContainerClient('seeds').getBlockBlobClient('oversized.csv');
  await blob.uploadStream(body, 4 * MiB, 2);
}

const mib = (n: number) => `${(n / MiB).toFixed(0)} MiB`;
const peakRss = () => process.resourceUsage().maxRSS * 1024;

async function main(): Promise<void> {
  const limitMiB = Number(process.argv[2] ?? '20');
  const factor = Number(process.argv[3] ?? '10');
  const dataDir = await mkdtemp(join(tmpdir(), 'oversized-seed-'));
  const lines: string[] = [];
  const stack = await startStack({
    dataDir,
    ports: 'free',
    entry: join(repoRoot, 'functions', 'index.ts'),
    settings: { MAX_SEED_FILE_BYTES: String(limitMiB * MiB) },
    pollIntervalMs: 200,
    log: (l) => lines.push(l),
  });
  try {
    await stack.idle();
    global.gc?.();
    const before = { rss: process.memoryUsage().rss, peak: peakRss() };
    const size = factor * limitMiB * MiB;
    const child = fork(new URL(import.meta.url).pathname, ['--upload', stack.azurite.connectionString, String(size)], {
      execArgv: ['--import', 'tsx'],
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    if (code !== 0) throw new Error(`upload failed (${code})`);
    const seeds = BlobServiceClient.fromConnectionString(stack.azurite.connectionString).getContainerClient('seeds');
    for (let i = 0; i < 600; i++) {
      await stack.idle();
      let left = 0;
      for await (const _ of seeds.listBlobsFlat()) left++;
      if (left === 0) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    let quarantined = 0;
    for await (const _ of BlobServiceClient.fromConnectionString(stack.azurite.connectionString)
      .getContainerClient('quarantine')
      .listBlobsFlat())
      quarantined++;
    const after = peakRss();
    console.log(
      `limit ${limitMiB} MiB, seed file ${mib(size)}: RSS before ${mib(before.rss)} (peak so far ${mib(before.peak)}), peak after ${mib(after)}, growth of the peak ${mib(after - before.peak)}; quarantined blobs: ${quarantined}`,
    );
    if (quarantined === 0)
      console.log(
        lines
          .filter((l) => /error|fail/i.test(l))
          .slice(-10)
          .join('\n'),
      );
  } finally {
    await stack.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--upload') await upload(process.argv[3]!, Number(process.argv[4]));
else await main();
