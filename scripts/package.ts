/**
 * Stages the deployment package in .deploy/, the folder `azd deploy` zips as it is (azure.yaml: `dist: .deploy`,
 * `remoteBuild: false`, and a prepackage hook running `npm run package`). It holds:
 *
 * - the project files .funcignore keeps, from the built tree: host.json and the compiled app under dist/
 *   (no source maps, declarations, dev code, CLI, tests or sources);
 * - a package.json with the production dependencies only, and no scripts (nothing is built on Azure);
 * - those dependencies: every node_modules folder package-lock.json does not mark dev, copied from node_modules.
 *
 *   npm run package        # builds, then stages .deploy/
 */
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ignore from 'ignore';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const STAGING_DIR = '.deploy';

/** package.json fields the Functions host reads (main, type, engines) or that name the package; nothing else ships. */
const SHIPPED_PACKAGE_FIELDS = ['name', 'version', 'description', 'license', 'private', 'type', 'main', 'engines', 'dependencies'] as const;

interface PackageJson {
  main?: string;
  dependencies?: Record<string, string>;
  [field: string]: unknown;
}

interface LockFile {
  packages: Record<string, { dev?: boolean; link?: boolean }>;
}

export interface DeploymentPlan {
  /** Project files, relative to the root, that .funcignore keeps. */
  appFiles: string[];
  /** node_modules folders (package-lock.json keys, e.g. node_modules/@azure/functions) of the production dependencies. */
  dependencies: string[];
  /** The package.json that ships. */
  packageJson: PackageJson;
}

/** The project files .funcignore keeps. A folder it ignores is not entered (gitignore semantics: nothing inside can come back). */
export function keptByFuncignore(root = repoRoot): string[] {
  const rules = ignore().add(readFileSync(join(root, '.funcignore'), 'utf8'));
  const kept: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
      const path = dir ? `${dir}/${entry.name}` : entry.name;
      if (path === '.git' || path === 'node_modules' || path === STAGING_DIR) continue;
      if (entry.isDirectory()) {
        if (!rules.ignores(`${path}/`)) walk(path);
      } else if (!rules.ignores(path)) kept.push(path);
    }
  };
  walk('');
  return kept.sort();
}

export function deploymentPlan(root = repoRoot): DeploymentPlan {
  const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as PackageJson;
  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as LockFile;
  const packageJson: Record<string, unknown> = {};
  for (const field of SHIPPED_PACKAGE_FIELDS) if (manifest[field] !== undefined) packageJson[field] = manifest[field];
  const dependencies = Object.entries(lock.packages)
    .filter(([path, entry]) => path.startsWith('node_modules/') && !entry.dev && !entry.link)
    .map(([path]) => path)
    .sort();
  const appFiles = keptByFuncignore(root).filter((file) => file !== 'package.json');
  if (!manifest.main || !appFiles.includes(manifest.main))
    throw new Error(`the app's entry ${manifest.main} is not built or not kept by .funcignore: run npm run build`);
  return { appFiles, dependencies, packageJson };
}

/**
 * Writes the package to `outDir` (emptied first). `linkDependencies` links each dependency folder instead of
 * copying it: for tests, which need the layout, not 90 MB of copies.
 */
export function stageDeployment(outDir: string, options: { root?: string; linkDependencies?: boolean } = {}): DeploymentPlan {
  const root = options.root ?? repoRoot;
  const plan = deploymentPlan(root);
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  for (const file of plan.appFiles) {
    mkdirSync(dirname(join(outDir, file)), { recursive: true });
    cpSync(join(root, file), join(outDir, file));
  }
  writeFileSync(join(outDir, 'package.json'), `${JSON.stringify(plan.packageJson, null, 2)}\n`);
  for (const dependency of plan.dependencies) {
    const from = join(root, dependency);
    if (!existsSync(from)) throw new Error(`${dependency} is in package-lock.json but not installed: run npm ci`);
    const to = join(outDir, dependency);
    if (options.linkDependencies) {
      // A nested entry comes along inside its parent's link (and writing into the link would write into node_modules).
      if (dependency.lastIndexOf('/node_modules/') > 0) continue;
      mkdirSync(dirname(to), { recursive: true });
      symlinkSync(from, to, 'dir');
    } else {
      mkdirSync(dirname(to), { recursive: true });
      // A nested node_modules is its own lockfile entry, staged on its own (and only when it is production).
      cpSync(from, to, { recursive: true, filter: (source) => !source.slice(from.length).includes('/node_modules') });
    }
  }
  return plan;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  const out = join(repoRoot, STAGING_DIR);
  const plan = stageDeployment(out);
  console.log(`${STAGING_DIR}/: ${plan.appFiles.length} app files, package.json, ${plan.dependencies.length} production packages`);
}
