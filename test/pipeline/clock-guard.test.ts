/**
 * Every time source of the services and of the test fakes goes through the Clock port. A service that read the
 * system time directly made a test depend on the day it ran (issue 11); this guard keeps that class of bug out.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const repoRoot = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
/** The services, the functions, the test fakes, the Key Vault stand-in (its throttling window takes a Clock) and what it shares with the Graph stand-in. */
const SCANNED = ['shared', 'functions', 'test/helpers', 'dev/keyvault', 'dev/stand-in'];
/** The clock adapter itself. (Real-time waits, as in the stack helper, use the monotonic performance.now().) */
const ALLOWED = new Set(['shared/pipeline/clock.ts']);
const SYSTEM_TIME = /\bnew Date\(\s*\)|\bDate\.now\(\s*\)|(?<![\w.])Date\(\s*\)/;

function* sourceFiles(dir: string): Generator<string> {
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) yield* sourceFiles(path);
    else if (path.endsWith('.ts')) yield path;
  }
}

describe('clock guard', () => {
  it('no service, adapter or test fake reads the system time except through the Clock port', () => {
    const offenders: string[] = [];
    for (const top of SCANNED) {
      for (const file of sourceFiles(join(repoRoot, top))) {
        const name = relative(repoRoot, file).split('\\').join('/');
        if (ALLOWED.has(name)) continue;
        readFileSync(file, 'utf8')
          .split('\n')
          .forEach((line, i) => {
            if (SYSTEM_TIME.test(line)) offenders.push(`${name}:${i + 1}: ${line.trim()}`);
          });
      }
    }
    assert.deepEqual(offenders, [], 'use the Clock port (shared/pipeline/clock.ts) instead');
  });

  it('the guard recognises each way of reading the system time', () => {
    for (const line of ['const t = new Date();', 'Date.now()', 'String(Date())']) assert.match(line, SYSTEM_TIME);
    for (const line of ["new Date('2026-01-01')", 'clock.now()', 'new Date(ms)']) assert.doesNotMatch(line, SYSTEM_TIME);
  });
});
