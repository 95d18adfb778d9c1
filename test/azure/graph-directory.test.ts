// GraphHardwareOathDirectory (shared/azure/graph-directory.ts), the real adapter, against the Graph stand-in
// (dev/graph/server.ts) on a free port: the whole token life cycle, Graph's refusals mapped to the pipeline's error
// classes, Retry-After, 5xx and timeouts (with writes never re-sent blindly), and no secret in any error.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, test } from 'node:test';
import type { AccessToken, TokenCredential } from '@azure/identity';
import { startGraphStandIn, type GraphStandIn } from '../../dev/graph/server.js';
import { createHardwareOathDirectory } from '../../shared/azure/clients.js';
import {
  GRAPH_SCOPE,
  GraphHardwareOathDirectory,
  type GraphDirectoryOptions,
  type GraphRetryEvent,
} from '../../shared/azure/graph-directory.js';
import { loadConfig } from '../../shared/config.js';
import { activationWindowSteps } from '../../shared/entra/drift-windows.js';
import { ConflictError, DirectoryRefusedError, TransientError, UncertainOutcomeError } from '../../shared/pipeline/errors.js';
import type { NewHardwareOathDevice } from '../../shared/pipeline/ports.js';
import { assertNoSecret, codeAt, codeOutsideWindow, newSecret, uniqueSerial } from '../dev/graph/helpers.js';
import { closedPort } from './helpers.js';

let graph: GraphStandIn;
const logLines: string[] = [];
const secretsUsed: string[] = [];

before(async () => {
  graph = await startGraphStandIn({ port: 0, log: (line) => logLines.push(line) });
});

after(async () => {
  await graph?.close();
  // Nothing the stand-in logged, for any test, holds a piece of a secret.
  assertNoSecret(logLines.join('\n'), secretsUsed);
});

beforeEach(async () => {
  graph.setRealism({ throttling: false, errorRate: 0, timeoutRate: 0, timeoutMs: 30_000 });
  await fetch(`${graph.url}/_admin/faults`, { method: 'DELETE' });
});

class CountingCredential implements TokenCredential {
  scopes: string[] = [];
  constructor(private readonly tokens: AccessToken[] = []) {}
  getToken(scopes: string | string[]): Promise<AccessToken> {
    this.scopes.push(...(Array.isArray(scopes) ? scopes : [scopes]));
    return Promise.resolve(this.tokens.shift() ?? { token: `token-${this.scopes.length}`, expiresOnTimestamp: Date.now() + 3_600_000 });
  }
}

function adapter(options: Partial<GraphDirectoryOptions> = {}): {
  directory: GraphHardwareOathDirectory;
  retries: GraphRetryEvent[];
  credential: CountingCredential;
} {
  const retries: GraphRetryEvent[] = [];
  const credential = new CountingCredential();
  const directory = new GraphHardwareOathDirectory({
    baseUrl: graph.url,
    credential,
    retryBaseMs: 20,
    timeoutMs: 2_000,
    onRetry: (e) => retries.push(e),
    ...options,
  });
  return { directory, retries, credential };
}

function newDevice(serialNumber = uniqueSerial('G'), extra: Partial<NewHardwareOathDevice> = {}): NewHardwareOathDevice {
  const secretKey = newSecret();
  secretsUsed.push(secretKey);
  return { serialNumber, manufacturer: 'Contoso', model: 'C200', secretKey, timeIntervalInSeconds: 30, hashFunction: 'hmacsha1', ...extra };
}

let userCount = 0;
function newUser(extra: Record<string, unknown> = {}): { id: string; upn: string } {
  const upn = `user${++userCount}.${Math.random().toString(36).slice(2, 8)}@contoso.com`;
  const [user] = graph.seedUsers([{ userPrincipalName: upn, ...extra }]);
  return { id: user!.id, upn };
}

const nowSeconds = (): number => Math.floor(Date.now() / 1000);

async function caught(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected the call to fail');
}

void describe('life cycle', () => {
  void test('find, create, assign, activate, unassign and delete, through the factory the app uses', async () => {
    const config = loadConfig({
      PipelineStorage: 'UseDevelopmentStorage=true',
      KEY_VAULT_URL: 'http://127.0.0.1:1',
      GRAPH_BASE_URL: graph.url,
    });
    assert.equal(config.localGraph, true);
    const directory = await createHardwareOathDirectory(config);
    const { upn, id: userId } = newUser({ displayName: 'Ann Lee' });

    const user = await directory.findUser(upn.toUpperCase());
    assert.deepEqual(user, { id: userId, userPrincipalName: upn, displayName: 'Ann Lee', userType: 'Member', accountEnabled: true });

    const input = newDevice();
    assert.deepEqual(await directory.findDevicesBySerial(input.serialNumber), []);
    const created = await directory.createDevice(input);
    assert.equal(created.serialNumber, input.serialNumber);
    assert.equal(created.status, 'available');
    assert.equal(created.assignedTo, null);
    assert.deepEqual(await directory.findDevicesBySerial(input.serialNumber.toLowerCase()), [created]);

    const { methodId } = await directory.assignDevice(userId, created.id);
    assert.equal(methodId, created.id);
    const assigned = await directory.getDevice(created.id);
    assert.equal(assigned?.status, 'assigned');
    assert.deepEqual(assigned?.assignedTo, { id: userId, displayName: 'Ann Lee' });

    await directory.activate(userId, methodId, codeAt(input.secretKey, nowSeconds()));
    assert.equal((await directory.getDevice(created.id))?.status, 'activated');

    assert.equal(await directory.unassign(userId, methodId), true);
    assert.equal(await directory.unassign(userId, methodId), false, 'already unassigned');
    const back = await directory.getDevice(created.id);
    assert.equal(back?.status, 'available');
    assert.equal(back?.assignedTo, null);
    assert.equal(await directory.deleteDevice(created.id), true);
    assert.equal(await directory.deleteDevice(created.id), false);
    assert.equal(await directory.getDevice(created.id), undefined);
  });

  void test('users: unknown is undefined; guests and disabled accounts say so; ids work as well as UPNs', async () => {
    const { directory } = adapter();
    assert.equal(await directory.findUser('nobody@contoso.com'), undefined);
    const guestUpn = `partner_fabrikam.com#EXT#@contoso.onmicrosoft.com`;
    graph.seedUsers([{ userPrincipalName: guestUpn }]);
    assert.equal((await directory.findUser(guestUpn))?.userType, 'Guest');
    const disabled = newUser({ accountEnabled: false });
    const byId = await directory.findUser(disabled.id);
    assert.equal(byId?.userPrincipalName, disabled.upn);
    assert.equal(byId?.accountEnabled, false);
  });

  void test('a SHA-256, 60 s token keeps its parameters', async () => {
    const { directory } = adapter();
    const input = newDevice(undefined, { hashFunction: 'hmacsha256', timeIntervalInSeconds: 60, displayName: 'Vault room' });
    const created = await directory.createDevice(input);
    assert.deepEqual([created.hashFunction, created.timeIntervalInSeconds, created.displayName], ['hmacsha256', 60, 'Vault room']);
    const user = newUser();
    await directory.assignDevice(user.id, created.id);
    await directory.activate(user.id, created.id, codeAt(input.secretKey, nowSeconds(), { period: 60, sha256: true }));
    assert.equal((await directory.getDevice(created.id))?.status, 'activated');
  });
});

void describe('refusals', () => {
  void test('a serial that exists (in any case) is a ConflictError naming the device; nothing new is created', async () => {
    const { directory } = adapter();
    const first = await directory.createDevice(newDevice('conflict-1'));
    const createdBefore = graph.stats().devicesCreated;
    const again = newDevice('CONFLICT-1');
    const error = await caught(directory.createDevice(again));
    assert.ok(error instanceof ConflictError, String(error));
    assert.match(error.message, new RegExp(first.id));
    assertNoSecret(error.message + String(error.stack), [again.secretKey]);
    assert.equal(graph.stats().devicesCreated, createdBefore);
  });

  void test('a secret Graph refuses is a DirectoryRefusedError that does not quote it', async () => {
    const { directory } = adapter();
    const bad = newDevice();
    const error = await caught(
      directory.createDevice({ ...bad, secretKey: bad.secretKey.slice(0, 20) + '0189' + bad.secretKey.slice(24) }),
    );
    assert.ok(error instanceof DirectoryRefusedError, String(error));
    assert.equal(error.status, 400);
    assert.equal(error.code, 'invalidRequest');
    assert.match(
      error.message,
      /^Graph create device G[0-9A-F]+: HTTP 400 invalidRequest: The secretKey is not valid base32.* \(request-id [0-9a-f-]{36}\)$/,
    );
    assertNoSecret(error.message + String(error.stack), [bad.secretKey]);
  });

  void test('guests are refused and nothing is assigned', async () => {
    const { directory } = adapter();
    const guest = newUser({ userType: 'Guest' });
    const device = await directory.createDevice(newDevice());
    const error = await caught(directory.assignDevice(guest.id, device.id));
    assert.ok(error instanceof DirectoryRefusedError, String(error));
    assert.match(error.message, /guest/i);
    assert.equal((await directory.getDevice(device.id))?.status, 'available');
  });

  void test('the five-method limit: the sixth assignment is refused', async () => {
    const { directory } = adapter();
    const user = newUser();
    for (let i = 0; i < 5; i++) await directory.assignDevice(user.id, (await directory.createDevice(newDevice())).id);
    const sixth = await directory.createDevice(newDevice());
    const error = await caught(directory.assignDevice(user.id, sixth.id));
    assert.ok(error instanceof DirectoryRefusedError, String(error));
    assert.match(error.message, /maximum/);
    assert.equal((await directory.getDevice(sixth.id))?.assignedTo, null);
  });

  void test('a token held by another user, or deleted while assigned, is a ConflictError', async () => {
    const { directory } = adapter();
    const [ann, bob] = [newUser(), newUser()];
    const device = await directory.createDevice(newDevice());
    await directory.assignDevice(ann.id, device.id);
    assert.ok((await caught(directory.assignDevice(bob.id, device.id))) instanceof ConflictError);
    const deleting = await caught(directory.deleteDevice(device.id));
    assert.ok(deleting instanceof ConflictError, String(deleting));
    assert.match(deleting.message, new RegExp(`still assigned to ${ann.id}`));
    assert.equal((await directory.getDevice(device.id))?.assignedTo?.id, ann.id);
  });

  void test('a wrong code is refused (the device says failedActivation); the right one then activates', async () => {
    const { directory } = adapter();
    const user = newUser();
    const input = newDevice();
    const device = await directory.createDevice(input);
    await directory.assignDevice(user.id, device.id);
    const wrongCode = codeOutsideWindow(input.secretKey, nowSeconds(), activationWindowSteps(30) + 2);
    const error = await caught(directory.activate(user.id, device.id, wrongCode));
    assert.ok(error instanceof DirectoryRefusedError, String(error));
    assert.equal(error.status, 400);
    assert.ok(!error.message.includes(wrongCode), 'the code is not repeated');
    assert.equal((await directory.getDevice(device.id))?.status, 'failedActivation');
    await directory.activate(user.id, device.id, codeAt(input.secretKey, nowSeconds()));
    assert.equal((await directory.getDevice(device.id))?.status, 'activated');
  });
});

void describe('roles and groups', () => {
  void test('privileged roles: active and eligible ones, never harmless ones; the definitions are read once', async () => {
    const { directory } = adapter();
    const admin = newUser({
      directoryRoles: ['Global Administrator', 'Directory Readers'],
      eligibleRoles: ['Privileged Role Administrator'],
    });
    const reader = newUser({ directoryRoles: ['Directory Readers', 'Reports Reader'] });
    const plain = newUser();
    const before = graph.stats().operations.listRoleDefinitions;
    const roles = await directory.userPrivilegedRoles(admin.id);
    assert.deepEqual(
      roles.sort((a, b) => a.templateId.localeCompare(b.templateId)),
      [
        { displayName: 'Global Administrator', templateId: '62e90394-69f5-4237-9190-012177145e10', assignment: 'active' },
        { displayName: 'Privileged Role Administrator', templateId: 'e8611ab8-c189-46e8-94e1-60213ab1f814', assignment: 'eligible' },
      ],
    );
    assert.deepEqual(await directory.userPrivilegedRoles(reader.id), []);
    assert.deepEqual(await directory.userPrivilegedRoles(plain.id), []);
    assert.equal(graph.stats().operations.listRoleDefinitions - before, 1);
  });

  void test('a role read that fails fails the check (no silent "not privileged")', async () => {
    const { directory } = adapter({ maxAttempts: 1 });
    const admin = newUser({ directoryRoles: ['Global Administrator'] });
    graph.injectFaults([{ path: '/transitiveMemberOf/', status: 500 }]);
    assert.ok((await caught(directory.userPrivilegedRoles(admin.id))) instanceof TransientError);
    assert.equal((await caught(directory.userPrivilegedRoles('no-such-user'))).name, 'DirectoryRefusedError');
  });

  void test('group membership through checkMemberGroups', async () => {
    const { directory } = adapter();
    const member = newUser({ groups: ['2b1c0a9e-0000-4000-8000-000000000001'] });
    const outsider = newUser();
    assert.equal(await directory.isGroupMember(member.id, '2B1C0A9E-0000-4000-8000-000000000001'), true);
    assert.equal(await directory.isGroupMember(outsider.id, '2b1c0a9e-0000-4000-8000-000000000001'), false);
    assert.equal(await directory.isGroupMember('no-such-user', '2b1c0a9e-0000-4000-8000-000000000001'), false);
  });
});

void describe('throttling, faults and timeouts', () => {
  void test('at most maxConcurrent calls are in flight; the others wait for a free slot', async (t) => {
    // A server that holds every request until the test answers it, counting how many are open at once.
    const held: http.ServerResponse[] = [];
    let open = 0;
    let most = 0;
    const server = http.createServer((_req, res) => {
      open++;
      most = Math.max(most, open);
      res.on('close', () => open--);
      held.push(res);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const { port } = server.address() as AddressInfo;
    const directory = new GraphHardwareOathDirectory({
      baseUrl: `http://127.0.0.1:${port}`,
      credential: new CountingCredential(),
      maxConcurrent: 2,
      timeoutMs: 30_000,
    });
    const calls = Array.from({ length: 6 }, (_, i) => directory.getDevice(`device-${i}`));
    const turns = async (n: number) => {
      for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
    };
    for (let answered = 0; answered < 6; answered++) {
      while (held.length === 0) await turns(1);
      // Give a call over the limit every chance to reach the server.
      await turns(50);
      assert.ok(held.length <= 2, `${held.length} requests in flight`);
      const res = held.shift()!;
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'itemNotFound', message: 'no such device' } }));
    }
    assert.deepEqual(await Promise.all(calls), [undefined, undefined, undefined, undefined, undefined, undefined]);
    assert.equal(most, 2, 'two at a time: bounded, and used');
  });

  void test('429 with Retry-After is waited out as told, also for a create (a throttled call changed nothing)', async () => {
    const { directory, retries } = adapter();
    graph.injectFaults([{ method: 'POST', path: '/hardwareOathDevices', status: 429, retryAfter: '0.3', times: 2 }]);
    const input = newDevice();
    const device = await directory.createDevice(input);
    assert.deepEqual(
      retries.map((r) => [r.status, r.delayMs, r.retryAfter]),
      [
        [429, 300, true],
        [429, 300, true],
      ],
    );
    assert.equal((await directory.findDevicesBySerial(input.serialNumber)).length, 1);
    assert.equal(device.serialNumber, input.serialNumber);
  });

  void test('a 429 without Retry-After backs off exponentially; attempts are bounded and end in a TransientError', async () => {
    const { directory, retries } = adapter({ maxAttempts: 3 });
    const input = newDevice();
    graph.injectFaults([{ method: 'POST', path: '/hardwareOathDevices', status: 429, times: 3 }]);
    const error = await caught(directory.createDevice(input));
    assert.ok(error instanceof TransientError && !(error instanceof UncertainOutcomeError), String(error));
    assert.equal(error.status, 429);
    assert.deepEqual(
      retries.map((r) => r.retryAfter),
      [false, false],
    );
    assert.ok(
      retries[0]!.delayMs >= 15 && retries[0]!.delayMs <= 25 && retries[1]!.delayMs >= 30 && retries[1]!.delayMs <= 50,
      JSON.stringify(retries),
    );
    assert.deepEqual(await directory.findDevicesBySerial(input.serialNumber), []);
  });

  void test("a Retry-After beyond the adapter's limit goes back to the caller at once, with the wait", async () => {
    const { directory, retries } = adapter({ maxRetryAfterMs: 1_000 });
    graph.injectFaults([{ path: '/users/', status: 429, retryAfter: '120' }]);
    const requests = graph.stats().requests;
    const error = await caught(directory.findUser('anyone@contoso.com'));
    assert.ok(error instanceof TransientError, String(error));
    assert.equal(error.retryAfterMs, 120_000);
    assert.equal(retries.length, 0);
    assert.equal(graph.stats().requests - requests, 1);
  });

  void test('reads are retried through 500 and 503 (honouring Retry-After)', async () => {
    const { directory, retries } = adapter();
    const input = newDevice();
    await directory.createDevice(input);
    graph.injectFaults([
      { method: 'GET', path: '/hardwareOathDevices', status: 500 },
      { method: 'GET', path: '/hardwareOathDevices', status: 503, retryAfter: '0.2' },
    ]);
    assert.equal((await directory.findDevicesBySerial(input.serialNumber)).length, 1);
    assert.deepEqual(
      retries.map((r) => [r.status, r.retryAfter]),
      [
        [500, false],
        [503, true],
      ],
    );
    assert.equal(retries[1]?.delayMs, 200);
  });

  void test('a create answered 500 after it was applied is an UncertainOutcomeError, never re-sent; the lookup finds it', async () => {
    const { directory, retries } = adapter();
    const input = newDevice();
    graph.injectFaults([{ method: 'POST', path: '/hardwareOathDevices', status: 500, apply: true }]);
    const created = graph.stats().devicesCreated;
    const error = await caught(directory.createDevice(input));
    assert.ok(error instanceof UncertainOutcomeError, String(error));
    assert.match(error.message, /may have been applied/);
    assert.equal(retries.length, 0, 'not re-sent');
    assert.equal(graph.stats().devicesCreated - created, 1);
    assert.equal((await directory.findDevicesBySerial(input.serialNumber)).length, 1);
    assertNoSecret(error.message + String(error.stack), [input.secretKey]);
  });

  void test('a create answered 503 is uncertain too (with the Retry-After for the caller), and not re-sent', async () => {
    const { directory, retries } = adapter();
    const input = newDevice();
    graph.injectFaults([{ method: 'POST', path: '/hardwareOathDevices', status: 503, retryAfter: '0.5' }]);
    const error = await caught(directory.createDevice(input));
    assert.ok(error instanceof UncertainOutcomeError, String(error));
    assert.equal(error.retryAfterMs, 500);
    assert.equal(retries.length, 0);
    assert.deepEqual(await directory.findDevicesBySerial(input.serialNumber), [], 'this one was not applied');
  });

  void test('an assign that times out after it was applied is an UncertainOutcomeError; the device shows the assignment', async () => {
    const { directory, retries } = adapter({ timeoutMs: 400 });
    graph.setRealism({ timeoutMs: 10_000 });
    const user = newUser();
    const device = await directory.createDevice(newDevice());
    graph.injectFaults([{ method: 'POST', path: '/authentication/hardwareOathMethods', timeout: true, apply: true }]);
    const error = await caught(directory.assignDevice(user.id, device.id));
    assert.ok(error instanceof UncertainOutcomeError, String(error));
    assert.match(error.message, /no answer within 400 ms/);
    assert.equal(retries.length, 0);
    assert.equal((await directory.getDevice(device.id))?.assignedTo?.id, user.id);
  });

  void test('a read that times out is retried', async () => {
    const { directory, retries } = adapter({ timeoutMs: 400 });
    graph.setRealism({ timeoutMs: 10_000 });
    const user = newUser();
    graph.injectFaults([{ method: 'GET', path: '/users/', timeout: true }]);
    assert.equal((await directory.findUser(user.upn))?.id, user.id);
    assert.equal(retries.length, 1);
  });

  void test('nothing listening: the call never left, so even a create is retried, then a TransientError', async () => {
    const port = await closedPort();
    const credential = new CountingCredential();
    const retries: GraphRetryEvent[] = [];
    const directory = new GraphHardwareOathDirectory({
      baseUrl: `http://127.0.0.1:${port}`,
      credential,
      retryBaseMs: 10,
      maxAttempts: 3,
      onRetry: (e) => retries.push(e),
    });
    const error = await caught(directory.createDevice(newDevice()));
    assert.ok(error instanceof TransientError && !(error instanceof UncertainOutcomeError), String(error));
    assert.match(error.message, /could not connect \(ECONNREFUSED\)/);
    assert.equal(retries.length, 2);
  });
});

void describe('tokens', () => {
  void test('one token for the Graph scope, reused until near its expiry; a 401 fetches a new one once', async () => {
    const { directory, credential } = adapter();
    const user = newUser();
    for (let i = 0; i < 3; i++) await directory.findUser(user.upn);
    assert.deepEqual(credential.scopes, [GRAPH_SCOPE]);

    const expiring = new CountingCredential([
      { token: 'soon-gone', expiresOnTimestamp: Date.now() + 60_000 },
      { token: 'fresh', expiresOnTimestamp: Date.now() + 3_600_000 },
    ]);
    const refreshing = new GraphHardwareOathDirectory({ baseUrl: graph.url, credential: expiring });
    await refreshing.findUser(user.upn);
    await refreshing.findUser(user.upn);
    assert.equal(expiring.scopes.length, 2, 'a token within five minutes of expiry is replaced');

    // An empty token is refused with Graph's 401 challenge; the adapter asks the credential again, once.
    const empty = new CountingCredential([
      { token: '', expiresOnTimestamp: Date.now() + 3_600_000 },
      { token: 'good', expiresOnTimestamp: Date.now() + 3_600_000 },
    ]);
    const recovering = new GraphHardwareOathDirectory({ baseUrl: graph.url, credential: empty });
    assert.equal((await recovering.findUser(user.upn))?.id, user.id);
    assert.equal(empty.scopes.length, 2);
    const alwaysEmpty = new GraphHardwareOathDirectory({
      baseUrl: graph.url,
      credential: { getToken: () => Promise.resolve({ token: '', expiresOnTimestamp: Date.now() + 3_600_000 }) },
    });
    const refused = await caught(alwaysEmpty.findUser(user.upn));
    assert.ok(refused instanceof DirectoryRefusedError && refused.status === 401, String(refused));
  });

  void test('a nextLink to another origin is not followed (the token stays with Graph)', async () => {
    const bogus = `http://127.0.0.1:${await closedPort()}/beta/whatever`;
    // A one-off server forges a page whose nextLink points elsewhere.
    const http = await import('node:http');
    const server = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ value: [], '@odata.nextLink': bogus }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const address = server.address() as { port: number };
      const forged = new GraphHardwareOathDirectory({ baseUrl: `http://127.0.0.1:${address.port}`, credential: new CountingCredential() });
      const error = await caught(forged.findDevicesBySerial('X'));
      assert.match(error.message, /nextLink on another origin/);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
