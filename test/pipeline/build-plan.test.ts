import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AssignmentRow } from '../../shared/formats/assignments.js';
import { importFileName } from '../../shared/pipeline/blob-names.js';
import { planBuild } from '../../shared/pipeline/build.js';
import { newTokenEntity } from '../../shared/pipeline/inventory.js';
import type { TokenEntity, TokenState } from '../../shared/pipeline/ports.js';

const NOW = '2026-11-29T10:00:00.000Z';

function token(serial: string, state: TokenState = 'stored', upn: string | null = null): TokenEntity {
  const t = newTokenEntity(
    { serial, manufacturer: 'Token2', model: 'C202', type: 'totp', algorithm: 'SHA1', digits: 6, period: 30, secret: new Uint8Array(20) },
    `oath-${serial}`,
    'v1',
    'seeds.csv@1',
    NOW,
  );
  return { ...t, state, upn };
}

const assign = (serial: string, upn: string, line: number): AssignmentRow => ({ serial, upn, line });

void describe('planBuild', () => {
  void it('plans the stored, assigned tokens in assignment-list order, split into numbered files of maxRows', () => {
    const inventory = [token('1003'), token('1001'), token('1002'), token('1004', 'imported', 'x@contoso.com'), token('1005')];
    const assignments = [
      assign('1002', 'b@contoso.com', 2),
      assign('1001', 'a@contoso.com', 3),
      assign('1003', 'c@contoso.com', 4),
      assign('1004', 'x@contoso.com', 5),
    ];
    const plan = planBuild(inventory, assignments, { reexport: new Set(), maxRows: 2, fileName: 'entra-oath-x.csv' });
    assert.deepEqual(
      plan.rows.map((r) => r.serial),
      ['1002', '1001', '1003'],
    );
    assert.deepEqual(
      plan.parts.map((p) => p.map((r) => r.serial)),
      [['1002', '1001'], ['1003']],
    );
    assert.deepEqual(
      [...plan.fileOf],
      [
        ['1002', 'entra-oath-x-1.csv'],
        ['1001', 'entra-oath-x-1.csv'],
        ['1003', 'entra-oath-x-2.csv'],
      ],
    );
    assert.deepEqual(plan.problems, []);
    assert.deepEqual(plan.unassigned, ['1005'], '1005 is stored but assigned to no one');
  });

  void it("counts what a user already holds toward Entra's five, except a token being re-exported", () => {
    const held = ['2001', '2002', '2003', '2004', '2005'].map((s) => token(s, 'exported', 'Helga@contoso.com'));
    const heldRows = held.map((t, i) => assign(t.serial, 'helga@contoso.com', i + 2));
    const over = planBuild([...held, token('2006')], [...heldRows, assign('2006', 'helga@contoso.com', 7)], {
      reexport: new Set(),
      maxRows: 0,
      fileName: 'f.csv',
    });
    assert.deepEqual(over.rows, []);
    assert.deepEqual(
      over.problems.map((p) => [p.code, p.serial]),
      [['ASSIGNMENT_TOO_MANY_TOKENS', '2006']],
    );

    const again = planBuild(held, heldRows, { reexport: new Set(['2001']), maxRows: 0, fileName: 'f.csv' });
    assert.deepEqual(
      again.rows.map((r) => r.serial),
      ['2001'],
      'the re-exported token replaces itself, it does not make a sixth',
    );
    assert.deepEqual(again.problems, []);
  });

  void it('reports re-export requests it cannot honour before the assignment problems, and plans nothing for them', () => {
    const inventory = [token('3001', 'imported', 'a@contoso.com'), token('3002', 'exported', 'b@contoso.com'), token('3003')];
    const assignments = [assign('3001', 'a@contoso.com', 2), assign('3003', 'not a upn', 3)];
    const plan = planBuild(inventory, assignments, { reexport: new Set(['nope', '3001', '3002']), maxRows: 0, fileName: 'f.csv' });
    assert.deepEqual(plan.rows, []);
    assert.deepEqual(
      plan.problems.map((p) => [p.code, p.serial]),
      [
        ['TOKEN_NOT_FOUND', 'nope'],
        ['TOKEN_STATE_INVALID', '3001'],
        ['TOKEN_UNASSIGNED', '3002'],
        ['ASSIGNMENT_UPN_INVALID', '3003'],
      ],
    );
  });

  void it('changes nothing it is given', () => {
    const inventory = [token('4002'), token('4001')];
    const assignments = [assign('4002', 'a@contoso.com', 2), assign('4001', 'b@contoso.com', 3)];
    const before = JSON.stringify([inventory, assignments]);
    planBuild(inventory, assignments, { reexport: new Set(), maxRows: 0, fileName: 'f.csv' });
    assert.equal(JSON.stringify([inventory, assignments]), before);
  });
});

void describe('importFileName', () => {
  void it('names the file after the build start (UTC, to the second) and the build id', () => {
    assert.equal(importFileName('0123456789ab', new Date('2026-11-29T10:04:05.678Z')), 'entra-oath-20261129T100405Z-0123456789ab.csv');
  });
});
