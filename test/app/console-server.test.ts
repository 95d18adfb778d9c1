/**
 * The console's server side without a browser: who the principal header says is signed in (and when it is not
 * believed), what each role may do, inventory pages that never load the table, uploads that put the transport key
 * in the vault only, reassigning, and the escaping of every value a page shows.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { describe, it } from 'node:test';
import { APP_ROLES, can, PERMISSIONS, principalFromHeaders } from '../../shared/app/auth.js';
import { withTextQuery } from '../../shared/app/console/api.js';
import { html } from '../../shared/app/console/html.js';
import { groupedProblems, tokenPage } from '../../shared/app/console/pages.js';
import { acceptUpload, transportKeySecretFor, uploadBlobName, uploadStatus } from '../../shared/app/console/uploads.js';
import { PROBLEM_CODES, problem } from '../../shared/core/problems.js';
import { AssignmentService } from '../../shared/pipeline/assignments.js';
import { newTokenEntity, publicTokenView } from '../../shared/pipeline/inventory.js';
import { listInventoryPage } from '../../shared/pipeline/inventory-query.js';
import type { AssignmentEntity, Logger, TokenEntity } from '../../shared/pipeline/ports.js';
import { encodePrincipal } from '../../dev/host/dev-sign-in.js';
import { keptByFuncignore } from '../../scripts/package.js';
import { ASSETS_DIR } from '../../shared/app/console/server.js';
import { ManualClock } from '../helpers/clock.js';
import { MemoryBlobStore, MemorySecretStore, MemoryTable } from '../helpers/memory-ports.js';
import { leakHits, piecesOf } from '../helpers/secret-scan.js';

const AUTH_ON = { WEBSITE_AUTH_ENABLED: 'True' };
const quiet: Logger = { info: () => undefined, warn: () => undefined, error: () => undefined };

function headers(values: Record<string, string>): { get(name: string): string | null } {
  const lower = new Map(Object.entries(values).map(([k, v]) => [k.toLowerCase(), v]));
  return { get: (name) => lower.get(name.toLowerCase()) ?? null };
}

function principalHeader(roles: string[], extraClaims: { typ: string; val: string }[] = []): string {
  const claims = [
    { typ: 'http://schemas.microsoft.com/identity/claims/objectidentifier', val: 'oid-1' },
    { typ: 'preferred_username', val: 'ana@contoso.com' },
    ...roles.map((val) => ({ typ: 'roles', val })),
    ...extraClaims,
  ];
  return Buffer.from(
    JSON.stringify({ auth_typ: 'aad', claims, name_typ: 'name', role_typ: 'http://schemas.microsoft.com/ws/2008/06/identity/claims/role' }),
  ).toString('base64');
}

function tokenEntity(serial: string, extra: Partial<TokenEntity> = {}): TokenEntity {
  const token = {
    serial,
    manufacturer: 'Token2',
    model: 'C202',
    type: 'totp' as const,
    algorithm: 'SHA1' as const,
    digits: 6,
    period: 30,
    secret: new Uint8Array(20),
  };
  return { ...newTokenEntity(token, `oath-${serial}`, 'v1', 'seeds.csv@0x1', '2026-11-29T10:00:00.000Z'), ...extra } as TokenEntity;
}

describe('the signed-in principal', () => {
  it('reads roles, object id and name from the Easy Auth header', () => {
    const p = principalFromHeaders(
      headers({ 'x-ms-client-principal': principalHeader([APP_ROLES.helpdesk, 'Some.Other.Role']), 'x-ms-client-principal-idp': 'aad' }),
      AUTH_ON,
    );
    assert.deepEqual(p, { id: 'oid-1', name: 'ana@contoso.com', identityProvider: 'aad', roles: [APP_ROLES.helpdesk] });
  });

  it('accepts roles under the role_typ the header names, and the long role claim type', () => {
    const long = principalHeader([], [{ typ: 'http://schemas.microsoft.com/ws/2008/06/identity/claims/role', val: APP_ROLES.admin }]);
    assert.deepEqual(principalFromHeaders(headers({ 'x-ms-client-principal': long }), AUTH_ON)?.roles, [APP_ROLES.admin]);
  });

  it('is nobody when the platform does not say its authentication runs in front (a client could forge the header)', () => {
    const forged = headers({ 'x-ms-client-principal': principalHeader([APP_ROLES.admin]) });
    assert.equal(principalFromHeaders(forged, {}), undefined);
    assert.equal(principalFromHeaders(forged, { WEBSITE_AUTH_ENABLED: 'False' }), undefined);
    assert.ok(principalFromHeaders(forged, { WEBSITE_AUTH_ENABLED: 'true' }));
  });

  it('is nobody for a header that is not a principal', () => {
    for (const value of [
      '',
      'not base64 json',
      Buffer.from('[1,2]').toString('base64'),
      Buffer.from('{"claims":"x"}').toString('base64'),
      'A'.repeat(70_000),
    ]) {
      assert.equal(principalFromHeaders(headers({ 'x-ms-client-principal': value }), AUTH_ON), undefined, value.slice(0, 20));
    }
  });

  it('round-trips what the local host sends for its development users', () => {
    const p = principalFromHeaders(
      headers({ 'x-ms-client-principal': encodePrincipal({ id: 'u1', name: 'admin@dev.localhost', roles: [APP_ROLES.admin] }) }),
      AUTH_ON,
    );
    assert.deepEqual(p?.roles, [APP_ROLES.admin]);
    assert.equal(p?.name, 'admin@dev.localhost');
  });
});

describe('what each role may do', () => {
  const helpdesk = { id: 'h', name: 'h', identityProvider: 'aad', roles: [APP_ROLES.helpdesk] };
  const admin = { id: 'a', name: 'a', identityProvider: 'aad', roles: [APP_ROLES.admin] };
  const none = { id: 'n', name: 'n', identityProvider: 'aad', roles: [] };

  it('helpdesk looks up and checks codes, nothing else; admin does everything; no role does nothing', () => {
    for (const permission of Object.keys(PERMISSIONS) as (keyof typeof PERMISSIONS)[]) {
      assert.equal(can(helpdesk, permission), permission === 'view' || permission === 'checkCode', permission);
      assert.equal(can(admin, permission), true, permission);
      assert.equal(can(none, permission), false, permission);
      assert.equal(can(undefined, permission), false, permission);
    }
  });
});

describe('inventory pages', () => {
  it('a page of 100,000 tokens reads one row past the page, never the table; the pages cover every token once', async () => {
    const tokens = new MemoryTable<TokenEntity>();
    for (let i = 0; i < 100_000; i++) {
      const serial = `T${String(i).padStart(6, '0')}`;
      tokens.rows.set(serial, {
        value: tokenEntity(serial, { state: i % 10 === 0 ? 'imported' : 'stored', upn: i % 10 === 0 ? `user${i % 7}@contoso.com` : null }),
        etag: 'e',
      });
    }
    const first = await listInventoryPage(tokens, { pageSize: 100 });
    assert.equal(first.items.length, 100);
    assert.equal(first.items[0]!.serial, 'T000000');
    assert.ok(first.continuationToken);
    assert.equal(tokens.rowsTransferredByPages, 101, 'one page transfers its rows and one more');

    const prefix = await listInventoryPage(tokens, { pageSize: 50, serialPrefix: 'T0999' });
    assert.deepEqual(prefix.items.map((t) => t.serial).slice(0, 2), ['T099900', 'T099901']);
    assert.equal(prefix.items.length, 50);

    const byUser = await listInventoryPage(tokens, { pageSize: 1000, upn: 'user3@contoso.com', state: 'imported' });
    assert.ok(byUser.items.length > 0 && byUser.items.every((t) => t.upn === 'user3@contoso.com' && t.state === 'imported'));

    // Walk the whole inventory of one state page by page.
    tokens.rowsTransferredByPages = 0;
    const seen = new Set<string>();
    let after: string | undefined;
    let pages = 0;
    for (;;) {
      const page = await listInventoryPage(tokens, { pageSize: 1000, state: 'imported', ...(after ? { after } : {}) });
      pages++;
      for (const t of page.items) seen.add(t.serial);
      if (!page.continuationToken) break;
      after = Buffer.from(page.continuationToken, 'base64url').toString('utf8');
    }
    assert.equal(seen.size, 10_000);
    assert.equal(pages, 10);
    assert.ok(tokens.rowsTransferredByPages <= 10_000 + pages, `${tokens.rowsTransferredByPages} rows transferred for 10,000 tokens`);
  });

  it('the search box: a UPN (with @) filters by user, anything else is the start of a serial', () => {
    assert.deepEqual(withTextQuery({ pageSize: 50 }, ' ana@contoso.com '), { pageSize: 50, upn: 'ana@contoso.com' });
    assert.deepEqual(withTextQuery({ pageSize: 50 }, 'TK12'), { pageSize: 50, serialPrefix: 'TK12' });
    assert.deepEqual(withTextQuery({ pageSize: 50 }, '   '), { pageSize: 50 });
    assert.ok('error' in withTextQuery({ pageSize: 50 }, 'x'.repeat(300)));
  });
});

describe('uploads from the console', () => {
  function deps() {
    const clock = new ManualClock('2026-11-30T08:00:00Z');
    return {
      clock,
      blobs: new MemoryBlobStore(clock),
      vault: new MemorySecretStore(),
      log: quiet,
      containers: { seeds: 'seeds', assignments: 'assignments', reports: 'reports' },
      transportKeyPrefix: 'transport-',
      maxFileBytes: 1000,
    };
  }
  const form = (fields: Record<string, string | File>) => {
    const data = new FormData();
    for (const [k, v] of Object.entries(fields)) data.append(k, v);
    return data;
  };

  it('stores the transport key as its own vault secret under the prefix, names it in the blob metadata, and answers without it', async () => {
    const d = deps();
    const key = '00112233445566778899aabbccddeeff';
    const answer = await acceptUpload(
      d,
      'seeds',
      form({ file: new File(['<KeyContainer/>'], 'acme batch 7.pskcxml'), transportKey: key, secretEncoding: '' }),
      'oid-1',
    );
    assert.ok(!('message' in answer));
    assert.match(answer.name, /^console-20261130T080000Z-[0-9a-f]{6}-acme_batch_7\.pskcxml$/);
    assert.deepEqual(d.blobs.names('seeds'), [answer.name]);
    const blob = await d.blobs.read('seeds', answer.name);
    const secretName = blob!.metadata.transportkeysecret!;
    assert.equal(secretName, transportKeySecretFor('transport-', answer.name));
    assert.match(secretName, /^transport-console-[0-9a-f]{32}$/);
    assert.equal((await d.vault.get(secretName))?.value, key, 'the key is in the vault, as given');
    assert.equal(answer.transportKeySecret, secretName);
    assert.equal(answer.batch, `${answer.name}@${answer.etag}`);
    assert.deepEqual(leakHits(piecesOf([key]), JSON.stringify(answer)), [], 'the answer holds no piece of the key');
    assert.equal(blob!.metadata.secretencoding, undefined);
  });

  it('a plain file gets no vault secret; a forced encoding goes into the metadata', async () => {
    const d = deps();
    const answer = await acceptUpload(
      d,
      'seeds',
      form({ file: new File(['serial number,secret key\n'], 'plain.csv'), transportKey: '', secretEncoding: 'hex' }),
      'oid-1',
    );
    assert.ok(!('message' in answer));
    assert.equal(d.vault.sets, 0);
    assert.deepEqual((await d.blobs.read('seeds', answer.name))!.metadata, { secretencoding: 'hex' });
  });

  it('refuses, changing nothing: no file, an empty or oversized file, a bad encoding, a key with an assignment list', async () => {
    const d = deps();
    const refusals = [
      await acceptUpload(d, 'seeds', form({}), 'x'),
      await acceptUpload(d, 'seeds', form({ file: new File([], 'empty.csv') }), 'x'),
      await acceptUpload(d, 'seeds', form({ file: new File(['x'.repeat(1001)], 'big.csv') }), 'x'),
      await acceptUpload(d, 'seeds', form({ file: new File(['x'], 'a.csv'), secretEncoding: 'base64' }), 'x'),
      await acceptUpload(d, 'assignments', form({ file: new File(['x'], 'a.csv'), transportKey: 'secret-password' }), 'x'),
    ];
    assert.deepEqual(
      refusals.map((r) => ('status' in r ? r.status : 'accepted')),
      [400, 400, 413, 400, 400],
    );
    assert.deepEqual([...d.blobs.names('seeds'), ...d.blobs.names('assignments')], []);
    assert.equal(d.vault.sets, 0);
    assert.deepEqual(leakHits(piecesOf(['secret-password']), JSON.stringify(refusals)), []);
  });

  it('once the seed file is reported, its transport key is disabled in the vault (kept, unreadable)', async () => {
    const d = deps();
    const answer = await acceptUpload(
      d,
      'seeds',
      form({ file: new File(['<KeyContainer/>'], 'v.pskcxml'), transportKey: 'correct horse battery staple' }),
      'oid-1',
    );
    assert.ok(!('message' in answer));
    assert.deepEqual(await uploadStatus(d, 'seeds', answer.name, answer.etag), { state: 'waiting' });
    assert.equal((await d.vault.get(answer.transportKeySecret!))?.value, 'correct horse battery staple', 'usable while the ingest runs');
    const report = {
      kind: 'seed-file',
      subject: `seeds/${answer.name}`,
      startedAt: 's',
      finishedAt: 'f',
      outcome: 'completed',
      summary: 'ok',
      counts: {},
      items: [],
      problems: [],
    };
    await d.blobs.write('reports', answer.report, JSON.stringify(report));
    const status = await uploadStatus(d, 'seeds', answer.name, answer.etag);
    assert.ok(status.state === 'reported' && status.transportKeyDisabled === answer.transportKeySecret);
    assert.equal(await d.vault.get(answer.transportKeySecret!), undefined, 'no enabled version left');
    assert.deepEqual(
      (await d.vault.listVersions(answer.transportKeySecret!)).map((v) => v.enabled),
      [false],
    );
  });

  it('follows the file to its report', async () => {
    const d = deps();
    const answer = await acceptUpload(d, 'assignments', form({ file: new File(['upn,serial number\n'], 'list.csv') }), 'x');
    assert.ok(!('message' in answer));
    assert.deepEqual(await uploadStatus(d, 'assignments', answer.name, answer.etag), { state: 'waiting' });
    const report = {
      kind: 'assignments',
      subject: `assignments/${answer.name}`,
      startedAt: 's',
      finishedAt: 'f',
      outcome: 'completed',
      summary: 'ok',
      counts: {},
      items: [],
      problems: [],
    };
    await d.blobs.write('reports', answer.report, JSON.stringify(report));
    const status = await uploadStatus(d, 'assignments', answer.name, answer.etag);
    assert.equal(status.state, 'reported');
  });

  it('names every upload apart, keeping only safe characters of the file name', () => {
    const now = new Date('2026-11-30T08:00:00.123Z');
    assert.equal(uploadBlobName('../../etc/passwd', now, 'abcdef'), 'console-20261130T080000Z-abcdef-passwd');
    assert.equal(uploadBlobName('C:\\Users\\me\\tokens <2>.csv', now, 'abcdef'), 'console-20261130T080000Z-abcdef-tokens_2_.csv');
    assert.equal(uploadBlobName('...', now, 'abcdef'), 'console-20261130T080000Z-abcdef-file');
  });
});

describe('reassigning from the console', () => {
  async function setup(state: TokenEntity['state']) {
    const clock = new ManualClock();
    const tokens = new MemoryTable<TokenEntity>();
    const assignments = new MemoryTable<AssignmentEntity>();
    await tokens.insert('R1', tokenEntity('R1', { state }));
    await assignments.insert('R1', { serial: 'R1', upn: 'old@contoso.com', sourceFile: 'a.csv', line: 2, createdAt: 't' });
    const service = new AssignmentService({
      blobs: new MemoryBlobStore(clock),
      assignments,
      tokens,
      clock,
      log: quiet,
      containers: { assignments: 'assignments', reports: 'reports', quarantine: 'quarantine' },
      maxFileBytes: 1000,
    });
    return { tokens, assignments, service };
  }

  it('replaces the assignment of a stored token and notes it in the history', async () => {
    const { tokens, assignments, service } = await setup('stored');
    assert.deepEqual(await service.reassign('R1', 'new@contoso.com'), { status: 'assigned', previousUpn: 'old@contoso.com' });
    assert.equal((await assignments.get('R1'))?.value.upn, 'new@contoso.com');
    const history = publicTokenView((await tokens.get('R1'))!.value).history;
    assert.deepEqual(history.at(-1), { at: '2026-11-29T10:00:00.000Z', event: 'assigned', detail: 'new@contoso.com' });
    assert.deepEqual(await service.reassign('R1', 'new@contoso.com'), { status: 'unchanged' });
  });

  it('refuses a token on its way to Entra, an unknown token, and a UPN an assignment list would refuse', async () => {
    const { assignments, service } = await setup('exported');
    assert.deepEqual(await service.reassign('R1', 'new@contoso.com'), { status: 'refused', state: 'exported' });
    assert.deepEqual(await service.reassign('R2', 'new@contoso.com'), { status: 'not-found' });
    assert.deepEqual(await service.reassign('R1', 'guest_contoso.com#EXT#@fabrikam.onmicrosoft.com'), {
      status: 'invalid',
      code: 'ASSIGNMENT_GUEST_UPN',
    });
    assert.deepEqual(await service.reassign('R1', 'not a upn'), { status: 'invalid', code: 'ASSIGNMENT_UPN_INVALID' });
    assert.deepEqual(await service.reassign('R1', '=cmd@contoso.com'), { status: 'invalid', code: 'ENTRA_FORMULA_CELL' });
    assert.equal((await assignments.get('R1'))?.value.upn, 'old@contoso.com');
  });
});

describe('pages escape what they show', () => {
  it('a hostile serial, UPN, history detail or problem message stays text', () => {
    const hostile = '<script>alert(1)</script>"\'`';
    const token = publicTokenView(
      tokenEntity(hostile, {
        upn: `${hostile}@x.com`,
        history: JSON.stringify([{ at: '2026-11-29T10:00:00Z', event: hostile, detail: hostile }]),
      }),
    );
    const admin = { id: 'a', name: hostile, identityProvider: 'aad', roles: [APP_ROLES.admin] };
    const page =
      tokenPage(admin, token, new Date('2026-11-29T10:00:00Z')).text +
      groupedProblems([problem('SERIAL_INVALID', 'error', hostile, { serial: hostile })]).text;
    assert.ok(!page.includes('<script>'), 'no raw script tag');
    assert.ok(page.includes('&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&#96;'));
    assert.ok(page.includes(PROBLEM_CODES.SERIAL_INVALID), 'a problem group says the fix its code gives');
    assert.equal(html`<p>${['<b>', html`<i>ok</i>`]}</p>`.text, '<p>&lt;b&gt;<i>ok</i></p>');
  });

  it('a helpdesk token page has the code check and no admin action', () => {
    const helpdesk = { id: 'h', name: 'h', identityProvider: 'aad', roles: [APP_ROLES.helpdesk] };
    const page = tokenPage(helpdesk, publicTokenView(tokenEntity('H1')), new Date('2026-11-29T10:00:00Z')).text;
    assert.match(page, /<label for="code">Code<\/label>/);
    assert.match(page, /<button type="submit">Check code<\/button>/);
    for (const action of ['data-api="unlock"', 'data-api="retire"', 'data-api="reassign"']) assert.ok(!page.includes(action), action);
  });
});

describe('the token page shows what the seed file said', () => {
  it('an HOTP token its exact counter instead of a period; a TOTP token its period', () => {
    const helpdesk = { id: 'h', name: 'h', identityProvider: 'aad', roles: [APP_ROLES.helpdesk] };
    const at = new Date('2026-11-29T10:00:00Z');
    const hotp = tokenPage(helpdesk, publicTokenView(tokenEntity('C1', { type: 'hotp', counter: '18446744073709551615' })), at).text;
    assert.match(hotp, /<dt>Counter<\/dt><dd>18446744073709551615<\/dd>/);
    assert.doesNotMatch(hotp, /<dt>Period<\/dt>/);
    const none = tokenPage(helpdesk, publicTokenView(tokenEntity('C2', { type: 'hotp', counter: null })), at).text;
    assert.match(none, /<dt>Counter<\/dt><dd><span class="muted">not given by the seed file \(0\)<\/span><\/dd>/);
    const totp = tokenPage(helpdesk, publicTokenView(tokenEntity('T1')), at).text;
    assert.match(totp, /<dt>Period<\/dt><dd>30 s<\/dd>/);
    assert.doesNotMatch(totp, /<dt>Counter<\/dt>/);
  });
});

describe('where the console lives', () => {
  it('its page assets ship in the deployment package (.funcignore keeps them)', () => {
    const assets = readdirSync(ASSETS_DIR)
      .map((f) => `console/${f}`)
      .sort();
    assert.deepEqual(assets, ['console/console.css', 'console/console.js']);
    const kept = keptByFuncignore();
    for (const asset of assets) assert.ok(kept.includes(asset), `${asset} is left out of the package by .funcignore`);
  });
});
