/**
 * `npm run demo`: a full round trip against a running `npm start`.
 *
 * Generates a fresh seed file and assignment list (new serials every run),
 * uploads them, waits for the one import CSV the build makes once both ingests
 * have settled (BUILD_SETTLE_SECONDS), prints it with secrets masked, and
 * checks a generated code through the verify endpoint.
 *
 * `npm run demo -- --graph`, against `IMPORT_MODE=graph npm start`: seeds the
 * demo's users in the Graph stand-in (one of them a Global Administrator), drops
 * the same two files, waits until the build has assigned the members' tokens in
 * the stand-in and refused the administrator's, shows the devices, activates one
 * through verify with the current code, and signs in with the next one.
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
    graph: { type: 'boolean', default: false },
  },
});

interface DemoToken {
  serial: string;
  secret: string;
  upn: string;
}

interface StandInDevice {
  serialNumber: string;
  status: string;
  assignedTo: { userPrincipalName: string } | null;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const codeOf = (t: DemoToken, unixSeconds: number) =>
  totpCode({ secret: decodeBase32(t.secret)!, algorithm: 'SHA1', digits: 6, period: 30 }, unixSeconds);

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
  const graphMode = (settings.IMPORT_MODE ?? 'csv').toLowerCase() === 'graph';
  if (values.graph && !graphMode)
    throw new Error(
      'The stack runs in CSV mode. Stop it and start it with `IMPORT_MODE=graph npm start`, then run `npm run demo -- --graph`.',
    );
  if (!values.graph && graphMode) throw new Error('The stack runs in Graph mode (IMPORT_MODE=graph): run `npm run demo -- --graph`.');
  const blobs = BlobServiceClient.fromConnectionString(settings.PipelineStorage!);
  const run = randomBytes(3).toString('hex');
  const count = Math.max(1, Math.min(5, Number(values.count)));
  const tokens: DemoToken[] = Array.from({ length: count }, (_, i) => ({
    serial: `demo${run}${i + 1}`,
    secret: toCanonicalBase32(randomBytes(20)),
    upn: `demo.user${i + 1}.${run}@contoso.com`,
  }));
  if (values.graph) return graphDemo(settings, api, blobs, run, tokens);

  const seed =
    ['upn,serial number,secret key,timeinterval,manufacturer,model', ...tokens.map((t) => `,${t.serial},${t.secret},30,Token2,C202`)].join(
      '\n',
    ) + '\n';
  const assignments = ['upn,serial number', ...tokens.map((t) => `${t.upn},${t.serial}`)].join('\n') + '\n';
  console.log(`Run ${run}: ${count} new tokens (${tokens.map((t) => t.serial).join(', ')}).`);

  const importsBefore = new Set<string>();
  for await (const b of blobs.getContainerClient('imports').listBlobsFlat()) importsBefore.add(b.name);
  await blobs.getContainerClient('assignments').getBlockBlobClient(`demo-${run}.csv`).upload(assignments, Buffer.byteLength(assignments));
  await blobs.getContainerClient('seeds').getBlockBlobClient(`demo-${run}.csv`).upload(seed, Buffer.byteLength(seed));
  const settle = Number(settings.BUILD_SETTLE_SECONDS ?? 30);
  console.log(
    `Uploaded seeds/demo-${run}.csv and assignments/demo-${run}.csv; the import build runs once both are ingested and ${settle} s have passed (BUILD_SETTLE_SECONDS). Waiting for the import CSV...`,
  );

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
    throw new Error(
      `Expected one import CSV with all ${wanted.size} tokens, found ${found.size} file(s) with ${listed().size}: ${[...found.keys()].join(', ')}.`,
    );
  }
  const [[csvName, rows]] = [...found.entries()] as [[string, Record<string, string>[]]];
  console.log(`One import CSV with all ${rows.length} rows.`);

  console.log(`\nimports/${csvName} (secrets masked):`);
  console.log('upn,serial number,secret key,time interval,manufacturer,model');
  for (const r of rows)
    console.log([r.upn, r['serial number'], mask(r['secret key'] ?? ''), r['time interval'], r.manufacturer, r.model].join(','));

  const first = tokens[0]!;
  const code = totpCode({ secret: decodeBase32(first.secret)!, algorithm: 'SHA1', digits: 6, period: 30 }, Math.floor(Date.now() / 1000));
  const res = await fetch(`${api}/api/tokens/${first.serial}/verify`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ code }),
  });
  console.log(`\nPOST /api/tokens/${first.serial}/verify with the current code -> ${res.status}`);
  console.log(JSON.stringify(await res.json(), null, 2));
  console.log(`\nWhen the CSV is uploaded to Entra: POST ${api}/api/imports/${csvName}/uploaded deletes it and marks the tokens imported.`);
}

/** Graph mode: the build creates and assigns the tokens in the Graph stand-in; verify activates one. */
async function graphDemo(
  settings: Record<string, string>,
  api: string,
  blobs: BlobServiceClient,
  run: string,
  members: DemoToken[],
): Promise<void> {
  const graph = settings.GRAPH_BASE_URL;
  if (!graph) throw new Error('local.settings.json names no GRAPH_BASE_URL: restart the stack with `IMPORT_MODE=graph npm start`.');
  const admin = async <T>(method: string, what: string, body?: unknown): Promise<T> => {
    const res = await fetch(`${graph}/_admin/${what}`, {
      method,
      headers: { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`Graph stand-in ${method} /_admin/${what}: HTTP ${res.status} ${(await res.text()).slice(0, 300)}`);
    return (await res.json()) as T;
  };
  // A Global Administrator's token is refused: the app never enrols a factor whose seed it knows on such an account.
  const privileged: DemoToken = { serial: `demo${run}a`, secret: toCanonicalBase32(randomBytes(20)), upn: `demo.admin.${run}@contoso.com` };
  await admin('POST', 'users', [
    ...members.map((t) => ({ userPrincipalName: t.upn })),
    { userPrincipalName: privileged.upn, directoryRoles: ['Global Administrator'] },
  ]);
  console.log(
    `Run ${run}: ${members.length} new tokens for ${members.length} members, and one for a Global Administrator (${privileged.serial}); users seeded in the Graph stand-in (${graph}).`,
  );

  const all = [...members, privileged];
  const seed =
    ['upn,serial number,secret key,timeinterval,manufacturer,model', ...all.map((t) => `,${t.serial},${t.secret},30,Token2,C202`)].join(
      '\n',
    ) + '\n';
  const assignments = ['upn,serial number', ...all.map((t) => `${t.upn},${t.serial}`)].join('\n') + '\n';
  const reportsBefore = new Set<string>();
  for await (const b of blobs.getContainerClient('reports').listBlobsFlat()) reportsBefore.add(b.name);
  await blobs.getContainerClient('assignments').getBlockBlobClient(`demo-${run}.csv`).upload(assignments, Buffer.byteLength(assignments));
  await blobs.getContainerClient('seeds').getBlockBlobClient(`demo-${run}.csv`).upload(seed, Buffer.byteLength(seed));
  const settle = Number(settings.BUILD_SETTLE_SECONDS ?? 30);
  console.log(
    `Uploaded seeds/demo-${run}.csv and assignments/demo-${run}.csv; the build runs once both are ingested and ${settle} s have passed (BUILD_SETTLE_SECONDS). No CSV: it creates and assigns the tokens through Graph. Waiting...`,
  );

  const wanted = new Set(members.map((t) => t.serial));
  const deadline = Date.now() + Number(values['timeout-s']) * 1000;
  let ours: StandInDevice[] = [];
  let refusal: { code: string; message: string } | undefined;
  while (Date.now() < deadline) {
    ours = (await admin<{ devices: StandInDevice[] }>('GET', 'devices')).devices.filter(
      (d) => wanted.has(d.serialNumber) || d.serialNumber === privileged.serial,
    );
    for await (const b of blobs.getContainerClient('reports').listBlobsFlat({ prefix: 'build-' })) {
      if (refusal || reportsBefore.has(b.name) || !b.name.endsWith('.json')) continue;
      const report = JSON.parse((await blobs.getContainerClient('reports').getBlobClient(b.name).downloadToBuffer()).toString('utf8')) as {
        problems?: { code: string; message: string; serial?: string }[];
      };
      refusal = report.problems?.find((p) => p.serial === privileged.serial);
    }
    if (refusal && ours.filter((d) => wanted.has(d.serialNumber) && d.status === 'assigned').length === wanted.size) break;
    await sleep(1000);
  }
  if (ours.filter((d) => wanted.has(d.serialNumber)).length < wanted.size)
    throw new Error(
      `Only ${ours.length} of ${wanted.size} tokens reached the Graph stand-in in time; look at the \`npm start\` console and the reports container.`,
    );
  if (ours.some((d) => d.serialNumber === privileged.serial))
    throw new Error(`The Global Administrator's token ${privileged.serial} reached Entra: the privileged-user guard failed.`);
  if (!refusal) throw new Error(`No build report explains why ${privileged.serial} was not assigned.`);

  console.log('\nHardware OATH tokens in the Graph stand-in (GET /_admin/devices):');
  for (const d of ours.sort((a, b) => a.serialNumber.localeCompare(b.serialNumber)))
    console.log(`  ${d.serialNumber}  ${d.status.padEnd(9)}  ${d.assignedTo?.userPrincipalName ?? '-'}`);
  console.log(`  ${privileged.serial}  not created: ${refusal.code}`);
  console.log(`    ${refusal.message}`);

  const first = members[0]!;
  const now = Math.floor(Date.now() / 1000);
  const res = await fetch(`${api}/api/tokens/${first.serial}/verify`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ code: codeOf(first, now) }),
  });
  const answer = (await res.json()) as { entraActivation?: string };
  console.log(`\nPOST /api/tokens/${first.serial}/verify with the code the token shows now -> ${res.status}`);
  console.log(JSON.stringify(answer, null, 2));
  if (answer.entraActivation !== 'activated')
    throw new Error(`verify did not activate ${first.serial} in Entra (entraActivation: ${String(answer.entraActivation)}).`);
  const status = (await admin<{ devices: StandInDevice[] }>('GET', 'devices')).devices.find((d) => d.serialNumber === first.serial)?.status;
  console.log(`In the stand-in, ${first.serial} is now ${status}.`);
  const signIn = await admin<{ accepted: boolean }>('POST', 'sign-in', { user: first.upn, code: codeOf(first, now + 30) });
  console.log(`${first.upn} signs in with the token's next code -> ${signIn.accepted ? 'accepted' : 'refused'}.`);
  console.log(
    `\nThe other tokens stay \`assigned\` until the helpdesk verifies a code from each (or their users activate them in My Security Info: the reconciler mirrors it). GET ${api}/api/tokens?state=assigned lists them.`,
  );
}

main().catch((err: unknown) => {
  console.error(`demo: ${(err as Error).message}`);
  process.exitCode = 1;
});
