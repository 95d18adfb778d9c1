// Graph mode's build (shared/pipeline/graph-export.ts, reached through BuildService) with the real Graph adapter
// against the Graph stand-in (dev/graph) and in-memory storage: who gets a device, idempotency after faults that
// apply then fail, duplicate runs, conflicts, throttling, and no secret in any report, log or problem.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { AccessToken, TokenCredential } from '@azure/identity';
import { startGraphStandIn, type GraphStandIn } from '../../dev/graph/server.js';
import { GraphHardwareOathDirectory } from '../../shared/azure/graph-directory.js';
import { AssignmentService } from '../../shared/pipeline/assignments.js';
import { BuildService } from '../../shared/pipeline/build.js';
import { CorrectionService } from '../../shared/pipeline/corrections.js';
import { TransientError } from '../../shared/pipeline/errors.js';
import type { GraphBuildResult } from '../../shared/pipeline/graph-export.js';
import { InventoryService } from '../../shared/pipeline/inventory-service.js';
import { IngestService } from '../../shared/pipeline/ingest.js';
import type { AssignmentEntity, HardwareOathDirectory, Logger, TokenEntity } from '../../shared/pipeline/ports.js';
import { Reconciler } from '../../shared/pipeline/reconcile.js';
import { PacedVault } from '../../shared/pipeline/vault.js';
import { VerifyService } from '../../shared/pipeline/verify.js';
import { ManualClock } from '../helpers/clock.js';
import { MemoryBlobStore, MemorySecretStore, MemoryTable } from '../helpers/memory-ports.js';
import { assertNoSecret, codeAt, newSecret, uniqueSerial } from '../dev/graph/helpers.js';

const containers = { seeds: 'seeds', assignments: 'assignments', imports: 'imports', reports: 'reports', quarantine: 'quarantine' };
const HEADER = 'upn,serial number,secret key,time interval,manufacturer,model\n';
const anyBearer: TokenCredential = {
  getToken: (): Promise<AccessToken> => Promise.resolve({ token: 'local', expiresOnTimestamp: 4_102_444_800_000 }),
};

let graph: GraphStandIn;
const standInLog: string[] = [];
const secretsUsed: string[] = [];

before(async () => {
  graph = await startGraphStandIn({ port: 0, log: (line) => standInLog.push(line) });
});
after(async () => {
  await graph?.close();
  assertNoSecret(standInLog.join('\n'), secretsUsed);
});
beforeEach(async () => {
  graph.setRealism({ throttling: false, errorRate: 0, timeoutRate: 0, timeoutMs: 500 });
  await fetch(`${graph.url}/_admin/faults`, { method: 'DELETE' });
});

let n = 0;
function upn(name: string): string {
  return `${name}.${++n}.${Math.random().toString(36).slice(2, 7)}@contoso.com`;
}

/** `standIn` and `time`: another Graph stand-in, and the clock and waits its adapter uses (real ones by default). */
function harness(
  settings: {
    allowPrivilegedUsers?: boolean;
    allowedGroupId?: string;
    standIn?: GraphStandIn;
    time?: { clock: ManualClock; wait: (ms: number) => Promise<void> };
    wrapDirectory?: (d: HardwareOathDirectory) => HardwareOathDirectory;
  } = {},
) {
  const clock = new ManualClock('2026-11-29T10:00:00Z');
  const blobs = new MemoryBlobStore(clock);
  const vault = new PacedVault(new MemorySecretStore(), { createBudget: 1000, readBudget: 1000, retry: { baseDelayMs: 1 } });
  const tokens = new MemoryTable<TokenEntity>();
  const assignmentTable = new MemoryTable<AssignmentEntity>();
  const lines: string[] = [];
  const log: Logger = {
    info: (m, d) => lines.push(`${m} ${JSON.stringify(d ?? {})}`),
    warn: (m, d) => lines.push(`${m} ${JSON.stringify(d ?? {})}`),
    error: (m, d) => lines.push(`${m} ${JSON.stringify(d ?? {})}`),
  };
  const ingest = new IngestService({
    blobs,
    vault,
    tokens,
    clock,
    log,
    containers,
    transportKeyPrefix: 'transport-',
    maxSeedFileBytes: 1_000_000,
    recoverDeletedSecrets: false,
    leaseWaitMs: 200,
  });
  const assignments = new AssignmentService({
    blobs,
    assignments: assignmentTable,
    tokens,
    clock,
    log,
    containers,
    maxFileBytes: 1_000_000,
  });
  const directory = new GraphHardwareOathDirectory({
    baseUrl: (settings.standIn ?? graph).url,
    credential: anyBearer,
    retryBaseMs: 5,
    timeoutMs: 300,
    maxRetryAfterMs: 5_000,
    ...settings.time,
  });
  const build = new BuildService({
    blobs,
    vault,
    tokens,
    assignments: assignmentTable,
    clock,
    log,
    containers,
    maxRows: 0,
    graph: {
      directory: settings.wrapDirectory ? settings.wrapDirectory(directory) : directory,
      allowPrivilegedUsers: settings.allowPrivilegedUsers ?? false,
      ...(settings.allowedGroupId && { allowedGroupId: settings.allowedGroupId }),
    },
  });
  let files = 0;
  const secretOf = new Map<string, string>();
  /** Ingests tokens with fresh secrets and assigns them. */
  const load = async (rows: { serial: string; upn: string }[]) => {
    const seeds = rows.map((r) => {
      const secret = newSecret();
      secretsUsed.push(secret);
      secretOf.set(r.serial, secret);
      return `,${r.serial},${secret},30,Contoso,C200\n`;
    });
    await blobs.write('seeds', `s${++files}.csv`, HEADER + seeds.join(''));
    await ingest.ingest(`s${files}.csv`);
    await blobs.write('assignments', `a${files}.csv`, 'upn,serial number\n' + rows.map((r) => `${r.upn},${r.serial}\n`).join(''));
    await assignments.ingest(`a${files}.csv`);
  };
  const runBuild = async () => (await build.build()) as GraphBuildResult;
  const everything = () => {
    const reports = blobs.names('reports').map((name) => blobs.text('reports', name) ?? '');
    return [...reports, ...lines].join('\n');
  };
  // Codes are checked at the real time here: the stand-in judges activation codes by its own (system) clock.
  const verifier = (withDirectory: boolean, activateFromSeed?: boolean) =>
    new VerifyService({
      tokens,
      secrets: vault,
      clock: new ManualClock(new Date()),
      log,
      lockoutLimit: 5,
      lockoutMinutes: 15,
      lockoutMaxMinutes: 60,
      ...(withDirectory && { directory }),
      ...(activateFromSeed !== undefined && { activateFromSeed }),
    });
  const reconciler = new Reconciler({ blobs, tokens, ingest, assignments, clock, log, containers, minAgeMinutes: 15, directory });
  const inventory = new InventoryService({ tokens, secrets: vault, clock, log, directory });
  const corrections = new CorrectionService({
    blobs,
    tokens,
    assignments: assignmentTable,
    clock,
    log,
    importsContainer: containers.imports,
    directory,
  });
  /** A one-row assignment list dropped in `assignments`, as an administrator would. */
  const assignByList = async (serial: string, to: string) => {
    await blobs.write('assignments', `a${++files}.csv`, `upn,serial number\n${to},${serial}\n`);
    return assignments.ingest(`a${files}.csv`);
  };
  return {
    tokens,
    blobs,
    load,
    runBuild,
    everything,
    clock,
    secretOf,
    verifier,
    reconciler,
    directory,
    inventory,
    corrections,
    assignByList,
  };
}

const devicesOf = (serial: string) => graph.devices().filter((d) => d.serialNumber.toLowerCase() === serial.toLowerCase());

describe('Graph mode build', () => {
  it('assigns valid rows and refuses a guest, a disabled or missing user, a privileged user and a conflict', async () => {
    const h = harness();
    const member = upn('member');
    const member2 = upn('member2');
    const guest = upn('guest');
    const disabled = upn('disabled');
    const admin = upn('admin');
    const other = upn('other');
    graph.seedUsers([
      { userPrincipalName: member },
      { userPrincipalName: member2 },
      { userPrincipalName: guest, userType: 'Guest' },
      { userPrincipalName: disabled, accountEnabled: false },
      { userPrincipalName: admin, directoryRoles: ['Global Administrator'] },
      { userPrincipalName: other },
    ]);
    const s = {
      ok1: uniqueSerial('A'),
      ok2: uniqueSerial('B'),
      guest: uniqueSerial('C'),
      disabled: uniqueSerial('D'),
      missing: uniqueSerial('E'),
      admin: uniqueSerial('F'),
      conflict: uniqueSerial('G'),
    };
    const otherSecret = newSecret();
    secretsUsed.push(otherSecret);
    graph.seedDevices([{ serialNumber: s.conflict, secretKey: otherSecret, assignedTo: other }]);
    await h.load([
      { serial: s.ok1, upn: member },
      { serial: s.ok2, upn: member2 },
      { serial: s.guest, upn: guest },
      { serial: s.disabled, upn: disabled },
      { serial: s.missing, upn: upn('nobody') },
      { serial: s.admin, upn: admin },
      { serial: s.conflict, upn: member },
    ]);
    const result = await h.runBuild();
    assert.equal(result.mode, 'graph');
    assert.deepEqual(result.files, []);
    assert.deepEqual(result.assigned.map((a) => a.serial).sort(), [s.ok1, s.ok2].sort());
    const codes: Record<string, string> = Object.fromEntries(result.notExported.map((p) => [p.serial ?? '', p.code]));
    assert.deepEqual(codes, {
      [s.guest]: 'GRAPH_USER_GUEST',
      [s.disabled]: 'GRAPH_USER_DISABLED',
      [s.missing]: 'GRAPH_USER_NOT_FOUND',
      [s.admin]: 'GRAPH_USER_PRIVILEGED',
      [s.conflict]: 'GRAPH_DEVICE_CONFLICT',
    });
    // Exactly the right devices in Entra.
    assert.equal(devicesOf(s.ok1)[0]?.assignedTo?.userPrincipalName, member);
    assert.equal(devicesOf(s.ok2)[0]?.assignedTo?.userPrincipalName, member2);
    for (const serial of [s.guest, s.disabled, s.missing, s.admin]) assert.equal(devicesOf(serial).length, 0, serial);
    assert.equal(devicesOf(s.conflict).length, 1);
    assert.equal(devicesOf(s.conflict)[0]?.assignedTo?.userPrincipalName, other);
    // Inventory: assigned with the device id; refused ones back in stored.
    const row = (await h.tokens.get(s.ok1))!.value;
    assert.equal(row.state, 'assigned');
    assert.equal(row.deviceId, devicesOf(s.ok1)[0]!.id);
    assert.equal(row.upn, member);
    for (const serial of [s.guest, s.admin, s.conflict]) assert.equal((await h.tokens.get(serial))!.value.state, 'stored');
    assertNoSecret(h.everything(), secretsUsed);
  });

  it('lets privileged users through only when allowed, and limits to the allowed group', async () => {
    const group = '4f1c2b7e-1d2a-4c3b-9e8f-0a1b2c3d4e5f';
    const admin = upn('admin');
    const inGroup = upn('in');
    const outside = upn('out');
    graph.seedUsers([
      { userPrincipalName: admin, directoryRoles: ['Global Administrator'], groups: [group] },
      { userPrincipalName: inGroup, groups: [group] },
      { userPrincipalName: outside },
    ]);
    const h = harness({ allowPrivilegedUsers: true, allowedGroupId: group });
    const s = { admin: uniqueSerial('P'), inGroup: uniqueSerial('Q'), outside: uniqueSerial('R') };
    await h.load([
      { serial: s.admin, upn: admin },
      { serial: s.inGroup, upn: inGroup },
      { serial: s.outside, upn: outside },
    ]);
    const result = await h.runBuild();
    assert.deepEqual(result.assigned.map((a) => a.serial).sort(), [s.admin, s.inGroup].sort());
    assert.deepEqual(
      result.notExported.map((p) => [p.serial, p.code]),
      [[s.outside, 'GRAPH_USER_NOT_IN_GROUP']],
    );
  });

  it('creates no second device when the create is applied and then fails, and adopts it on the next build', async () => {
    const h = harness();
    const user = upn('u');
    graph.seedUsers([{ userPrincipalName: user }]);
    const serial = uniqueSerial('X');
    await h.load([{ serial, upn: user }]);
    const before = graph.stats().devicesCreated;
    await fetch(`${graph.url}/_admin/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([{ method: 'POST', path: 'hardwareOathDevices', status: 500, apply: true }]),
    });
    const result = await h.runBuild();
    assert.deepEqual(
      result.assigned.map((a) => a.serial),
      [serial],
    );
    assert.equal(graph.stats().devicesCreated - before, 1);
    assert.equal(devicesOf(serial).length, 1);
    assert.equal(devicesOf(serial)[0]?.assignedTo?.userPrincipalName, user);
  });

  it('a failed assignment leaves the token stored, and the next build adopts the device it created', async () => {
    const h = harness();
    const user = upn('u');
    graph.seedUsers([{ userPrincipalName: user }]);
    const serial = uniqueSerial('Y');
    await h.load([{ serial, upn: user }]);
    // The assignment is refused as unavailable (not applied), every retry included.
    await fetch(`${graph.url}/_admin/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([{ method: 'POST', path: '/authentication/hardwareOathMethods', status: 503, times: 20 }]),
    });
    const first = await h.runBuild();
    assert.deepEqual(first.assigned, []);
    assert.equal(first.notExported[0]?.code, 'GRAPH_UNAVAILABLE');
    assert.equal((await h.tokens.get(serial))!.value.state, 'stored');
    assert.equal(devicesOf(serial).length, 1);
    assert.equal(devicesOf(serial)[0]?.assignedTo, null);
    await fetch(`${graph.url}/_admin/faults`, { method: 'DELETE' });
    const second = await h.runBuild();
    assert.deepEqual(
      second.assigned.map((a) => [a.serial, a.how]),
      [[serial, 'adopted']],
    );
    assert.equal(devicesOf(serial).length, 1);
    assert.equal(devicesOf(serial)[0]?.assignedTo?.userPrincipalName, user);
  });

  it('a build that dies after Entra assigned the token, before its row says so: the reconciler frees the claim, the next build adopts the device', async () => {
    // The first assignDevice answers, then its caller never runs again: what a killed process leaves behind.
    let assigned = (): void => undefined;
    const reached = new Promise<void>((resolve) => (assigned = resolve));
    let revive = (): void => undefined;
    const dead = new Promise<void>((resolve) => (revive = resolve));
    let frozen = false;
    const h = harness({
      wrapDirectory: (d) =>
        new Proxy(d, {
          get(target, property, receiver) {
            const value: unknown = Reflect.get(target, property, receiver);
            if (property !== 'assignDevice' || typeof value !== 'function')
              return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
            return async (...args: unknown[]) => {
              const result = (await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args)) as { methodId: string };
              if (!frozen) {
                frozen = true;
                assigned();
                await dead;
              }
              return result;
            };
          },
        }),
    });
    const user = upn('u');
    graph.seedUsers([{ userPrincipalName: user }]);
    const serial = uniqueSerial('K');
    await h.load([{ serial, upn: user }]);
    const first = h.runBuild();
    await reached;
    assert.equal(devicesOf(serial)[0]?.assignedTo?.userPrincipalName, user, 'Entra holds it for the user');
    assert.equal((await h.tokens.get(serial))!.value.state, 'exporting', 'the row still says exporting');

    // Past the reconciler's minimum age with no heartbeat since: the dead build's claim goes back to stored.
    h.clock.advance(20 * 60_000);
    const reconciled = await h.reconciler.run();
    assert.equal(reconciled.exportsReleased, 1);
    assert.equal((await h.tokens.get(serial))!.value.state, 'stored');
    const second = await h.runBuild();
    assert.deepEqual(
      second.assigned.map((a) => [a.serial, a.how, a.state]),
      [[serial, 'adopted', 'assigned']],
    );
    assert.equal(devicesOf(serial).length, 1, 'no second device');
    assert.equal(graph.users().find((u) => u.userPrincipalName === user)?.hardwareOathMethods, 1);

    // The dead build wakes up: it finds its claim gone and changes nothing.
    revive();
    const late = await first;
    assert.equal(late.assigned.length, 0);
    assert.ok(
      late.notExported.some((p) => p.code === 'EXPORT_CLAIM_LOST' && p.serial === serial),
      JSON.stringify(late.notExported),
    );
    const row = (await h.tokens.get(serial))!.value;
    assert.equal(row.state, 'assigned');
    assert.equal(row.deviceId, devicesOf(serial)[0]!.id);
  });

  it('adopts a device already held by the same user; a second build does nothing', async () => {
    const h = harness();
    const user = upn('u');
    graph.seedUsers([{ userPrincipalName: user }]);
    const serial = uniqueSerial('Z');
    const secret = newSecret();
    secretsUsed.push(secret);
    graph.seedDevices([{ serialNumber: serial, secretKey: secret, assignedTo: user, status: 'activated' }]);
    await h.load([{ serial, upn: user }]);
    const result = await h.runBuild();
    assert.deepEqual(
      result.assigned.map((a) => [a.serial, a.how, a.state]),
      [[serial, 'adopted', 'activated']],
    );
    assert.equal((await h.tokens.get(serial))!.value.state, 'activated');
    const again = await h.runBuild();
    assert.deepEqual(again.assigned, []);
    assert.equal(devicesOf(serial).length, 1);
  });

  it('reports a serial shared with a legacy CSV token as a conflict', async () => {
    const h = harness();
    const user = upn('u');
    graph.seedUsers([{ userPrincipalName: user }]);
    const serial = uniqueSerial('L');
    const secrets = [newSecret(), newSecret()];
    secretsUsed.push(...secrets);
    graph.seedDevices([
      { serialNumber: serial, secretKey: secrets[0]!, assignedTo: user, source: 'csv' },
      { serialNumber: serial, secretKey: secrets[1]!, source: 'graph' },
    ]);
    await h.load([{ serial, upn: user }]);
    const result = await h.runBuild();
    assert.deepEqual(
      result.notExported.map((p) => [p.serial, p.code]),
      [[serial, 'GRAPH_DEVICE_CONFLICT']],
    );
    assert.equal(devicesOf(serial).length, 2);
  });

  it('finishes under a 429 storm with exactly one device per token', async (t) => {
    // Graph's throttling window is 10 s: this stand-in and the adapter share a clock that the adapter's waits move,
    // so the storm passes without real waiting.
    const clock = new ManualClock('2026-11-29T10:00:00Z');
    const storm = await startGraphStandIn({ port: 0, now: () => clock.now().getTime(), log: (line) => standInLog.push(line) });
    t.after(() => storm.close());
    const waited: number[] = [];
    const wait = (ms: number): Promise<void> => {
      waited.push(ms);
      clock.advance(ms);
      return Promise.resolve();
    };
    const h = harness({ standIn: storm, time: { clock, wait } });
    const rows = Array.from({ length: 8 }, (_, i) => ({ serial: uniqueSerial(`T${i}`), upn: upn(`t${i}`) }));
    storm.seedUsers(rows.map((r) => ({ userPrincipalName: r.upn })));
    await h.load(rows);
    storm.setRealism({ throttling: true, requestsPer10s: 40, retryAfterSeconds: 0.5 });
    let result = await h.runBuild();
    // A call told to wait longer than the adapter waits goes back as unavailable: a later build finishes it.
    for (let i = 0; i < 10 && result.notExported.length > 0; i++) result = await h.runBuild();
    assert.deepEqual(result.notExported, []);
    storm.setRealism({ throttling: false });
    const devicesOfStorm = (serial: string) => storm.devices().filter((d) => d.serialNumber.toLowerCase() === serial.toLowerCase());
    for (const r of rows) {
      assert.equal(devicesOfStorm(r.serial).length, 1, r.serial);
      assert.equal(devicesOfStorm(r.serial)[0]?.assignedTo?.userPrincipalName, r.upn);
      assert.equal((await h.tokens.get(r.serial))!.value.state, 'assigned');
    }
    assert.ok(storm.stats().throttled > 0);
    assert.ok(
      waited.some((ms) => ms >= 500),
      'the adapter waited out Retry-After on the shared clock',
    );
  });

  it('verify of an assigned token activates it in Entra with the same code; a wrong code activates nothing', async () => {
    const h = harness();
    const user = upn('u');
    graph.seedUsers([{ userPrincipalName: user }]);
    const serial = uniqueSerial('V');
    await h.load([{ serial, upn: user }]);
    await h.runBuild();
    assert.equal(devicesOf(serial)[0]?.status, 'assigned');
    const verify = h.verifier(true);
    const secret = h.secretOf.get(serial)!;
    const now = Math.floor(Date.now() / 1000);
    const wrong = codeAt(secret, now) === '000000' ? '000001' : '000000';
    const rejected = await verify.verify(serial, { code: wrong });
    assert.equal(rejected.status, 'rejected');
    assert.equal(devicesOf(serial)[0]?.status, 'assigned');
    const accepted = await verify.verify(serial, { code: codeAt(secret, now) });
    assert.equal(accepted.status, 'accepted');
    assert.equal(accepted.status === 'accepted' && accepted.entraActivation, 'activated');
    assert.equal(devicesOf(serial)[0]?.status, 'activated');
    assert.equal((await h.tokens.get(serial))!.value.state, 'activated');
    assertNoSecret(h.everything(), secretsUsed);
  });

  it('GRAPH_ACTIVATE_FROM_SEED off (the default): activating from the stored seed is refused and changes nothing', async () => {
    const h = harness();
    const user = upn('u');
    graph.seedUsers([{ userPrincipalName: user }]);
    const serial = uniqueSerial('SO');
    await h.load([{ serial, upn: user }]);
    await h.runBuild();
    for (const verify of [h.verifier(true), h.verifier(true, false), h.verifier(false, true)]) {
      assert.deepEqual(await verify.activateFromSeed(serial), { status: 'disabled' });
    }
    assert.equal(devicesOf(serial)[0]?.status, 'assigned');
    assert.equal((await h.tokens.get(serial))!.value.state, 'assigned');
  });

  it('GRAPH_ACTIVATE_FROM_SEED on: an assigned token is activated in Entra with a code computed from its seed, once', async () => {
    const h = harness();
    const user = upn('u');
    graph.seedUsers([{ userPrincipalName: user }]);
    const [serial, waiting] = [uniqueSerial('SA'), uniqueSerial('SW')];
    await h.load([{ serial, upn: user }]);
    await h.runBuild();
    const verify = h.verifier(true, true);
    assert.deepEqual(await verify.activateFromSeed(uniqueSerial('NONE')), { status: 'not-found' });
    // The stand-in checks the code against the secret it was given: only the right code activates.
    assert.deepEqual(await verify.activateFromSeed(serial), { status: 'activated', serial });
    assert.equal(devicesOf(serial)[0]?.status, 'activated');
    const row = (await h.tokens.get(serial))!.value;
    assert.equal(row.state, 'activated');
    assert.match(row.history, /computed from the stored seed/);
    assert.deepEqual(await verify.activateFromSeed(serial), { status: 'refused', state: 'activated' });
    // A token not (yet) in Entra is refused too.
    await h.load([{ serial: waiting, upn: upn('nobody') }]);
    assert.deepEqual(await verify.activateFromSeed(waiting), { status: 'refused', state: 'stored' });
    assertNoSecret(h.everything(), secretsUsed);
  });

  it('GRAPH_ACTIVATE_FROM_SEED on, Graph refuses or is unavailable: the token stays assigned, with no code in the answer', async () => {
    const h = harness();
    const user = upn('u');
    graph.seedUsers([{ userPrincipalName: user }]);
    const serial = uniqueSerial('SF');
    await h.load([{ serial, upn: user }]);
    await h.runBuild();
    const verify = h.verifier(true, true);
    graph.injectFaults([{ method: 'POST', path: '/activate', status: 503, retryAfter: '1' }]);
    const unavailable = await verify.activateFromSeed(serial);
    assert.equal(unavailable.status, 'unavailable');
    assert.equal((await h.tokens.get(serial))!.value.state, 'assigned');
    // Unassigned behind the app's back: Graph answers 404 for the method.
    const row = (await h.tokens.get(serial))!.value;
    await h.directory.unassign(row.userId!, row.methodId!);
    const refused = await verify.activateFromSeed(serial);
    assert.equal(refused.status, 'entra-refused');
    assert.equal((await h.tokens.get(serial))!.value.state, 'assigned');
    const secret = h.secretOf.get(serial)!;
    const now = Math.floor(Date.now() / 1000);
    const codes = [-1, 0, 1].map((k) => codeAt(secret, now + 30 * k));
    for (const answer of [unavailable, refused]) {
      const text = JSON.stringify(answer);
      for (const code of codes) assert.ok(!text.includes(code), 'no code in the answer');
    }
    assertNoSecret(h.everything(), secretsUsed);
  });

  it('a drifted token: verify asks for nextCode, then activates in Entra with the later of the two codes', async () => {
    const h = harness();
    const user = upn('u');
    graph.seedUsers([{ userPrincipalName: user }]);
    const serial = uniqueSerial('N');
    await h.load([{ serial, upn: user }]);
    await h.runBuild();
    const verify = h.verifier(true);
    const secret = h.secretOf.get(serial)!;
    // Ten minutes fast: outside the sign-in window, inside the activation window.
    const at = Math.floor(Date.now() / 1000) + 600;
    const [code, nextCode] = [codeAt(secret, at), codeAt(secret, at + 30)];
    const asked = await verify.verify(serial, { code });
    assert.equal(asked.status === 'rejected' && asked.reason, 'confirmation-required', JSON.stringify(asked));
    assert.equal(devicesOf(serial)[0]?.status, 'assigned', 'nothing sent to Entra before the confirmation');
    const accepted = await verify.verify(serial, { code, nextCode });
    assert.equal(accepted.status === 'accepted' && accepted.entraActivation, 'activated', JSON.stringify(accepted));
    assert.equal(devicesOf(serial)[0]?.status, 'activated');
    // Entra took nextCode: that step is spent, so a sign-in with it is refused (it would pass had the first code been sent).
    assert.equal(graph.signIn(user, nextCode).accepted, false);
    assert.equal(graph.signIn(user, codeAt(secret, at + 60)).accepted, true);
  });

  it('verify without the Graph adapter (CSV mode) leaves an assigned token as it is in Entra', async () => {
    const h = harness();
    const user = upn('u');
    graph.seedUsers([{ userPrincipalName: user }]);
    const serial = uniqueSerial('W');
    await h.load([{ serial, upn: user }]);
    await h.runBuild();
    const accepted = await h.verifier(false).verify(serial, { code: codeAt(h.secretOf.get(serial)!, Math.floor(Date.now() / 1000)) });
    assert.equal(accepted.status, 'accepted');
    assert.equal(accepted.status === 'accepted' && accepted.entraActivation, undefined);
    assert.equal(devicesOf(serial)[0]?.status, 'assigned');
  });

  it('the reconciler mirrors an activation done in Entra by the user', async () => {
    const h = harness();
    const user = upn('u');
    graph.seedUsers([{ userPrincipalName: user }]);
    const serial = uniqueSerial('M');
    await h.load([{ serial, upn: user }]);
    await h.runBuild();
    const quiet = await h.reconciler.run();
    assert.equal(quiet.graphActivationsMirrored, 0);
    const row = (await h.tokens.get(serial))!.value;
    // The user activates it in My Security Info: straight to Entra, not through the app.
    await h.directory.activate(row.userId!, row.methodId!, codeAt(h.secretOf.get(serial)!, Math.floor(Date.now() / 1000)));
    const result = await h.reconciler.run();
    assert.equal(result.graphActivationsMirrored, 1);
    assert.equal((await h.tokens.get(serial))!.value.state, 'activated');
  });

  it('reassignment: the token is unassigned from the old user in Entra, and the build assigns the same device to the new one', async () => {
    const h = harness();
    const [old, next] = [upn('old'), upn('new')];
    graph.seedUsers([{ userPrincipalName: old }, { userPrincipalName: next }]);
    const serial = uniqueSerial('RA');
    await h.load([{ serial, upn: old }]);
    await h.runBuild();
    const before = devicesOf(serial)[0]!;
    const row = (await h.tokens.get(serial))!.value;
    await h.directory.activate(row.userId!, row.methodId!, codeAt(h.secretOf.get(serial)!, Math.floor(Date.now() / 1000)));
    await h.reconciler.run();
    assert.equal((await h.tokens.get(serial))!.value.state, 'activated');

    const changed = await h.corrections.setAssignment(serial, next);
    assert.equal(changed.status, 'changed');
    assert.ok(changed.status === 'changed' && changed.unassignedInEntra);
    assert.equal(changed.status === 'changed' && changed.unassignedInEntra?.upn, old);
    assert.equal(changed.status === 'changed' && changed.tokenState, 'stored');
    assert.equal(devicesOf(serial)[0]?.status, 'available', "back in Entra's inventory, not deleted");
    assert.equal(graph.users().find((u) => u.userPrincipalName === old)?.hardwareOathMethods, 0);

    const built = await h.runBuild();
    assert.deepEqual(
      built.assigned.map((a) => [a.serial, a.upn, a.deviceId, a.state, a.how]),
      [[serial, next, before.id, 'assigned', 'adopted']],
    );
    assert.equal(devicesOf(serial).length, 1, 'the same device, never a second one');
    assert.equal(devicesOf(serial)[0]?.assignedTo?.userPrincipalName, next);
    const after = (await h.tokens.get(serial))!.value;
    assert.equal(after.state, 'assigned');
    assert.equal(after.upn, next);
    assert.match(after.history, /unassigned-in-entra/);
    // The new holder activates it with a code from the token, like anyone.
    const verified = await h.verifier(true).verify(serial, { code: codeAt(h.secretOf.get(serial)!, Math.floor(Date.now() / 1000) + 30) });
    assert.equal(verified.status === 'accepted' && verified.entraActivation, 'activated');
    assertNoSecret(h.everything(), secretsUsed);
  });

  it('after the old assignment is deleted, a new assignment list row for the serial is taken and the build assigns it', async () => {
    const h = harness();
    const [old, next] = [upn('old'), upn('new')];
    graph.seedUsers([{ userPrincipalName: old }, { userPrincipalName: next }]);
    const serial = uniqueSerial('RD');
    await h.load([{ serial, upn: old }]);
    await h.runBuild();
    // While the old assignment stands, a list naming someone else is refused for that row.
    assert.equal((await h.assignByList(serial, next)).outcome, 'rejected');
    const removed = await h.corrections.setAssignment(serial, null);
    assert.equal(removed.status, 'deleted');
    assert.equal(removed.status === 'deleted' && removed.unassignedInEntra?.upn, old);
    assert.equal((await h.runBuild()).assigned.length, 0, 'no assignment, nothing to assign');
    assert.equal(devicesOf(serial)[0]?.assignedTo, null);
    assert.equal((await h.assignByList(serial, next)).outcome, 'completed');
    const built = await h.runBuild();
    assert.deepEqual(
      built.assigned.map((a) => [a.upn, a.how]),
      [[next, 'adopted']],
    );
    assert.equal(devicesOf(serial).length, 1);
    assert.equal(devicesOf(serial)[0]?.assignedTo?.userPrincipalName, next);
    // Deleting again finds nothing to do.
    assert.equal((await h.corrections.setAssignment(serial, next)).status, 'unchanged');
  });

  it('a reassignment Graph could not carry out changes no token row; the same request again finishes it', async () => {
    const h = harness();
    const [old, next] = [upn('old'), upn('new')];
    graph.seedUsers([{ userPrincipalName: old }, { userPrincipalName: next }]);
    const serial = uniqueSerial('RF');
    await h.load([{ serial, upn: old }]);
    await h.runBuild();
    graph.injectFaults([{ method: 'DELETE', path: '/hardwareOathMethods/', status: 500, times: 10 }]);
    await assert.rejects(h.corrections.setAssignment(serial, next), TransientError);
    await fetch(`${graph.url}/_admin/faults`, { method: 'DELETE' });
    const stuck = (await h.tokens.get(serial))!.value;
    assert.equal(stuck.state, 'assigned');
    assert.equal(stuck.upn, old);
    assert.equal(devicesOf(serial)[0]?.assignedTo?.userPrincipalName, old);
    assert.equal((await h.runBuild()).assigned.length, 0, 'the build leaves a token held in Entra alone');
    const again = await h.corrections.setAssignment(serial, next);
    assert.equal(again.status, 'changed');
    assert.equal(again.status === 'changed' && again.unassignedInEntra?.upn, old);
    assert.deepEqual(
      (await h.runBuild()).assigned.map((a) => a.upn),
      [next],
    );
    assert.equal(devicesOf(serial).length, 1);
  });

  it('retire unassigns and deletes the device in Entra, and can be sent again', async () => {
    const h = harness();
    const user = upn('u');
    graph.seedUsers([{ userPrincipalName: user }]);
    const serial = uniqueSerial('R');
    await h.load([{ serial, upn: user }]);
    await h.runBuild();
    assert.equal(devicesOf(serial).length, 1);
    assert.equal((await h.inventory.retire(serial, 'lost')).status, 'retired');
    assert.equal(devicesOf(serial).length, 0);
    assert.equal(graph.users().find((u) => u.userPrincipalName === user)?.hardwareOathMethods, 0);
    assert.equal((await h.inventory.retire(serial, 'lost')).status, 'already-retired');
  });
});
