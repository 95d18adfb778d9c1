/**
 * No secret leaks: the whole flow runs through the local stack with random
 * seeds (seed files with rejected rows, files with a row missing a cell or
 * holding one too many (test/helpers/leak-shapes.ts; one of them dropped as
 * an assignment list), a file rejected whole, assignments, the import build,
 * verify good / wrong / replayed / drifted / locked, a vault outage during
 * verify, unlock, retire, upload confirmation,
 * inventory reads, health). Then every log line, every HTTP answer (status,
 * headers, body), every blob in every container (names, metadata, content;
 * receipts in azure-webjobs-hosts included), every table row and every queue
 * message is scanned for each secret in base32 (upper, lower, grouped by 4),
 * hex (both cases) and base64 (standard, unpadded, URL-safe) form, and for
 * every 12-character piece of those: zero hits.
 *
 * Not scanned, by design: Key Vault, the import CSV (it is the delivery of
 * the secrets to Entra) and quarantined seed files (the original file, kept in
 * a private container so it can be fixed). Those serve as positive controls:
 * the scanner must find the secrets there.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { before, describe, it } from 'node:test';
import { TableServiceClient, TableClient } from '@azure/data-tables';
import { QueueServiceClient } from '@azure/storage-queue';
import { toCanonicalBase32 } from '../../shared/core/encoding.js';
import { totpCode, type OtpParameters } from '../../shared/core/totp.js';
import { leakShapes } from '../helpers/leak-shapes.js';
import { leakHits as hits, piecesOf, secretForms as forms } from '../helpers/secret-scan.js';
import { startTestStack, suiteScope, type TestStack } from '../helpers/stack.js';
import { codeProvenWrong } from '../helpers/wrong-code.js';
import {
  assignmentCsv,
  blobService,
  randomTokens,
  readBlob,
  SEED_HEADER,
  seedCsv,
  setVaultRealism,
  upload,
  type SeedToken,
} from './helpers.js';

describe('no secret in logs, errors, reports, HTTP answers or storage', () => {
  let stack: TestStack;
  const scope = suiteScope();

  const good = randomTokens('LEAK', 6);
  const tooShort = new Uint8Array(randomBytes(10));
  const badPeriodSecret = new Uint8Array(randomBytes(20));
  // Not base32 (digits 0, 1, 8, 9 in it), but secret material all the same.
  const malformed = toCanonicalBase32(new Uint8Array(randomBytes(20))).replace(/[A-D]/g, (c) => ({ A: '0', B: '1', C: '8', D: '9' })[c]!);
  const wholeFileRejected = randomTokens('LEAKX', 2);
  // Rows with a cell missing or too many, which once shifted secrets into serials and messages.
  const shapes = leakShapes('leaks');
  const secretTexts = [
    ...good.flatMap((t) => forms(t.bytes)),
    ...forms(tooShort),
    ...forms(badPeriodSecret),
    ...wholeFileRejected.flatMap((t) => forms(t.bytes)),
    malformed,
    malformed.toLowerCase(),
    ...shapes.flatMap((shape) => shape.secrets.flatMap((bytes) => forms(bytes))),
  ];
  const pieces = piecesOf(secretTexts);

  const http: string[] = [];
  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${stack.functionsUrl}/api/${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const raw = await res.text();
    http.push(`${method} ${path} -> ${res.status}\n${[...res.headers.entries()].map(([k, v]) => `${k}: ${v}`).join('\n')}\n\n${raw}`);
    return { status: res.status, body: raw ? (JSON.parse(raw) as Record<string, unknown>) : {} };
  };
  const params = (t: SeedToken): OtpParameters => ({ secret: t.bytes, algorithm: 'SHA1', digits: 6, period: 30 });
  const code = (t: SeedToken, at: number) => totpCode(params(t), at);
  const now = () => Math.floor(Date.now() / 1000);

  before(async () => {
    stack = await startTestStack(scope, {
      settings: { KEY_VAULT_RETRY_BASE_MS: '20', RECONCILE_SCHEDULE: '0 0 0 1 1 *', VERIFY_LOCKOUT_LIMIT: '3' },
    });
  });

  it('runs the whole flow and finds no secret anywhere it must not be', { timeout: 120_000 }, async () => {
    const [a, b, c, d, e, f] = good as [SeedToken, SeedToken, SeedToken, SeedToken, SeedToken, SeedToken];
    await upload(
      stack.connectionString,
      'assignments',
      'leak-team.csv',
      assignmentCsv([
        { upn: 'ana@contoso.com', serial: a.serial },
        { upn: 'bo@contoso.com', serial: b.serial },
        { upn: 'cy@contoso.com', serial: 'LEAK-NOT-THERE' },
      ]),
    );
    await stack.idle();
    const rejectedRows = [
      `,LEAKSHORT,${toCanonicalBase32(tooShort)},30,Token2,C202\n`,
      `,LEAKPERIOD,${toCanonicalBase32(badPeriodSecret)},45,Token2,C202\n`,
      `,LEAKBADCHARS,${malformed},30,Token2,C202\n`,
    ];
    await upload(stack.connectionString, 'seeds', 'leak-mixed.csv', seedCsv(good, rejectedRows));
    // A file rejected whole (its secret column misnamed), its rows full of secrets.
    await upload(
      stack.connectionString,
      'seeds',
      'leak-broken.csv',
      SEED_HEADER.replace('secret key', 'seed') + wholeFileRejected.map((t) => `,${t.serial},${t.base32},30,Token2,C202\n`).join(''),
    );
    for (const shape of shapes)
      await upload(stack.connectionString, shape.kind === 'seed' ? 'seeds' : 'assignments', shape.name, shape.content);
    await stack.buildsSettled();

    // Verify: valid, replayed, drift needing confirmation, confirmed, wrong until locked, locked, unlocked.
    const t0 = now();
    assert.equal((await api('POST', `tokens/${c.serial}/verify`, { code: code(c, t0) })).body.valid, true);
    assert.equal((await api('POST', `tokens/${c.serial}/verify`, { code: code(c, t0) })).status, 409);
    assert.equal((await api('POST', `tokens/${d.serial}/verify`, { code: code(d, t0 + 900) })).body.confirmationRequired, true);
    assert.equal(
      (await api('POST', `tokens/${d.serial}/verify`, { code: code(d, t0 + 900), nextCode: code(d, t0 + 930) })).body.valid,
      true,
    );
    const wrong = codeProvenWrong(params(e), t0);
    for (let i = 0; i < 3; i++) await api('POST', `tokens/${e.serial}/verify`, { code: wrong });
    assert.equal((await api('POST', `tokens/${e.serial}/verify`, { code: code(e, now()) })).status, 423);
    await api('POST', `tokens/${e.serial}/unlock`);
    await api('POST', `tokens/${e.serial}/verify`, { code: '12345' });
    await api('POST', `tokens/${e.serial}/verify`, { code: code(e, now()), extra: code(e, now()) });
    await api('POST', 'tokens/NOPE/verify', { code: '123456' });
    // A vault outage while checking: the error answer and its log lines are scanned too.
    await setVaultRealism(stack.keyVaultUrl, { errorRate: 1 });
    const outage = await api('POST', `tokens/${f.serial}/verify`, { code: code(f, now()) });
    assert.ok(outage.status >= 500, `expected an error answer, got ${outage.status}`);
    await api('GET', 'health');
    await setVaultRealism(stack.keyVaultUrl, { errorRate: 0 });
    await api('POST', `tokens/${f.serial}/retire`);

    // Import CSV: positive control, then confirmed uploaded (deleted).
    const imports: string[] = [];
    for await (const blob of blobService(stack.connectionString).getContainerClient('imports').listBlobsFlat()) imports.push(blob.name);
    assert.equal(imports.length, 1);
    const csv = (await readBlob(stack.connectionString, 'imports', imports[0]!)).toString('utf8');
    assert.ok(hits(pieces, csv).length > 0, 'control: the scan finds the secrets in the import CSV');
    await api('POST', 'imports', {});
    await api('POST', `imports/${imports[0]}/uploaded`);

    // Inventory and health.
    for (const t of good) await api('GET', `tokens/${t.serial}`);
    const page = await api('GET', 'tokens?pageSize=2');
    await api('GET', `tokens?pageSize=2&continuationToken=${encodeURIComponent(String(page.body.continuationToken))}`);
    await api('GET', 'tokens?state=stored');
    await api('GET', 'tokens?state=exported');
    await api('GET', 'health');
    await stack.idle();

    // Gather every haystack.
    const haystacks: { where: string; text: string }[] = [
      { where: 'stack output (logs)', text: stack.output() },
      ...http.map((text, i) => ({ where: `HTTP answer ${i}`, text })),
    ];
    const controls: string[] = [];
    const service = blobService(stack.connectionString);
    let blobCount = 0;
    for await (const container of service.listContainers()) {
      for await (const blob of service.getContainerClient(container.name).listBlobsFlat({ includeMetadata: true })) {
        const content = (await readBlob(stack.connectionString, container.name, blob.name)).toString('utf8');
        const isQuarantinedSeed = container.name === 'quarantine' && !blob.name.endsWith('/report.json');
        if (container.name === 'imports' || isQuarantinedSeed) {
          controls.push(content);
          continue;
        }
        blobCount++;
        haystacks.push({
          where: `blob ${container.name}/${blob.name}`,
          text: `${blob.name}\n${JSON.stringify(blob.metadata ?? {})}\n${content}`,
        });
      }
    }
    const quarantinedFiles = 2 + shapes.length;
    assert.equal(controls.length, quarantinedFiles, 'the quarantined seed files and the seed file dropped as an assignment list');
    for (const control of controls)
      assert.ok(hits(pieces, control).length > 0, 'control: the scan finds the secrets in a quarantined file');
    for await (const table of TableServiceClient.fromConnectionString(stack.connectionString, {
      allowInsecureConnection: true,
    }).listTables()) {
      const client = TableClient.fromConnectionString(stack.connectionString, table.name!, { allowInsecureConnection: true });
      for await (const entity of client.listEntities()) haystacks.push({ where: `table ${table.name}`, text: JSON.stringify(entity) });
    }
    const queues = QueueServiceClient.fromConnectionString(stack.connectionString);
    for await (const queue of queues.listQueues()) {
      const peeked = await queues.getQueueClient(queue.name).peekMessages({ numberOfMessages: 32 });
      for (const m of peeked.peekedMessageItems)
        haystacks.push({
          where: `queue ${queue.name}`,
          text: `${m.messageText}\n${Buffer.from(m.messageText, 'base64').toString('utf8')}`,
        });
    }

    const found = haystacks.flatMap((h) => hits(pieces, h.text).map((x) => `${h.where}: ${x}`));
    assert.deepEqual(found, []);
    const bytes = haystacks.reduce((n, h) => n + h.text.length, 0);
    console.log(
      `[reliability] secrets scan: ${secretTexts.length} forms of ${good.length + 5 + shapes.reduce((n, shape) => n + shape.secrets.length, 0)} random secrets (${pieces.size} distinct 12-character pieces) ` +
        `against ${haystacks.length} haystacks (${(bytes / 1024).toFixed(0)} KiB: logs, ${http.length} HTTP answers, ${blobCount} blobs, table rows, queue messages): 0 hits`,
    );
  });
});
