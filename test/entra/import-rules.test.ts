import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parse } from 'csv-parse/sync';
import fc from 'fast-check';
import { FileError } from '../../shared/core/problems.js';
import { readAssignments } from '../../shared/formats/assignments.js';
import {
  importabilityProblems,
  partFileName,
  planImport,
  splitRows,
  writeEntraCsv,
  type EntraRow,
  type ImportCandidate,
} from '../../shared/entra/import-rules.js';

const token = (serial: string, extra: Partial<ImportCandidate> = {}): ImportCandidate => ({
  serial,
  manufacturer: 'Token2',
  model: 'C202',
  type: 'totp',
  algorithm: 'SHA1',
  digits: 6,
  period: 30,
  secretBytes: 20,
  ...extra,
});
const rows = (...r: [string, string][]) => r.map(([upn, serial], i) => ({ upn, serial, line: i + 2 }));

describe("Entra's import CSV", () => {
  it('writes the exact header, no BOM, LF, quoting only when needed', () => {
    const csv = writeEntraCsv([
      {
        upn: 'a@contoso.com',
        serial: '0012',
        secretBase32: 'CZU6XXGHCCGCOL6YO3WW472WEWB34FVJ',
        period: 30,
        manufacturer: 'Token2',
        model: 'C202',
      },
      {
        upn: 'b@contoso.com',
        serial: '13',
        secretBase32: 'EZDOCQANJA5PGME5QRSZCR7GLUFJG4JG',
        period: 60,
        manufacturer: 'Contoso, Ltd',
        model: 'Say "hi"',
      },
    ]);
    assert.equal(
      csv,
      'upn,serial number,secret key,time interval,manufacturer,model\n' +
        'a@contoso.com,0012,CZU6XXGHCCGCOL6YO3WW472WEWB34FVJ,30,Token2,C202\n' +
        'b@contoso.com,13,EZDOCQANJA5PGME5QRSZCR7GLUFJG4JG,60,"Contoso, Ltd","Say ""hi"""\n',
    );
    assert.notEqual(csv.charCodeAt(0), 0xfeff);
  });

  it('round-trips any row through csv-parse unchanged', () => {
    const text = fc.string({ maxLength: 30 }).filter((s) => !/^[=+\-@\t\r]/.test(s));
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            upn: text,
            serial: text,
            secretBase32: fc.stringMatching(/^[A-Z2-7]{26,32}$/),
            period: fc.constantFrom(30, 60),
            manufacturer: text,
            model: text,
          }),
          { minLength: 1, maxLength: 5 },
        ),
        (input: EntraRow[]) => {
          const back = parse<Record<string, string>>(writeEntraCsv(input), { columns: true, relax_quotes: false });
          assert.deepEqual(
            back.map((r) => [r.upn, r['serial number'], r['secret key'], Number(r['time interval']), r.manufacturer, r.model]),
            input.map((r) => [r.upn, r.serial, r.secretBase32, r.period, r.manufacturer, r.model]),
          );
        },
      ),
    );
  });

  it('names why a token is not importable by CSV', () => {
    assert.deepEqual(importabilityProblems(token('1'), 'error'), []);
    const [p] = importabilityProblems(token('2', { algorithm: 'SHA256', digits: 8 }), 'warning', 4);
    assert.equal(p?.code, 'ENTRA_NOT_IMPORTABLE');
    assert.equal(p?.severity, 'warning');
    assert.equal(p?.line, 4);
    assert.match(p.message, /SHA256/);
    assert.match(p.message, /8 digits/);
    assert.equal(importabilityProblems(token('3', { type: 'hotp' }), 'error')[0]?.code, 'ENTRA_NOT_IMPORTABLE');
    assert.equal(importabilityProblems(token('4', { secretBytes: 81 }), 'error')[0]?.code, 'ENTRA_NOT_IMPORTABLE');
  });

  it('refuses formula-prefixed cells instead of altering them', () => {
    for (const bad of ['=HYPERLINK("http://x")', '+1', '-2', '@SUM(A1)', '\tx', '\rx']) {
      const codes = importabilityProblems(token('5', { model: bad }), 'error').map((p) => p.code);
      assert.deepEqual(codes, ['ENTRA_FORMULA_CELL'], JSON.stringify(bad));
    }
  });

  it('the writer itself refuses a formula cell, whatever the caller checked', () => {
    assert.throws(
      () =>
        writeEntraCsv([
          {
            upn: 'a@contoso.com',
            serial: '1',
            secretBase32: 'CZU6XXGHCCGCOL6YO3WW472WEWB34FVJ',
            period: 30,
            manufacturer: '@SUM(1)',
            model: 'M',
          },
        ]),
      /formula/,
    );
  });

  it('the writer refuses a formula at the start of any cell it copies from the input: upn, serial, manufacturer, model', () => {
    const row: EntraRow = {
      upn: 'a@contoso.com',
      serial: '1',
      secretBase32: 'CZU6XXGHCCGCOL6YO3WW472WEWB34FVJ',
      period: 30,
      manufacturer: 'Token2',
      model: 'C202',
    };
    assert.doesNotThrow(() => writeEntraCsv([row]));
    for (const field of ['upn', 'serial', 'manufacturer', 'model'] as const) {
      for (const prefix of ['=', '+', '-', '@', '\t', '\r']) {
        assert.throws(
          () => writeEntraCsv([row, { ...row, serial: '2', [field]: `${prefix}${row[field]}` }]),
          /formula/,
          `${field} starting with ${JSON.stringify(prefix)}`,
        );
      }
    }
  });

  it('refuses fields longer than 256 characters', () => {
    assert.deepEqual(
      importabilityProblems(token('6', { manufacturer: 'M'.repeat(257) }), 'error').map((p) => p.code),
      ['ENTRA_FIELD_TOO_LONG'],
    );
    assert.deepEqual(importabilityProblems(token('7', { model: 'M'.repeat(256) }), 'error'), []);
  });

  it('splits into parts of at most N rows and names them', () => {
    assert.deepEqual(splitRows([1, 2, 3, 4, 5], 2), [[1, 2], [3, 4], [5]]);
    assert.deepEqual(splitRows([1, 2], undefined), [[1, 2]]);
    assert.equal(partFileName('out/import.csv', 0, 3), 'out/import-1.csv');
    assert.equal(partFileName('import', 2, 3), 'import-3');
    assert.equal(partFileName('import.csv', 0, 1), 'import.csv');
  });
});

describe('assignment join', () => {
  it('exports valid rows and reports every rule that fails', () => {
    const tokens = [token('A'), token('B'), token('0042'), token('C'), token('D', { algorithm: 'SHA256' }), token('E'), token('F')];
    const plan = planImport(
      tokens,
      rows(
        ['helga@contoso.com', 'A'], // 2 ok
        ['bad upn', 'B'], // 3
        ['x@contoso.com', '42'], // 4 unknown, lost zeros
        ['guest_gmail.com#EXT#@contoso.onmicrosoft.com', 'C'], // 5
        ['y@contoso.com', 'D'], // 6 not importable
        ['p@contoso.com', 'E'], // 7 conflict
        ['q@contoso.com', 'E'], // 8 conflict
        ['helga@contoso.com', 'A'], // 9 exact repeat
      ),
    );
    assert.deepEqual(plan.exported, [{ upn: 'helga@contoso.com', serial: 'A', line: 2 }]);
    assert.deepEqual(
      plan.problems.map((p) => [p.code, p.severity, p.line]),
      [
        ['ASSIGNMENT_UPN_INVALID', 'error', 3],
        ['ASSIGNMENT_UNKNOWN_SERIAL', 'error', 4],
        ['ASSIGNMENT_GUEST_UPN', 'error', 5],
        ['ENTRA_NOT_IMPORTABLE', 'error', 6],
        ['ASSIGNMENT_SERIAL_CONFLICT', 'error', 7],
        ['ASSIGNMENT_SERIAL_CONFLICT', 'error', 8],
        ['ASSIGNMENT_DUPLICATE_ROW', 'warning', 9],
      ],
    );
    assert.match(plan.problems[1]!.message, /"0042"/);
    assert.deepEqual(plan.unassigned, ['0042', 'F']);
  });

  it("exports none of a user's new rows past five tokens, counting tokens held already", () => {
    const tokens = ['1', '2', '3', '4', '5', '6', '7'].map((s) => token(s));
    const six = planImport(
      tokens,
      rows(...['1', '2', '3', '4', '5', '6'].map((s): [string, string] => ['u@contoso.com', s]), ['v@contoso.com', '7']),
    );
    assert.deepEqual(
      six.exported.map((r) => r.serial),
      ['7'],
    );
    assert.equal(six.problems.filter((p) => p.code === 'ASSIGNMENT_TOO_MANY_TOKENS').length, 6);
    const held = planImport(tokens, rows(['U@contoso.com', '1'], ['u@contoso.com', '2']), {
      existingTokensPerUser: new Map([['u@contoso.com', 4]]),
    });
    assert.deepEqual(held.exported, []);
    assert.equal(held.problems.length, 2);
  });

  it('exports exactly five: five new tokens for a user, or a fifth next to four held', () => {
    const tokens = ['1', '2', '3', '4', '5'].map((s) => token(s));
    const five = planImport(tokens, rows(...tokens.map((t): [string, string] => ['u@contoso.com', t.serial])));
    assert.deepEqual(
      five.exported.map((r) => r.serial),
      ['1', '2', '3', '4', '5'],
    );
    assert.deepEqual(five.problems, []);
    const fifth = planImport(tokens, rows(['u@contoso.com', '5']), { existingTokensPerUser: new Map([['u@contoso.com', 4]]) });
    assert.deepEqual(
      fifth.exported.map((r) => r.serial),
      ['5'],
    );
    assert.deepEqual(fifth.problems, []);
  });

  it('reads assignment lists with the same header tolerance', () => {
    const list = readAssignments(new TextEncoder().encode('\ufeffSerial Number;UPN\r\n0012;a@contoso.com\r\n\r\n'), 'a.csv');
    assert.deepEqual(list, { rows: [{ upn: 'a@contoso.com', serial: '0012', line: 2 }], problems: [] });
    assert.throws(() => readAssignments(new TextEncoder().encode('user,token\n'), 'a.csv'), /upn.*serial number/);
  });

  it('refuses list rows whose cells do not line up or whose serial fails the serial check, quoting none of their cells', () => {
    const secret = 'CZU6XXGHCCGCOL6YO3WW472WEWB34FVJ';
    const text = [
      'upn,serial number,secret key,time interval,manufacturer,model', // a seed file dropped as a list
      `a@contoso.com,1,${secret},30,Token2,C202`, // 2 ok
      `2,${secret},30,Token2,C202`, // 3 upn cell missing: the secret would be the serial
      `3,${secret},30,Token2, Inc,C202`, // 4 count right, every cell shifted
      `"b@contoso.com","4\u0007${secret}",x,30,Token2,C202`, // 5 control character in the serial
    ].join('\n');
    const list = readAssignments(new TextEncoder().encode(text), 'list.csv');
    assert.deepEqual(list.rows, [{ upn: 'a@contoso.com', serial: '1', line: 2 }]);
    assert.deepEqual(
      list.problems.map((p) => [p.code, p.line, p.serial]),
      [
        ['CSV_ROW_MISALIGNED', 3, undefined],
        ['CSV_ROW_MISALIGNED', 4, undefined],
        ['SERIAL_INVALID', 5, undefined],
      ],
    );
    for (const p of list.problems) assert.ok(!p.message.includes(secret.slice(0, 12)), p.message);
  });

  it('names what is wrong with a UPN without quoting an invalid one', () => {
    const secret = 'CZU6XXGHCCGCOL6YO3WW472WEWB34FVJ';
    const plan = planImport([token('A'), token('B')], rows([secret, 'A'], ['guest_gmail.com#EXT#@contoso.onmicrosoft.com', 'B']));
    assert.deepEqual(
      plan.problems.map((p) => [p.code, p.serial]),
      [
        ['ASSIGNMENT_UPN_INVALID', 'A'],
        ['ASSIGNMENT_GUEST_UPN', 'B'],
      ],
    );
    assert.ok(!plan.problems[0]!.message.includes(secret.slice(0, 12)), plan.problems[0]!.message);
    assert.match(plan.problems[0]!.message, /no @/);
    assert.match(plan.problems[1]!.message, /guest_gmail\.com#EXT#@contoso\.onmicrosoft\.com/);
  });

  it('shows only the formula character of a formula-prefixed manufacturer or model', () => {
    const problems = importabilityProblems(
      token('A', { manufacturer: '=HYPERLINK("x")', model: '@CZU6XXGHCCGCOL6YO3WW472WEWB34FVJ' }),
      'warning',
    );
    assert.deepEqual(
      problems.map((p) => p.code),
      ['ENTRA_FORMULA_CELL', 'ENTRA_FORMULA_CELL'],
    );
    assert.match(problems[0]!.message, /manufacturer starts with "="/);
    assert.ok(
      !problems.some((p) => p.message.includes('HYPERLINK') || p.message.includes('CZU6XXGHCCGC')),
      problems.map((p) => p.message).join('\n'),
    );
  });
});

describe('assignment lists: a column named twice', () => {
  it('is refused: which UPN or serial is meant cannot be known', () => {
    for (const header of ['upn,serial number,userprincipalname', 'upn,serial,serial number']) {
      assert.throws(
        () => readAssignments(Buffer.from(`${header}\na@contoso.com,1,b@contoso.com\n`), 'a.csv'),
        (err: unknown) =>
          err instanceof FileError && err.code === 'CSV_DUPLICATE_COLUMN' && /columns 1 and 3|columns 2 and 3/.test(err.message),
        header,
      );
    }
  });
});
