// The Graph stand-in (dev/graph/server.ts) over HTTP: the request and answer shapes of docs/graph.md and the
// checks Graph makes (base32 secrets, one device per serial, five methods, guests, code windows), its bearer
// challenge, throttling, injected faults, persistence, and that no secret ever comes back.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile, appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { startGraphStandIn } from '../../../dev/graph/server.js';
import { toCanonicalBase32 } from '../../../shared/core/encoding.js';
import { ManualClock } from '../../helpers/clock.js';
import { assertNoSecret, codeAt, DEVICES, deviceBody, errorOf, fixedSecret, newSecret, raw, startForTest, valueOf } from './helpers.js';

const HOUR = 3600;

function manual(): { clock: ManualClock; now: () => number; unix: () => number } {
  const clock = new ManualClock('2026-11-29T10:00:00Z');
  return { clock, now: () => clock.now().getTime(), unix: () => Math.floor(clock.now().getTime() / 1000) };
}

async function createDevice(graph: { url: string }, serial: string, secret: string, extra: Record<string, unknown> = {}): Promise<string> {
  const res = await raw(graph, 'POST', DEVICES, deviceBody(serial, secret, extra));
  assert.equal(res.status, 201, res.text);
  return (res.body as { id: string }).id;
}

async function assign(graph: { url: string }, user: string, deviceId: string) {
  return raw(graph, 'POST', `/beta/users/${encodeURIComponent(user)}/authentication/hardwareOathMethods`, { device: { id: deviceId } });
}

void describe('authentication and errors', () => {
  void test("a request without a bearer token gets the 401 challenge in Graph's error envelope; any token passes", async (t) => {
    const graph = await startForTest(t);
    const res = await raw(graph, 'GET', '/v1.0/users/nobody@contoso.com', undefined, {
      auth: false,
      headers: { 'client-request-id': 'my-request-1' },
    });
    assert.equal(res.status, 401);
    assert.match(
      res.headers.get('www-authenticate') ?? '',
      /^Bearer realm="", authorization_uri="https:\/\/login\.microsoftonline\.com\/.+", client_id="00000003-0000-0000-c000-000000000000"$/,
    );
    const error = errorOf(res);
    assert.equal(error.code, 'InvalidAuthenticationToken');
    assert.equal(error.innerError['client-request-id'], 'my-request-1');
    assert.match(error.innerError.date, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.match(error.innerError['request-id'], /^[0-9a-f-]{36}$/);
    assert.equal(graph.stats().challenges, 1);

    const authed = await raw(graph, 'GET', '/v1.0/users/nobody@contoso.com');
    assert.equal(authed.status, 404);
    assert.equal(errorOf(authed).code, 'Request_ResourceNotFound');
  });

  void test('unknown versions and segments are 400s; the device and method endpoints exist only in beta', async (t) => {
    const graph = await startForTest(t);
    assert.equal((await raw(graph, 'GET', '/v2.0/users/a@b.c')).status, 400);
    const v1Devices = await raw(graph, 'GET', `/v1.0/directory/authenticationMethodDevices/hardwareOathDevices`);
    assert.equal(v1Devices.status, 400);
    assert.match(errorOf(v1Devices).message, /segment 'authenticationMethodDevices'/);
    graph.seedUsers([{ userPrincipalName: 'ann@contoso.com' }]);
    assert.equal((await raw(graph, 'GET', '/v1.0/users/ann@contoso.com/authentication/hardwareOathMethods')).status, 400);
    assert.equal((await raw(graph, 'GET', '/beta/users/ann@contoso.com/authentication/hardwareOathMethods')).status, 200);
    assert.equal((await raw(graph, 'PATCH', DEVICES)).status, 405);
  });
});

void describe('users', () => {
  void test('seeded users read by UPN (any case) or id; userType and accountEnabled only when $select asks', async (t) => {
    const graph = await startForTest(t);
    const seeded = await raw(graph, 'POST', '/_admin/users', [
      { userPrincipalName: 'Ann.Lee@contoso.com', id: '11111111-1111-4111-8111-111111111111', accountEnabled: false },
      { userPrincipalName: 'guest_fabrikam.com#EXT#@contoso.onmicrosoft.com' },
    ]);
    assert.equal(seeded.status, 200, seeded.text);

    const byUpn = await raw(graph, 'GET', '/v1.0/users/ann.lee%40contoso.com');
    assert.equal(byUpn.status, 200);
    const body = byUpn.body as Record<string, unknown>;
    assert.equal(body.id, '11111111-1111-4111-8111-111111111111');
    assert.equal(body.userPrincipalName, 'Ann.Lee@contoso.com');
    assert.equal('userType' in body, false, 'v1.0 leaves userType out of the default properties');
    assert.equal('accountEnabled' in body, false);

    const selected = await raw(
      graph,
      'GET',
      '/v1.0/users/11111111-1111-4111-8111-111111111111?$select=id,userPrincipalName,userType,accountEnabled',
    );
    assert.deepEqual(
      Object.fromEntries(Object.entries(selected.body as Record<string, unknown>).filter(([k]) => !k.startsWith('@odata'))),
      { id: '11111111-1111-4111-8111-111111111111', userPrincipalName: 'Ann.Lee@contoso.com', userType: 'Member', accountEnabled: false },
    );

    const guest = await raw(
      graph,
      'GET',
      `/v1.0/users/${encodeURIComponent('guest_fabrikam.com#EXT#@contoso.onmicrosoft.com')}?$select=id,userType`,
    );
    assert.equal((guest.body as { userType: string }).userType, 'Guest', 'a #EXT# UPN seeds a guest');

    const badSelect = await raw(graph, 'GET', '/v1.0/users/ann.lee@contoso.com?$select=id,shoeSize');
    assert.equal(badSelect.status, 400);
    assert.match(errorOf(badSelect).message, /shoeSize/);
  });

  void test('seeding checks its input and keeps ids stable', async (t) => {
    const graph = await startForTest(t);
    for (const [bad, why] of [
      [[{ userPrincipalName: 'no-at-sign' }], /userPrincipalName/],
      [[{ userPrincipalName: 'a@contoso.com', userType: 'Admin' }], /userType/],
      [[{ userPrincipalName: 'a@contoso.com', directoryRoles: ['Chief Wizard'] }], /unknown role "Chief Wizard"/],
      [[{ userPrincipalName: 'a@contoso.com', favouriteColour: 'red' }], /unknown field/],
      [{ userPrincipalName: 'a@contoso.com' }, /array/],
    ] as const) {
      const res = await raw(graph, 'POST', '/_admin/users', bad);
      assert.equal(res.status, 400, res.text);
      assert.match((res.body as { error: string }).error, why);
    }
    assert.equal(graph.users().length, 0, 'a refused batch seeds nobody');
    const [first] = graph.seedUsers([{ userPrincipalName: 'b@contoso.com' }]);
    const [again] = graph.seedUsers([{ userPrincipalName: 'B@CONTOSO.COM', accountEnabled: false }]);
    assert.equal(again?.id, first?.id, 'the same UPN is the same user');
    assert.equal(again?.accountEnabled, false);
    assert.throws(() => graph.seedUsers([{ userPrincipalName: 'b@contoso.com', id: 'another-id' }]), /exists with id/);
  });
});

void describe('hardware OATH devices', () => {
  void test('create answers the device with secretKey null and status available; the inventory lists it', async (t) => {
    const graph = await startForTest(t);
    const secret = newSecret();
    const res = await raw(
      graph,
      'POST',
      DEVICES,
      deviceBody('1000123', secret, { displayName: 'Front desk', hashFunction: 'hmacsha256', timeIntervalInSeconds: 60 }),
    );
    assert.equal(res.status, 201, res.text);
    const device = res.body as Record<string, unknown>;
    assert.match(String(device.id), /^[0-9a-f-]{36}$/);
    assert.equal(res.headers.get('location'), `${graph.url}${DEVICES}/${String(device.id)}`);
    assert.deepEqual(
      { ...device, id: 'x', '@odata.context': undefined },
      {
        '@odata.context': undefined,
        id: 'x',
        displayName: 'Front desk',
        serialNumber: '1000123',
        manufacturer: 'Contoso',
        model: 'C200',
        secretKey: null,
        timeIntervalInSeconds: 60,
        hashFunction: 'hmacsha256',
        status: 'available',
        lastUsedDateTime: null,
        assignedTo: null,
      },
    );
    const got = await raw(graph, 'GET', `${DEVICES}/${String(device.id)}?$select=id,status`);
    assert.deepEqual(
      Object.keys(got.body as object).filter((k) => !k.startsWith('@')),
      ['id', 'status'],
    );
    assert.equal(graph.devices().length, 1);
    assert.equal(graph.stats().devicesCreated, 1);
    assertNoSecret(res.text + got.text + JSON.stringify(graph.devices()), [secret]);
  });

  void test('what Graph refuses at create: bad base32, intervals, hash functions, missing fields, unknown properties; nothing is stored', async (t) => {
    const graph = await startForTest(t);
    const good = newSecret();
    const badSecrets = [
      good.slice(0, 20) + '1' + good.slice(21),
      good.slice(0, 16) + ' ' + good.slice(16),
      good.slice(0, 24) + '08',
      'A'.repeat(129),
      Buffer.from(good).toString('hex'),
    ];
    const cases: [Record<string, unknown>, RegExp][] = [
      ...badSecrets.map((s): [Record<string, unknown>, RegExp] => [deviceBody('S1', s), /secretKey/]),
      [deviceBody('S1', good, { timeIntervalInSeconds: 45 }), /timeIntervalInSeconds/],
      [deviceBody('S1', good, { hashFunction: 'sha1' }), /hashFunction/],
      [deviceBody('S1', good, { serialNumber: undefined }), /serialNumber/],
      [deviceBody('S1', good, { manufacturer: '' }), /manufacturer/],
      [deviceBody('S1', good, { secretKey: undefined }), /secretKey/],
      [deviceBody('S1', good, { digits: 6 }), /Invalid property 'digits'/],
    ];
    for (const [body, why] of cases) {
      const res = await raw(graph, 'POST', DEVICES, body);
      assert.equal(res.status, 400, `${JSON.stringify(Object.keys(body))}: ${res.text}`);
      const error = errorOf(res);
      assert.match(error.message, why);
      assertNoSecret(res.text, [good, ...badSecrets.filter((s) => s.length >= 12)]);
    }
    assert.equal(graph.devices().length, 0);
    const padded = toCanonicalBase32(randomBytes(16)).toLowerCase() + '======';
    assert.equal((await raw(graph, 'POST', DEVICES, deviceBody('S1', padded))).status, 201, 'lower case and padding are still base32');
  });

  void test('one device per serial (compared without case); a legacy CSV token may share it', async (t) => {
    const graph = await startForTest(t);
    await createDevice(graph, 'ab-100', newSecret());
    const again = await raw(graph, 'POST', DEVICES, deviceBody('AB-100', newSecret()));
    assert.equal(again.status, 409);
    assert.equal(errorOf(again).code, 'conflict');
    assert.equal(graph.devices().length, 1);

    graph.seedDevices([{ serialNumber: 'CSV-1', secretKey: newSecret(), source: 'csv' }]);
    await createDevice(graph, 'csv-1', newSecret());
    const both = await raw(graph, 'GET', `${DEVICES}?$filter=serialNumber eq 'CSV-1'`);
    assert.equal(valueOf(both).length, 2);
  });

  void test('$filter on serialNumber (quotes doubled), $select, $top and @odata.nextLink paging', async (t) => {
    const graph = await startForTest(t, { pageSize: 3 });
    await createDevice(graph, "O'Brien-7", newSecret());
    for (let i = 0; i < 7; i++) await createDevice(graph, `P${i}`, newSecret());

    const quoted = await raw(
      graph,
      'GET',
      `${DEVICES}?$filter=${encodeURIComponent("serialNumber eq 'o''brien-7'")}&$select=id,serialNumber,status`,
    );
    assert.equal(quoted.status, 200, quoted.text);
    assert.deepEqual(
      valueOf(quoted).map((d) => [d.serialNumber, d.status, 'model' in d]),
      [["O'Brien-7", 'available', false]],
    );
    assert.equal(valueOf(await raw(graph, 'GET', `${DEVICES}?$filter=serialNumber eq 'nothing'`)).length, 0);

    const seen: string[] = [];
    let next: string | undefined = `${DEVICES}?$select=serialNumber`;
    let pages = 0;
    while (next) {
      const page = await raw(graph, 'GET', next.replace(graph.url, ''));
      assert.equal(page.status, 200, page.text);
      pages++;
      seen.push(...valueOf(page).map((d) => String(d.serialNumber)));
      next = (page.body as { '@odata.nextLink'?: string })['@odata.nextLink'];
      if (next) assert.ok(next.startsWith(graph.url), 'nextLink points at the stand-in');
    }
    assert.equal(pages, 3);
    assert.equal(new Set(seen).size, 8);
    assert.equal(valueOf(await raw(graph, 'GET', `${DEVICES}?$top=5`)).length, 5);

    for (const bad of ["serialNumber ne 'x'", "startswith(serialNumber,'P')", "model eq 'C200'"]) {
      assert.equal((await raw(graph, 'GET', `${DEVICES}?$filter=${encodeURIComponent(bad)}`)).status, 400, bad);
    }
  });
});

void describe('assignment', () => {
  void test("assign, list (with $expand=device), unassign and delete, with Graph's refusals along the way", async (t) => {
    const graph = await startForTest(t);
    const [ann, bob] = graph.seedUsers([{ userPrincipalName: 'ann@contoso.com' }, { userPrincipalName: 'bob@contoso.com' }]);
    const deviceId = await createDevice(graph, 'A-1', newSecret());

    const assigned = await assign(graph, 'ann@contoso.com', deviceId);
    assert.equal(assigned.status, 201, assigned.text);
    const method = assigned.body as Record<string, unknown>;
    assert.equal(method.id, deviceId, 'the method id is the device id');
    assert.equal(method['@odata.type'], '#microsoft.graph.hardwareOathAuthenticationMethod');

    const device = (await raw(graph, 'GET', `${DEVICES}/${deviceId}`)).body as Record<string, unknown>;
    assert.equal(device.status, 'assigned');
    assert.deepEqual(device.assignedTo, { id: ann!.id, displayName: 'ann' });

    const listed = await raw(graph, 'GET', `/beta/users/${ann!.id}/authentication/hardwareOathMethods?$expand=device`);
    assert.deepEqual(
      valueOf<{ id: string; device: { serialNumber: string } }>(listed).map((m) => [m.id, m.device.serialNumber]),
      [[deviceId, 'A-1']],
    );

    const toBob = await assign(graph, bob!.id, deviceId);
    assert.equal(toBob.status, 409, 'a token held by one user cannot go to another');
    assert.equal((await assign(graph, 'ann@contoso.com', deviceId)).status, 409, 'nor be assigned twice');
    assert.equal((await assign(graph, 'ann@contoso.com', 'no-such-device')).status, 404);
    assert.equal((await assign(graph, 'nobody@contoso.com', deviceId)).status, 404);
    assert.equal(
      (await raw(graph, 'POST', `/beta/users/${ann!.id}/authentication/hardwareOathMethods`, { device: { id: deviceId }, extra: 1 }))
        .status,
      400,
    );

    const deleteAssigned = await raw(graph, 'DELETE', `${DEVICES}/${deviceId}`);
    assert.equal(deleteAssigned.status, 400, 'an assigned token cannot be deleted');
    assert.match(errorOf(deleteAssigned).message, /unassign/);

    assert.equal(
      (await raw(graph, 'DELETE', `/beta/users/${bob!.id}/authentication/hardwareOathMethods/${deviceId}`)).status,
      404,
      'bob does not hold it',
    );
    assert.equal((await raw(graph, 'DELETE', `/beta/users/ann@contoso.com/authentication/hardwareOathMethods/${deviceId}`)).status, 204);
    const back = (await raw(graph, 'GET', `${DEVICES}/${deviceId}`)).body as Record<string, unknown>;
    assert.equal(back.status, 'available');
    assert.equal(back.assignedTo, null);
    assert.equal((await raw(graph, 'DELETE', `${DEVICES}/${deviceId}`)).status, 204);
    assert.equal((await raw(graph, 'GET', `${DEVICES}/${deviceId}`)).status, 404);
    assert.equal((await raw(graph, 'DELETE', `${DEVICES}/${deviceId}`)).status, 404);
  });

  void test('guests are refused, and a user holds at most five hardware OATH methods', async (t) => {
    const graph = await startForTest(t);
    graph.seedUsers([{ userPrincipalName: 'guest@contoso.com', userType: 'Guest' }, { userPrincipalName: 'max@contoso.com' }]);
    const guestDevice = await createDevice(graph, 'G-1', newSecret());
    const guest = await assign(graph, 'guest@contoso.com', guestDevice);
    assert.equal(guest.status, 400);
    assert.match(errorOf(guest).message, /guest/i);

    for (let i = 0; i < 5; i++)
      assert.equal((await assign(graph, 'max@contoso.com', await createDevice(graph, `M-${i}`, newSecret()))).status, 201);
    const sixthId = await createDevice(graph, 'M-5', newSecret());
    const sixth = await assign(graph, 'max@contoso.com', sixthId);
    assert.equal(sixth.status, 400);
    assert.match(errorOf(sixth).message, /maximum/);
    assert.equal(graph.devices().find((d) => d.id === sixthId)?.status, 'available');
    assert.equal(graph.users().find((u) => u.userPrincipalName === 'max@contoso.com')?.hardwareOathMethods, 5);

    // assignTo at create goes through the same checks, and takes an object id only.
    const user = graph.users().find((u) => u.userPrincipalName === 'max@contoso.com')!;
    assert.equal((await raw(graph, 'POST', DEVICES, deviceBody('M-6', newSecret(), { assignTo: { id: user.id } }))).status, 400);
    graph.seedUsers([{ userPrincipalName: 'new@contoso.com', id: 'new-user-id' }]);
    const direct = await raw(graph, 'POST', DEVICES, deviceBody('N-1', newSecret(), { assignTo: { id: 'new-user-id' } }));
    assert.equal(direct.status, 201, direct.text);
    assert.equal((direct.body as { status: string }).status, 'assigned');
    assert.equal(
      (await raw(graph, 'POST', DEVICES, deviceBody('N-2', newSecret(), { assignTo: { id: 'new@contoso.com' } }))).status,
      404,
      'a UPN is not an object id',
    );
  });
});

void describe('activation and sign-in', () => {
  void test('activation accepts a code within +/- 1 day of a 30 s token, learns the drift, and sign-ins follow it', async (t) => {
    const time = manual();
    const graph = await startForTest(t, { now: time.now });
    graph.seedUsers([{ userPrincipalName: 'ann@contoso.com' }]);
    // Fixed secrets and a fixed clock: every code check below comes out the same on every run.
    const secret = fixedSecret('activation-30');
    const id = await createDevice(graph, 'T-30', secret);
    assert.equal((await assign(graph, 'ann@contoso.com', id)).status, 201);
    const activate = (code: string) =>
      raw(graph, 'POST', `/beta/users/ann@contoso.com/authentication/hardwareOathMethods/${id}/activate`, { verificationCode: code });

    const wrong = await activate(codeAt(fixedSecret('another token'), time.unix()));
    assert.equal(wrong.status, 400, 'a code from another secret');
    assert.match(errorOf(wrong).message, /verification code/);
    assert.equal(graph.devices()[0]?.status, 'failedActivation');
    assert.equal((await activate('12345')).status, 400, 'five digits');
    assert.equal(
      (await activate(codeAt(secret, time.unix() + 25 * HOUR))).status,
      400,
      'a token 25 hours ahead is outside the activation window',
    );

    // The token's clock runs 23 hours ahead: activation still accepts it.
    const tokenNow = (): number => time.unix() + 23 * HOUR;
    const ok = await activate(codeAt(secret, tokenNow()));
    assert.equal(ok.status, 204, ok.text);
    const device = graph.devices()[0]!;
    assert.equal(device.status, 'activated');
    assert.ok(Math.abs((device.driftSeconds ?? 0) - 23 * HOUR) <= 30, `drift ${device.driftSeconds}`);
    assert.equal((await activate(codeAt(secret, tokenNow()))).status, 400, 'already activated');

    // Sign-in: +/- 1 minute around the learnt drift; the server's own time is now far off; no replay.
    time.clock.advance(60_000);
    assert.deepEqual(
      graph.signIn('ann@contoso.com', codeAt(secret, time.unix())),
      { accepted: false },
      'a code for the server clock is 23 hours off the token',
    );
    const code = codeAt(secret, tokenNow() + 30);
    const signIn = await raw(graph, 'POST', '/_admin/sign-in', { user: 'ann@contoso.com', code });
    assert.equal((signIn.body as { accepted: boolean }).accepted, true, signIn.text);
    assert.equal((signIn.body as { serialNumber: string }).serialNumber, 'T-30');
    assert.equal(graph.signIn('ann@contoso.com', code).accepted, false, 'the same code twice');
    assert.equal(graph.signIn('ann@contoso.com', codeAt(secret, tokenNow() + 5 * 60)).accepted, false, 'five minutes off the learnt drift');
    assert.ok(graph.devices()[0]?.lastUsedDateTime);
  });

  void test('60 s tokens get +/- 2 days at activation; SHA-256 tokens are checked with SHA-256', async (t) => {
    const time = manual();
    const graph = await startForTest(t, { now: time.now });
    graph.seedUsers([{ userPrincipalName: 'ann@contoso.com' }]);
    const s60 = fixedSecret('activation-60');
    const s256 = fixedSecret('activation-sha256');
    const id60 = await createDevice(graph, 'T-60', s60, { timeIntervalInSeconds: 60 });
    const id256 = await createDevice(graph, 'T-256', s256, { hashFunction: 'hmacsha256' });
    for (const id of [id60, id256]) assert.equal((await assign(graph, 'ann@contoso.com', id)).status, 201);
    const activate = (id: string, code: string) =>
      raw(graph, 'POST', `/beta/users/ann@contoso.com/authentication/hardwareOathMethods/${id}/activate`, { verificationCode: code });

    assert.equal((await activate(id60, codeAt(s60, time.unix() - 49 * HOUR, { period: 60 }))).status, 400);
    assert.equal((await activate(id60, codeAt(s60, time.unix() - 47 * HOUR, { period: 60 }))).status, 204);
    assert.equal((await activate(id256, codeAt(s256, time.unix()))).status, 400, 'an SHA-1 code for an SHA-256 token');
    assert.equal((await activate(id256, codeAt(s256, time.unix(), { sha256: true }))).status, 204);

    // Deactivate keeps the assignment.
    assert.equal(
      (await raw(graph, 'POST', `/beta/users/ann@contoso.com/authentication/hardwareOathMethods/${id256}/deactivate`)).status,
      204,
    );
    assert.equal(graph.devices().find((d) => d.id === id256)?.status, 'assigned');
  });
});

void describe('roles and groups', () => {
  void test('active roles through transitiveMemberOf, privileged role definitions, PIM eligibilities, checkMemberGroups', async (t) => {
    const graph = await startForTest(t);
    const [admin, reader] = graph.seedUsers([
      { userPrincipalName: 'admin@contoso.com', directoryRoles: ['Global Administrator', 'Directory Readers'], groups: ['g-helpdesk'] },
      { userPrincipalName: 'reader@contoso.com', eligibleRoles: ['Privileged Role Administrator'] },
    ]);
    const roles = valueOf(
      await raw(
        graph,
        'GET',
        `/v1.0/users/${admin!.id}/transitiveMemberOf/microsoft.graph.directoryRole?$select=displayName,roleTemplateId`,
      ),
    );
    assert.deepEqual(
      roles.map((r) => [r['@odata.type'], r.displayName, r.roleTemplateId]),
      [
        ['#microsoft.graph.directoryRole', 'Global Administrator', '62e90394-69f5-4237-9190-012177145e10'],
        ['#microsoft.graph.directoryRole', 'Directory Readers', '88d8e3e3-8f55-4a1e-953a-9b9898b8876b'],
      ],
    );
    assert.equal(valueOf(await raw(graph, 'GET', `/v1.0/users/${reader!.id}/transitiveMemberOf/microsoft.graph.directoryRole`)).length, 0);

    const privileged = valueOf(
      await raw(
        graph,
        'GET',
        `/beta/roleManagement/directory/roleDefinitions?$filter=isPrivileged eq true&$select=id,displayName,templateId`,
      ),
    );
    assert.ok(privileged.some((r) => r.templateId === '62e90394-69f5-4237-9190-012177145e10'));
    assert.ok(!privileged.some((r) => r.displayName === 'Directory Readers'));

    const eligible = valueOf(
      await raw(
        graph,
        'GET',
        `/v1.0/roleManagement/directory/roleEligibilityScheduleInstances?$filter=${encodeURIComponent(`principalId eq '${reader!.id}'`)}`,
      ),
    );
    assert.deepEqual(
      eligible.map((e) => [e.principalId, e.roleDefinitionId]),
      [[reader!.id, 'e8611ab8-c189-46e8-94e1-60213ab1f814']],
    );

    const member = await raw(graph, 'POST', `/v1.0/users/${admin!.id}/checkMemberGroups`, { groupIds: ['g-other', 'G-HELPDESK'] });
    assert.deepEqual(valueOf(member), ['G-HELPDESK']);
    assert.deepEqual(valueOf(await raw(graph, 'POST', `/v1.0/users/${reader!.id}/checkMemberGroups`, { groupIds: ['g-helpdesk'] })), []);
    assert.equal((await raw(graph, 'POST', `/v1.0/users/${reader!.id}/checkMemberGroups`, { groupIds: [] })).status, 400);
    assert.equal((await raw(graph, 'POST', '/v1.0/users/nobody@contoso.com/checkMemberGroups', { groupIds: ['x'] })).status, 404);
  });
});

void describe('throttling and faults', () => {
  void test('past the request budget: 429 TooManyRequests with Retry-After until the window has room; rejected calls are not counted', async (t) => {
    const time = manual();
    const graph = await startForTest(t, { now: time.now, realism: { throttling: true, requestsPer10s: 3 } });
    graph.seedUsers([{ userPrincipalName: 'ann@contoso.com' }]);
    for (let i = 0; i < 3; i++) assert.equal((await raw(graph, 'GET', '/v1.0/users/ann@contoso.com')).status, 200);
    time.clock.advance(2_500);
    const throttled = await raw(graph, 'POST', DEVICES, deviceBody('TH-1', newSecret()));
    assert.equal(throttled.status, 429);
    assert.equal(errorOf(throttled).code, 'TooManyRequests');
    assert.equal(throttled.headers.get('retry-after'), '7.5');
    assert.equal(graph.devices().length, 0, 'a throttled create stores nothing');
    time.clock.advance(7_499);
    assert.equal((await raw(graph, 'GET', '/v1.0/users/ann@contoso.com')).status, 429);
    time.clock.advance(1);
    assert.equal((await raw(graph, 'GET', '/v1.0/users/ann@contoso.com')).status, 200, 'the window moved; the 429s took no budget');
    const stats = graph.stats();
    assert.equal(stats.throttled, 2);
    assert.equal(stats.operations.createDevice, 0);

    graph.setRealism({ retryAfterSeconds: 2.128 });
    for (let i = 0; i < 2; i++) assert.equal((await raw(graph, 'GET', '/v1.0/users/ann@contoso.com')).status, 200);
    assert.equal(
      (await raw(graph, 'GET', '/v1.0/users/ann@contoso.com')).headers.get('retry-after'),
      '2.128',
      'a fixed Retry-After, fractional',
    );
  });

  void test('queued faults: a 503 with Retry-After changes nothing; an applied timeout makes the change and never answers', async (t) => {
    const graph = await startForTest(t, { realism: { timeoutMs: 60_000 } });
    graph.seedUsers([{ userPrincipalName: 'ann@contoso.com' }]);
    const set = await raw(graph, 'POST', '/_admin/faults', [
      { method: 'POST', path: '/hardwareOathDevices', status: 503, retryAfter: '2.128' },
      { method: 'POST', path: 'hardwareoathdevices', timeout: true, apply: true },
    ]);
    assert.equal(set.status, 200, set.text);

    const unavailable = await raw(graph, 'POST', DEVICES, deviceBody('F-1', newSecret()));
    assert.equal(unavailable.status, 503);
    assert.equal(unavailable.headers.get('retry-after'), '2.128');
    assert.equal(errorOf(unavailable).code, 'serviceNotAvailable');
    assert.equal(graph.devices().length, 0);

    await assert.rejects(
      raw(graph, 'POST', DEVICES, deviceBody('F-1', newSecret()), { signal: AbortSignal.timeout(300) }),
      (e: Error) => e.name === 'TimeoutError',
    );
    assert.deepEqual(
      graph.devices().map((d) => d.serialNumber),
      ['F-1'],
      'applied, though never answered',
    );
    assert.equal(graph.stats().pendingFaults, 0);

    // An applied 500 on assign: the answer fails, the assignment stands.
    graph.injectFaults([{ path: '/authentication/hardwareOathMethods', status: 500, apply: true }]);
    const failed = await assign(graph, 'ann@contoso.com', graph.devices()[0]!.id);
    assert.equal(failed.status, 500);
    assert.equal(graph.devices()[0]?.status, 'assigned');
    const stats = graph.stats();
    assert.deepEqual(stats.faultsByKind, { status: 2, timeouts: 1, applied: 2 });

    for (const bad of [{ status: 418 }, { timeout: true, status: 503 }, {}, { status: 500, times: 0 }]) {
      assert.equal((await raw(graph, 'POST', '/_admin/faults', bad)).status, 400, JSON.stringify(bad));
    }
  });
});

void describe('persistence and seeding', () => {
  void test('users, devices, assignments and activation survive a restart; a users file seeds at start; a torn last line is skipped', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'graph-standin-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const persistPath = join(dir, 'graph.jsonl');
    const usersFile = join(dir, 'graph-users.json');
    await writeFile(
      usersFile,
      JSON.stringify([{ userPrincipalName: 'file.user@contoso.com', directoryRoles: ['Helpdesk Administrator'] }]),
    );
    const time = manual();
    const secret = newSecret();

    const first = await startGraphStandIn({ port: 0, persistPath, usersFile, now: time.now });
    const fileUser = first.users().find((u) => u.userPrincipalName === 'file.user@contoso.com');
    assert.ok(fileUser, 'seeded from the file');
    first.seedUsers([{ userPrincipalName: 'api.user@contoso.com' }]);
    const id = await createDevice(first, 'P-1', secret);
    assert.equal((await assign(first, 'api.user@contoso.com', id)).status, 201);
    assert.equal(
      (
        await raw(first, 'POST', `/beta/users/api.user@contoso.com/authentication/hardwareOathMethods/${id}/activate`, {
          verificationCode: codeAt(secret, time.unix()),
        })
      ).status,
      204,
    );
    const before = first.devices();
    await first.close();
    await appendFile(persistPath, '{"t":"device","device":{"id":"torn');

    const second = await startGraphStandIn({ port: 0, persistPath, usersFile, now: time.now });
    t.after(() => second.close());
    assert.deepEqual(second.devices(), before);
    assert.deepEqual(
      second
        .users()
        .map((u) => [u.userPrincipalName, u.id])
        .sort(),
      [
        ['api.user@contoso.com', second.users().find((u) => u.userPrincipalName === 'api.user@contoso.com')!.id],
        ['file.user@contoso.com', fileUser.id],
      ],
    );
    time.clock.advance(30_000);
    assert.equal(second.signIn('api.user@contoso.com', codeAt(secret, time.unix())).accepted, true, 'the secret survived too');
    const journal = await readFile(persistPath, 'utf8');
    assert.ok(!journal.includes('torn'), 'compacted at start');
  });

  void test('a users file that is not valid stops the start with its name', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'graph-standin-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const usersFile = join(dir, 'users.json');
    await writeFile(usersFile, '[{"userPrincipalName": "x"}]');
    await assert.rejects(
      startGraphStandIn({ port: 0, usersFile }),
      (e: Error) => e.message.includes(usersFile) && /userPrincipalName/.test(e.message),
    );
  });
});

void test('no secret in any answer, admin view or log line, malformed input included', async (t) => {
  const lines: string[] = [];
  const graph = await startForTest(t, { log: (l) => lines.push(l) });
  graph.seedUsers([{ userPrincipalName: 'ann@contoso.com' }, { userPrincipalName: 'g@contoso.com', userType: 'Guest' }]);
  const secrets = [newSecret(), newSecret(), newSecret()];
  const texts: string[] = [];
  const keep = async (p: Promise<{ text: string }>) => texts.push((await p).text);
  await keep(raw(graph, 'POST', DEVICES, deviceBody('L-1', secrets[0]!)));
  await keep(raw(graph, 'POST', DEVICES, deviceBody('L-1', secrets[1]!)));
  await keep(raw(graph, 'POST', DEVICES, deviceBody('L-2', secrets[2]!.slice(0, 30) + '0189')));
  await keep(raw(graph, 'POST', DEVICES, deviceBody('L-3', secrets[2]!, { timeIntervalInSeconds: 31 })));
  await keep(raw(graph, 'POST', DEVICES, { ...deviceBody('L-4', secrets[2]!), [secrets[2]!]: 1 }));
  const id = graph.devices()[0]!.id;
  await keep(assign(graph, 'g@contoso.com', id));
  await keep(assign(graph, 'ann@contoso.com', id));
  await keep(
    raw(graph, 'POST', `/beta/users/ann@contoso.com/authentication/hardwareOathMethods/${id}/activate`, { verificationCode: secrets[0] }),
  );
  await keep(raw(graph, 'GET', `${DEVICES}?$filter=serialNumber eq 'L-1'`));
  await keep(raw(graph, 'GET', `/beta/users/ann@contoso.com/authentication/hardwareOathMethods?$expand=device`));
  await keep(raw(graph, 'GET', '/_admin/devices'));
  await keep(raw(graph, 'GET', '/_admin/users'));
  await keep(raw(graph, 'GET', '/_admin/stats'));
  await keep(raw(graph, 'POST', '/_admin/devices', [{ serialNumber: 'L-5', secretKey: secrets[1]!.slice(0, 28) + '1111' }]));
  const all = texts.join('\n') + lines.join('\n');
  assert.ok(texts.length >= 14 && lines.length >= 10);
  assertNoSecret(
    all,
    secrets.map((s) => s.slice(0, 30)),
  );
  assertNoSecret(all, secrets);
});
