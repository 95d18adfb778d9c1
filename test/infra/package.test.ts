/**
 * The deployment package, as `npm run package` stages it for azd (scripts/package.ts: .funcignore applied to
 * the built tree, package.json without scripts or devDependencies, the production dependencies from
 * package-lock.json). Reads the built app in dist/: run `npm run build` first (npm test and test:unit do).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, posix } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import ts from 'typescript';
import { deploymentPlan, keptByFuncignore, repoRoot, stageDeployment, STAGING_DIR, type DeploymentPlan } from '../../scripts/package.js';

const run = promisify(execFile);
const ENTRY = 'dist/functions/index.js';
const CLI_ENTRY = 'dist/shared/cli/main.js';

/** Module specifiers a compiled file loads: static imports, re-exports and dynamic import() of a string. */
function specifiersOf(file: string): string[] {
  const source = ts.createSourceFile(file, readFileSync(join(repoRoot, file), 'utf8'), ts.ScriptTarget.Latest, false, ts.ScriptKind.JS);
  const out: string[] = [];
  const visit = (node: ts.Node) => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier))
      out.push(node.moduleSpecifier.text);
    if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const [argument] = node.arguments;
      assert.ok(argument && ts.isStringLiteral(argument), `${file} imports a computed specifier, which this check cannot follow`);
      out.push(argument.text);
    }
    // createRequire(import.meta.url)('pkg'): a CommonJS load of a package (shared/app/blob-reference.ts).
    if (
      ts.isCallExpression(node) &&
      ts.isCallExpression(node.expression) &&
      ts.isIdentifier(node.expression.expression) &&
      node.expression.expression.text === 'createRequire'
    ) {
      const [argument] = node.arguments;
      if (argument && ts.isStringLiteral(argument)) out.push(argument.text);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return out;
}

/** Every repository file reachable from `entry` through relative imports, and the bare specifiers they use. */
function importClosure(entry: string): { files: Set<string>; bare: Map<string, string> } {
  const files = new Set<string>();
  const bare = new Map<string, string>();
  const pending = [entry];
  while (pending.length > 0) {
    const file = pending.pop()!;
    if (files.has(file)) continue;
    files.add(file);
    for (const specifier of specifiersOf(file)) {
      if (specifier.startsWith('.')) pending.push(posix.normalize(posix.join(posix.dirname(file), specifier)));
      else bare.set(specifier, file);
    }
  }
  return { files, bare };
}

const isBuiltin = (specifier: string) => specifier.startsWith('node:') || builtinModules.includes(specifier.split('/')[0]!);
const packageName = (specifier: string) =>
  specifier
    .split('/')
    .slice(0, specifier.startsWith('@') ? 2 : 1)
    .join('/');

void describe('deployment package', () => {
  let plan: DeploymentPlan;
  before(() => {
    assert.ok(existsSync(join(repoRoot, ENTRY)), `${ENTRY} is missing: run npm run build first`);
    plan = deploymentPlan();
  });

  void it("carries host.json, the compiled app and the console's page assets only: no dev code, CLI, tests, sources, source maps or declarations", () => {
    assert.ok(plan.appFiles.includes('host.json'));
    assert.ok(plan.appFiles.includes(ENTRY));
    for (const asset of ['console/console.css', 'console/console.js']) assert.ok(plan.appFiles.includes(asset), `${asset} ships`);
    const unexpected = plan.appFiles.filter(
      (f) => f !== 'host.json' && !/^dist\/(functions|shared)\/[\w/.-]+\.js$/.test(f) && !/^console\/[\w-]+\.(css|js)$/.test(f),
    );
    assert.deepEqual(unexpected, []);
    assert.deepEqual(
      plan.appFiles.filter((f) => f.startsWith('dist/dev/') || f.startsWith('dist/shared/cli/') || f.endsWith('.map')),
      [],
    );
    // And the build makes none of them in the first place.
    const built = readdirSync(join(repoRoot, 'dist'), { recursive: true, encoding: 'utf8' });
    assert.deepEqual(
      built.filter((f) => f.endsWith('.map') || f.endsWith('.d.ts')),
      [],
    );
    assert.ok(!existsSync(join(repoRoot, 'dist/dev')), 'npm run build compiles dev/');
  });

  void it('.funcignore keeps only host.json, package.json and the app in dist/, whatever else lies around', () => {
    const root = mkdtempSync(join(tmpdir(), 'funcignore-'));
    try {
      const files = [
        'host.json',
        'package.json',
        'package-lock.json',
        'local.settings.json',
        'tsconfig.json',
        'dist/functions/index.js',
        'dist/functions/index.js.map',
        'dist/functions/index.d.ts',
        'dist/shared/core/totp.js',
        'dist/shared/cli/main.js',
        'dist/dev/host/core-module.js',
        'functions/index.ts',
        'shared/core/totp.ts',
        'dev/keyvault/server.ts',
        'dev/data/keyvault.jsonl',
        'test/core/totp.test.ts',
        'scripts/package.ts',
        'bench/run.ts',
        'infra/main.bicep',
        'samples/token2.csv',
        '.bicep/packages/x',
        '.vscode/settings.json',
      ];
      for (const file of [...files, '.funcignore']) {
        mkdirSync(dirname(join(root, file)), { recursive: true });
        writeFileSync(join(root, file), file === '.funcignore' ? readFileSync(join(repoRoot, '.funcignore')) : '');
      }
      assert.deepEqual(keptByFuncignore(root), ['dist/functions/index.js', 'dist/shared/core/totp.js', 'host.json', 'package.json']);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  void it('ships a package.json without scripts or devDependencies, whose main is the entry', () => {
    const own = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    assert.equal(plan.packageJson.main, ENTRY);
    assert.equal(plan.packageJson.type, 'module');
    assert.deepEqual(plan.packageJson.dependencies, own.dependencies);
    for (const field of ['scripts', 'devDependencies', 'bin', 'allowScripts']) assert.equal(plan.packageJson[field], undefined, field);
  });

  void it('holds every module the app loads, eagerly or lazily; each package it imports is a production dependency', () => {
    const app = importClosure(ENTRY);
    const shipped = new Set(plan.appFiles);
    assert.deepEqual(
      [...app.files].filter((f) => !shipped.has(f)),
      [],
      'modules the app imports that the package lacks',
    );
    assert.ok(app.bare.has('@azure/functions'));
    const dependencies = plan.packageJson.dependencies ?? {};
    const staged = new Set(plan.dependencies);
    for (const [specifier, importer] of app.bare) {
      if (isBuiltin(specifier)) continue;
      const name = packageName(specifier);
      assert.ok(name in dependencies, `${importer} imports ${specifier}, but ${name} is not a production dependency`);
      assert.ok(staged.has(`node_modules/${name}`), `${name} is not staged`);
    }
  });

  void it('declares no production dependency that neither the app nor the CLI imports', () => {
    const used = new Set(
      [...importClosure(ENTRY).bare.keys(), ...importClosure(CLI_ENTRY).bare.keys()].filter((s) => !isBuiltin(s)).map(packageName),
    );
    assert.deepEqual(
      Object.keys(plan.packageJson.dependencies ?? {}).filter((name) => !used.has(name)),
      [],
    );
  });

  void it('stages production packages only: no devDependency, nothing package-lock.json marks dev', () => {
    const own = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> };
    const lock = JSON.parse(readFileSync(join(repoRoot, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
    const staged = new Set(plan.dependencies);
    // A devDependency may be staged only because a production package needs it too (e.g. @otplib/uri under @otplib/totp).
    assert.deepEqual(
      Object.keys(own.devDependencies).filter(
        (name) => staged.has(`node_modules/${name}`) && lock.packages[`node_modules/${name}`]?.dev === true,
      ),
      [],
    );
    assert.deepEqual(
      plan.dependencies.filter((path) => lock.packages[path]?.dev === true),
      [],
    );
    for (const devOnly of ['@azure/storage-queue', 'azurite', 'typescript', 'tsx', 'node'])
      assert.ok(!staged.has(`node_modules/${devOnly}`), devOnly);
  });

  void describe('staged', () => {
    const out = mkdtempSync(join(tmpdir(), 'deploy-'));
    after(() => rmSync(out, { recursive: true, force: true }));

    void it('loads from the staged folder and registers every function', async () => {
      stageDeployment(out, { linkDependencies: true });
      assert.deepEqual(JSON.parse(readFileSync(join(out, 'package.json'), 'utf8')), plan.packageJson);
      const functionFiles = readdirSync(join(out, 'dist/functions')).filter((f) => f.endsWith('.js') && f !== 'index.js');
      // As the Functions worker does: provide @azure/functions-core, then import the entry (bench/cold-start-child.js).
      const env = {
        ...process.env,
        KEY_VAULT_URL: 'http://127.0.0.1:10010',
        PipelineStorage: 'UseDevelopmentStorage=true',
        AzureWebJobsStorage: 'UseDevelopmentStorage=true',
      };
      const { stdout } = await run(
        process.execPath,
        [
          '--experimental-strip-types',
          join(repoRoot, 'bench/cold-start-child.js'),
          join(out, ENTRY),
          join(repoRoot, 'dev/host/core-module.ts'),
        ],
        { cwd: out, env },
      );
      const loaded = JSON.parse(stdout.trim().split('\n').pop()!) as { functions: number };
      assert.equal(loaded.functions, functionFiles.length);
    });
  });

  void it('azure.yaml deploys the staged folder as is, staged by the prepackage hook on both shells', () => {
    const yaml = readFileSync(join(repoRoot, 'azure.yaml'), 'utf8');
    assert.match(yaml, new RegExp(`^ {4}dist: ${STAGING_DIR.replace('.', '\\.')}$`, 'm'));
    assert.match(yaml, /^ {4}remoteBuild: false$/m);
    const prepackage = /^ {6}prepackage:\n((?: {8}.*\n)+)/m.exec(yaml);
    assert.ok(prepackage, 'no prepackage hook on the api service');
    assert.deepEqual(
      [...prepackage[1]!.matchAll(/run: (.+)/g)].map((m) => m[1]),
      ['npm run package', 'npm run package'],
    );
  });
});
