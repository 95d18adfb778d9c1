/**
 * For every reader: what `entra-oath inspect --json --reveal` prints, fed to
 * `entra-oath code`, gives the code the file format's own rules give. Each
 * property writes a random file in one format from token parameters chosen
 * here, runs both commands in process, and compares with RFC 4226 computed
 * with node:crypto apart from the project's code (referenceCode), on the
 * parameters the format's rules give (for OATH CSV: the hash from the seed
 * length when no hash cell names one; a missing counter is 0).
 *
 * The readers covered: CSV with a header (Entra's layout; vendor columns for
 * hash, digits, token type and HOTP counter; base32, grouped base32 or hex;
 * `,` or `;`), OATH CSV (privacyIDEA's rows and version 2 files, LinOTP's
 * hash cell and `hmac` type), PSKC (plain; AES, 3DES, Camellia, key wrap; key
 * or password; counters as decimal, binary, ASCII digits or base64) and the
 * pre-RFC draft layouts (ActivIdentity, draft-hoyer; plain, key or password).
 * otpauth URIs are written here, never read, so they have no reader to test.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { toCanonicalBase32 } from '../../shared/core/encoding.js';
import { runCli } from '../../shared/cli/cli.js';
import { referenceCode } from '../fixtures/oath-csv/generate.js';
import { buildDraftPskc, buildPskc, deterministicBytes, keyBytesOf, type CipherName, type FixtureKey } from '../fixtures/pskc/generate.js';

type Hash = 'SHA1' | 'SHA256' | 'SHA512';
/** What the format's rules say about a token, independently of the reader. */
interface Truth {
  serial: string;
  type: 'totp' | 'hotp';
  hash: Hash;
  digits: number;
  period: number;
  counter: bigint;
  secret: Buffer;
}

const work = mkdtempSync(join(tmpdir(), 'entra-oath-inspect-code-'));
after(() => rmSync(work, { recursive: true, force: true }));
const NOW_MS = Date.UTC(2026, 5, 1);
let fileNo = 0;

async function cli(args: string[]): Promise<{ code: number; stdout: string }> {
  let stdout = '';
  const code = await runCli(args, {
    stdout: (t) => (stdout += t),
    stderr: () => undefined,
    env: {},
    stderrIsTTY: false,
    now: () => NOW_MS,
  });
  return { code, stdout };
}

/** Writes the file, inspects it, and for every token checks `code` against the truth at a few times / counters. */
async function check(content: string, truths: Truth[], extraArgs: string[] = []): Promise<void> {
  const path = join(work, `f${fileNo++}`);
  writeFileSync(path, content);
  const inspected = await cli(['inspect', path, '--json', '--reveal', ...extraArgs]);
  const out = JSON.parse(inspected.stdout) as {
    tokens: { serial: string; type: string; algorithm: string; digits: number; period: number; secret: string; counter?: string }[];
    problems: { severity: string; code: string }[];
  };
  assert.deepEqual(
    out.problems.filter((p) => p.severity === 'error'),
    [],
    'no row errors',
  );
  assert.deepEqual(
    out.tokens.map((t) => t.serial),
    truths.map((t) => t.serial),
  );
  for (const [i, t] of out.tokens.entries()) {
    const truth = truths[i]!;
    assert.equal(t.secret, toCanonicalBase32(truth.secret));
    const common = ['code', '--secret', t.secret, '--algorithm', t.algorithm, '--digits', String(t.digits)];
    if (t.type === 'hotp') {
      // The counter as inspect prints it (decimal text); an HOTP token with none starts at 0.
      const counter = BigInt(t.counter ?? '0');
      const got = await cli([...common, '--counter', counter.toString()]);
      assert.equal(
        got.stdout.trim(),
        referenceCode(truth.hash, truth.secret.toString('hex'), truth.counter, truth.digits),
        `${truth.serial} (HOTP)`,
      );
    } else {
      for (const at of [59, 1_111_111_109, 2_000_000_000, 20_000_000_000]) {
        const got = await cli([...common, '--period', String(t.period), '--at', String(at)]);
        assert.equal(
          got.stdout.trim(),
          referenceCode(truth.hash, truth.secret.toString('hex'), BigInt(Math.floor(at / truth.period)), truth.digits),
          `${truth.serial} at ${at}`,
        );
      }
    }
  }
}

const hashArb = fc.constantFrom<Hash>('SHA1', 'SHA256', 'SHA512');
const digitsArb = fc.constantFrom(6, 8);
const periodArb = fc.constantFrom(30, 60);
const counterArb = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
const secretArb = (lengths: number[]) =>
  fc
    .tuple(fc.constantFrom(...lengths), fc.string({ minLength: 1, maxLength: 12 }))
    .map(([n, label]) => deterministicBytes(`prop/${label}/${n}`, n));
const SEED_BYTES: Record<Hash, number> = { SHA1: 20, SHA256: 32, SHA512: 64 };

void describe("inspect --json --reveal fed to code gives the format's own code", () => {
  void it('CSV with a header: Entra layout, and vendor columns (algorithm, digits, token type, counter), base32 or hex, , or ;', async () => {
    const row = fc.record({
      type: fc.constantFrom<'totp' | 'hotp'>('totp', 'hotp'),
      hash: hashArb,
      digits: digitsArb,
      period: periodArb,
      counter: fc.option(counterArb),
      secret: secretArb([16, 20, 32, 64]),
    });
    const layout = fc.record({
      delimiter: fc.constantFrom(',', ';'),
      encoding: fc.constantFrom<'base32' | 'base32-grouped' | 'hex'>('base32', 'base32-grouped', 'hex'),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(row, { minLength: 1, maxLength: 4 }), layout, async (rows, { delimiter, encoding }) => {
        const truths = rows.map((r, i): Truth => ({
          serial: `H${i}`,
          type: r.type,
          hash: r.hash,
          digits: r.digits,
          period: r.period,
          counter: r.type === 'hotp' ? (r.counter ?? 0n) : 0n,
          secret: r.secret,
        }));
        const secretText = (secret: Buffer) => {
          if (encoding === 'hex') return secret.toString('hex');
          const b32 = toCanonicalBase32(secret);
          // Deepnet's way: lower case in groups of four.
          return encoding === 'base32' ? b32 : b32.toLowerCase().replace(/(.{4})(?=.)/g, '$1 ');
        };
        const entraOnly = truths.filter((t) => t.type === 'totp' && t.hash === 'SHA1' && t.digits === 6);
        const entra = [
          'upn,serial number,secret key,time interval,manufacturer,model',
          ...entraOnly.map((t) => `,${t.serial},${toCanonicalBase32(t.secret)},${t.period},Acme,M1`),
        ].join('\n');
        if (entraOnly.length > 0) await check(entra, entraOnly);
        const d = delimiter;
        const vendor = [
          ['serial number', 'secret key', 'time interval', 'algorithm', 'digits', 'token type', 'counter'].join(d),
          ...rows.map((r, i) =>
            [
              truths[i]!.serial,
              secretText(r.secret),
              String(r.period),
              r.hash,
              String(r.digits),
              r.type,
              r.type === 'hotp' && r.counter !== null ? String(r.counter) : '',
            ].join(d),
          ),
        ].join('\n');
        await check(vendor, truths);
      }),
      { numRuns: 20 },
    );
  });

  void it("OATH CSV: privacyIDEA's rows (hash from seed length, HOTP counters, version 2 user columns) and LinOTP's (hash cell, hmac)", async () => {
    const row = fc.record({
      type: fc.constantFrom<'totp' | 'hotp' | 'hmac' | ''>('totp', 'hotp', 'hmac', ''),
      hash: hashArb,
      named: fc.boolean(),
      digits: digitsArb,
      period: periodArb,
      counter: fc.option(counterArb),
      label: fc.string({ minLength: 1, maxLength: 8 }),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(row, { minLength: 1, maxLength: 5 }), fc.boolean(), async (rows, version2) => {
        const lines: string[] = [version2 ? '# version: 2' : '# OATH CSV'];
        const truths = rows.map((r, i): Truth => {
          const type = r.type === 'totp' ? 'totp' : 'hotp';
          // privacyIDEA's version 2 rows have no hash cell (its five token columns): the length decides there.
          const named = r.named && !version2;
          // Without a hash cell the length decides, so the seed has the hash's own length; with one, any length.
          const secret = deterministicBytes(`oath/${r.label}/${i}`, named ? 20 : SEED_BYTES[r.hash]);
          // LinOTP does not read the fifth cell of its six-cell HOTP rows: the counter written there is not the token's.
          const counter = type === 'hotp' && !named ? (r.counter ?? 0n) : 0n;
          const fifth = type === 'totp' ? String(r.period) : r.counter === null ? '' : String(r.counter);
          const cells = [`O${i}`, secret.toString('hex'), r.type, String(r.digits), fifth];
          if (named) cells.push(r.hash.toLowerCase());
          lines.push([...(version2 ? [`user${i}`, 'resolver', 'realm'] : []), ...cells].join(', '));
          return { serial: `O${i}`, type, hash: r.hash, digits: r.digits, period: type === 'totp' ? r.period : 30, counter, secret };
        });
        await check(`${lines.join('\n')}\n`, truths);
      }),
      { numRuns: 25 },
    );
  });

  void it('PSKC, plain and encrypted (AES, 3DES, Camellia, key wrap; key or password), 64-bit counters in every form files use', async () => {
    const ciphers: (CipherName | 'plain')[] = [
      'plain',
      'aes128-cbc',
      'aes256-cbc',
      'tripledes-cbc',
      'camellia256-cbc',
      'kw-aes256',
      'kw-camellia128',
      'kw-tripledes',
    ];
    // RFC 6030's forms (decimal text; big-endian binary when encrypted) and the ones met in files (ASCII digits, base64).
    const form = fc.constantFrom<'rfc' | 'ascii' | 'base64-binary'>('rfc', 'ascii', 'base64-binary');
    const key = fc.record({
      type: fc.constantFrom<'totp' | 'hotp'>('totp', 'hotp'),
      hash: hashArb,
      digits: digitsArb,
      period: periodArb,
      counter: counterArb,
      form,
      label: fc.string({ minLength: 1, maxLength: 8 }),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...ciphers),
        fc.boolean(),
        fc.array(key, { minLength: 1, maxLength: 3 }),
        async (cipher, byPassword, keys) => {
          const truths: Truth[] = [];
          const fixtureKeys = keys.map((k, i): FixtureKey => {
            // 3DES key wrap takes whole 8-byte blocks: 24-, 32- and 64-byte secrets.
            const secret = deterministicBytes(`pskc/${k.label}/${i}`, k.hash === 'SHA1' ? 24 : SEED_BYTES[k.hash]);
            truths.push({
              serial: `P${i}`,
              type: k.type,
              hash: k.hash,
              digits: k.digits,
              period: k.type === 'totp' ? k.period : 30,
              counter: k.type === 'hotp' ? k.counter : 0n,
              secret,
            });
            const fixture: FixtureKey = {
              serial: `P${i}`,
              keyId: `k${i}`,
              type: k.type,
              suite: `HMAC-${k.hash}`,
              digits: k.digits,
              secret,
            };
            if (k.type === 'totp') fixture.interval = k.period;
            else {
              fixture.counter = k.counter;
              // 3DES key wrap (RFC 3217) takes whole 8-byte blocks only, so its counters stay 8-byte binary.
              if (k.form !== 'rfc')
                fixture.counterForm =
                  cipher === 'plain'
                    ? k.form === 'ascii'
                      ? 'base64-ascii'
                      : 'base64-binary'
                    : k.form === 'ascii' && cipher !== 'kw-tripledes'
                      ? 'ascii'
                      : undefined;
            }
            return fixture;
          });
          if (cipher === 'plain') return check(buildPskc({ keys: fixtureKeys, seed: 'prop' }), truths);
          const mac = { hash: 'sha256' as const, withMacKey: true };
          if (byPassword && !cipher.startsWith('kw-')) {
            const password = { password: 'correct horse', salt: deterministicBytes(`prop-salt/${cipher}`, 16), iterations: 1000 };
            const xml = buildPskc({
              keys: fixtureKeys,
              seed: 'prop',
              encryption: { cipher, password, mac, fields: ['Secret', 'Counter'] },
            });
            return check(xml, truths, ['--password', password.password]);
          }
          const psk = deterministicBytes(`prop-psk/${cipher}`, keyBytesOf(cipher));
          const xml = buildPskc({ keys: fixtureKeys, seed: 'prop', encryption: { cipher, psk, mac, fields: ['Secret', 'Counter'] } });
          return check(xml, truths, ['--psk', psk.toString('hex')]);
        },
      ),
      { numRuns: 25 },
    );
  });

  void it('PSKC in the pre-RFC draft layouts (ActivIdentity, draft-hoyer), plain, key or password, 64-bit counters', async () => {
    const keyArb = fc.tuple(digitsArb, counterArb, fc.boolean());
    const encryptionArb = fc.constantFrom<'none' | 'aes' | 'tripledes' | 'password'>('none', 'aes', 'tripledes', 'password');
    await fc.assert(
      fc.asyncProperty(
        fc.array(keyArb, { minLength: 1, maxLength: 3 }),
        fc.boolean(),
        fc.constantFrom<'activid' | 'hoyer'>('activid', 'hoyer'),
        encryptionArb,
        async (keys, ivInContainer, style, encryption) => {
          const draftKeys = keys.map(([digits, counter, encryptCounter], i) => ({
            serial: `D${i}`,
            keyId: `D${i}`,
            manufacturer: 'ActivIdentity',
            algorithm: 'http://www.ietf.org/keyprov/pskc#hotp',
            digits,
            secret: deterministicBytes(`draft/${i}/${counter}`, 20),
            counter,
            encryptCounter,
          }));
          const truths = draftKeys.map((k): Truth => ({
            serial: k.serial,
            type: 'hotp',
            hash: 'SHA1',
            digits: k.digits,
            period: 30,
            counter: k.counter,
            secret: k.secret,
          }));
          if (encryption === 'none') return check(buildDraftPskc({ keys: draftKeys, seed: 'prop-draft', style }), truths);
          if (encryption === 'password') {
            const password = { password: 'draft pass', salt: deterministicBytes('prop-draft-salt', 8), iterations: 100 };
            const xml = buildDraftPskc({
              keys: draftKeys,
              seed: 'prop-draft',
              style,
              encryption: { cipher: 'tripledes-cbc', password, ivInContainer: false, digestOver: 'ciphertext' },
            });
            return check(xml, truths, ['--password', password.password]);
          }
          const cipher = encryption === 'aes' ? 'aes128-cbc' : 'tripledes-cbc';
          const psk = deterministicBytes(`prop-draft/${cipher}`, cipher === 'aes128-cbc' ? 16 : 24);
          const xml = buildDraftPskc({
            keys: draftKeys,
            seed: 'prop-draft',
            style,
            encryption: { cipher, psk, ivInContainer, digestOver: ivInContainer ? 'plaintext' : 'ciphertext' },
          });
          return check(xml, truths, ['--psk', psk.toString('hex')]);
        },
      ),
      { numRuns: 20 },
    );
  });
});
