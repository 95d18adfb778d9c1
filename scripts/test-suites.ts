/**
 * Splits the test files into two suites by what they import, and runs one or both:
 *
 *   node --import tsx scripts/test-suites.ts unit|stack|all [--list] [--future]
 *
 * - stack: a file that, through its own imports or its helpers' (type-only imports do not count), loads a
 *   module that starts a local service: the local stack, Azurite, the Key Vault stand-in or the Functions host;
 * - unit: every other test file. Both suites run from the compiled CLI too (cli.test.ts), so `npm run build` first.
 *
 * A new test file lands in the right suite without being listed anywhere. Each suite has a job-level timeout
 * (a hung loop fails the run instead of stalling it); TEST_JOB_TIMEOUT_MINUTES overrides it.
 *
 * --future runs the suite under libfaketime a year ahead (`faketime -f +365d`), so code that reads the real
 * clock where it should use the Clock port, or dates baked into tests, show up; without faketime it says so
 * and succeeds.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { delimiter, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Modules whose loading means a test starts a local service (paths from the repository root, as .ts sources). */
export const SERVICE_MODULES: readonly string[] = [
  'test/helpers/stack.ts',
  'test/reliability/restartable-azurite.ts',
  'dev/stack.ts',
  'dev/azurite.ts',
  'dev/keyvault/server.ts',
  'dev/host/host.ts',
];

export type Suite = 'unit' | 'stack';

/** Every *.test.ts under test/, repository-relative, sorted. */
export function testFiles(root = repoRoot): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory()) {
        if (entry.name !== 'fixtures') walk(path);
      } else if (entry.name.endsWith('.test.ts')) out.push(path);
    }
  };
  walk('test');
  return out.sort();
}

/** Relative modules a file loads at run time: `import type` and `export type` are erased, so they do not count. */
export function runtimeImports(file: string, root = repoRoot): string[] {
  const source = ts.createSourceFile(file, readFileSync(join(root, file), 'utf8'), ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const specifiers: string[] = [];
  const visit = (node: ts.Node) => {
    if (ts.isImportDeclaration(node) && !node.importClause?.isTypeOnly && ts.isStringLiteral(node.moduleSpecifier))
      specifiers.push(node.moduleSpecifier.text);
    else if (ts.isExportDeclaration(node) && !node.isTypeOnly && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier))
      specifiers.push(node.moduleSpecifier.text);
    else if (
      ts.isCallExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments[0] &&
      ts.isStringLiteral(node.arguments[0])
    ) {
      specifiers.push(node.arguments[0].text);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  const out: string[] = [];
  for (const specifier of specifiers) {
    if (!specifier.startsWith('.')) continue;
    const target = relative(root, resolve(root, dirname(file), specifier))
      .replace(/\\/g, '/')
      .replace(/\.js$/, '.ts');
    if (existsSync(join(root, target))) out.push(target);
  }
  return out;
}

/** The service module a test file loads, directly or through any chain of relative imports; undefined if none. */
export function serviceModuleLoadedBy(file: string, root = repoRoot): string | undefined {
  const seen = new Set<string>();
  const pending = [file];
  while (pending.length > 0) {
    const current = pending.pop()!;
    if (seen.has(current)) continue;
    seen.add(current);
    if (SERVICE_MODULES.includes(current)) return current;
    pending.push(...runtimeImports(current, root));
  }
  return undefined;
}

export function suiteOf(file: string, root = repoRoot): Suite {
  return serviceModuleLoadedBy(file, root) === undefined ? 'unit' : 'stack';
}

/** About 10x and 3x what each suite takes on a 2-core machine; together within .ci/run's 45-minute limit. */
const JOB_TIMEOUT_MINUTES: Record<Suite, number> = { unit: 10, stack: 30 };
const FUTURE_OFFSET = '+365d';

function onPath(command: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) if (dir && existsSync(join(dir, command))) return join(dir, command);
  return undefined;
}

/** Runs one suite's files with node's test runner; resolves to its exit code. */
function runSuite(suite: Suite, files: string[], faketime?: string): Promise<number> {
  if (files.length === 0) return Promise.resolve(0);
  const minutes = Number(process.env.TEST_JOB_TIMEOUT_MINUTES ?? JOB_TIMEOUT_MINUTES[suite]);
  // Stack tests each start their own services on free ports: one file at a time keeps a 2-core machine responsive.
  const concurrency = suite === 'stack' ? 1 : 2;
  const nodeArgs = ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, ...files];
  const [command, args] = faketime ? [faketime, ['-f', FUTURE_OFFSET, process.execPath, ...nodeArgs]] : [process.execPath, nodeArgs];
  console.log(`test:${suite}: ${files.length} files (job timeout ${minutes} min)${faketime ? `, clock ${FUTURE_OFFSET}` : ''}`);
  const child = spawn(command, args, { cwd: repoRoot, stdio: 'inherit', detached: true });
  return new Promise((resolveCode) => {
    const timer = setTimeout(() => {
      console.error(`test:${suite}: still running after ${minutes} min: stopping it (a test hangs).`);
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, minutes * 60_000);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolveCode(code ?? (signal ? 1 : 0));
    });
  });
}

async function main(argv: string[]): Promise<number> {
  const which = argv[0];
  if (which !== 'unit' && which !== 'stack' && which !== 'all') {
    console.error('usage: scripts/test-suites.ts unit|stack|all [--list] [--future]');
    return 2;
  }
  const files = testFiles();
  const bySuite: Record<Suite, string[]> = { unit: [], stack: [] };
  for (const file of files) bySuite[suiteOf(file)].push(file);
  const suites: Suite[] = which === 'all' ? ['unit', 'stack'] : [which];
  if (argv.includes('--list')) {
    for (const suite of suites) for (const file of bySuite[suite]) console.log(`${suite}\t${file}`);
    return 0;
  }
  let faketime: string | undefined;
  if (argv.includes('--future')) {
    faketime = onPath('faketime');
    if (!faketime) {
      console.log('test:future: skipped: faketime is not installed (Debian/Ubuntu: apt-get install faketime).');
      return 0;
    }
  }
  let failed = 0;
  for (const suite of suites) if ((await runSuite(suite, bySuite[suite], faketime)) !== 0) failed++;
  return failed === 0 ? 0 : 1;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) process.exitCode = await main(process.argv.slice(2));
