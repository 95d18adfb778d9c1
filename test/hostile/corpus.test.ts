/**
 * The hostile corpus: every broken seed file and assignment list gets exactly
 * the outcome its manifest entry names (each problem's code, severity and line,
 * and the serials that survive), and a file refused whole yields nothing.
 * How fast the readers are is for `npm run bench`, not for this test.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'csv-parse/sync';
import { toCanonicalBase32 } from '../../shared/core/encoding.js';
import { FileError, PROBLEM_CODES, type Problem } from '../../shared/core/problems.js';
import type { OathToken } from '../../shared/core/token.js';
import { checkSerial } from '../../shared/core/validate.js';
import {
  importabilityProblems,
  planImport,
  startsLikeFormula,
  writeEntraCsv,
  type EntraRow,
  type ImportCandidate,
} from '../../shared/entra/import-rules.js';
import { readAssignments } from '../../shared/formats/assignments.js';
import { readSeedFile } from '../../shared/formats/read-seed-file.js';
import type { ReadOptions, SeedReadResult } from '../../shared/formats/types.js';
import {
  CORPUS_DIR,
  corpus,
  inMemoryCase,
  type CorpusEntry,
  type CorpusOptions,
  type ExpectedProblem,
  type Manifest,
  type RowsRead,
} from '../fixtures/corpus/generate.js';

/** The clock reading given to the readers (files are judged as of this date). */
const READ_AT = new Date('2026-06-01T00:00:00Z');

const manifest = JSON.parse(readFileSync(join(CORPUS_DIR, 'manifest.json'), 'utf8')) as Manifest;

function seedOptions(fileName: string, options: CorpusOptions = {}): ReadOptions {
  const out: ReadOptions = { fileName, now: READ_AT };
  if (options.secretEncoding) out.secretEncoding = options.secretEncoding;
  if (options.psk !== undefined) out.psk = Buffer.from(options.psk, 'hex');
  if (options.password !== undefined) out.password = options.password;
  if (options.maxBytes !== undefined) out.maxBytes = options.maxBytes;
  return out;
}

function candidate(token: OathToken): ImportCandidate {
  return { ...token, secretBytes: token.secret.length };
}

const referenceTokens = readSeedFile(readFileSync(join(CORPUS_DIR, manifest.referenceSeed)), {
  now: READ_AT,
  fileName: manifest.referenceSeed,
}).tokens;

/** Problems as comparable tuples, in one canonical order (the readers' own order is not part of the contract). */
function tuples(problems: readonly (Problem | ExpectedProblem)[]): ExpectedProblem[] {
  return problems
    .map((p) => ({ code: String(p.code), severity: p.severity, line: p.line ?? null }))
    .sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || a.code.localeCompare(b.code) || a.severity.localeCompare(b.severity));
}

const sortedSerials = (serials: readonly string[]) => [...serials].sort();

function assertWellFormedProblems(problems: readonly Problem[], withLines: boolean): void {
  for (const p of problems) {
    assert.ok(Object.hasOwn(PROBLEM_CODES, p.code), `problem code ${String(p.code)} is not in PROBLEM_CODES`);
    assert.ok(['error', 'warning', 'info'].includes(p.severity), `severity ${p.severity}`);
    assert.ok(p.message.length > 0);
    if (withLines && p.line !== undefined) assert.ok(Number.isInteger(p.line) && p.line > 0, `line ${p.line}`);
  }
}

/** What may reach the vault: every token the reader returns must be a sound token. */
function assertSoundTokens(tokens: readonly OathToken[]): void {
  for (const t of tokens) {
    assert.equal(checkSerial(t.serial, t.line), undefined, `token ${JSON.stringify(t.serial.slice(0, 40))} has an invalid serial`);
    assert.ok(t.secret.length >= 16 && t.secret.length <= 128, 'secret length out of range');
    assert.ok([6, 8].includes(t.digits));
    if (t.type === 'totp') assert.ok([30, 60].includes(t.period));
  }
}

/** Plans each token for its own user (on the token's line) and writes the Entra CSV: no cell of it may start like a formula. */
function convert(tokens: readonly OathToken[]): Problem[] {
  const plan = planImport(
    tokens.map(candidate),
    tokens.map((t, i) => ({ upn: `user${i}@contoso.com`, serial: t.serial, line: t.line ?? assert.fail(`token ${i} has no line`) })),
  );
  const bySerial = new Map(tokens.map((t) => [t.serial, t]));
  const rows: EntraRow[] = plan.exported.map((r) => {
    const t = bySerial.get(r.serial)!;
    return {
      upn: r.upn,
      serial: r.serial,
      secretBase32: toCanonicalBase32(t.secret),
      period: t.period,
      manufacturer: t.manufacturer,
      model: t.model,
    };
  });
  const cells = parse(writeEntraCsv(rows)).flat();
  assert.deepEqual(cells.filter(startsLikeFormula), [], 'a formula-prefixed cell reached the Entra CSV');
  return plan.problems;
}

type Read = SeedReadResult | { problems: Problem[]; exportedSerials: string[] };
type Outcome = { result: Read } | { error: unknown };

function outcomeOf(read: () => Read): Outcome {
  try {
    return { result: read() };
  } catch (error) {
    return { error };
  }
}

function bytesOf(entry: CorpusEntry): Buffer {
  if (entry.inMemory) return inMemoryCase(entry.inMemory);
  return readFileSync(join(CORPUS_DIR, entry.file!));
}

void describe('hostile corpus', () => {
  void it('is what generate.ts makes, with at least 50 checked-in files under 100 KB each', () => {
    const generated = corpus();
    assert.deepEqual(manifest, JSON.parse(JSON.stringify(generated.manifest)), 'manifest.json is stale: run npm run corpus');
    const onDisk = ['seeds', 'assignments', 'reference'].flatMap((dir) => readdirSync(join(CORPUS_DIR, dir)).map((f) => `${dir}/${f}`));
    assert.deepEqual(onDisk.sort(), [...generated.files.keys()].sort());
    for (const [path, bytes] of generated.files) {
      const disk = readFileSync(join(CORPUS_DIR, path));
      assert.ok(disk.equals(bytes), `${path} differs from what generate.ts makes: run npm run corpus`);
      assert.ok(disk.length < 100 * 1024, `${path} is ${disk.length} bytes`);
    }
    const broken = manifest.entries.filter((e) => e.file);
    assert.ok(broken.length >= 50, `${broken.length} checked-in broken files`);
    assert.ok(manifest.entries.some((e) => e.inMemory === 'seed-two-million-rows'));
  });

  void it('reads the reference tokens the assignment lists are planned against', () => {
    assert.deepEqual(
      referenceTokens.map((t) => t.serial),
      [...Array.from({ length: 12 }, (_, i) => `R${String(i + 1).padStart(3, '0')}`), '000123'],
    );
  });

  for (const entry of manifest.entries) {
    const name = entry.file ?? `in-memory/${entry.inMemory}`;
    void it(`${name}: ${entry.about}`, () => {
      const bytes = bytesOf(entry);
      const outcome =
        entry.reader === 'seed'
          ? outcomeOf(() => readSeedFile(bytes, seedOptions(name, entry.options)))
          : outcomeOf(() => {
              const list = readAssignments(bytes, name, entry.options?.maxBytes);
              const plan = planImport(referenceTokens.map(candidate), list.rows);
              return { problems: [...list.problems, ...plan.problems], exportedSerials: plan.exported.map((r) => r.serial) };
            });
      const bug = entry.knownBug ? ` (known bug: ${entry.knownBug})` : '';

      if ('fileError' in entry.expect) {
        // Refused whole: the reader returns nothing at all, so no token can reach the vault.
        assert.ok('error' in outcome, `expected FileError ${entry.expect.fileError}, but the file was read${bug}`);
        const error = outcome.error;
        assert.ok(
          error instanceof FileError,
          `expected a FileError, got ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`,
        );
        assert.equal(error.code, entry.expect.fileError, `${error.message}${bug}`);
        assert.ok(error.message.length > 0 && error.message.length < 1000, 'the message is bounded');
        return;
      }

      const expected: RowsRead = entry.expect;
      if ('error' in outcome) {
        const error = outcome.error;
        assert.fail(`expected rows, got ${error instanceof FileError ? `FileError ${error.code}: ${error.message}` : String(error)}${bug}`);
      }
      const result = outcome.result;
      assertWellFormedProblems(result.problems, true);
      assert.deepEqual(tuples(result.problems), tuples(expected.problems), `problems (code, severity, line)${bug}`);
      if ('tokens' in result) {
        assert.deepEqual(
          sortedSerials(result.tokens.map((t) => t.serial)),
          sortedSerials(expected.survivors),
          `serials of the tokens returned${bug}`,
        );
        assertSoundTokens(result.tokens);
        const inspect = result.tokens.flatMap((t) => importabilityProblems(candidate(t), 'warning', t.line));
        assert.deepEqual(tuples(inspect), tuples(expected.inspect ?? []), 'inspect-level problems (code, severity, line)');
        assert.deepEqual(tuples(convert(result.tokens)), tuples(expected.convert ?? []), 'convert-level problems (code, severity, line)');
      } else {
        assert.deepEqual(sortedSerials(result.exportedSerials), sortedSerials(expected.survivors), 'serials of the rows exported');
      }
    });
  }
});
