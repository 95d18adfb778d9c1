/**
 * `npm run demo`: a full round trip against a running `npm start`.
 *
 * Generates a fresh seed file and assignment list (new serials every run),
 * uploads them, waits for the one import CSV the build makes once both ingests
 * have settled (BUILD_SETTLE_SECONDS), prints it with secrets masked, and
 * checks a generated code through the verify endpoint.
 *
 * Reads the stack's settings from dev/data/local.settings.json (written by
 * `npm start`); override with --data-dir or --functions-url.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { BlobServiceClient } from '@azure/storage-blob';
import { parse } from 'csv-parse/sync';
import { decodeBase32, toCanonicalBase32 } from '../shared/core/encoding.js';
import { totpCode } from '../shared/core/totp.js';

const { values } = parseArgs({
  options: {
    'data-dir': { type: 'string', default: join(import.meta.dirname, '..', 'dev', 'data') },
    'functions-url': { type: 'string', default: 'http://127.0.0.1:7071' },
    count: { type: 'string', default: '3' },
    'timeout-s': { type: 'string', default: '120' },
  },
});

/** No character of a secret is printed, only its length. */
function mask(secret: string): string {
  return `${'•'.repeat(8)}(${secret.length} chars)`;
}

async function main(): Promise<void> {
  const settingsPath = join(values['data-dir'], 'local.settings.json');
  let settings: Record<string, string>;
  try {
    settings = (JSON.parse(await readFile(settingsPath, 'utf8')) as { Values: Record<string, string> }).Values;
  } catch {
    throw new Error(`Cannot read ${settingsPath}. Start the local stack first with \`npm start\` (in another terminal).`);
  }
  const api = values['functions-url'];
  try {
    await fetch(`${api}/api/health`);
  } catch {
    throw new Error(`The Functions host does not answer at ${api}. Start it with \`npm start\`.`);
  }
  const blobs = BlobServiceClient.fromConnectionString(settings.PipelineStorage!);
  const run = randomBytes(3).toString('hex');
  const count = Math.max(1, Math.min(5, Number(values.count)));
  const tokens = Array.from({ length: count }, (_, i) => ({ serial: `demo${run}${i + 1}`, secret: toCanonicalBase32(randomBytes(20)), upn: `demo.user${i + 1}.${run}@contoso.com` }));

  const seed = ['upn,serial number,secret key,timeinterval,manufacturer,model', ...tokens.map((t) => `,${t.serial},${t.secret},30,Token2,C202`)].join('\n') + '\n';
  const assignments = ['upn,serial number', ...tokens.map((t) => `${t.upn},${t.serial}`)].join('\n') + '\n';
  console.log(`Run ${run}: ${count} new tokens (${tokens.map((t) => t.serial).join(', ')}).`);

  const importsBefore = new Set<string>();
  for await (const b of blobs.getContainerClient('imports').listBlobsFlat()) importsBefore.add(b.name);
  await blobs.getContainerClient('assignments').getBlockBlobClient(`demo-${run}.csv`).upload(assignments, Buffer.byteLength(assignments));
  await blobs.getContainerClient('seeds').getBlockBlobClient(`demo-${run}.csv`).upload(seed, Buffer.byteLength(seed));
  const settle = Number(settings.BUILD_SETTLE_SECONDS ?? 30);
  console.log(`Uploaded seeds/demo-${run}.csv and assignments/demo-${run}.csv; the import build runs once both are ingested and ${settle} s have passed (BUILD_SETTLE_SECONDS). Waiting for the import CSV...`);

  const wanted = new Set(tokens.map((t) => t.serial));
  const deadline = Date.now() + Number(values['timeout-s']) * 1000;
  // Every new CSV that lists a token of this run: the pipeline should make exactly one, with all of them.
  const found = new Map<string, Record<string, string>[]>();
  const listed = () => new Set([...found.values()].flat().map((r) => r['serial number']));
  while (Date.now() < deadline && listed().size < wanted.size) {
    for await (const b of blobs.getContainerClient('imports').listBlobsFlat()) {
      if (importsBefore.has(b.name) || found.has(b.name)) continue;
      const body = await blobs.getContainerClient('imports').getBlobClient(b.name).downloadToBuffer();
      const parsed = parse<Record<string, string>>(body.toString('utf8'), { columns: true });
      if (parsed.some((r) => wanted.has(r['serial number'] ?? ''))) found.set(b.name, parsed);
    }
    if (listed().size < wanted.size) await new Promise((r) => setTimeout(r, 1000));
  }
  if (found.size === 0) throw new Error('No import CSV appeared in time; look at the `npm start` console and the reports container.');
  if (found.size > 1 || listed().size < wanted.size) {
    throw new Error(`Expected one import CSV with all ${wanted.size} tokens, found ${found.size} file(s) with ${listed().size}: ${[...found.keys()].join(', ')}.`);
  }
  const [[csvName, rows]] = [...found.entries()] as [[string, Record<string, string>[]]];
  console.log(`One import CSV with all ${rows.length} rows.`);

  console.log(`\nimports/${csvName} (secrets masked):`);
  console.log('upn,serial number,secret key,time interval,manufacturer,model');
  for (const r of rows) console.log([r.upn, r['serial number'], mask(r['secret key'] ?? ''), r['time interval'], r.manufacturer, r.model].join(','));

  const first = tokens[0]!;
  const code = totpCode({ secret: decodeBase32(first.secret)!, algorithm: 'SHA1', digits: 6, period: 30 }, Math.floor(Date.now() / 1000));
  const res = await fetch(`${api}/api/tokens/${first.serial}/verify`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code }) });
  console.log(`\nPOST /api/tokens/${first.serial}/verify with the current code -> ${res.status}`);
  console.log(JSON.stringify(await res.json(), null, 2));
  console.log(`\nWhen the CSV is uploaded to Entra: POST ${api}/api/imports/${csvName}/uploaded deletes it and marks the tokens imported.`);
}

main().catch((err: unknown) => {
  console.error(`demo: ${(err as Error).message}`);
  process.exitCode = 1;
});
