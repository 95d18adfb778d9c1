/**
 * Programmable tokens through the local stack (Azurite, the Key Vault stand-in, the Functions host running
 * dist/): the package's QR code decodes to its URI, the URI's secret gives codes the verify endpoint accepts and
 * the import CSV carries, requests are all or nothing and bounded, reprogramming disables the old version, and
 * no minted secret reaches a log, a report or the inventory.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { TableClient } from '@azure/data-tables';
import { BlobServiceClient } from '@azure/storage-blob';
import { parse as parseOtpauth } from '@otplib/uri';
import { parse as parseCsv } from 'csv-parse/sync';
import { createLocalSecretClient } from '../../dev/keyvault/client.js';
import { decodeBase32 } from '../../shared/core/encoding.js';
import { totpCode } from '../../shared/core/totp.js';
import { secretNameForSerial } from '../../shared/pipeline/secret-names.js';
import { decodeQrSvg } from '../helpers/qr.js';
import { leakHits, piecesOf, secretForms } from '../helpers/secret-scan.js';
import { startTestStack, suiteScope, type TestStack } from '../helpers/stack.js';

interface Package {
  serial: string;
  otpauthUri: string;
  qrSvg: string;
  secretBase32: string;
  secretHex: string;
}

const now = () => Math.floor(Date.now() / 1000);

async function text(stream: NodeJS.ReadableStream | undefined): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream!) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

describe('programmable tokens (local stack)', () => {
  let stack: TestStack;
  let blobs: BlobServiceClient;
  /** Answers that are not packages: errors, token views. A package answer holds secrets by design. */
  const otherAnswers: string[] = [];
  const minted: Package[] = [];

  const call = async (method: string, path: string, body?: string, headers: Record<string, string> = {}) => {
    const res = await fetch(`${stack.functionsUrl}/api/${path}`, {
      method,
      headers: { 'content-type': 'application/json', ...headers },
      body,
    });
    return { status: res.status, cacheControl: res.headers.get('cache-control'), raw: await res.text() };
  };
  const api = async (method: string, path: string, body?: unknown) => {
    const res = await call(method, path, body === undefined ? undefined : JSON.stringify(body));
    const parsed = res.raw ? (JSON.parse(res.raw) as Record<string, unknown>) : {};
    if (Array.isArray(parsed.tokens) && (parsed.tokens as Package[]).every((t) => typeof t.secretBase32 === 'string'))
      minted.push(...(parsed.tokens as Package[]));
    else otherAnswers.push(res.raw);
    return { ...res, body: parsed };
  };
  const codeFor = (pkg: Package, at: number) => {
    const uri = parseOtpauth(pkg.otpauthUri);
    return totpCode(
      {
        secret: decodeBase32(uri.params.secret)!,
        algorithm: uri.params.algorithm === 'sha256' ? 'SHA256' : 'SHA1',
        digits: uri.params.digits ?? 6,
        period: uri.params.period ?? 30,
      },
      at,
    );
  };

  const scope = suiteScope();

  before(async () => {
    stack = await startTestStack(scope, {
      settings: {
        KEY_VAULT_RETRY_BASE_MS: '20',
        RECONCILE_SCHEDULE: '0 0 0 1 1 *',
        PROGRAM_MAX_TOKENS: '5',
        PROGRAM_MAX_BODY_BYTES: '2048',
        OTPAUTH_ISSUER: 'Contoso IT',
      },
    });
    blobs = BlobServiceClient.fromConnectionString(stack.connectionString);
  });

  it('answers the package once: QR codes decode to the URIs, whose secrets verify and are the vault secrets', async () => {
    const res = await api('POST', 'tokens/program', {
      tokens: [
        { serial: 'E2P1', manufacturer: 'Token2', model: 'C301' },
        { serial: 'E2P2', manufacturer: 'Token2', model: 'C301' },
        { serial: 'E2P3' },
      ],
    });
    assert.equal(res.status, 201, res.raw.slice(0, 300));
    assert.equal(res.cacheControl, 'no-store');
    const pkgs = res.body.tokens as Package[];
    assert.deepEqual(
      pkgs.map((p) => p.serial),
      ['E2P1', 'E2P2', 'E2P3'],
    );
    assert.match(res.body.batch as string, /^programmed@\d{8}T\d{6}Z-[0-9a-f]{12}$/);

    const vault = createLocalSecretClient(stack.keyVaultUrl);
    for (const pkg of pkgs) {
      assert.equal(decodeQrSvg(pkg.qrSvg), pkg.otpauthUri, `${pkg.serial}: the QR code holds the URI`);
      const uri = parseOtpauth(pkg.otpauthUri);
      assert.equal(uri.label, `Contoso IT:${pkg.serial}`);
      assert.deepEqual([uri.params.issuer, uri.params.algorithm, uri.params.digits, uri.params.period], ['Contoso IT', 'sha1', 6, 30]);
      assert.equal(uri.params.secret, pkg.secretBase32);
      assert.equal(decodeBase32(uri.params.secret)!.length, 20);
      const stored = await vault.getSecret(secretNameForSerial(pkg.serial));
      assert.equal(stored.value, pkg.secretBase32);
      assert.equal(stored.properties.tags?.batch, res.body.batch);
    }
    const view = await api('GET', 'tokens/E2P1');
    assert.deepEqual([view.body.state, view.body.batch, view.body.manufacturer], ['stored', res.body.batch, 'Token2']);

    const verified = await api('POST', 'tokens/E2P1/verify', { code: codeFor(pkgs[0]!, now()) });
    assert.deepEqual([verified.status, verified.body.valid], [200, true]);
  });

  it('an assignment exports the programmed secret in the import CSV', async () => {
    const list = 'upn,serial number\nana@contoso.com,E2P2\n';
    await blobs.getContainerClient('assignments').getBlockBlobClient('programmed.csv').upload(list, Buffer.byteLength(list));
    await stack.idle();
    await api('POST', 'imports', {});
    const rows: Record<string, string>[] = [];
    for await (const b of blobs.getContainerClient('imports').listBlobsFlat()) {
      rows.push(
        ...parseCsv<Record<string, string>>(
          await text((await blobs.getContainerClient('imports').getBlobClient(b.name).download()).readableStreamBody),
          { columns: true },
        ),
      );
    }
    const pkg = minted.find((p) => p.serial === 'E2P2')!;
    assert.deepEqual(
      rows.map((r) => [r.upn, r['serial number'], r['secret key'], r['time interval'], r.manufacturer, r.model]),
      [['ana@contoso.com', 'E2P2', pkg.secretBase32, '30', 'Token2', 'C301']],
    );
    assert.equal((await api('GET', 'tokens/E2P2')).body.state, 'exported');
  });

  it('a serial that exists refuses the whole request: the new serial is neither in the vault nor in the inventory', async () => {
    const res = await api('POST', 'tokens/program', { tokens: [{ serial: 'E2P4' }, { serial: 'E2P1' }] });
    assert.equal(res.status, 409);
    const error = res.body.error as { code: string; serials: string[]; message: string };
    assert.deepEqual([error.code, error.serials], ['TOKEN_ALREADY_EXISTS', ['E2P1']]);
    assert.equal((await api('GET', 'tokens/E2P4')).status, 404);
    await assert.rejects(
      createLocalSecretClient(stack.keyVaultUrl).getSecret(secretNameForSerial('E2P4')),
      (e: unknown) => (e as { statusCode?: number }).statusCode === 404,
    );
  });

  it('requests over the token or byte limit are refused with 413, malformed ones with 400', async () => {
    const six = await api('POST', 'tokens/program', { tokens: Array.from({ length: 6 }, (_, i) => ({ serial: `E2BIG${i}` })) });
    assert.deepEqual([six.status, (six.body.error as { code: string }).code], [413, 'REQUEST_TOO_LARGE']);
    const padded = await call('POST', 'tokens/program', JSON.stringify({ tokens: [{ serial: 'E2PAD' }] }) + ' '.repeat(3000));
    otherAnswers.push(padded.raw);
    assert.equal(padded.status, 413);
    assert.equal((JSON.parse(padded.raw) as { error: { code: string } }).error.code, 'REQUEST_TOO_LARGE');
    const broken = await call('POST', 'tokens/program', '{"tokens": [');
    otherAnswers.push(broken.raw);
    assert.deepEqual([broken.status, (JSON.parse(broken.raw) as { error: { code: string } }).error.code], [400, 'REQUEST_INVALID']);
    assert.equal((await api('GET', 'tokens/E2BIG0')).status, 404);
  });

  it('reprogramming a stored token disables the old version; an exported token is refused', async () => {
    const vault = createLocalSecretClient(stack.keyVaultUrl);
    const old = minted.find((p) => p.serial === 'E2P3')!;
    const oldVersion = (await api('GET', 'tokens/E2P3')).body.secretVersion as string;
    const res = await api('POST', 'tokens/E2P3/reprogram');
    assert.equal(res.status, 200, res.raw.slice(0, 300));
    const [fresh] = res.body.tokens as Package[];
    assert.notEqual(fresh!.secretBase32, old.secretBase32);
    assert.equal(decodeQrSvg(fresh!.qrSvg), fresh!.otpauthUri);
    await assert.rejects(
      vault.getSecret(secretNameForSerial('E2P3'), { version: oldVersion }),
      (e: unknown) => (e as { statusCode?: number }).statusCode === 403,
    );
    assert.equal((await vault.getSecret(secretNameForSerial('E2P3'))).value, fresh!.secretBase32);
    const view = await api('GET', 'tokens/E2P3');
    assert.notEqual(view.body.secretVersion, oldVersion);
    assert.equal((view.body.history as { event: string }[]).at(-1)!.event, 'reprogrammed');
    const verified = await api('POST', 'tokens/E2P3/verify', { code: codeFor(fresh!, now()) });
    assert.deepEqual([verified.status, verified.body.valid], [200, true]);

    const exported = await api('POST', 'tokens/E2P2/reprogram');
    assert.deepEqual([exported.status, (exported.body.error as { code: string }).code], [409, 'TOKEN_STATE_INVALID']);
    assert.equal((await api('POST', 'tokens/E2NONE/reprogram')).status, 404);
  });

  it('no minted secret appears in the logs, the reports, the inventory or any other answer', async () => {
    await stack.idle();
    assert.ok(minted.length >= 4);
    assert.match(stack.output(), /Tokens programmed.*Token reprogrammed/s, "the scan covers the functions' own log lines");
    const pieces = piecesOf(minted.flatMap((p) => secretForms(new Uint8Array(Buffer.from(p.secretHex, 'hex')))));
    const surfaces: [string, string][] = [
      ['stack output', stack.output()],
      ['answers', otherAnswers.join('\n')],
    ];
    const reports = blobs.getContainerClient('reports');
    let reportCount = 0;
    for await (const b of reports.listBlobsFlat()) {
      reportCount++;
      surfaces.push([`reports/${b.name}`, await text((await reports.getBlobClient(b.name).download()).readableStreamBody)]);
    }
    assert.ok(reportCount >= 4, 'programming and build reports were written');
    const table = TableClient.fromConnectionString(stack.connectionString, 'tokens', { allowInsecureConnection: true });
    const rows: unknown[] = [];
    for await (const e of table.listEntities()) rows.push(e);
    surfaces.push(['inventory', JSON.stringify(rows)]);
    for (const [where, haystack] of surfaces) assert.deepEqual(leakHits(pieces, haystack), [], where);
  });
});
