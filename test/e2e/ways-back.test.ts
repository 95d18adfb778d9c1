/**
 * Every way back from a mistake, through the local stack (Azurite, the Key Vault stand-in, the Functions host
 * running dist/): a wrong UPN corrected after export (the file withdrawn, a new one built), a lost token retired
 * out of its waiting file, an imported token refused until it was removed in Entra and marked so, a file withdrawn
 * outright, assignments listed by serial, UPN and state. Each answer says what to do next; no secret reaches an
 * answer (other than the programming package) or the log.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { before, describe, it } from 'node:test';
import { BlobServiceClient } from '@azure/storage-blob';
import { parse as parseCsv } from 'csv-parse/sync';
import { decodeBase32 } from '../../shared/core/encoding.js';
import { leakHits, piecesOf, secretForms } from '../helpers/secret-scan.js';
import { startTestStack, suiteScope, type TestStack } from '../helpers/stack.js';

type Body = Record<string, unknown>;
interface HistoryEvent {
  event: string;
  detail?: string;
}

async function text(stream: NodeJS.ReadableStream | undefined): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream!) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

describe('ways back (local stack)', () => {
  let stack: TestStack;
  let blobs: BlobServiceClient;
  const answers: string[] = [];
  const secrets: Uint8Array[] = [];
  const scope = suiteScope();

  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${stack.functionsUrl}/api/${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const raw = await res.text();
    answers.push(raw);
    return { status: res.status, body: (raw ? JSON.parse(raw) : {}) as Body };
  };
  const errorOf = (body: Body) => body.error as { code: string; message: string };
  const importFiles = async () => {
    const out: string[] = [];
    for await (const b of blobs.getContainerClient('imports').listBlobsFlat()) out.push(b.name);
    return out.sort();
  };
  const csvRows = async (file: string) => {
    const csv = await text((await blobs.getContainerClient('imports').getBlobClient(file).download()).readableStreamBody);
    return parseCsv<Record<string, string>>(csv, { columns: true })
      .map((r) => `${r['serial number']}>${r.upn}`)
      .sort();
  };
  const token = async (serial: string) =>
    (await api('GET', `tokens/${serial}`)).body as Body & {
      state: string;
      upn: string | null;
      exportFile: string | null;
      history: HistoryEvent[];
    };

  before(async () => {
    stack = await startTestStack(scope, { settings: { RECONCILE_SCHEDULE: '0 0 0 1 1 *' } });
    blobs = BlobServiceClient.fromConnectionString(stack.connectionString);
    const programmed = await fetch(`${stack.functionsUrl}/api/tokens/program`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ tokens: ['WB1', 'WB2', 'WB3', 'WB4'].map((serial) => ({ serial, manufacturer: 'Token2', model: 'C302' })) }),
    });
    assert.equal(programmed.status, 201);
    for (const t of ((await programmed.json()) as { tokens: { secretBase32: string }[] }).tokens)
      secrets.push(decodeBase32(t.secretBase32)!);
  });

  it('corrects a wrong UPN after export: the file is withdrawn and a new one lists every token again, the right UPN included', async () => {
    const list = 'upn,serial number\nhelga@contoso.com,WB1\nben@contso.com,WB2\nzoe@contoso.com,WB3\n';
    await blobs.getContainerClient('assignments').getBlockBlobClient('team.csv').upload(list, Buffer.byteLength(list));
    await stack.idle();
    await stack.buildsSettled();
    const [first, ...others] = await importFiles();
    assert.equal(others.length, 0);
    assert.deepEqual(await csvRows(first!), ['WB1>helga@contoso.com', 'WB2>ben@contso.com', 'WB3>zoe@contoso.com']);

    // Why WB4 was not exported shows before any upload: it has no assignment.
    const exported = await api('GET', 'assignments?state=exported');
    assert.deepEqual(
      (exported.body.items as Body[]).map((a) => [a.serial, a.exportFile]),
      [
        ['WB1', first],
        ['WB2', first],
        ['WB3', first],
      ],
    );
    assert.deepEqual(((await api('GET', 'assignments?serial=WB4')).body.items as Body[]).length, 0);

    const fixed = await api('PUT', 'assignments/WB2', { upn: 'ben@contoso.com' });
    assert.equal(fixed.status, 200, JSON.stringify(fixed.body));
    assert.deepEqual(
      [fixed.body.status, fixed.body.previousUpn, fixed.body.upn, fixed.body.withdrawnFile],
      ['changed', 'ben@contso.com', 'ben@contoso.com', first],
    );
    const build = fixed.body.build as { files: string[]; exported: number };
    assert.equal(build.exported, 3);
    assert.match(fixed.body.next as string, /withdrawn.*do not upload/);
    const files = await importFiles();
    assert.deepEqual(files, build.files, 'the withdrawn file is gone; only the new one is there');
    assert.deepEqual(await csvRows(files[0]!), ['WB1>helga@contoso.com', 'WB2>ben@contoso.com', 'WB3>zoe@contoso.com']);
    assert.equal(fixed.body.exportFile, files[0]);

    const events = (await token('WB2')).history.map((h) => h.event);
    assert.deepEqual(events.slice(-5), ['exported', 'export-withdrawn', 'assignment-changed', 'exporting', 'exported']);
    const byUpn = await api('GET', 'assignments?upn=BEN@contoso.com');
    assert.deepEqual(
      (byUpn.body.items as Body[]).map((a) => [a.serial, a.tokenState, a.exportFile]),
      [['WB2', 'exported', files[0]]],
    );
  });

  it('reports: the build names its file and rows, lists unassigned serials, leaves no empty cell; a conflicting row counts once', async () => {
    const [file] = await importFiles();
    const names: string[] = [];
    for await (const b of blobs.getContainerClient('reports').listBlobsFlat()) names.push(b.name);
    const read = async (name: string) =>
      text((await blobs.getContainerClient('reports').getBlobClient(name).download()).readableStreamBody);
    const builds = await Promise.all(
      names
        .filter((n) => /^build-.*\.json$/.test(n))
        .map(async (n) => JSON.parse(await read(n)) as { summary: string; details: Record<string, string>; items: { file: string }[] }),
    );
    const latest = builds.find((b) => b.items.some((i) => i.file === file))!;
    assert.match(latest.summary, new RegExp(`${file} \\(3 rows\\).*POST /api/imports/${file}/uploaded`));
    assert.deepEqual(latest.details, { unassigned: 'WB4' });
    const html = await read(names.find((n) => n.startsWith('build-') && n.endsWith('.html'))!);
    assert.doesNotMatch(html, /<td><\/td>/, 'no empty cell');
    assert.match(stack.output(), new RegExp(`Import file ready.*"file":"${file}","rows":3`));

    const conflict = 'upn,serial number\nolga@contoso.com,WB1\n';
    await blobs.getContainerClient('assignments').getBlockBlobClient('conflict.csv').upload(conflict, Buffer.byteLength(conflict));
    await stack.idle();
    await stack.buildsSettled();
    const reports: string[] = [];
    for await (const b of blobs.getContainerClient('reports').listBlobsFlat({ prefix: 'assignments/conflict.csv' })) reports.push(b.name);
    const report = JSON.parse(await read(reports.find((n) => n.endsWith('.json'))!)) as {
      counts: Record<string, number>;
      problems: { code: string; message: string }[];
    };
    assert.equal(report.counts.rows, 1);
    assert.match(report.problems.find((p) => p.code === 'ASSIGNMENT_TABLE_CONFLICT')!.message, /PUT \/api\/assignments\/WB1/);
  });

  it('retires a lost token out of its waiting file: the file is withdrawn and rebuilt without it', async () => {
    const [waiting] = await importFiles();
    const retired = await api('POST', 'tokens/WB3/retire', { reason: 'lost' });
    assert.equal(retired.status, 200, JSON.stringify(retired.body));
    assert.deepEqual(
      [retired.body.state, retired.body.previousState, retired.body.withdrawnFile, retired.body.secretDisabled],
      ['retired', 'exported', waiting, true],
    );
    assert.match(retired.body.next as string, /withdrawn.*other 2 token\(s\) were exported again/);
    const files = await importFiles();
    assert.equal(files.length, 1);
    assert.notEqual(files[0], waiting);
    assert.deepEqual(await csvRows(files[0]!), ['WB1>helga@contoso.com', 'WB2>ben@contoso.com']);
    const wb3 = await token('WB3');
    assert.deepEqual([wb3.state, wb3.exportFile, wb3.history.at(-1)!.event], ['retired', null, 'retired']);
  });

  it('refuses to change an imported token until it was removed in Entra and marked so; then it can go to someone else', async () => {
    const [file] = await importFiles();
    assert.equal((await api('POST', `imports/${file}/uploaded`)).status, 200);
    const refused = await api('PUT', 'assignments/WB1', { upn: 'olga@contoso.com' });
    assert.deepEqual([refused.status, errorOf(refused.body).code], [409, 'TOKEN_STATE_INVALID']);
    assert.match(errorOf(refused.body).message, /Remove it in Entra first.*POST \/api\/tokens\/WB1\/removed-from-entra/);
    const withdrawImported = await api('POST', `imports/${file}/withdraw`);
    assert.deepEqual([withdrawImported.status, errorOf(withdrawImported.body).code], [409, 'TOKEN_STATE_INVALID']);
    assert.match(errorOf(withdrawImported.body).message, /confirmed uploaded/);

    const marked = await api('POST', 'tokens/WB1/removed-from-entra');
    assert.deepEqual([marked.status, marked.body.state, marked.body.previousUpn], [200, 'stored', 'helga@contoso.com']);
    assert.match(marked.body.next as string, /PUT \/api\/assignments\/WB1/);
    assert.deepEqual([(await api('POST', 'tokens/WB1/removed-from-entra')).status], [409], 'a stored token is not marked twice');

    const moved = await api('PUT', 'assignments/WB1', { upn: 'olga@contoso.com' });
    assert.equal(moved.status, 200, JSON.stringify(moved.body));
    assert.deepEqual([moved.body.status, moved.body.withdrawnFile], ['changed', null]);
    const newFile = moved.body.exportFile as string;
    assert.match(moved.body.next as string, new RegExp(`POST /api/imports/${newFile}/uploaded`));
    assert.deepEqual(await csvRows(newFile), ['WB1>olga@contoso.com']);
    const events = (await token('WB1')).history.map((h) => h.event);
    assert.deepEqual(events.slice(-5), ['imported', 'removed-from-entra', 'assignment-changed', 'exporting', 'exported']);
  });

  it('withdraws a file outright; its tokens are stored again and their assignment can be deleted', async () => {
    const [file] = await importFiles();
    const withdrawn = await api('POST', `imports/${file}/withdraw`);
    assert.equal(withdrawn.status, 200, JSON.stringify(withdrawn.body));
    assert.deepEqual([withdrawn.body.deleted, withdrawn.body.stored], [true, ['WB1']]);
    assert.deepEqual(await importFiles(), []);
    assert.equal((await token('WB1')).state, 'stored');
    assert.equal((await api('POST', `imports/${file}/withdraw`)).status, 404, 'once withdrawn, neither the file nor a token names it');
    assert.equal((await api('POST', 'imports/entra-oath-none.csv/withdraw')).status, 404);

    const deleted = await api('DELETE', 'assignments/WB1');
    assert.deepEqual(
      [deleted.status, deleted.body.status, deleted.body.build],
      [200, 'deleted', { id: (deleted.body.build as Body).id, files: [], exported: 0, notExported: 0, report: null }],
      'a build that exported nothing writes no report',
    );
    assert.deepEqual(await importFiles(), [], 'the build after the deletion exports nothing');
    assert.equal((await token('WB1')).history.at(-1)!.event, 'assignment-deleted');
  });

  it('retiring an imported token reminds the admin to remove it in Entra', async () => {
    const { files } = (await api('PUT', 'assignments/WB4', { upn: 'ida@contoso.com' })).body.build as { files: string[] };
    assert.equal((await api('POST', `imports/${files[0]}/uploaded`)).status, 200);
    const retired = await api('POST', 'tokens/WB4/retire', { reason: 'left the company' });
    assert.deepEqual([retired.status, retired.body.previousState, retired.body.withdrawnFile], [200, 'imported', null]);
    assert.match(retired.body.next as string, /imported into Entra ID: delete it there too/);
    assert.equal(retired.body.secretDisabled, true);
  });

  it('lists assignments by state and page, and refuses a bad UPN or query with what is wrong', async () => {
    const page1 = await api('GET', 'assignments?pageSize=2');
    assert.deepEqual(
      (page1.body.items as Body[]).map((a) => a.serial),
      ['WB2', 'WB3'],
    );
    const page2 = await api('GET', `assignments?pageSize=2&continuationToken=${page1.body.continuationToken as string}`);
    assert.deepEqual([(page2.body.items as Body[]).map((a) => a.serial), page2.body.continuationToken], [['WB4'], null]);
    assert.deepEqual(
      ((await api('GET', 'assignments?state=retired')).body.items as Body[]).map((a) => a.serial),
      ['WB3', 'WB4'],
    );
    assert.equal((await api('GET', 'assignments?state=lost')).status, 400);

    const bad = await api('PUT', 'assignments/WB2', { upn: 'ben contoso.com' });
    assert.deepEqual([bad.status, errorOf(bad.body).code], [400, 'ASSIGNMENT_UPN_INVALID']);
    const guest = await api('PUT', 'assignments/WB2', { upn: 'ben_fabrikam.com#EXT#@contoso.onmicrosoft.com' });
    assert.deepEqual([guest.status, errorOf(guest.body).code], [400, 'ASSIGNMENT_GUEST_UPN']);
    assert.equal((await api('PUT', 'assignments/WB2', { user: 'ben@contoso.com' })).status, 400);
    const pending = await api('PUT', 'assignments/NOTYET1', { upn: 'max@contoso.com' });
    assert.deepEqual([pending.status, pending.body.status], [200, 'created']);
    assert.match(pending.body.next as string, /waits for its seed file/);
    assert.deepEqual(
      ((await api('GET', 'assignments?state=pending')).body.items as Body[]).map((a) => a.serial),
      ['NOTYET1'],
    );
  });

  it('npm run drop puts a file from where the user stands into the stack; npm run list shows what became of it', async () => {
    const here = mkdtempSync(join(tmpdir(), 'entra-oath-drop-'));
    writeFileSync(join(here, 'late.csv'), 'upn,serial number\nkai@contoso.com,NOTYET2\n');
    const script = fileURLToPath(new URL('../../scripts/drop.ts', import.meta.url));
    const env = { ...process.env, INIT_CWD: here, AZURE_STORAGE_CONNECTION_STRING: stack.connectionString };
    // Asynchronously: a blocked event loop would let the stack's keep-alive sockets time out under fetch.
    const run = (...args: string[]) =>
      new Promise<{ status: number; stdout: string; stderr: string }>((done) => {
        execFile(
          process.execPath,
          ['--import', 'tsx', script, ...args],
          { encoding: 'utf8', env, cwd: fileURLToPath(new URL('../..', import.meta.url)) },
          (err, stdout, stderr) => done({ status: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
        );
      });
    const dropped = await run('drop', 'late.csv', '--assignments');
    assert.equal(dropped.status, 0, dropped.stderr);
    assert.match(dropped.stdout, /late\.csv -> assignments\/late\.csv/);
    const missing = await run('drop', 'gone.csv');
    assert.equal(missing.status, 1);
    assert.ok(missing.stderr.includes(join(here, 'gone.csv')), missing.stderr);
    await stack.idle();
    const listed = await run('list');
    assert.equal(listed.status, 0, listed.stderr);
    assert.match(listed.stdout, /reports\/ \(\d+\)[\s\S]*assignments\/late\.csv-[^ ]+\.json/);
    assert.deepEqual(
      ((await api('GET', 'assignments?serial=NOTYET2')).body.items as Body[]).map((a) => [a.upn, a.tokenState]),
      [['kai@contoso.com', 'pending']],
    );
  });

  it('no secret reaches an answer or the log', () => {
    const pieces = piecesOf(secrets.flatMap(secretForms));
    assert.deepEqual(leakHits(pieces, answers.join('\n')), []);
    assert.deepEqual(leakHits(pieces, stack.output()), []);
  });
});
