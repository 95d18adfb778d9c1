import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { toCanonicalBase32 } from '../../shared/core/encoding.js';
import { FileError } from '../../shared/core/problems.js';
import { readCsvSeed } from '../../shared/formats/csv-seed.js';

/** The clock reading the reader is given (CSV has no dates; the option is required of every caller). */
const READ_AT = new Date('2026-06-01T00:00:00Z');
const fixture = (name: string) => new Uint8Array(readFileSync(new URL(`../fixtures/csv/${name}`, import.meta.url)));
const bytes = (text: string) => new TextEncoder().encode(text);
const read = (text: string, opts: { secretEncoding?: 'base32' | 'hex' } = {}) =>
  readCsvSeed(bytes(text), { now: READ_AT, fileName: 'seed.csv', ...opts });
const HEADER = 'upn,serial number,secret key,time interval,manufacturer,model\n';
const S1 = 'CZU6XXGHCCGCOL6YO3WW472WEWB34FVJ';
const S2 = 'EZDOCQANJA5PGME5QRSZCR7GLUFJG4JG';

function fileError(code: string, pattern?: RegExp) {
  return (err: unknown) => err instanceof FileError && err.code === code && (!pattern || pattern.test(err.message));
}

describe('CSV seed files: layouts', () => {
  it("reads Token2's layout (timeinterval, empty upn, CRLF)", () => {
    const r = readCsvSeed(fixture('token2.csv'), { now: READ_AT, fileName: 'token2.csv' });
    assert.equal(r.format, 'csv');
    assert.equal(r.secretEncoding, 'base32');
    assert.equal(r.encodingDecidedBy, 'detected');
    assert.deepEqual(r.problems, []);
    assert.deepEqual(
      r.tokens.map((t) => [t.serial, toCanonicalBase32(t.secret), t.period, t.manufacturer, t.model, t.line]),
      [
        ['60234567', S1, 30, 'Token2', 'C202', 2],
        ['60234568', S2, 30, 'Token2', 'C202', 3],
      ],
    );
    assert.deepEqual(r.embeddedAssignments, []);
  });

  it("reads Deepnet's layout (no upn, 60 s, grouped lower-case secrets, trailing empty lines)", () => {
    const r = readCsvSeed(fixture('deepnet.csv'), { now: READ_AT, fileName: 'deepnet.csv' });
    assert.deepEqual(r.problems, []);
    assert.deepEqual(
      r.tokens.map((t) => [t.serial, toCanonicalBase32(t.secret), t.period]),
      [
        ['1000001', S1, 60],
        ['1000002', S2, 60],
      ],
    );
  });

  it('reads an Excel file: BOM, semicolons, quoted fields, hex secrets, leading zeros kept, embedded UPN', () => {
    const r = readCsvSeed(fixture('excel-semicolon-hex.csv'), { now: READ_AT, fileName: 'x.csv' });
    assert.equal(r.secretEncoding, 'hex');
    assert.deepEqual(r.problems, []);
    const [t] = r.tokens;
    assert.equal(t?.serial, '0012345');
    assert.equal(t?.manufacturer, 'Contoso; Ltd');
    assert.equal(toCanonicalBase32(t.secret), S1);
    assert.deepEqual(r.embeddedAssignments, [{ upn: 'helga@contoso.com', serial: '0012345', line: 2 }]);
  });

  it("reads privacyIDEA's header-less OATH CSV with comments", () => {
    const r = readCsvSeed(fixture('privacyidea.csv'), { now: READ_AT, fileName: 'pi.csv' });
    assert.equal(r.format, 'privacyidea-csv');
    assert.equal(r.secretEncoding, 'hex');
    assert.deepEqual(r.problems, []);
    assert.deepEqual(
      r.tokens.map((t) => [t.serial, t.type, t.digits, t.period, toCanonicalBase32(t.secret), t.line]),
      [
        ['PI0001', 'totp', 6, 30, S1, 3],
        ['PI0002', 'hotp', 8, 30, S2, 4],
      ],
    );
  });

  it('finds columns by name in any order and case', () => {
    const r = read(` Model ;Secret Key;SERIAL NUMBER;TimeInterval\nC202;${S1};77;60\n`);
    assert.deepEqual(
      r.tokens.map((t) => [t.serial, t.model, t.period]),
      [['77', 'C202', 60]],
    );
  });
});

describe('CSV seed files: the encoding decision', () => {
  it("refuses Microsoft's doc example (valid hex and base32) unless forced, and says how to force", () => {
    assert.throws(
      () => readCsvSeed(fixture('entra-doc-example.csv'), { now: READ_AT, fileName: 'doc.csv' }),
      fileError('ENCODING_AMBIGUOUS', /--secret-encoding base32/),
    );
    const asBase32 = readCsvSeed(fixture('entra-doc-example.csv'), { now: READ_AT, fileName: 'doc.csv', secretEncoding: 'base32' });
    assert.equal(asBase32.secretEncoding, 'base32');
    assert.equal(asBase32.encodingDecidedBy, 'forced');
    assert.equal(asBase32.tokens[0]?.secret.length, 16);
    // As hex the same text is 104 bits: below RFC 4226's minimum.
    const asHex = readCsvSeed(fixture('entra-doc-example.csv'), { now: READ_AT, fileName: 'doc.csv', secretEncoding: 'hex' });
    assert.deepEqual(asHex.tokens, []);
    assert.deepEqual(
      asHex.problems.map((p) => p.code),
      ['SECRET_TOO_SHORT'],
    );
  });

  it('tells each token whose secret is valid in both alphabets that the file decided its encoding, and which line did', () => {
    // Valid base32 and valid hex: on its own this secret says nothing about its encoding.
    const both = 'ABCDEF234567ABCDEF234567ABCDEF23';
    const r = read(`${HEADER},1,${S1},30,T,M\n,2,${both},30,T,M\n,3,${S2},30,T,M\n`);
    assert.equal(r.secretEncoding, 'base32');
    assert.deepEqual(
      r.tokens.map((t) => t.serial),
      ['1', '2', '3'],
    );
    assert.deepEqual(
      r.problems.map((p) => [p.code, p.severity, p.line, p.serial]),
      [['SECRET_ENCODING_DECIDED', 'info', 3, '2']],
    );
    assert.match(r.problems[0]!.message, /read as base32.*first on line 2.*force --secret-encoding/);
    assert.ok(!r.problems[0]!.message.includes(both.slice(0, 8)));
    // The same for hex files; a forced encoding is the user's decision, and OATH CSV is hex by definition: no note.
    const hex = '1669EBDCC7108C272FD876ED6E7F562583BE16A9';
    const h = read(`${HEADER},1,${hex},30,T,M\n,2,${both},30,T,M\n`);
    assert.equal(h.secretEncoding, 'hex');
    assert.deepEqual(
      h.problems.map((p) => [p.code, p.line]),
      [['SECRET_ENCODING_DECIDED', 3]],
    );
    assert.match(h.problems[0]!.message, /read as hex.*first on line 2/);
    assert.deepEqual(read(`${HEADER},1,${S1},30,T,M\n,2,${both},30,T,M\n`, { secretEncoding: 'base32' }).problems, []);
    assert.deepEqual(readCsvSeed(bytes(`T1, ${both.slice(0, 32)}, totp\n`), { now: READ_AT, fileName: 'oath.csv' }).problems, []);
  });

  it('reports rows that do not fit the chosen encoding, with a hint and without the secret', () => {
    const r = read(`${HEADER},1,${S1},30,T,M\n,2,1669EBDCC7108C272FD876ED6E7F562583BE16A9,30,T,M\n,3,${S2},30,T,M\n`);
    assert.equal(r.secretEncoding, 'base32');
    assert.deepEqual(
      r.tokens.map((t) => t.serial),
      ['1', '3'],
    );
    assert.equal(r.problems.length, 1);
    const [p] = r.problems;
    assert.equal(p?.code, 'SECRET_INVALID_CHARACTERS');
    assert.equal(p?.line, 3);
    assert.equal(p?.serial, '2');
    assert.match(p.message, /looks like hex/);
    assert.doesNotMatch(p.message, /1669EB|C7108C/);
  });
});

describe('CSV seed files: file-level errors', () => {
  const cases: [string, string | Uint8Array, string][] = [
    ['empty file', '', 'FILE_EMPTY'],
    ['blank lines only', '\n\r\n  \n', 'FILE_EMPTY'],
    ['header only', HEADER, 'FILE_EMPTY'],
    ['no secret column', 'upn,serial number,model\n,1,M\n', 'CSV_MISSING_COLUMN'],
    ['no serial column', 'secret key,model\nAAAA,M\n', 'CSV_MISSING_COLUMN'],
    ['unknown layout', 'name,age\nbob,3\n', 'CSV_UNKNOWN_LAYOUT'],
    ['binary', new Uint8Array([0xff, 0xfe, 0x00, 0x41, 0x80, 0x81]), 'FILE_NOT_TEXT'],
    ['unclosed quote', `${HEADER},"1,${S1},30,T,M\n`, 'CSV_MALFORMED'],
  ];
  for (const [name, input, code] of cases) {
    it(`${name} -> ${code}`, () => {
      assert.throws(
        () => readCsvSeed(typeof input === 'string' ? bytes(input) : input, { now: READ_AT, fileName: 'bad.csv' }),
        fileError(code, /bad\.csv/),
      );
    });
  }

  it('refuses files above the size limit', () => {
    assert.throws(
      () => readCsvSeed(bytes(`${HEADER},1,${S1},30,T,M\n`), { now: READ_AT, fileName: 'big.csv', maxBytes: 10 }),
      fileError('FILE_TOO_LARGE'),
    );
  });
});

describe('CSV seed files: per-token problems never hide the good tokens', () => {
  it('reports each kind of bad row with code, line, serial and a fix, keeping the good rows', () => {
    const r = read(
      HEADER +
        `,good,${S1},30,T,M\n` + // line 2
        `,short,MFRGGZDFMZTWQ2LK,30,T,M\n` + // 80 bits: line 3
        `,bad-interval,${S2},45,T,M\n` + // line 4
        `,,${S2},30,T,M\n` + // missing serial: line 5
        `,nosecret,,30,T,M\n` + // line 6
        `,dup,${S1},30,T,M\n` + // line 7
        `,dup,${S2},30,T,M\n` + // line 8: conflicting duplicate
        `,same,${S2},60,T,M\n` + // line 9
        `,same,${S2},60,T,M\n` + // line 10: exact repeat
        `,"ctl\u0007",${S2},30,T,M\n`, // line 11
    );
    assert.deepEqual(
      r.tokens.map((t) => t.serial),
      ['good', 'same'],
    );
    assert.deepEqual(
      r.problems.map((p) => [p.code, p.severity, p.line, p.serial]),
      [
        ['SECRET_TOO_SHORT', 'error', 3, 'short'],
        ['INTERVAL_INVALID', 'error', 4, 'bad-interval'],
        ['SERIAL_MISSING', 'error', 5, undefined],
        ['SECRET_MISSING', 'error', 6, 'nosecret'],
        ['DUPLICATE_SERIAL_CONFLICT', 'error', 7, 'dup'],
        ['DUPLICATE_SERIAL_CONFLICT', 'error', 8, 'dup'],
        ['DUPLICATE_ROW', 'warning', 10, 'same'],
        ['SERIAL_INVALID', 'error', 11, undefined],
      ],
    );
    for (const p of r.problems) {
      assert.ok(p.message.length > 20, p.message);
      for (const secret of [S1, S2, 'MFRGGZDFMZTWQ2LK']) assert.ok(!p.message.includes(secret), `secret leaked in ${p.message}`);
    }
  });
});

describe('CSV seed files: rows whose cells do not line up with the columns', () => {
  const HEX1 = '1669ebdcc7108c272fd876ed6e7f562583be16a9';
  const HEX2 = 'a0b1c2d3e4f5061728394a5b6c7d8e9fa0b1c2d3';

  /** The row is one CSV_ROW_MISALIGNED error: line only, no serial, no cell of the row in the message. */
  function assertMisaligned(text: string, line: number, goodSerials: string[], opts: { secretEncoding?: 'base32' | 'hex' } = {}) {
    const r = read(text, opts);
    assert.deepEqual(
      r.tokens.map((t) => t.serial),
      goodSerials,
    );
    assert.deepEqual(
      r.problems.map((p) => [p.code, p.severity, p.line, p.serial]),
      [['CSV_ROW_MISALIGNED', 'error', line, undefined]],
    );
    const row = text.split('\n')[line - 1]!;
    for (const c of row
      .split(/[,;]/)
      .map((x) => x.trim())
      .filter((x) => x.length >= 4)) {
      assert.ok(!r.problems[0]!.message.includes(c), `the message quotes a cell: ${r.problems[0]!.message}`);
    }
    return r.problems[0]!;
  }

  it("Entra's layout with the empty leading upn cell missing: one row error, the other rows still come out", () => {
    const p = assertMisaligned(`${HEADER},1,${S1},30,Token2,C202\n2,${S2},30,Token2,C202\n,3,${S2},30,Token2,C202\n`, 3, ['1', '3']);
    assert.match(p.message, /5 cells.*header has 6/);
  });

  it('an unquoted comma inside a manufacturer name, before or after the secret', () => {
    assertMisaligned(
      `serial number,manufacturer,model,secret key,time interval\n1,Token2,C202,${S1},30\n2,Token2, Inc,C202,${S2},30\n`,
      3,
      ['1'],
    );
    assertMisaligned(`${HEADER},1,${S1},30,Token2,C202\n,2,${S2},30,"Token2, Inc",C202\n,3,${S2},30,Token2, Inc,C202\n`, 4, ['1', '2']);
  });

  it('a missing upn cell and an extra cell in one row (count right, every cell shifted): the secret-like serial gives it away', () => {
    const p = assertMisaligned(`${HEADER},1,${S1},30,Token2,C202\n2,${S2},30,Token2, Inc,C202\n`, 3, ['1']);
    assert.match(p.message, /serial number cell/);
  });

  it('a privacyIDEA row with an extra empty cell, or without its serial', () => {
    assertMisaligned(`PI1, ${HEX1}, totp, 6, 30\nPI2,, ${HEX2}, totp, 6, 30\n`, 2, ['PI1']);
    assertMisaligned(`PI1, ${HEX1}, totp, 6, 30\n${HEX2}, totp, 6, 30\n`, 2, ['PI1']);
    assertMisaligned(`PI1, ${HEX1}, totp, 6, 30\nPI2,, ${HEX2}, totp, 6\n`, 2, ['PI1']);
  });

  it('quotes no cell of a well-formed row that fails a check, and attaches a serial only when it passes the serial check', () => {
    const r = read(`${HEADER},1,${S1},${S2.slice(0, 20)},T,M\n,"x\u0007${S2.slice(0, 20)}",${S2},30,T,M\n`);
    assert.deepEqual(
      r.problems.map((p) => [p.code, p.line, p.serial]),
      [
        ['INTERVAL_INVALID', 2, '1'],
        ['SERIAL_INVALID', 3, undefined],
      ],
    );
    for (const p of r.problems) assert.ok(!p.message.includes(S2.slice(0, 12)), p.message);
    const pi = read(`PI1, ${HEX1}, totp, 6, 30\nPI2, ${HEX2}, motp, ${HEX2.slice(0, 14)}, 30\n`);
    // An unsupported type's other cells mean other things (an OCRA suite, TANs): only the type is reported.
    assert.deepEqual(
      pi.problems.map((p) => [p.code, p.line, p.serial]),
      [['TYPE_UNSUPPORTED', 2, 'PI2']],
    );
    for (const p of pi.problems) assert.ok(!p.message.includes(HEX2.slice(0, 12)) && !p.message.includes('motp'), p.message);
  });
});

describe('CSV seed files: every value checked against what the row and header say', () => {
  it('refuses a header that names one column twice (under one name or two), whichever cell would be read', () => {
    for (const header of [
      'serial number,secret key,algorithm,hash',
      'serial number,secret key,secret',
      'serial,serial number,secret key',
      'serial number,secret key,time interval,period',
    ]) {
      const cells = header.split(',').length;
      const row = ['A', S1, 'SHA256', 'SHA1'].slice(0, cells).join(',');
      assert.throws(() => read(`${header}\n${row}\n`), fileError('CSV_DUPLICATE_COLUMN', /columns \d and \d/), header);
    }
    // The message names the columns by position and header name only: never a cell of a row.
    assert.throws(
      () => read(`serial number,secret key,secret key\nA,${S1},${S2}\n`),
      (err: unknown) => err instanceof FileError && !err.message.includes(S1.slice(0, 8)) && !err.message.includes(S2.slice(0, 8)),
    );
  });

  it("reads an HOTP row's counter column exactly, and says so when a cell is not used by the row's type", () => {
    const r = read(
      `serial number,secret key,token type,counter,time interval\nH1,${S1},hotp,16887061004979670,30\nH2,${S2},hotp,,345\nT1,${S1.replace('C', 'D')},totp,120,30\nT2,${S2.replace('E', 'F')},totp,0,60\n`,
    );
    assert.deepEqual(
      r.tokens.map((t) => [t.serial, t.type, t.counter, t.period]),
      [
        ['H1', 'hotp', 16887061004979670n, 30],
        ['H2', 'hotp', undefined, 30],
        ['T1', 'totp', undefined, 30],
        ['T2', 'totp', undefined, 60],
      ],
    );
    // H2's 345 is no time step an HOTP token uses (a counter in the wrong column?); T1's counter is not a TOTP value.
    assert.deepEqual(
      r.problems.map((p) => [p.code, p.severity, p.line]),
      [
        ['CELL_NOT_USED', 'info', 3],
        ['CELL_NOT_USED', 'info', 4],
      ],
    );
    assert.match(r.problems[0]!.message, /time interval.*HOTP.*counter/);
    assert.match(r.problems[1]!.message, /counter.*TOTP/);
    const bad = read(`serial number,secret key,token type,counter\nH1,${S1},hotp,-1\nH2,${S2},hotp,18446744073709551616\n`);
    assert.deepEqual(
      bad.problems.map((p) => [p.code, p.line]),
      [
        ['FIELD_INVALID', 2],
        ['FIELD_INVALID', 3],
      ],
    );
  });
});
