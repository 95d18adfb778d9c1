/**
 * privacyIDEA's and LinOTP's OATH CSV: the fixtures' tokens and problems as
 * their importers' rules give them, the same values through
 * `entra-oath inspect --json --reveal`, and the layout rules one by one.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { decodeBase32, toCanonicalBase32 } from '../../shared/core/encoding.js';
import { FileError, sortProblems, type Problem } from '../../shared/core/problems.js';
import { runCli } from '../../shared/cli/cli.js';
import { readCsvSeed } from '../../shared/formats/csv-seed.js';
import { generateOathFixtures, type OathFixture } from '../fixtures/oath-csv/generate.js';

const DIR = fileURLToPath(new URL('../fixtures/oath-csv/', import.meta.url));
const READ_AT = new Date('2026-06-01T00:00:00Z');
const expected = JSON.parse(readFileSync(`${DIR}expected.json`, 'utf8')) as Record<string, OathFixture>;
const read = (text: string, secretEncoding?: 'base32' | 'hex') =>
  readCsvSeed(Buffer.from(text, 'utf8'), { now: READ_AT, fileName: 'oath.csv', ...(secretEncoding ? { secretEncoding } : {}) });
const HEX20 = '3132333435363738393031323334353637383930';
const HEX32 = '3132333435363738393031323334353637383930313233343536373839303132';

async function inspectJson(
  path: string,
): Promise<{ format: string; tokens: Record<string, unknown>[]; problems: { code: string; severity: string; line?: number }[] }> {
  let stdout = '';
  await runCli(['inspect', path, '--json', '--reveal'], {
    stdout: (t) => (stdout += t),
    stderr: () => undefined,
    env: {},
    stderrIsTTY: false,
    now: () => READ_AT.getTime(),
  });
  return JSON.parse(stdout) as Awaited<ReturnType<typeof inspectJson>>;
}

describe('OATH CSV fixtures', () => {
  it('are exactly what generate.ts writes', () => {
    const g = generateOathFixtures();
    for (const [name, content] of Object.entries(g.files)) assert.equal(readFileSync(`${DIR}${name}`, 'utf8'), content, `${name} is stale`);
    assert.deepEqual(expected, JSON.parse(JSON.stringify(g.expected)));
  });

  for (const [file, want] of Object.entries(expected)) {
    it(`${file}: the importers' serials, secrets, hashes, digits, periods and counters, through the reader and inspect --json --reveal`, async () => {
      const result = readCsvSeed(readFileSync(`${DIR}${file}`), { now: READ_AT, fileName: file });
      assert.equal(result.format, 'privacyidea-csv');
      const shape = (
        t: { serial: string; type: string; algorithm: string; digits: number; period: number; counter?: bigint | string },
        secretHex: string,
      ) => ({
        serial: t.serial,
        type: t.type,
        algorithm: t.algorithm,
        digits: t.digits,
        period: t.period,
        counter: t.counter === undefined ? undefined : String(t.counter),
        secretHex,
      });
      const wanted = want.tokens.map((t) => shape(t, t.secretHex));
      assert.deepEqual(
        result.tokens.map((t) => shape(t, Buffer.from(t.secret).toString('hex'))),
        wanted,
      );
      // Expected problems in the project's one order (shared/core/problems.ts sortProblems).
      assert.deepEqual(
        result.problems.map((p) => ({ code: p.code, severity: p.severity, line: p.line })),
        sortProblems(want.problems as Problem[]).map((p) => ({ code: p.code, severity: p.severity, line: p.line })),
      );

      const out = await inspectJson(`${DIR}${file}`);
      const cli = out.tokens.map((t) =>
        shape(t as Parameters<typeof shape>[0], Buffer.from(decodeBase32(t.secret as string)!).toString('hex')),
      );
      assert.deepEqual(cli, wanted);
      // Counters come out as decimal text, exact above 2^53.
      for (const t of out.tokens) if (t.counter !== undefined) assert.equal(typeof t.counter, 'string');
    });
  }

  it('keeps a counter above 2^53 exact', () => {
    const r = read(`C1, ${HEX20}, hotp, 6, 16887061004979670\n`);
    assert.equal(r.tokens[0]!.counter, 16887061004979670n);
    const over = read(`C1, ${HEX20}, hotp, 6, 18446744073709551616\n`);
    assert.deepEqual(
      over.problems.filter((p) => p.severity === 'error').map((p) => p.code),
      ['FIELD_INVALID'],
    );
  });
});

describe('OATH CSV layout rules', () => {
  it('decides the layout on the first row the importers would read, not the first line', () => {
    for (const text of [
      `serialX\n# comment\nT1, ${HEX20}\n`,
      `   # indented comment, with a comma\nT1, ${HEX20}, totp\n`,
      `\n\nlone\nT1, ${HEX20}, hotp, 6\n`,
    ]) {
      const r = read(text);
      assert.equal(r.format, 'privacyidea-csv', text);
      assert.deepEqual(
        r.tokens.map((t) => t.serial),
        ['T1'],
        text,
      );
    }
  });

  it('still refuses what is neither layout, and a file of lone values', () => {
    for (const text of [
      'id,key,period\n1,MOUQMOMIFW5MEXMPAHTENVRMUHXWG676,30\n',
      'S1,ATIXHVVHVDEFXGOQFC76FEYLOWYC73B7,30,Acme,C200\n',
      'serialX\nserialY\n',
    ]) {
      assert.throws(
        () => read(text),
        (err: unknown) => err instanceof FileError && err.code === 'CSV_UNKNOWN_LAYOUT',
        text,
      );
    }
    assert.throws(
      () => read(`# version: 3\nu, r, m, T1, ${HEX20}\n`),
      (err: unknown) => err instanceof FileError && err.code === 'CSV_UNKNOWN_LAYOUT' && /version 3/.test(err.message),
    );
  });

  it('reads a serial-and-seed row as HOTP and says so; the fifth cell of an HOTP row is its counter', () => {
    const r = read(`H1, ${HEX20}\nH2, ${HEX20.replace('31', '41')}, hotp, 6, 345\n`);
    assert.deepEqual(
      r.tokens.map((t) => [t.serial, t.type, t.period, t.counter]),
      [
        ['H1', 'hotp', 30, undefined],
        ['H2', 'hotp', 30, 345n],
      ],
    );
    assert.deepEqual(
      r.problems.map((p) => [p.code, p.line]),
      [
        ['TYPE_FROM_MISSING_COLUMN', 1],
        ['CELL_READING_DECIDED', 2],
      ],
    );
  });

  it('chooses SHA-256 for a 32-byte seed and SHA-512 for a 64-byte one, and says why', () => {
    const r = read(`A, ${HEX32}, totp\nB, ${HEX32}${HEX32}, totp\nC, ${HEX20}, totp\n`);
    assert.deepEqual(
      r.tokens.map((t) => t.algorithm),
      ['SHA256', 'SHA512', 'SHA1'],
    );
    const why = r.problems.filter((p) => p.code === 'HASH_FROM_SEED_LENGTH');
    assert.deepEqual(
      why.map((p) => [p.line, p.severity]),
      [
        [1, 'info'],
        [2, 'info'],
      ],
    );
    assert.match(why[0]!.message, /32-byte seed makes this HMAC-SHA256/);
    // The same length rule applies when the user forces base32 on the file.
    const b32 = read(`A, ${toCanonicalBase32(Buffer.from(HEX32, 'hex'))}, totp\n`, 'base32');
    assert.equal(b32.tokens[0]!.algorithm, 'SHA256');
  });

  it('refuses the seed lengths privacyIDEA and LinOTP read differently unless a sixth cell names the hash', () => {
    const seed28 = 'ab'.repeat(28);
    const r = read(`A, ${seed28}, totp\nB, ${seed28}, totp, 6, 30, sha1\n`);
    assert.deepEqual(
      r.tokens.map((t) => [t.serial, t.algorithm]),
      [['B', 'SHA1']],
    );
    assert.deepEqual(
      r.problems.map((p) => [p.code, p.line]),
      [['ALGORITHM_UNSUPPORTED', 1]],
    );
    assert.match(r.problems[0]!.message, /HMAC-SHA224.*sixth cell/);
  });

  it('reports an unsupported type by kind without quoting the cell, and quotes no cell anywhere', () => {
    const r = read(`T1, ${HEX20}, tan, 1234 5678\nT2, ${HEX20}, frobnicate\nT3, ${HEX20}, totp, 6, SHA256\n`);
    assert.deepEqual(
      r.problems.map((p) => [p.code, p.line]),
      [
        ['TYPE_UNSUPPORTED', 1],
        ['TYPE_UNSUPPORTED', 2],
        ['INTERVAL_INVALID', 3],
      ],
    );
    assert.match(r.problems[0]!.message, /a TAN list/);
    assert.match(r.problems[2]!.message, /sixth cell/);
    for (const p of r.problems)
      for (const cell of ['frobnicate', '1234 5678', HEX20.slice(0, 12)]) assert.ok(!p.message.includes(cell), p.message);
  });

  it('treats a sixth cell that is not a short word as shifted cells, quoting nothing', () => {
    const r = read(`T1, ${HEX20}, totp, 6, 30, ${HEX20}\n`);
    assert.deepEqual(
      r.problems.map((p) => p.code),
      ['CSV_ROW_MISALIGNED'],
    );
    assert.ok(!r.problems[0]!.message.includes(HEX20.slice(0, 12)));
  });
});

describe("CSV with a header: columns beyond Entra's are read, not ignored", () => {
  const S1 = 'CZU6XXGHCCGCOL6YO3WW472WEWB34FVJ';
  it('takes algorithm, digits and type columns when the vendor gives them', () => {
    const r = read(
      `serial number,secret key,time interval,algorithm,digits,token type\nA,${S1},30,SHA256,8,totp\nB,${S1.replace('C', 'D')},60,HMAC-SHA512,6,TOTP\nC,${S1.replace('C', 'E')},30,MD5,6,totp\n`,
    );
    assert.deepEqual(
      r.tokens.map((t) => [t.serial, t.algorithm, t.digits, t.period]),
      [
        ['A', 'SHA256', 8, 30],
        ['B', 'SHA512', 6, 60],
      ],
    );
    assert.deepEqual(
      r.problems.map((p) => [p.code, p.line]),
      [['ALGORITHM_UNSUPPORTED', 4]],
    );
  });
});
