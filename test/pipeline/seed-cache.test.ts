import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { toCanonicalBase32 } from '../../shared/core/encoding.js';
import { totpCode } from '../../shared/core/totp.js';
import type { Logger, TokenEntity } from '../../shared/pipeline/ports.js';
import { SeedCache } from '../../shared/pipeline/seed-cache.js';
import { InventoryService } from '../../shared/pipeline/inventory-service.js';
import { VerifyService } from '../../shared/pipeline/verify.js';
import { ManualClock } from '../helpers/clock.js';
import { MemorySecretStore, MemoryTable } from '../helpers/memory-ports.js';

const seedOf = (label: string) => new Uint8Array(createHash('sha1').update(label).digest());
const quiet: Logger = { info() {}, warn() {}, error() {} };

describe('SeedCache', () => {
  it('hands out copies, so zeroing what it returned leaves the entry intact', () => {
    const cache = new SeedCache(new ManualClock());
    const seed = seedOf('a');
    cache.set('n', 'v1', seed);
    seed.fill(0);
    const first = cache.get('n', 'v1')!;
    assert.deepEqual(first, seedOf('a'));
    first.fill(0);
    assert.deepEqual(cache.get('n', 'v1'), seedOf('a'));
  });

  it('keys by version and forgets an entry after its time to live', () => {
    const clock = new ManualClock();
    const cache = new SeedCache(clock, { ttlMs: 1000 });
    cache.set('n', 'v1', seedOf('a'));
    assert.equal(cache.get('n', 'v2'), undefined);
    clock.advance(999);
    assert.ok(cache.get('n', 'v1'));
    clock.advance(1);
    assert.equal(cache.get('n', 'v1'), undefined);
    assert.equal(cache.size, 0);
  });

  it('holds at most maxEntries, dropping the oldest', () => {
    const cache = new SeedCache(new ManualClock(), { maxEntries: 2 });
    cache.set('a', '1', seedOf('a'));
    cache.set('b', '1', seedOf('b'));
    cache.set('c', '1', seedOf('c'));
    assert.equal(cache.size, 2);
    assert.equal(cache.get('a', '1'), undefined);
    assert.ok(cache.get('c', '1'));
  });

  it('forget drops every version of a name and no other name', () => {
    const cache = new SeedCache(new ManualClock());
    cache.set('n', 'v1', seedOf('a'));
    cache.set('n', 'v2', seedOf('b'));
    cache.set('n2', 'v1', seedOf('c'));
    cache.forget('n');
    assert.equal(cache.get('n', 'v1'), undefined);
    assert.equal(cache.get('n', 'v2'), undefined);
    assert.ok(cache.get('n2', 'v1'));
  });
});

describe('VerifyService with a seed cache', () => {
  async function setup(secretVersion?: string) {
    const clock = new ManualClock(new Date(Date.UTC(2025, 0, 15, 12, 0, 10)));
    const secrets = new MemorySecretStore();
    const tokens = new MemoryTable<TokenEntity>();
    const seed = seedOf('seed-cache.test');
    const { version } = await secrets.set('oath-x', toCanonicalBase32(seed), { contentType: 'x', tags: {} });
    const entity = {
      serial: 'TK-1',
      state: 'imported',
      manufacturer: '',
      model: '',
      type: 'totp',
      algorithm: 'SHA1',
      digits: 6,
      period: 30,
      secretBytes: seed.length,
      secretName: 'oath-x',
      secretVersion: secretVersion ?? version,
      batch: 'b',
      createdAt: '',
      updatedAt: '',
      upn: 'u@x',
      buildId: 'b1',
      exportFile: 'f',
      exportingSince: null,
      lastAcceptedStep: null,
      activatedBuildId: null,
      failedAttempts: 0,
      lockedUntil: null,
      lastVerifiedAt: null,
      driftSeconds: null,
      history: '[]',
    } as TokenEntity;
    await tokens.insert('TK-1', entity);
    const cache = new SeedCache(clock);
    const service = new VerifyService({
      tokens,
      secrets,
      seeds: cache,
      clock,
      log: quiet,
      lockoutLimit: 10,
      lockoutMinutes: 15,
      lockoutMaxMinutes: 60,
    });
    const code = (offsetSteps: number) =>
      totpCode({ secret: seed, algorithm: 'SHA1', digits: 6, period: 30 }, Math.floor(clock.now().getTime() / 1000) + offsetSteps * 30);
    return { clock, secrets, tokens, cache, service, code };
  }

  it('reads the vault once for repeated checks of a pinned version, and answers the same', async () => {
    const { secrets, service, code, clock } = await setup();
    const before = secrets.gets;
    assert.equal((await service.verify('TK-1', { code: code(0) })).status, 'accepted');
    clock.advance(30_000);
    assert.equal((await service.verify('TK-1', { code: code(0) })).status, 'accepted');
    assert.equal((await service.verify('TK-1', { code: '000000' === code(0) ? '111111' : '000000' })).status, 'rejected');
    assert.equal(secrets.gets - before, 1);
  });

  it('reads the vault again once the entry expires', async () => {
    const { secrets, service, code, clock } = await setup();
    await service.verify('TK-1', { code: code(0) });
    clock.advance(61_000);
    const before = secrets.gets;
    assert.equal((await service.verify('TK-1', { code: code(0) })).status, 'accepted');
    assert.equal(secrets.gets - before, 1);
  });

  it('does not cache a read without a pinned version', async () => {
    const { secrets, service, code, clock, cache } = await setup('');
    await service.verify('TK-1', { code: code(0) });
    clock.advance(30_000);
    await service.verify('TK-1', { code: code(0) });
    assert.equal(cache.size, 0);
    assert.equal(secrets.gets, 2);
  });

  it('retiring the token drops its seed from the cache at once', async () => {
    const { secrets, tokens, cache, service, code, clock } = await setup();
    await service.verify('TK-1', { code: code(0) });
    assert.equal(cache.size, 1);
    const inventory = new InventoryService({ tokens, secrets, seeds: cache, clock, log: quiet });
    await inventory.retire('TK-1', 'lost');
    assert.equal(cache.size, 0);
    assert.equal((await service.verify('TK-1', { code: code(0) })).status, 'retired');
  });
});
