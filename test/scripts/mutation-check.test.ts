// scripts/mutation-check.ts (`npm run mutation`) finds each mutation's text once in today's code: a refactor that
// moves that text fails here, in the unit suite, instead of leaving the mutation check broken until someone runs it.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { applyMutation, MUTATIONS } from '../../scripts/mutation-check.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

void test('every mutation applies to exactly one place, changes the code, and names tests that exist', () => {
  for (const mutation of MUTATIONS) {
    const source = readFileSync(join(repoRoot, mutation.file), 'utf8');
    const mutated = applyMutation(source, mutation);
    assert.notEqual(mutated, source, mutation.id);
    for (const file of mutation.tests) assert.ok(existsSync(join(repoRoot, file)), `${mutation.id}: ${file} does not exist`);
  }
});

void test('a mutation whose text is gone, or found twice, is refused with its id and file', () => {
  const mutation = { id: 'm', file: 'f.ts', find: 'a + 1', replace: 'a' };
  assert.throws(() => applyMutation('b + 1', mutation), /mutation m: "a \+ 1" occurs 0 times in f\.ts/);
  assert.throws(() => applyMutation('a + 1; a+1', mutation), /occurs 2 times/);
  assert.equal(applyMutation('x = a  +  1;', mutation), 'x = a;');
});
