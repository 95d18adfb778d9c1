/**
 * `npm run load`: a load run against a private local stack (not a test).
 *
 * Starts the whole stack (Azurite, Key Vault stand-in, Functions host with the
 * built app) in a child process on free loopback ports and a temporary data
 * folder, then:
 *  1. verify: seeds tokens, then drives POST /api/tokens/{serial}/verify with
 *     concurrent clients sending each token's current code (the first answer
 *     per time step is 200 valid, the rest 409 replayed: each is a full check,
 *     a table read, a vault read, the HMAC scans and a conditional write, the
 *     replays counting toward the lockout, whose limit this run sets to the
 *     highest, 1,000), bounded by a duration and a request count; prints requests per
 *     second, p50/p99 latency, answers by status and the error count (5xx,
 *     network failures, anything but 200/409);
 *  2. ingest: uploads an assignment list, then drops 20 seed files at once
 *     and prints how long until every token is listed in an import CSV.
 * Everything is stopped and the data folder removed at the end.
 *
 *   npm run load -- [--clients 16] [--duration-s 10] [--max-requests 20000] [--verify-tokens 100]
 *                   [--files 20] [--tokens-per-file 50] [--no-throttling] [--ingest-timeout-s 300]
 *
 * The vault stand-in throttles as Key Vault does (300 creates and 4,000 other
 * calls per 10 s) unless --no-throttling; the app paces itself to the same
 * budgets, so the ingest figure is bounded by Key Vault's create budget.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { BlobServiceClient } from '@azure/storage-blob';
import { parse } from 'csv-parse/sync';
import { toCanonicalBase32 } from '../shared/core/encoding.js';
import { totpCode } from '../shared/core/totp.js';
import { startTestStack, type TestStack } from '../test/helpers/stack.js';

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '16' },
    'duration-s': { type: 'string', default: '10' },
    'max-requests': { type: 'string', default: '20000' },
    'verify-tokens': { type: 'string', default: '100' },
    files: { type: 'string', default: '20' },
    'tokens-per-file': { type: 'string', default: '50' },
    'no-throttling': { type: 'boolean', default: false },
    'ingest-timeout-s': { type: 'string', default: '300' },
  },
});

/** A whole number from an option, clamped to [min, max] so a typo cannot start an unbounded run. */
function bounded(name: keyof typeof values, min: number, max: number): number {
  const n = Number(values[name]);
  if (!Number.isInteger(n)) throw new Error(`--${name} must be a whole number.`);
  return Math.min(max, Math.max(min, n));
}

const clients = bounded('clients', 1, 256);
const durationMs = bounded('duration-s', 1, 300) * 1000;
const maxRequests = bounded('max-requests', 1, 1_000_000);
const verifyTokens = bounded('verify-tokens', 1, 5000);
const files = bounded('files', 1, 100);
const tokensPerFile = bounded('tokens-per-file', 1, 5000);
const ingestTimeoutMs = bounded('ingest-timeout-s', 10, 3600) * 1000;

interface Token {
  serial: string;
  secret: Uint8Array;
  base32: string;
}

function newTokens(prefix: string, count: number): Token[] {
  return Array.from({ length: count }, (_, i) => {
    const secret = new Uint8Array(randomBytes(20));
    return { serial: `${prefix}${String(i + 1).padStart(5, '0')}`, secret, base32: toCanonicalBase32(secret) };
  });
}

const seedFile = (tokens: Token[]) =>
  'upn,serial number,secret key,time interval,manufacturer,model\n' +
  tokens.map((t) => `,${t.serial},${t.base32},30,Token2,C202\n`).join('');

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function assertLoopback(url: string): void {
  const host = new URL(url).hostname;
  if (host !== '127.0.0.1' && host !== 'localhost' && host !== '[::1]') throw new Error(`Refusing to load a non-loopback address: ${url}`);
}

async function upload(blobs: BlobServiceClient, container: string, name: string, content: string): Promise<void> {
  await blobs.getContainerClient(container).getBlockBlobClient(name).upload(content, Buffer.byteLength(content));
}

async function listedSerials(blobs: BlobServiceClient): Promise<{ serials: Set<string>; files: number }> {
  const serials = new Set<string>();
  let count = 0;
  const container = blobs.getContainerClient('imports');
  for await (const blob of container.listBlobsFlat()) {
    count++;
    const rows = parse<Record<string, string>>(await container.getBlobClient(blob.name).downloadToBuffer(), { columns: true });
    for (const row of rows) serials.add(row['serial number']!);
  }
  return { serials, files: count };
}

async function verifyPhase(stack: TestStack, blobs: BlobServiceClient): Promise<void> {
  const tokens = newTokens('LOADV', verifyTokens);
  await upload(blobs, 'seeds', 'load-verify.csv', seedFile(tokens));
  await stack.idle();

  const latencies: number[] = [];
  const statuses = new Map<string, number>();
  let errors = 0;
  let sent = 0;
  const deadline = Date.now() + durationMs;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (Date.now() < deadline && sent < maxRequests) {
        sent++;
        const token = tokens[Math.floor(Math.random() * tokens.length)]!;
        const code = totpCode({ secret: token.secret, algorithm: 'SHA1', digits: 6, period: 30 }, Math.floor(Date.now() / 1000));
        const t0 = performance.now();
        let status = 'network-error';
        try {
          const res = await fetch(`${stack.functionsUrl}/api/tokens/${token.serial}/verify`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ code }),
          });
          await res.arrayBuffer();
          status = String(res.status);
        } catch {
          // Counted below as an error.
        }
        latencies.push(performance.now() - t0);
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        if (status !== '200' && status !== '409') errors++;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  console.log(`verify: ${latencies.length} requests from ${clients} clients over ${seconds.toFixed(1)} s (${verifyTokens} tokens)`);
  console.log(`  throughput   ${(latencies.length / seconds).toFixed(0)} requests/s`);
  console.log(
    `  latency      p50 ${percentile(latencies, 50).toFixed(1)} ms, p99 ${percentile(latencies, 99).toFixed(1)} ms, max ${latencies[latencies.length - 1]?.toFixed(1)} ms`,
  );
  console.log(
    `  answers      ${[...statuses.entries()]
      .sort()
      .map(([s, n]) => `${s}: ${n}`)
      .join(', ')} (200 = accepted, 409 = replayed code)`,
  );
  console.log(`  errors       ${errors}`);
}

async function ingestPhase(stack: TestStack, blobs: BlobServiceClient): Promise<boolean> {
  const batches = Array.from({ length: files }, (_, f) => newTokens(`LOAD${String(f + 1).padStart(2, '0')}X`, tokensPerFile));
  const all = batches.flat();
  const assignments = 'upn,serial number\n' + all.map((t, i) => `load.user${i}@contoso.com,${t.serial}\n`).join('');
  await upload(blobs, 'assignments', 'load-assignments.csv', assignments);
  await stack.idle();

  const started = performance.now();
  await Promise.all(batches.map((tokens, f) => upload(blobs, 'seeds', `load-${String(f + 1).padStart(2, '0')}.csv`, seedFile(tokens))));
  const dropped = performance.now();
  const wanted = new Set(all.map((t) => t.serial));
  for (;;) {
    const listed = await listedSerials(blobs);
    const done = [...wanted].filter((s) => listed.serials.has(s)).length;
    if (done === wanted.size) {
      const seconds = (performance.now() - started) / 1000;
      console.log(
        `ingest: ${files} seed files of ${tokensPerFile} tokens (${all.length} tokens, all assigned) dropped at once in ${((dropped - started) / 1000).toFixed(1)} s`,
      );
      console.log(
        `  every token in an import CSV after ${seconds.toFixed(1)} s (${listed.files} CSV file(s), ${(all.length / seconds).toFixed(0)} tokens/s)`,
      );
      const stats = (await (await fetch(`${stack.keyVaultUrl}/_admin/stats`)).json()) as {
        creates: number;
        throttled: number;
        requests: number;
      };
      console.log(`  vault        ${stats.creates} creates, ${stats.throttled} answered 429, ${stats.requests} requests in all`);
      return true;
    }
    if (performance.now() - started > ingestTimeoutMs) {
      console.log(`ingest: TIMED OUT after ${ingestTimeoutMs / 1000} s with ${done} of ${wanted.size} tokens in an import CSV`);
      return false;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function main(): Promise<number> {
  const dataDir = await mkdtemp(join(tmpdir(), 'entra-oath-load-'));
  let stack: TestStack | undefined;
  const stop = async () => {
    await stack?.stop();
    stack = undefined;
    await rm(dataDir, { recursive: true, force: true });
  };
  process.once('SIGINT', () => void stop().then(() => process.exit(130)));
  try {
    console.log('Starting the local stack (free loopback ports, temporary data folder)...');
    stack = await startTestStack(undefined, {
      dataDir,
      // Replays count toward the lockout; the highest limit keeps every request a full check rather than a cheap 423.
      settings: { RECONCILE_SCHEDULE: '0 0 0 1 1 *', VERIFY_LOCKOUT_LIMIT: '1000' },
      kvRealism: values['no-throttling'] ? { throttling: false } : { throttling: true, createsPer10s: 300, othersPer10s: 4000 },
    });
    for (const url of [stack.functionsUrl, stack.keyVaultUrl, stack.blobUrl]) assertLoopback(url);
    const blobs = BlobServiceClient.fromConnectionString(stack.connectionString);
    await verifyPhase(stack, blobs);
    return (await ingestPhase(stack, blobs)) ? 0 : 1;
  } finally {
    await stop();
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`load: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
