/**
 * Graph mode (IMPORT_MODE=graph) end to end through the local stack: the real app (dist/) on the local Functions
 * host, Azurite, the Key Vault stand-in and the Graph stand-in. A batch lands; exactly the right devices end up
 * assigned in the stand-in; verify activates one in Entra; a second build creates no second device.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { BlobServiceClient } from '@azure/storage-blob';
import { decodeBase32 } from '../../shared/core/encoding.js';
import { totpCode } from '../../shared/core/totp.js';
import { assertNoSecret, newSecret } from '../dev/graph/helpers.js';
import { startTestStack, suiteScope, type TestStack } from '../helpers/stack.js';

const HEADER = 'upn,serial number,secret key,time interval,manufacturer,model\n';
const SERIALS = { ok1: 'GM1001', ok2: 'GM1002', guest: 'GM1003', conflict: 'GM1004', admin: 'GM1005', unknown: 'GM1006' } as const;
const SECRETS = Object.fromEntries(Object.values(SERIALS).map((s) => [s, newSecret()])) as Record<string, string>;
const OTHER_SECRET = newSecret();
const NOT_INGESTED = 'GM1099';

interface DeviceView {
  serialNumber: string;
  status: string;
  assignedTo: { userPrincipalName: string } | null;
}

describe('Graph mode end to end (local stack)', () => {
  let stack: TestStack;
  let blobs: BlobServiceClient;
  const responses: string[] = [];
  const scope = suiteScope();

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
  const admin = async (method: string, what: string, body?: unknown) => {
    const res = await fetch(`${stack.graphUrl}/_admin/${what}`, {
      method,
      headers: { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    assert.equal(res.status, 200, `${method} /_admin/${what}`);
    return (await res.json()) as Record<string, unknown>;
  };
  const devices = async () => ((await admin('GET', 'devices')).devices as DeviceView[]).filter((d) => d.serialNumber.startsWith('GM'));

  before(async () => {
    stack = await startTestStack(scope, {
      settings: { IMPORT_MODE: 'graph', KEY_VAULT_RETRY_BASE_MS: '20', RECONCILE_SCHEDULE: '0 0 0 1 1 *' },
    });
    blobs = BlobServiceClient.fromConnectionString(stack.connectionString);
    await admin('POST', 'users', [
      { userPrincipalName: 'helga@contoso.com' },
      { userPrincipalName: 'ben@contoso.com' },
      { userPrincipalName: 'guest@fabrikam.com', userType: 'Guest' },
      { userPrincipalName: 'root@contoso.com', directoryRoles: ['Global Administrator'] },
      { userPrincipalName: 'other@contoso.com' },
    ]);
    await admin('POST', 'devices', [{ serialNumber: SERIALS.conflict, secretKey: OTHER_SECRET, assignedTo: 'other@contoso.com' }]);
  });

  it('assigns exactly the right devices: valid rows only, not a guest, a conflict, an unknown user or a privileged one', async () => {
    const assignments = [
      `helga@contoso.com,${SERIALS.ok1}`,
      `ben@contoso.com,${SERIALS.ok2}`,
      `guest@fabrikam.com,${SERIALS.guest}`,
      `ben@contoso.com,${SERIALS.conflict}`,
      `root@contoso.com,${SERIALS.admin}`,
      `nobody@contoso.com,${SERIALS.unknown}`,
      // A serial no seed file brought: the assignment waits, nothing reaches Entra.
      `ben@contoso.com,${NOT_INGESTED}`,
    ].join('\n');
    const list = `upn,serial number\n${assignments}\n`;
    await blobs.getContainerClient('assignments').getBlockBlobClient('graph-team.csv').upload(list, Buffer.byteLength(list));
    await stack.idle();
    const seed =
      HEADER +
      Object.values(SERIALS)
        .map((s) => `,${s},${SECRETS[s]},30,Token2,C202\n`)
        .join('');
    await blobs.getContainerClient('seeds').getBlockBlobClient('graph-batch.csv').upload(seed, Buffer.byteLength(seed));
    await stack.idle();
    // Drops request a build; it runs once the settle period has passed (test stack: a second).
    await stack.buildsSettled();

    const held = (await devices()).map((d) => [d.serialNumber, d.assignedTo?.userPrincipalName ?? null, d.status]).sort();
    assert.deepEqual(held, [
      [SERIALS.ok1, 'helga@contoso.com', 'assigned'],
      [SERIALS.ok2, 'ben@contoso.com', 'assigned'],
      [SERIALS.conflict, 'other@contoso.com', 'assigned'],
    ]);
    assert.deepEqual(await names(blobs, 'imports'), []);
    const token = await api('GET', `tokens/${SERIALS.ok1}`);
    assert.equal((token.body as { state?: string }).state, 'assigned');
    for (const serial of [SERIALS.guest, SERIALS.conflict, SERIALS.admin, SERIALS.unknown]) {
      assert.equal(((await api('GET', `tokens/${serial}`)).body as { state?: string }).state, 'stored', serial);
    }
    const waiting = (await api('GET', `assignments?serial=${NOT_INGESTED}`)).body as { items?: { tokenState: string }[] };
    assert.deepEqual(
      waiting.items?.map((i) => i.tokenState),
      ['pending'],
    );
  });

  it('verify activates the token in Entra with the code from the token', async () => {
    const secret = decodeBase32(SECRETS[SERIALS.ok1]!)!;
    const code = totpCode({ secret, algorithm: 'SHA1', digits: 6, period: 30 }, Math.floor(Date.now() / 1000));
    const answer = await api('POST', `tokens/${SERIALS.ok1}/verify`, { code });
    assert.equal(answer.status, 200);
    assert.equal(answer.body.valid, true);
    assert.equal(answer.body.entraActivation, 'activated');
    const device = (await devices()).find((d) => d.serialNumber === SERIALS.ok1);
    assert.equal(device?.status, 'activated');
    assert.equal(((await api('GET', `tokens/${SERIALS.ok1}`)).body as { state?: string }).state, 'activated');
  });

  it('activating from the stored seed is refused while GRAPH_ACTIVATE_FROM_SEED is off (the default)', async () => {
    const answer = await api('POST', `tokens/${SERIALS.ok2}/activate-from-seed`);
    assert.equal(answer.status, 403);
    assert.equal((answer.body.error as { code?: string }).code, 'GRAPH_ACTIVATE_FROM_SEED_OFF');
    assert.equal((await devices()).find((d) => d.serialNumber === SERIALS.ok2)?.status, 'assigned');
  });

  it('another build (a duplicate trigger) creates no second device', async () => {
    const before = (await admin('GET', 'stats')).devicesCreated as number;
    const again = await api('POST', 'imports', {});
    assert.equal(again.status, 200);
    await stack.idle();
    assert.equal((await admin('GET', 'stats')).devicesCreated, before);
    assert.equal((await devices()).length, 3);
  });

  it('reassignment: PUT /api/assignments unassigns the token from its user in Entra and the build assigns it to the new one', async () => {
    const created = (await admin('GET', 'stats')).devicesCreated as number;
    const answer = await api('PUT', `assignments/${SERIALS.ok2}`, { upn: 'helga@contoso.com' });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.equal(answer.body.unassignedInEntraFrom, 'ben@contoso.com');
    await stack.buildsSettled();
    const device = (await devices()).find((d) => d.serialNumber === SERIALS.ok2);
    assert.deepEqual([device?.assignedTo?.userPrincipalName, device?.status], ['helga@contoso.com', 'assigned']);
    assert.equal((await admin('GET', 'stats')).devicesCreated, created, 'the same device');
    const token = (await api('GET', `tokens/${SERIALS.ok2}`)).body as { state?: string; upn?: string };
    assert.deepEqual([token.state, token.upn], ['assigned', 'helga@contoso.com']);
    assertNoSecret([...responses, stack.output()].join('\n'), [...Object.values(SECRETS), OTHER_SECRET]);
  });

  it('npm run demo -- --graph: members get their tokens, the administrator does not, verify activates one; the CSV demo points to --graph', async () => {
    const where = ['--data-dir', stack.dataDir, '--functions-url', stack.functionsUrl, '--count', '2', '--timeout-s', '90'];
    const demo = await runScript('demo.ts', ['--graph', ...where]);
    assert.equal(demo.code, 0, demo.out);
    assert.match(demo.out, /demo\w+1 +assigned +demo\.user1\./);
    assert.match(demo.out, /not created: GRAPH_USER_PRIVILEGED/);
    assert.match(demo.out, /"entraActivation": "activated"/);
    assert.match(demo.out, /is now activated/);
    assert.match(demo.out, /next code -> accepted/);
    // Secrets are masked or never printed: no base32 run of a secret's length.
    assert.doesNotMatch(demo.out, /[A-Z2-7]{32}/);
    const csvDemo = await runScript('demo.ts', where);
    assert.equal(csvDemo.code, 1);
    assert.match(csvDemo.out, /run `npm run demo -- --graph`/);
  });
});

/** Runs a script of scripts/ with tsx; resolves with its exit code and output. */
function runScript(script: string, args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, '..', '..', 'scripts', script), ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out }));
  });
}

async function names(blobs: BlobServiceClient, container: string): Promise<string[]> {
  const out: string[] = [];
  for await (const b of blobs.getContainerClient(container).listBlobsFlat()) out.push(b.name);
  return out;
}
