/**
 * PSKC key policies are judged against the caller's clock: the reader takes
 * `now` and the pipeline passes its Clock, so the same file gives an expired
 * token (never stored) or a good one depending on the clock alone.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TokenEntity } from '../../../shared/pipeline/ports.js';
import { readPskc } from '../../../shared/formats/pskc.js';
import { parseXsDateTime } from '../../../shared/formats/pskc-policy.js';
import { IngestService } from '../../../shared/pipeline/ingest.js';
import { PacedVault } from '../../../shared/pipeline/vault.js';
import { buildPskc, deterministicBytes, type FixtureKey } from '../../fixtures/pskc/generate.js';
import { ManualClock } from '../../helpers/clock.js';
import { MemoryBlobStore, MemorySecretStore, MemoryTable } from '../../helpers/memory-ports.js';

const bytes = (text: string) => Buffer.from(text, 'utf8');
const key = (serial: string, policy: string): FixtureKey => ({
  serial,
  keyId: serial,
  type: 'totp',
  secret: deterministicBytes(`policy/${serial}`, 20),
  policy,
});
const expiring = buildPskc({ keys: [key('EXP1', '<ExpiryDate>2027-01-01T00:00:00Z</ExpiryDate>')], seed: 'p' });

void describe('PSKC policies and the clock', () => {
  void it('a key whose ExpiryDate has passed is an error for that key only; before that date it is read', () => {
    const before = readPskc(bytes(expiring), { fileName: 'f', now: new Date('2026-12-31T23:59:59Z') });
    assert.deepEqual(
      before.tokens.map((t) => t.serial),
      ['EXP1'],
    );
    assert.deepEqual(before.problems, []);
    const after = readPskc(bytes(expiring), { fileName: 'f', now: new Date('2027-01-01T00:00:01Z') });
    assert.deepEqual(after.tokens, []);
    assert.deepEqual(
      after.problems.map((p) => [p.code, p.severity, p.serial]),
      [['POLICY_EXPIRED', 'error', 'EXP1']],
    );
    assert.match(after.problems[0]!.message, /expired on 2027-01-01T00:00:00Z/);
  });

  void it('a StartDate still to come is a warning and the token is kept', () => {
    const file = buildPskc({ keys: [key('LATER', '<StartDate>2026-03-01</StartDate>')], seed: 'p' });
    const result = readPskc(bytes(file), { fileName: 'f', now: new Date('2026-02-01T00:00:00Z') });
    assert.deepEqual(
      result.tokens.map((t) => t.serial),
      ['LATER'],
    );
    assert.deepEqual(
      result.problems.map((p) => [p.code, p.severity]),
      [['POLICY_NOT_YET_VALID', 'warning']],
    );
  });

  void it('quotes no policy text: dates in its own form, usages from RFC 6030 only', () => {
    const secretText = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';
    const file = buildPskc({ keys: [key('Q1', `<ExpiryDate>${secretText}</ExpiryDate><KeyUsage>${secretText}</KeyUsage>`)], seed: 'p' });
    const result = readPskc(bytes(file), { fileName: 'f', now: new Date('2026-01-01T00:00:00Z') });
    assert.deepEqual(
      result.problems.map((p) => p.code),
      ['FIELD_INVALID', 'POLICY_KEY_USAGE'],
    );
    for (const p of result.problems) assert.ok(!p.message.includes(secretText.slice(0, 12)), p.message);
  });

  void it('reads xs:dateTime with and without a zone (no zone: UTC) and refuses dates that do not exist', () => {
    assert.equal(parseXsDateTime('2030-12-31T23:00:00-02:00')?.toISOString(), '2031-01-01T01:00:00.000Z');
    assert.equal(parseXsDateTime('2030-12-31T23:00:00')?.toISOString(), '2030-12-31T23:00:00.000Z');
    assert.equal(parseXsDateTime(' 2030-12-31 ')?.toISOString(), '2030-12-31T00:00:00.000Z');
    for (const bad of ['2030-02-30T00:00:00Z', '2030-12-31T24:00:00Z', '31/12/2030', '2030-12-31T00:00Z', ''])
      assert.equal(parseXsDateTime(bad), undefined, bad);
  });

  void it('the pipeline judges the policy with its own Clock: an expired key is neither stored nor in the inventory', async () => {
    const file = buildPskc({
      keys: [key('EXP1', '<ExpiryDate>2027-01-01T00:00:00Z</ExpiryDate>'), key('OK1', '<ExpiryDate>2030-01-01T00:00:00Z</ExpiryDate>')],
      seed: 'p',
    });
    const outcome = async (at: string) => {
      const clock = new ManualClock(at);
      const blobs = new MemoryBlobStore(clock);
      const secrets = new MemorySecretStore();
      const tokens = new MemoryTable<TokenEntity>();
      const log = { info: () => undefined, warn: () => undefined, error: () => undefined };
      const containers = { seeds: 'seeds', assignments: 'assignments', imports: 'imports', reports: 'reports', quarantine: 'quarantine' };
      const vault = new PacedVault(secrets, { createBudget: 1000, readBudget: 1000, retry: { baseDelayMs: 1 } });
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
      await blobs.write('seeds', 'policy.pskcxml', bytes(file));
      const result = await ingest.ingest('policy.pskcxml');
      return { outcome: result.outcome, serials: [...tokens.rows.keys()].sort() };
    };
    assert.deepEqual(await outcome('2026-12-01T00:00:00Z'), { outcome: 'completed', serials: ['EXP1', 'OK1'] });
    assert.deepEqual(await outcome('2027-06-01T00:00:00Z'), { outcome: 'completed-with-problems', serials: ['OK1'] });
  });
});
