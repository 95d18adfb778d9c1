/**
 * The pipeline end to end through the local stack: Azurite, the Key Vault
 * stand-in and the local Functions host running the real app (dist/), driven
 * with the real Azure SDK clients and HTTP.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { BlobServiceClient } from '@azure/storage-blob';
import { TableClient } from '@azure/data-tables';
import { parse } from 'csv-parse/sync';
import { createLocalSecretClient } from '../../dev/keyvault/client.js';
import { decodeBase32 } from '../../shared/core/encoding.js';
import { totpCode, type OtpParameters } from '../../shared/core/totp.js';
import { secretNameForSerial } from '../../shared/pipeline/secret-names.js';
import { startTestStack, suiteScope, type TestStack } from '../helpers/stack.js';
import { codeProvenWrong } from '../helpers/wrong-code.js';

const HEADER = 'upn,serial number,secret key,time interval,manufacturer,model\n';
const SECRETS: Record<string, string> = {
  E2E1001: 'CZU6XXGHCCGCOL6YO3WW472WEWB34FVJ',
  E2E1002: 'EZDOCQANJA5PGME5QRSZCR7GLUFJG4JG',
  E2E1003: 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP',
  E2E2001: 'MZXW6YTBOI2DKMZSGQ3TKNJYHA4TAMJS',
  // An HOTP token from privacyIDEA's OATH CSV (hex there).
  E2EH001: 'KRUGKIDROVUWG2ZAMJZG653OEBTG66BA',
};
const params = (serial: string): OtpParameters => ({ secret: decodeBase32(SECRETS[serial]!)!, algorithm: 'SHA1', digits: 6, period: 30 });
const code = (serial: string, at: number) => totpCode(params(serial), at);
const now = () => Math.floor(Date.now() / 1000);

async function text(stream: NodeJS.ReadableStream | undefined): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream!) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

describe('pipeline end to end (local stack)', () => {
  let stack: TestStack;
  let blobs: BlobServiceClient;
  const responses: string[] = [];

  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${stack.functionsUrl}/api/${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const raw = await res.text();
    responses.push(raw);
    return { status: res.status, body: raw ? (JSON.parse(raw) as Record<string, unknown>) : {} };
  };
  const names = async (container: string) => {
    const out: string[] = [];
    for await (const b of blobs.getContainerClient(container).listBlobsFlat()) out.push(b.name);
    return out.sort();
  };
  const read = async (container: string, name: string) =>
    text((await blobs.getContainerClient(container).getBlobClient(name).download()).readableStreamBody);

  const scope = suiteScope();

  before(async () => {
    stack = await startTestStack(scope, {
      settings: {
        KEY_VAULT_RETRY_BASE_MS: '20',
        RECONCILE_SCHEDULE: '0 0 0 1 1 *',
        VERIFY_LOCKOUT_LIMIT: '3',
        VERIFY_LOCKOUT_MINUTES: '15',
      },
    });
    blobs = BlobServiceClient.fromConnectionString(stack.connectionString);
  });

  it('ingests a seed file into the vault and the inventory, builds the import CSV, and deletes the seed file', async () => {
    await blobs
      .getContainerClient('assignments')
      .getBlockBlobClient('team-a.csv')
      .upload('upn,serial number\nhelga@contoso.com,E2E1001\nben@contoso.com,E2E1002\n', 58);
    const seed = `${HEADER},E2E1001,${SECRETS.E2E1001},30,Token2,C202\n,E2E1002,${SECRETS.E2E1002},30,Token2,C202\n,E2E1003,${SECRETS.E2E1003},30,Token2,C202\n`;
    await stack.idle();
    await blobs.getContainerClient('seeds').getBlockBlobClient('token2-batch.csv').upload(seed, Buffer.byteLength(seed));
    await stack.buildsSettled();

    assert.deepEqual(await names('seeds'), []);
    const vault = createLocalSecretClient(stack.keyVaultUrl);
    for (const serial of ['E2E1001', 'E2E1002', 'E2E1003']) {
      const secret = await vault.getSecret(secretNameForSerial(serial));
      assert.equal(secret.value, SECRETS[serial]);
      assert.equal(secret.properties.tags?.serial, serial);
      assert.ok(!Object.values(secret.properties.tags ?? {}).includes(SECRETS[serial]!));
    }
    const table = TableClient.fromConnectionString(stack.connectionString, 'tokens', { allowInsecureConnection: true });
    const states = new Map<string, string>();
    for await (const e of table.listEntities<{ serial: string; state: string }>()) states.set(e.serial, e.state);
    assert.equal(states.get('E2E1001'), 'exported');
    assert.equal(states.get('E2E1003'), 'stored');

    const imports = await names('imports');
    assert.equal(imports.length, 1);
    assert.match(imports[0]!, /^entra-oath-\d{8}T\d{6}Z-[0-9a-f]{12}\.csv$/);
    const rows = parse<Record<string, string>>(await read('imports', imports[0]!), { columns: true });
    assert.deepEqual(rows.map((r) => [r.upn, r['serial number'], r['secret key'], r['time interval']]).sort(), [
      ['ben@contoso.com', 'E2E1002', SECRETS.E2E1002, '30'],
      ['helga@contoso.com', 'E2E1001', SECRETS.E2E1001, '30'],
    ]);
    const reports = await names('reports');
    assert.ok(reports.some((n) => /^token2-batch\.csv-.+\.json$/.test(n)));
    assert.ok(reports.some((n) => /^build-[0-9a-f]{12}\.html$/.test(n)));
  });

  it('moves a file with rejected rows to quarantine after storing its good tokens', async () => {
    const seed = `${HEADER},E2E2001,${SECRETS.E2E2001},30,Token2,C202\n,E2E2002,MFRGGZDF,30,Token2,C202\n`;
    await blobs.getContainerClient('seeds').getBlockBlobClient('mixed.csv').upload(seed, Buffer.byteLength(seed));
    await stack.idle();
    assert.deepEqual(await names('seeds'), []);
    const quarantined = await names('quarantine');
    assert.ok(
      quarantined.some((n) => n.endsWith('/mixed.csv')),
      quarantined.join(','),
    );
    const reportName = (await names('reports')).find((n) => n.startsWith('mixed.csv-') && n.endsWith('.json'))!;
    const report = JSON.parse(await read('reports', reportName)) as {
      problems: { code: string; line: number; serial: string }[];
      counts: Record<string, number>;
    };
    assert.deepEqual(
      report.problems.map((p) => [p.code, p.line, p.serial]),
      [['SECRET_TOO_SHORT', 3, 'E2E2002']],
    );
    assert.equal(report.counts.stored, 1);
    assert.equal((await api('GET', 'tokens/E2E2001')).body.state, 'stored');
  });

  it('checks activation codes: valid, replayed, drifted with and without confirmation, wrong, locked, unlocked', async () => {
    const t = now();
    const valid = await api('POST', 'tokens/E2E1003/verify', { code: code('E2E1003', t) });
    assert.equal(valid.status, 200);
    assert.equal(valid.body.valid, true);
    assert.equal(valid.body.withinSignInWindow, true);
    assert.equal((await api('POST', 'tokens/E2E1003/verify', { code: code('E2E1003', t) })).status, 409);
    // Activated: a code an hour ahead is outside the only window left; the answer says nothing about it.
    const later = await api('POST', 'tokens/E2E1003/verify', { code: code('E2E1003', t + 3600) });
    assert.deepEqual([later.status, later.body.valid, later.body.confirmationRequired, later.body.driftSeconds], [200, false, false, null]);
    assert.equal((await api('GET', 'tokens/E2E1003')).body.failedAttempts, 2, 'the replay and the miss count');

    // Ten minutes ahead: outside the sign-in window, inside the activation window of a token never verified.
    const ahead = t + 600;
    const unconfirmed = await api('POST', 'tokens/E2E1002/verify', { code: code('E2E1002', ahead) });
    assert.deepEqual(
      [
        unconfirmed.status,
        unconfirmed.body.valid,
        unconfirmed.body.confirmationRequired,
        unconfirmed.body.withinActivationWindow,
        unconfirmed.body.driftSeconds,
      ],
      [200, false, true, true, null],
    );
    const confirmed = await api('POST', 'tokens/E2E1002/verify', { code: code('E2E1002', ahead), nextCode: code('E2E1002', ahead + 30) });
    assert.equal(confirmed.body.valid, true);
    assert.ok(Math.abs((confirmed.body.driftSeconds as number) - 600) <= 30);
    assert.equal((await api('GET', 'tokens/E2E1002')).body.lastVerifiedAt !== null, true);
    assert.equal((await api('GET', 'tokens/E2E1002')).body.failedAttempts, 0);

    // A code no step of the activation window shows: wrong for certain, never "confirmation required".
    const wrong = codeProvenWrong(params('E2E1001'), t);
    const attemptsLeft: unknown[] = [];
    let lockedUntil: unknown;
    for (let i = 0; i < 3; i++) {
      const answer = await api('POST', 'tokens/E2E1001/verify', { code: wrong });
      assert.equal(answer.body.valid, false);
      attemptsLeft.push(answer.body.attemptsLeft);
      lockedUntil = answer.body.lockedUntil;
    }
    assert.deepEqual(attemptsLeft, [2, 1, 0], 'each wrong code says how many attempts are left');
    // VERIFY_LOCKOUT_MINUTES is 15: the lock ends in the future, at most a quarter of an hour after the third failure.
    const lockMinutes = (Date.parse(lockedUntil as string) - Date.now()) / 60_000;
    assert.ok(lockMinutes > 0 && lockMinutes <= 15, String(lockedUntil));
    assert.equal((await api('GET', 'tokens/E2E1001')).body.lockedUntil, lockedUntil);
    const locked = await api('POST', 'tokens/E2E1001/verify', { code: code('E2E1001', now()) });
    assert.equal(locked.status, 423);
    assert.equal((locked.body.error as { code: string }).code, 'TOKEN_LOCKED');
    assert.equal(locked.body.lockedUntil, lockedUntil, 'a locked token says until when');
    assert.equal((await api('POST', 'tokens/E2E1001/unlock')).status, 200);
    assert.equal((await api('POST', 'tokens/E2E1001/verify', { code: code('E2E1001', now()) })).body.valid, true);

    assert.equal((await api('POST', 'tokens/NOPE/verify', { code: '123456' })).status, 404);
    const malformed = await api('POST', 'tokens/E2E1001/verify', { code: 'abc' });
    assert.equal(malformed.status, 400);
    assert.equal((malformed.body.error as { code: string }).code, 'REQUEST_INVALID');
  });

  it('confirms an upload: the CSV is deleted and its tokens become imported', async () => {
    const [file] = await names('imports');
    const res = await api('POST', `imports/${file}/uploaded`);
    assert.equal(res.status, 200);
    assert.deepEqual(res.body.imported, ['E2E1001', 'E2E1002']);
    assert.deepEqual(await names('imports'), []);
    assert.equal((await api('GET', 'tokens/E2E1001')).body.state, 'imported');
    assert.equal((await api('POST', `imports/${file}/uploaded`)).status, 200);
    assert.equal((await api('POST', 'imports/entra-oath-nothing.csv/uploaded')).status, 404);
  });

  it('builds on request, lists the inventory with paging, and reports health', async () => {
    await blobs.getContainerClient('assignments').getBlockBlobClient('late.csv').upload('upn,serial number\nzoe@contoso.com,E2E2001\n', 42);
    await stack.buildsSettled();
    const build = await api('POST', 'imports', {});
    assert.equal(build.status, 200);
    // The build the assignment's trigger requested already ran; a second build has nothing to do.
    assert.deepEqual(build.body.exported, []);
    assert.equal((await api('GET', 'tokens/E2E2001')).body.state, 'exported');
    assert.equal((await api('POST', 'imports', { reexport: 'E2E2001' })).status, 400);

    const page1 = await api('GET', 'tokens?pageSize=2');
    assert.equal((page1.body.items as unknown[]).length, 2);
    const page2 = await api('GET', `tokens?pageSize=2&continuationToken=${page1.body.continuationToken as string}`);
    assert.equal((page2.body.items as unknown[]).length, 2);
    const stored = await api('GET', 'tokens?state=stored');
    assert.deepEqual(
      (stored.body.items as { serial: string }[]).map((i) => i.serial),
      ['E2E1003'],
    );
    assert.equal((await api('GET', 'tokens?state=bogus')).status, 400);

    const retired = await api('POST', 'tokens/E2E1003/retire', { reason: 'lost' });
    assert.deepEqual(retired.body, {
      serial: 'E2E1003',
      state: 'retired',
      changed: true,
      previousState: 'stored',
      secretDisabled: true,
      withdrawnFile: null,
      next: 'Nothing else to do.',
    });
    // Through the real adapter and the vault stand-in: the retired token's version is disabled, the others are not.
    const batchOf = ((await api('GET', 'tokens/E2E1003')).body as { batch: string }).batch;
    const audit = await api('GET', `audit/secrets?batch=${encodeURIComponent(batchOf)}`);
    const located = audit.body.tokens as { serial: string; state: string; enabled: boolean | null; otherEnabledVersions: number }[];
    assert.deepEqual(
      located.find((t) => t.serial === 'E2E1003'),
      { ...located.find((t) => t.serial === 'E2E1003')!, state: 'retired', enabled: false, otherEnabledVersions: 0 },
    );
    assert.ok(
      located.filter((t) => t.serial !== 'E2E1003').every((t) => t.enabled === true),
      JSON.stringify(located),
    );
    assert.equal((await api('POST', 'tokens/E2E1003/verify', { code: code('E2E1003', now()) })).status, 410);
    assert.equal((await api('POST', 'tokens/NOPE/retire')).status, 404);
    const health = await api('GET', 'health');
    assert.equal(health.status, 200);
    assert.equal(health.body.status, 'ok');
  });

  it("keeps an HOTP token's 64-bit counter exact from privacyIDEA's OATH CSV to GET /api/tokens/{serial}", async () => {
    const hex = Buffer.from(decodeBase32(SECRETS.E2EH001!)!).toString('hex');
    const seed = `# privacyIDEA OATH CSV\nE2EH001, ${hex}, hotp, 6, 18446744073709551615\n`;
    await blobs.getContainerClient('seeds').getBlockBlobClient('pi-hotp.csv').upload(seed, Buffer.byteLength(seed));
    await stack.idle();
    assert.deepEqual(await names('seeds'), []);
    const token = (await api('GET', 'tokens/E2EH001')).body;
    assert.deepEqual([token.state, token.type, token.counter], ['stored', 'hotp', '18446744073709551615']);
    assert.equal((await api('GET', 'tokens/E2E2001')).body.counter, null);
  });

  it('never shows a secret in logs, reports or HTTP answers', async () => {
    await stack.buildsSettled();
    const haystacks = [stack.output(), ...responses];
    for (const name of await names('reports')) haystacks.push(await read('reports', name));
    for (const secret of Object.values(SECRETS)) {
      for (const hay of haystacks) {
        assert.ok(!hay.includes(secret) && !hay.includes(secret.toLowerCase()), 'secret found');
        assert.ok(!hay.includes(Buffer.from(decodeBase32(secret)!).toString('hex')), 'hex secret found');
      }
    }
  });
});
