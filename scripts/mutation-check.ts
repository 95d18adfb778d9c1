/**
 * A small mutation check: each mutation below puts one plausible bug into the code, and the tests named with it
 * must fail. Run it after changing the code or the tests these mutations concern:
 *
 *   npm run mutation                  # every mutation
 *   npm run mutation -- five-tokens   # only the mutations whose id contains this text
 *
 * It copies the tracked files (and any local changes to them) to a temporary folder, links node_modules, and
 * runs the unmutated tests there once (they must pass), then each mutation on its own, restored after. The
 * working tree is never touched. A mutation whose target text is not found exactly once is an error, so a
 * refactor cannot silently disable one: update its `find` text instead. Whitespace in `find` matches any
 * whitespace, including none, so reformatting does not break it. Exit status: 0 when every mutation was killed.
 */
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Mutation {
  id: string;
  /** What bug it stands for. */
  about: string;
  file: string;
  find: string;
  replace: string;
  /** The tests that must notice it. */
  tests: string[];
}

export const MUTATIONS: readonly Mutation[] = [
  {
    id: 'verify-replay-floor',
    about: 'the replay floor off by one: the last accepted step can be accepted again',
    file: 'shared/pipeline/verify.ts',
    find: 'check.floor === null ? 0 : check.floor + 1',
    replace: 'check.floor === null ? 0 : check.floor',
    tests: ['test/pipeline/verify.test.ts'],
  },
  {
    id: 'verify-quick-replay-check',
    about: 'the sign-in-window replay check removed: a replayed code that recurs later in the activation window is accepted',
    file: 'shared/pipeline/verify.ts',
    find: "if (usedStepShows(check, signIn.low, signIn.high)) return { kind: 'replay' };",
    replace: '',
    tests: ['test/pipeline/verify.test.ts'],
  },
  {
    id: 'pskc-valuemac-prefix',
    about: 'a truncated ValueMAC compared as a prefix of the computed MAC',
    file: 'shared/formats/pskc-crypto.ts',
    find: 'actual.length === expected.length && timingSafeEqual(actual, expected)',
    replace: 'expected.length > 0 && timingSafeEqual(actual.subarray(0, expected.length), expected)',
    tests: ['test/formats/pskc/reader.test.ts', 'test/formats/pskc/hostile.test.ts', 'test/formats/pskc/fixtures.test.ts'],
  },
  {
    id: 'csv-writer-formula-cells',
    about: "the Entra CSV writer's formula check applied only to manufacturer and model",
    file: 'shared/entra/import-rules.ts',
    find: '[r.upn, r.serial, r.manufacturer, r.model].some(startsLikeFormula)',
    replace: '[r.manufacturer, r.model].some(startsLikeFormula)',
    tests: ['test/entra/import-rules.test.ts'],
  },
  {
    id: 'five-tokens-allows-six',
    about: 'the five-tokens rule off by one: six tokens for a user pass',
    file: 'shared/entra/import-rules.ts',
    find: 'existing + rows.length > ENTRA_MAX_OATH_METHODS_PER_USER',
    replace: 'existing + rows.length > ENTRA_MAX_OATH_METHODS_PER_USER + 1',
    tests: ['test/entra/import-rules.test.ts'],
  },
  {
    id: 'five-tokens-refuses-five',
    about: 'the five-tokens rule off by one: five tokens for a user are refused',
    file: 'shared/entra/import-rules.ts',
    find: 'existing + rows.length > ENTRA_MAX_OATH_METHODS_PER_USER',
    replace: 'existing + rows.length >= ENTRA_MAX_OATH_METHODS_PER_USER',
    tests: ['test/entra/import-rules.test.ts'],
  },
  {
    id: 'oath-hash-from-seed-length',
    about: "OATH CSV's 32-byte seed read as SHA-1: every code such a token gives would be refused",
    file: 'shared/formats/oath-csv.ts',
    find: "if (bytes === 32) return { algorithm: 'SHA256' };",
    replace: "if (bytes === 32) return { algorithm: 'SHA1' };",
    tests: ['test/formats/oath-csv.test.ts'],
  },
  {
    id: 'pskc-ascii-counter-as-binary',
    about: 'an encrypted counter given as ASCII digits decoded as a big-endian number (298507 read as 55221337534519)',
    file: 'shared/formats/pskc-token.ts',
    find: 'if (ascii !== undefined) { const binary',
    replace: 'if (ascii !== undefined && bytes.length > 8) { const binary',
    tests: ['test/formats/pskc/fixtures.test.ts'],
  },
  {
    id: 'header-csv-counter-ignored',
    about: "a header CSV's HOTP counter column read but not kept: the token's codes start at 0",
    file: 'shared/formats/csv-seed.ts',
    find: '...(counter === undefined ? {} : { counter }),',
    replace: '',
    tests: ['test/formats/csv-seed.test.ts', 'test/cli/inspect-to-code.test.ts'],
  },
  {
    id: 'csv-duplicate-column-first-wins',
    about: 'a header naming a column twice read from its first copy, the other dropped without a word',
    file: 'shared/formats/csv-table.ts',
    find: 'if (found.length > 1) {',
    replace: 'if (found.length > 99) {',
    tests: ['test/formats/csv-seed.test.ts', 'test/entra/import-rules.test.ts'],
  },
  {
    id: 'pskc-repeated-element-first-wins',
    about: 'a PSKC key holding its Secret (or Suite, Counter, ...) twice read from the first copy',
    file: 'shared/formats/pskc-token.ts',
    find: 'if (entry.repeated.length > 0) {',
    replace: 'if (entry.repeated.length > 99) {',
    tests: ['test/formats/pskc/reader.test.ts'],
  },
  {
    id: 'inventory-counter-dropped',
    about: "an HOTP token's counter lost on the way into the inventory",
    file: 'shared/pipeline/inventory.ts',
    find: 'counter: token.counter === undefined ? null : token.counter.toString(),',
    replace: 'counter: null,',
    tests: ['test/pipeline/pipeline-services.test.ts'],
  },
];

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** Per mutation; a run past it counts as killed (the tests noticed, by hanging), and is reported as such. */
const TIMEOUT_MS = Number(process.env.MUTATION_TIMEOUT_SECONDS ?? 300) * 1000;

/** `find` as a pattern: literal text, where any whitespace run matches any whitespace or none. */
export function findPattern(find: string): RegExp {
  const parts = find
    .trim()
    .split(/\s+/)
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(parts.join('\\s*'), 'g');
}

/** The file's text with the mutation applied; throws unless `find` occurs exactly once. */
export function applyMutation(source: string, mutation: Pick<Mutation, 'id' | 'file' | 'find' | 'replace'>): string {
  const matches = [...source.matchAll(findPattern(mutation.find))];
  if (matches.length !== 1) {
    throw new Error(
      `mutation ${mutation.id}: ${JSON.stringify(mutation.find)} occurs ${matches.length} times in ${mutation.file} (must be once). The code changed: update the mutation in scripts/mutation-check.ts.`,
    );
  }
  const at = matches[0]!.index;
  return source.slice(0, at) + mutation.replace + source.slice(at + matches[0]![0].length);
}

type RunResult = { status: 'passed' | 'failed' | 'timeout'; output: string };

function runTests(workDir: string, tests: readonly string[]): Promise<RunResult> {
  const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=dot', ...tests], {
    cwd: workDir,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  return new Promise((resolveRun) => {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, TIMEOUT_MS);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolveRun({ status: timedOut ? 'timeout' : code === 0 ? 'passed' : 'failed', output });
    });
  });
}

/** Tracked files as they are in the working tree (local changes included, deleted files skipped). */
function copyRepository(to: string): void {
  const listed = spawnSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: repoRoot, encoding: 'utf8' });
  if (listed.status !== 0) throw new Error(`git ls-files failed: ${listed.stderr}`);
  for (const file of listed.stdout.split('\0').filter(Boolean)) {
    const from = join(repoRoot, file);
    try {
      mkdirSync(dirname(join(to, file)), { recursive: true });
      cpSync(from, join(to, file));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  symlinkSync(join(repoRoot, 'node_modules'), join(to, 'node_modules'), 'dir');
}

async function main(filter: string | undefined): Promise<number> {
  const selected = MUTATIONS.filter((m) => !filter || m.id.includes(filter));
  if (selected.length === 0) {
    console.error(`no mutation id contains ${JSON.stringify(filter)}; ids: ${MUTATIONS.map((m) => m.id).join(', ')}`);
    return 2;
  }
  // Every target first, so a stale one fails before any test runs.
  const mutated = selected.map((m) => ({ mutation: m, original: readFileSync(join(repoRoot, m.file), 'utf8') }));
  const sources = mutated.map(({ mutation, original }) => ({ mutation, original, text: applyMutation(original, mutation) }));

  const workDir = mkdtempSync(join(tmpdir(), 'mutation-check-'));
  try {
    copyRepository(workDir);
    const allTests = [...new Set(selected.flatMap((m) => m.tests))];
    console.log(`baseline: ${allTests.length} test files, unmutated`);
    const baseline = await runTests(workDir, allTests);
    if (baseline.status !== 'passed') {
      console.error(
        `${baseline.output}\nbaseline: the unmutated tests ${baseline.status === 'timeout' ? 'timed out' : 'fail'}; fix them first.`,
      );
      return 2;
    }
    const survivors: Mutation[] = [];
    for (const { mutation, original, text } of sources) {
      const target = join(workDir, mutation.file);
      writeFileSync(target, text);
      const started = process.hrtime.bigint();
      const result = await runTests(workDir, mutation.tests);
      writeFileSync(target, original);
      const seconds = Number((process.hrtime.bigint() - started) / 1_000_000n) / 1000;
      const verdict = result.status === 'failed' ? 'killed' : result.status === 'timeout' ? 'killed (timeout: a test hangs)' : 'SURVIVED';
      console.log(`${verdict.padEnd(30)} ${mutation.id} (${seconds.toFixed(0)} s): ${mutation.about}`);
      if (result.status === 'passed') survivors.push(mutation);
    }
    if (survivors.length > 0) {
      console.log(
        `\n${survivors.length} of ${sources.length} mutations survived: add tests to ${[...new Set(survivors.flatMap((m) => m.tests))].join(', ')} that fail with them.`,
      );
      return 1;
    }
    console.log(`\nall ${sources.length} mutations killed`);
    return 0;
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) process.exitCode = await main(process.argv[2]);
