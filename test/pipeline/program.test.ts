// ProgramService over the pipeline's in-memory ports (and, last, over the real Key Vault adapter and stand-in):
// a programmed token is stored as an ingested one, requests are all or nothing, reprogramming replaces a version.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parse } from 'csv-parse/sync';
import { createLocalSecretClient } from '../../dev/keyvault/client.js';
import { KeyVaultSecretStore } from '../../shared/azure/secret-store.js';
import { readBoundedJson } from '../../shared/app/http.js';
import { reportOfBatch } from '../../shared/app/console/data.js';
import { decodeBase32 } from '../../shared/core/encoding.js';
import { totpCode } from '../../shared/core/totp.js';
import { BuildService } from '../../shared/pipeline/build.js';
import { ConflictError, PreconditionFailedError, TransientError } from '../../shared/pipeline/errors.js';
import { IngestService } from '../../shared/pipeline/ingest.js';
import { secretNameForSerial } from '../../shared/pipeline/secret-names.js';
import type {
  AssignmentEntity,
  Logger,
  SecretStore,
  SecretValue,
  SetSecretOptions,
  TokenEntity,
  SecretVersionInfo,
} from '../../shared/pipeline/ports.js';
import {
  parseProgramRequest,
  ProgramService,
  type ProgramRequest,
  type ProgramResult,
  type ProvisioningPackage,
} from '../../shared/pipeline/program.js';
import { PacedVault } from '../../shared/pipeline/vault.js';
import { VerifyService, type VerifyOutcome } from '../../shared/pipeline/verify.js';
import { ManualClock } from '../helpers/clock.js';
import { MemoryBlobStore, MemorySecretStore, MemoryTable } from '../helpers/memory-ports.js';
import { leakHits, piecesOf, secretForms } from '../helpers/secret-scan.js';
import { startTestVault } from '../azure/helpers.js';

const containers = { seeds: 'seeds', assignments: 'assignments', imports: 'imports', reports: 'reports', quarantine: 'quarantine' };
const T0 = '2026-11-29T10:00:00Z';

/** Fails chosen set calls: `landed` ones reach the store first (an answer lost on the way back). */
class FaultySecrets implements SecretStore {
  private sets = 0;
  readonly faults = new Map<number, { error: Error; landed: boolean }>();

  constructor(readonly inner: SecretStore) {}

  get(name: string, version?: string): Promise<SecretValue | undefined> {
    return this.inner.get(name, version);
  }

  async set(name: string, value: string, options: SetSecretOptions): Promise<{ version: string }> {
    const fault = this.faults.get(++this.sets);
    if (!fault) return this.inner.set(name, value, options);
    if (fault.landed) await this.inner.set(name, value, options);
    throw fault.error;
  }

  disable(name: string, version: string): Promise<void> {
    return this.inner.disable(name, version);
  }

  recover(name: string): Promise<void> {
    return this.inner.recover(name);
  }

  listVersions(name: string): Promise<SecretVersionInfo[]> {
    return this.inner.listVersions(name);
  }
}

/** A table whose insert, replace or delete can be made to fail, or to let "another process" act first. */
class HookedTable extends MemoryTable<TokenEntity> {
  onInsert?: (key: string) => Promise<void> | void;
  beforeReplace?: (key: string) => Promise<void> | void;
  onDelete?: (key: string) => void;

  override async insert(key: string, value: TokenEntity): Promise<string> {
    await this.onInsert?.(key);
    return super.insert(key, value);
  }

  override async replace(key: string, value: TokenEntity, etag: string): Promise<string> {
    const hook = this.beforeReplace;
    this.beforeReplace = undefined;
    await hook?.(key);
    return super.replace(key, value, etag);
  }

  override delete(key: string, etag?: string): Promise<boolean> {
    this.onDelete?.(key);
    return super.delete(key, etag);
  }
}

function harness(options: { secrets?: SecretStore; concurrency?: number } = {}) {
  const clock = new ManualClock(T0);
  const blobs = new MemoryBlobStore(clock);
  const memory = new MemorySecretStore();
  const faulty = new FaultySecrets(options.secrets ?? memory);
  const vault = new PacedVault(faulty, { createBudget: 10_000, readBudget: 10_000, retry: { baseDelayMs: 1 } });
  const tokens = new HookedTable();
  const assignments = new MemoryTable<AssignmentEntity>();
  const lines: string[] = [];
  const log: Logger = {
    info: (m, d) => lines.push(`${m} ${JSON.stringify(d ?? {})}`),
    warn: (m, d) => lines.push(`${m} ${JSON.stringify(d ?? {})}`),
    error: (m, d) => lines.push(`${m} ${JSON.stringify(d ?? {})}`),
  };
  const program = new ProgramService({
    vault,
    tokens,
    blobs,
    clock,
    log,
    containers,
    issuer: 'Entra ID',
    concurrency: options.concurrency,
  });
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
  const verify = new VerifyService({ tokens, secrets: vault, clock, log, lockoutLimit: 100, lockoutMinutes: 15, lockoutMaxMinutes: 1440 });
  const build = new BuildService({ blobs, vault, tokens, assignments, clock, log, containers, maxRows: 0 });
  return { clock, blobs, memory, faulty, vault, tokens, assignments, lines, log, program, ingest, verify, build };
}

const request = (serials: string[], extra: Partial<ProgramRequest> = {}): ProgramRequest => ({
  tokens: serials.map((serial) => ({ serial, manufacturer: 'Token2', model: 'C301' })),
  algorithm: 'SHA1',
  digits: 6,
  period: 30,
  ...extra,
});

function programmed(result: ProgramResult): ProvisioningPackage[] {
  assert.equal(result.kind, 'programmed', JSON.stringify(result));
  return result.tokens;
}

const accepted = (outcome: VerifyOutcome) => outcome.status === 'accepted';
const nowSeconds = (clock: ManualClock) => Math.floor(clock.now().getTime() / 1000);
const codeOf = (pkg: ProvisioningPackage, at: number, period = 30, digits = 6, algorithm: 'SHA1' | 'SHA256' = 'SHA1') =>
  totpCode({ secret: decodeBase32(pkg.secretBase32)!, algorithm, digits, period }, at);

void describe('programming tokens', () => {
  void test('a programmed token is stored exactly as an ingested one: secret name, content type, tags, inventory row', async () => {
    const h = harness();
    await h.blobs.write(
      'seeds',
      'vendor.csv',
      'serial number,secret key,time interval,manufacturer,model\nING1,CZU6XXGHCCGCOL6YO3WW472WEWB34FVJ,30,Token2,C301\n',
    );
    await h.ingest.ingest('vendor.csv');
    const [pkg] = programmed(await h.program.program(request(['PRG1'])));

    const ingested = (await h.memory.get(secretNameForSerial('ING1')))!;
    const minted = (await h.memory.get(secretNameForSerial('PRG1')))!;
    assert.equal(minted.value, pkg!.secretBase32, 'the vault holds the delivered secret, canonical base32');
    assert.equal(minted.contentType, ingested.contentType);
    assert.deepEqual(Object.keys(minted.tags).sort(), Object.keys(ingested.tags).sort());
    const { serial: _a, batch: batchTag, ...mintedTags } = minted.tags;
    const { serial: _b, batch: _c, ...ingestedTags } = ingested.tags;
    assert.deepEqual(mintedTags, ingestedTags);

    const row = h.tokens.rows.get('PRG1')!.value;
    const reference = h.tokens.rows.get('ING1')!.value;
    assert.deepEqual(Object.keys(row).sort(), Object.keys(reference).sort());
    const differing = Object.keys(row)
      .filter((k) => row[k as keyof TokenEntity] !== reference[k as keyof TokenEntity])
      .sort();
    assert.deepEqual(differing, ['batch', 'history', 'secretName', 'secretVersion', 'serial']);
    assert.equal(row.state, 'stored');
    assert.equal(row.secretBytes, 20);
    assert.equal(row.secretVersion, minted.version);
    assert.match(row.batch, /^programmed@\d{8}T\d{6}Z-[0-9a-f]{12}$/);
    assert.equal(batchTag, row.batch);
    assert.deepEqual(JSON.parse(row.history), [{ at: new Date(T0).toISOString(), event: 'stored', detail: row.batch }]);

    assert.equal(pkg!.secretHex, Buffer.from(decodeBase32(pkg!.secretBase32)!).toString('hex'));
    assert.match(
      pkg!.otpauthUri,
      new RegExp(`^otpauth://totp/Entra%20ID:PRG1\\?secret=${pkg!.secretBase32}&issuer=Entra%20ID&algorithm=SHA1&digits=6&period=30$`),
    );
    assert.match(pkg!.qrSvg, /^<svg /);
  });

  void test('SHA256, 8 digits, 60 s: a 256-bit secret, and the settings in the row, the tags and the URI', async () => {
    const h = harness();
    const [pkg] = programmed(await h.program.program(request(['P256'], { algorithm: 'SHA256', digits: 8, period: 60 })));
    assert.equal(decodeBase32(pkg!.secretBase32)!.length, 32);
    const row = h.tokens.rows.get('P256')!.value;
    assert.deepEqual([row.algorithm, row.digits, row.period, row.secretBytes], ['SHA256', 8, 60, 32]);
    assert.deepEqual((await h.memory.get(secretNameForSerial('P256')))!.tags.algorithm, 'SHA256');
    assert.match(pkg!.otpauthUri, /&algorithm=SHA256&digits=8&period=60$/);
    const t = nowSeconds(h.clock);
    assert.equal(accepted(await h.verify.verify('P256', { code: codeOf(pkg!, t, 60, 8, 'SHA256') })), true);
  });

  void test('the secret gives the codes verify accepts, and an assignment puts it in the import CSV', async () => {
    const h = harness();
    const [a, b] = programmed(await h.program.program(request(['PA', 'PB'])));
    const t = nowSeconds(h.clock);
    assert.equal(accepted(await h.verify.verify('PA', { code: codeOf(a!, t) })), true);
    await h.assignments.insert('PB', { serial: 'PB', upn: 'ana@contoso.com', sourceFile: 'a.csv', line: 2, createdAt: T0 });
    const built = await h.build.build();
    assert.deepEqual(
      built.exported.map((e) => e.serial),
      ['PB'],
    );
    const rows = parse<Record<string, string>>(h.blobs.text('imports', built.files[0]!)!, { columns: true });
    assert.deepEqual(
      rows.map((r) => [r.upn, r['serial number'], r['secret key']]),
      [['ana@contoso.com', 'PB', b!.secretBase32]],
    );
  });

  void test('the report lists serials and settings only', async () => {
    const h = harness();
    const result = await h.program.program(request(['R1', 'R2']));
    const pkgs = programmed(result);
    const reportName = (result as { report: string }).report;
    assert.match(reportName, /^programmed-\d{8}T\d{6}Z-[0-9a-f]{12}\.json$/);
    const report = JSON.parse(h.blobs.text('reports', reportName)!) as {
      kind: string;
      items: { serial: string }[];
      counts: Record<string, number>;
    };
    assert.equal(report.kind, 'programmed');
    assert.deepEqual(
      report.items.map((i) => i.serial),
      ['R1', 'R2'],
    );
    assert.deepEqual(report.counts, { programmed: 2 });
    assert.ok(h.blobs.text('reports', reportName.replace(/\.json$/, '.html')));
    for (const pkg of pkgs) assert.ok(!h.blobs.text('reports', reportName)!.includes(pkg.secretBase32.slice(0, 12)));
  });

  void test("the console finds a programmed token's report from its batch, by the name the service wrote", async () => {
    const h = harness();
    const result = await h.program.program(request(['RR1']));
    programmed(result);
    const batch = h.tokens.rows.get('RR1')!.value.batch;
    assert.equal(reportOfBatch(batch), (result as { report: string }).report);
  });
});

void describe('all or nothing', () => {
  void test('a serial already in the inventory refuses the whole request before any vault write', async () => {
    const h = harness();
    programmed(await h.program.program(request(['OLD1'])));
    const writes = h.memory.sets;
    const result = await h.program.program(request(['NEW1', 'OLD1', 'NEW2']));
    assert.equal(result.kind, 'refused');
    assert.deepEqual(
      [result.kind === 'refused' && result.code, result.kind === 'refused' && result.serials],
      ['TOKEN_ALREADY_EXISTS', ['OLD1']],
    );
    assert.match((result as { message: string }).message, /in the inventory: "OLD1".*Nothing was programmed\./s);
    assert.equal(h.memory.sets, writes, 'no secret written');
    assert.deepEqual([...h.tokens.rows.keys()], ['OLD1']);
  });

  void test('a serial with an active vault secret but no inventory row is refused too', async () => {
    const h = harness();
    await h.memory.set(secretNameForSerial('ORPHAN'), 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ', { contentType: 'x', tags: {} });
    const result = await h.program.program(request(['N1', 'ORPHAN']));
    assert.equal(result.kind, 'refused');
    assert.deepEqual((result as { serials: string[] }).serials, ['ORPHAN']);
    assert.match((result as { message: string }).message, /active Key Vault secret without an inventory row/);
    assert.equal(h.memory.versions(secretNameForSerial('N1')), 0);
  });

  void test('a vault failure part-way disables every version written and leaves no row; the same request then succeeds', async () => {
    const h = harness({ concurrency: 1 });
    h.faulty.faults.set(3, { error: new Error('KeyVaultError: Forbidden'), landed: false });
    const serials = ['F1', 'F2', 'F3', 'F4'];
    await assert.rejects(h.program.program(request(serials)), /Forbidden/);
    assert.equal(h.tokens.rows.size, 0);
    for (const serial of ['F1', 'F2']) {
      const name = secretNameForSerial(serial);
      assert.deepEqual(
        h.memory.history(name).map((v) => v.enabled),
        [false],
        `${serial}: its one version is disabled`,
      );
      assert.equal(await h.memory.get(name), undefined);
    }
    assert.equal(h.memory.versions(secretNameForSerial('F3')), 0);
    assert.equal(h.memory.versions(secretNameForSerial('F4')), 0, 'nothing started after the failure');
    assert.ok(h.lines.some((l) => l.startsWith('Programming failed part-way and was rolled back')));

    const again = programmed(await h.program.program(request(serials)));
    for (const pkg of again) {
      assert.equal((await h.memory.get(secretNameForSerial(pkg.serial)))?.value, pkg.secretBase32);
      assert.equal(h.tokens.rows.get(pkg.serial)?.value.secretVersion, (await h.memory.get(secretNameForSerial(pkg.serial)))?.version);
    }
  });

  void test('a write that landed but answered with an error is found by its value and disabled', async () => {
    const h = harness({ concurrency: 1 });
    h.faulty.faults.set(2, { error: new Error('KeyVaultError: connection lost after write'), landed: true });
    await assert.rejects(h.program.program(request(['L1', 'L2'])));
    const history = h.memory.history(secretNameForSerial('L2'));
    assert.equal(history.length, 1, 'the landed write');
    assert.equal(history[0]!.enabled, false);
  });

  void test('a transient failure whose write landed is retried from a read: one version, no rollback', async () => {
    const h = harness();
    h.faulty.faults.set(1, { error: new TransientError('Key Vault set timed out', 503), landed: true });
    const [pkg] = programmed(await h.program.program(request(['AMB1'])));
    assert.equal(h.memory.versions(secretNameForSerial('AMB1')), 1);
    assert.equal((await h.memory.get(secretNameForSerial('AMB1')))?.value, pkg!.secretBase32);
  });

  void test('a soft-deleted secret name is a 409 for the whole request, the others rolled back', async () => {
    const h = harness({ concurrency: 1 });
    h.memory.deleted.add(secretNameForSerial('DEL1').toLowerCase());
    const result = await h.program.program(request(['OK1', 'DEL1']));
    assert.equal(result.kind, 'refused');
    assert.equal((result as { code: string }).code, 'VAULT_SECRET_DELETED');
    assert.deepEqual(
      h.memory.history(secretNameForSerial('OK1')).map((v) => v.enabled),
      [false],
    );
    assert.equal(h.tokens.rows.size, 0);
  });

  void test('an inventory row that appears part-way (another writer) rolls back the rows and secrets of this request', async () => {
    const h = harness({ concurrency: 1 });
    h.tokens.onInsert = (key) => {
      if (key === 'C3') throw new ConflictError('exists');
    };
    const result = await h.program.program(request(['C1', 'C2', 'C3']));
    assert.equal(result.kind, 'refused');
    assert.deepEqual((result as { serials: string[] }).serials, ['C3']);
    assert.equal(h.tokens.rows.size, 0, 'C1 and C2 were inserted, then deleted');
    for (const serial of ['C1', 'C2', 'C3'])
      assert.deepEqual(
        h.memory.history(secretNameForSerial(serial)).map((v) => v.enabled),
        [false],
      );
  });

  void test('a table failure part-way is rethrown after the rollback; what could not be undone is logged and said', async () => {
    const h = harness({ concurrency: 1 });
    h.tokens.onInsert = (key) => {
      if (key === 'T3') throw new TransientError('table busy', 503);
    };
    await assert.rejects(h.program.program(request(['T1', 'T2', 'T3'])), TransientError);
    assert.equal(h.tokens.rows.size, 0);

    const h2 = harness({ concurrency: 1 });
    h2.tokens.onInsert = (key) => {
      if (key === 'U2') throw new ConflictError('exists');
    };
    h2.tokens.onDelete = () => {
      throw new PreconditionFailedError('changed meanwhile');
    };
    const result = await h2.program.program(request(['U1', 'U2']));
    assert.match(
      (result as { message: string }).message,
      /The rollback left 1 inventory rows and 0 secret versions of batch programmed@.* behind/,
    );
    assert.ok(h2.lines.some((l) => l.startsWith('Rollback could not delete an inventory row') && l.includes('"serial":"U1"')));
  });
});

void describe('reprogramming', () => {
  void test('a stored token gets a new secret: a new version recorded, the old one disabled, old codes refused', async () => {
    const h = harness();
    const [old] = programmed(await h.program.program(request(['RP1'])));
    const name = secretNameForSerial('RP1');
    const oldVersion = h.tokens.rows.get('RP1')!.value.secretVersion;
    h.clock.advance(60_000);
    const result = await h.program.reprogram('RP1');
    assert.equal(result.kind, 'reprogrammed');
    const [pkg] = (result as { tokens: ProvisioningPackage[] }).tokens;
    assert.notEqual(pkg!.secretBase32, old!.secretBase32);
    const row = h.tokens.rows.get('RP1')!.value;
    assert.notEqual(row.secretVersion, oldVersion);
    assert.equal(row.state, 'stored');
    assert.match(row.batch, /^programmed@/);
    assert.equal((JSON.parse(row.history) as { event: string }[]).at(-1)!.event, 'reprogrammed');
    assert.deepEqual(
      h.memory.history(name).map((v) => [v.version, v.enabled]),
      [
        [oldVersion, false],
        [row.secretVersion, true],
      ],
    );
    assert.equal((await h.memory.get(name))?.value, pkg!.secretBase32);

    const t = nowSeconds(h.clock);
    // Two consecutive codes of the old secret: the new one matches both by chance about once in 10^12.
    const stale = await h.verify.verify('RP1', { code: codeOf(old!, t), nextCode: codeOf(old!, t + 30) });
    assert.equal(accepted(stale), false);
    assert.equal(accepted(await h.verify.verify('RP1', { code: codeOf(pkg!, t) })), true);
  });

  void test('a token verified before reprogramming starts over: no replay floor, drift or activation from the old secret', async () => {
    const h = harness();
    const [old] = programmed(await h.program.program(request(['RP2'])));
    assert.equal(accepted(await h.verify.verify('RP2', { code: codeOf(old!, nowSeconds(h.clock)) })), true);
    assert.notEqual(h.tokens.rows.get('RP2')!.value.lastAcceptedStep, null);
    await h.program.reprogram('RP2');
    const row = h.tokens.rows.get('RP2')!.value;
    assert.deepEqual([row.lastAcceptedStep, row.activatedBuildId, row.driftSeconds], [null, null, null]);
  });

  void test('only a stored TOTP token whose secret is not deleted: the others are refused, nothing written', async () => {
    const h = harness();
    programmed(await h.program.program(request(['S1'])));
    const row = h.tokens.rows.get('S1')!;
    for (const state of ['exporting', 'exported', 'imported', 'retired'] as const) {
      row.value = { ...row.value, state };
      const writes = h.memory.sets;
      const result = await h.program.reprogram('S1');
      assert.equal(result.kind, 'refused');
      assert.deepEqual([(result as { status: number }).status, (result as { code: string }).code], [409, 'TOKEN_STATE_INVALID']);
      assert.equal(h.memory.sets, writes);
    }
    row.value = { ...row.value, state: 'stored' };
    h.memory.deleted.add(secretNameForSerial('S1').toLowerCase());
    const deleted = await h.program.reprogram('S1');
    assert.deepEqual([(deleted as { status: number }).status, (deleted as { code: string }).code], [409, 'VAULT_SECRET_DELETED']);
    h.memory.deleted.clear();
    row.value = { ...row.value, state: 'stored', type: 'hotp' };
    assert.equal(((await h.program.reprogram('S1')) as { code: string }).code, 'TOKEN_NOT_TOTP');
    assert.deepEqual(await h.program.reprogram('NOPE'), { kind: 'not-found' });
  });

  void test('a build that claims the token meanwhile wins: the new version is disabled, the old one still read', async () => {
    const h = harness();
    const [old] = programmed(await h.program.program(request(['RC1'])));
    const before = h.tokens.rows.get('RC1')!.value;
    h.tokens.beforeReplace = (key) => {
      const row = h.tokens.rows.get(key)!;
      row.value = { ...row.value, state: 'exporting', buildId: 'b1' };
      row.etag = 'claimed';
    };
    const result = await h.program.reprogram('RC1');
    assert.equal(result.kind, 'refused');
    assert.match((result as { message: string }).message, /became exporting while it was being reprogrammed.*Nothing was changed\./);
    const name = secretNameForSerial('RC1');
    assert.deepEqual(
      h.memory.history(name).map((v) => v.enabled),
      [true, false],
    );
    assert.equal((await h.memory.get(name))?.value, old!.secretBase32, 'the newest enabled version is the old one again');
    assert.equal(h.tokens.rows.get('RC1')!.value.secretVersion, before.secretVersion);
  });

  void test('verify and a build that run while the new version is written but not yet recorded use the recorded secret', async () => {
    const h = harness();
    const [old] = programmed(await h.program.program(request(['RB1'])));
    await h.assignments.insert('RB1', { serial: 'RB1', upn: 'ben@contoso.com', sourceFile: 'b.csv', line: 2, createdAt: T0 });
    let file = '';
    let verifiedOld = false;
    h.tokens.beforeReplace = async () => {
      // The new version is in the vault, newest and enabled; the row still names the old one, and so do verify and builds.
      verifiedOld = accepted(await h.verify.verify('RB1', { code: codeOf(old!, nowSeconds(h.clock)) }));
      file = (await h.build.build()).files[0]!;
    };
    const result = await h.program.reprogram('RB1');
    assert.equal(verifiedOld, true, 'verify read the recorded version');
    assert.equal(result.kind, 'refused', 'the build claimed the token first');
    const rows = parse<Record<string, string>>(h.blobs.text('imports', file)!, { columns: true });
    assert.deepEqual(
      rows.map((r) => r['secret key']),
      [old!.secretBase32],
      'the CSV carries the secret the token was burned with',
    );
    assert.equal((await h.memory.get(secretNameForSerial('RB1')))?.value, old!.secretBase32);
  });

  void test('a row changed meanwhile but still stored (a verify check) is re-read and the reprogramming goes through', async () => {
    const h = harness();
    programmed(await h.program.program(request(['RV1'])));
    h.tokens.beforeReplace = (key) => {
      const row = h.tokens.rows.get(key)!;
      row.value = { ...row.value, failedAttempts: 1 };
      row.etag = 'verified';
    };
    const result = await h.program.reprogram('RV1');
    assert.equal(result.kind, 'reprogrammed');
    assert.equal(h.tokens.rows.get('RV1')!.value.failedAttempts, 1, 'the verify check is kept');
  });
});

void describe('secrets never leave through logs, reports, inventory or refusals', () => {
  void test('scan for every minted secret, delivered or rolled back', async () => {
    const h = harness({ concurrency: 1 });
    const answers: string[] = [];
    const keep = (r: unknown) => answers.push(JSON.stringify(r));
    const pkgs = programmed(await h.program.program(request(['LK1', 'LK2', 'LK3'], { algorithm: 'SHA256' })));
    keep(await h.program.program(request(['LK4', 'LK1'])));
    h.faulty.faults.set(h.memory.sets + 2, { error: new Error('boom'), landed: false });
    await h.program.program(request(['LK5', 'LK6', 'LK7'])).catch((e: Error) => keep(e.message));
    const re = await h.program.reprogram('LK2');
    h.tokens.beforeReplace = (key) => {
      const row = h.tokens.rows.get(key)!;
      row.value = { ...row.value, state: 'exported' };
      row.etag = 'x';
    };
    keep(await h.program.reprogram('LK3'));

    const secrets = [...h.memory.secrets.values()].flat().map((v) => decodeBase32(v.value)!);
    // 3 delivered, 1 rolled back (LK5; LK6 failed before the vault, LK7 never started), 1 reprogrammed, 1 taken back.
    assert.equal(secrets.length, 6);
    assert.ok(pkgs.every((p) => secrets.some((s) => Buffer.from(s).toString('hex') === p.secretHex)));
    assert.equal(re.kind, 'reprogrammed');
    const pieces = piecesOf(secrets.flatMap((s) => secretForms(s)));
    const surfaces: [string, string][] = [
      ['log', h.lines.join('\n')],
      ['refusals', answers.join('\n')],
      ['inventory', JSON.stringify([...h.tokens.rows.values()])],
      ...h.blobs.names('reports').map((n): [string, string] => [`reports/${n}`, h.blobs.text('reports', n)!]),
      ['vault tags', JSON.stringify([...h.memory.secrets.values()].flat().map((v) => v.tags))],
    ];
    assert.ok(h.blobs.names('reports').length >= 4);
    for (const [where, text] of surfaces) assert.deepEqual(leakHits(pieces, text), [], where);
  });
});

void describe('request checks', () => {
  const ok = (value: unknown, max = 500) => {
    const parsed = parseProgramRequest(value, max);
    assert.ok(parsed.ok, JSON.stringify(parsed));
    return parsed.request;
  };
  const refused = (value: unknown, max = 500) => {
    const parsed = parseProgramRequest(value, max);
    assert.ok(!parsed.ok, 'expected a refusal');
    return parsed.problem;
  };

  void test('defaults and choices', () => {
    assert.deepEqual(ok({ tokens: [{ serial: 'A' }] }), {
      tokens: [{ serial: 'A', manufacturer: '', model: '' }],
      algorithm: 'SHA1',
      digits: 6,
      period: 30,
    });
    assert.deepEqual(
      ok({ tokens: [{ serial: 'A', manufacturer: ' Token2 ', model: 'C301' }], algorithm: 'SHA256', digits: 8, period: 60 }).tokens[0],
      { serial: 'A', manufacturer: 'Token2', model: 'C301' },
    );
    for (const bad of [{ algorithm: 'SHA512' }, { algorithm: 'sha1' }, { digits: 7 }, { digits: '6' }, { period: 45 }]) {
      assert.equal(refused({ tokens: [{ serial: 'A' }], ...bad }).code, 'REQUEST_INVALID');
    }
  });

  void test('more tokens than the limit is a 413', () => {
    const tokens = Array.from({ length: 6 }, (_, i) => ({ serial: `S${i}` }));
    assert.equal(ok({ tokens: tokens.slice(0, 5) }, 5).tokens.length, 5);
    assert.deepEqual([refused({ tokens }, 5).status, refused({ tokens }, 5).code], [413, 'REQUEST_TOO_LARGE']);
  });

  void test('bad serials and fields are named by position, never echoed', () => {
    const secretLike = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';
    const cases: [unknown, string][] = [
      [{ tokens: [] }, 'REQUEST_INVALID'],
      [{ tokens: [{ serial: 'A', secret: secretLike }] }, 'REQUEST_INVALID'],
      [{ tokens: [{ serial: 'A' }], [secretLike]: 1 }, 'REQUEST_INVALID'],
      [{ tokens: [{ serial: `${secretLike}\u0000` }] }, 'SERIAL_INVALID'],
      [{ tokens: [{ serial: secretLike.repeat(5) }] }, 'SERIAL_INVALID'],
      [{ tokens: [{ serial: '' }] }, 'SERIAL_MISSING'],
      [{ tokens: [{ serial: 7 }] }, 'SERIAL_MISSING'],
      [{ tokens: [{ serial: 'A:1' }] }, 'SERIAL_INVALID'],
      [{ tokens: [{ serial: 'A', model: `${secretLike}\u200b` }] }, 'FIELD_INVALID'],
      [{ tokens: [{ serial: 'A', manufacturer: 'x'.repeat(257) }] }, 'FIELD_INVALID'],
      [[{ serial: 'A' }], 'REQUEST_INVALID'],
    ];
    for (const [value, code] of cases) {
      const problem = refused(value);
      assert.equal(problem.code, code, JSON.stringify(value).slice(0, 80));
      assert.equal(problem.status, 400);
      assert.ok(!problem.message.includes(secretLike.slice(0, 12)), problem.message);
    }
    assert.match(
      refused({ tokens: [{ serial: 'A' }, { serial: 'B' }, { serial: 'A' }] }).message,
      /tokens\[2\]\.serial "A" repeats tokens\[0\]/,
    );
    assert.match(
      refused({ tokens: [{ serial: 'A' }, { serial: 'B\u0007' }] }).message,
      /^tokens\[1\]\.serial is not one a token can have: the serial number holds a control/,
    );
  });

  void test('the body is refused past its byte limit, by its Content-Length before it is read', async () => {
    let read = false;
    const big = {
      headers: { get: (h: string) => (h === 'content-length' ? '5000' : null) },
      text: () => ((read = true), Promise.resolve('')),
    };
    const refusal = (parsed: Awaited<ReturnType<typeof readBoundedJson>>) =>
      parsed.ok ? undefined : [parsed.answer.status, (parsed.answer.jsonBody as { error: { code: string; message: string } }).error];
    const declared = await readBoundedJson(big, 4096);
    assert.deepEqual(refusal(declared)?.[0], 413);
    assert.equal((refusal(declared)?.[1] as { code: string }).code, 'REQUEST_TOO_LARGE');
    assert.equal(read, false);
    const body = (text: string) => ({ headers: { get: () => null }, text: () => Promise.resolve(text) });
    const chunked = await readBoundedJson(body(`{"tokens":[${'{"serial":"A"},'.repeat(400)}]}`), 4096);
    assert.equal(refusal(chunked)?.[0], 413);
    const notJson = await readBoundedJson(body('{"tokens": [GEZDGNBVGY3TQOJQGEZD'), 4096);
    assert.deepEqual(refusal(notJson), [400, { code: 'REQUEST_INVALID', message: 'The body is not valid JSON.' }]);
    assert.deepEqual(await readBoundedJson(body('{"tokens":[{"serial":"A"}]}'), 4096), { ok: true, value: { tokens: [{ serial: 'A' }] } });
  });
});

void describe('over the real Key Vault adapter (stand-in)', () => {
  void test('rollback disables versions in the vault, and reprogramming leaves the old version unreadable', async (t) => {
    const standIn = await startTestVault();
    t.after(() => standIn.close());
    const client = createLocalSecretClient(standIn.url, { retryOptions: { maxRetries: 0 } });
    const h = harness({ secrets: new KeyVaultSecretStore(client, { timeoutMs: 5_000 }), concurrency: 1 });
    h.faulty.faults.set(3, { error: new Error('KeyVaultError: Forbidden'), landed: false });
    await assert.rejects(h.program.program(request(['KV1', 'KV2', 'KV3'])));
    for (const serial of ['KV1', 'KV2']) {
      await assert.rejects(
        client.getSecret(secretNameForSerial(serial)),
        (e: unknown) => (e as { statusCode?: number }).statusCode === 403,
        `${serial} is disabled`,
      );
    }

    const pkgs = programmed(await h.program.program(request(['KV1', 'KV2', 'KV3'])));
    assert.equal((await client.getSecret(secretNameForSerial('KV1'))).value, pkgs[0]!.secretBase32);
    const oldVersion = h.tokens.rows.get('KV2')!.value.secretVersion;
    const result = await h.program.reprogram('KV2');
    assert.equal(result.kind, 'reprogrammed');
    const fresh = (result as { tokens: ProvisioningPackage[] }).tokens[0]!;
    await assert.rejects(
      client.getSecret(secretNameForSerial('KV2'), { version: oldVersion }),
      (e: unknown) => (e as { statusCode?: number }).statusCode === 403,
    );
    assert.equal((await client.getSecret(secretNameForSerial('KV2'))).value, fresh.secretBase32);
    assert.equal(
      standIn.stats().versionsPerSecret[secretNameForSerial('KV2')],
      3,
      'the rolled-back version, the programmed one, the new one',
    );
    const at = nowSeconds(h.clock);
    assert.equal(accepted(await h.verify.verify('KV2', { code: codeOf(fresh, at) })), true);
  });
});
