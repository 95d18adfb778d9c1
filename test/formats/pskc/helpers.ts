/** Shared by the PSKC tests: fixture loading and token comparison. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { FileError } from '../../../shared/core/problems.js';
import type { OathToken } from '../../../shared/core/token.js';
import type { ExpectedToken, FixtureExpectation, NegativeExpectation } from '../../fixtures/pskc/generate.js';

/** The clock reading the PSKC tests read files at (key policies are judged against it). */
export const READ_AT = new Date('2026-06-01T00:00:00Z');

export const FIXTURES = fileURLToPath(new URL('../../fixtures/pskc/', import.meta.url));

export function fixture(name: string): Buffer {
  return readFileSync(`${FIXTURES}${name}`);
}

export const expected = JSON.parse(readFileSync(`${FIXTURES}expected.json`, 'utf8')) as {
  valid: Record<string, FixtureExpectation>;
  negative: NegativeExpectation[];
};

export function asExpected(token: OathToken): ExpectedToken {
  const out: ExpectedToken = {
    serial: token.serial,
    manufacturer: token.manufacturer,
    model: token.model,
    type: token.type,
    algorithm: token.algorithm,
    digits: token.digits,
    period: token.period,
    secretHex: Buffer.from(token.secret).toString('hex'),
  };
  if (token.counter !== undefined) out.counter = token.counter.toString();
  if (token.timeDriftSeconds !== undefined) out.timeDriftSeconds = token.timeDriftSeconds;
  return out;
}

export function keyOptions(e: { psk?: string; password?: string }): { psk?: Uint8Array; password?: string } {
  const out: { psk?: Uint8Array; password?: string } = {};
  if (e.psk !== undefined) out.psk = Buffer.from(e.psk, 'hex');
  if (e.password !== undefined) out.password = e.password;
  return out;
}

/** Runs fn, asserts it throws a FileError with this code, and returns the error. */
export function fileError(fn: () => unknown, code: string): FileError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof FileError, `expected a FileError ${code}, got ${caught instanceof Error ? caught.message : 'no error'}`);
  assert.equal(caught.code, code, caught.message);
  return caught;
}
