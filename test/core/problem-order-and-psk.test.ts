import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodePreSharedKeyHex } from '../../shared/core/encoding.js';
import { problem, sortProblems } from '../../shared/core/problems.js';

void describe('sortProblems', () => {
  void it('orders by line (file-level problems last), then error, warning, info, then code; the input stays as it was', () => {
    const input = [
      problem('FILE_EMPTY', 'error', 'file'),
      problem('DUPLICATE_ROW', 'warning', 'w', { line: 3 }),
      problem('SECRET_TOO_SHORT', 'error', 'e2', { line: 3 }),
      problem('ASSIGNMENT_TOKEN_PENDING', 'info', 'i', { line: 3 }),
      problem('DIGITS_INVALID', 'error', 'e1', { line: 3 }),
      problem('SERIAL_MISSING', 'error', 'first', { line: 1 }),
      problem('CSV_MALFORMED', 'error', 'file-level code sorts before FILE_EMPTY'),
    ];
    const copy = input.map((p) => ({ ...p }));
    const sorted = sortProblems(input);
    assert.deepEqual(
      sorted.map((p) => p.message),
      ['first', 'e1', 'e2', 'w', 'i', 'file-level code sorts before FILE_EMPTY', 'file'],
    );
    assert.deepEqual(input, copy);
  });
});

void describe('decodePreSharedKeyHex', () => {
  void it('reads 16, 24 and 32 bytes of hex in either case, white space ignored', () => {
    for (const bytes of [16, 24, 32]) {
      const hex = 'aB'.repeat(bytes);
      assert.deepEqual(decodePreSharedKeyHex(` ${hex.slice(0, 6)} \n${hex.slice(6)}\t`), new Uint8Array(bytes).fill(0xab));
    }
  });

  void it('refuses other lengths, odd digit counts and anything but hex', () => {
    for (const text of [
      '',
      'ab'.repeat(15),
      'ab'.repeat(17),
      'ab'.repeat(33),
      'a' + 'b'.repeat(32),
      'zz'.repeat(16),
      'ab-'.repeat(16),
      '0x' + 'ab'.repeat(15),
    ]) {
      assert.equal(decodePreSharedKeyHex(text), undefined, JSON.stringify(text));
    }
  });
});
