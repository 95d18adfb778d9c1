// Runs the pinned Bicep CLI through scripts/bicep.sh (which fetches it with `dotnet restore` on first use).
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ArmTemplate } from './arm-template.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const infraDir = path.join(repoRoot, 'infra');
const bicepScript = path.join(repoRoot, 'scripts', 'bicep.sh');

export interface BicepDiagnostic {
  file: string;
  line: number;
  column: number;
  level: string;
  code: string;
  message: string;
}

export interface BicepRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

export class BicepUnavailableError extends Error {
  override name = 'BicepUnavailableError';
}

export function runBicep(args: string[], cwd = repoRoot): BicepRun {
  // The first run may restore the package (a few seconds); builds of this template take ~3 s.
  const result = spawnSync(bicepScript, args, { cwd, encoding: 'utf8', timeout: 300_000 });
  if (result.error) throw new BicepUnavailableError(`cannot run ${bicepScript}: ${result.error.message}`);
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Throws (never skips) when the compiler cannot be fetched: the infra check must not pass without it. */
export function bicepVersion(): string {
  const run = runBicep(['--version']);
  if (run.status !== 0) {
    throw new BicepUnavailableError(
      `the Bicep compiler is not available and could not be fetched (scripts/bicep.sh exit ${run.status}): ${run.stderr.trim()}`,
    );
  }
  return run.stdout.trim();
}

/** The version pinned in infra/tools/bicep-cli.csproj. */
export function pinnedBicepVersion(): string {
  const project = readFileSync(path.join(infraDir, 'tools', 'bicep-cli.csproj'), 'utf8');
  const match = /Include="Azure\.Bicep\.CommandLine\.linux-x64" Version="\[([0-9.]+)\]"/.exec(project);
  if (!match?.[1]) throw new Error('no pinned Bicep version in infra/tools/bicep-cli.csproj');
  return match[1];
}

const diagnosticLine = /^(.*)\((\d+),(\d+)\) : (\w+) ([^:\s]+): (.*)$/;

/** Parses the CLI's default diagnostic format: `file(line,col) : Level code: message`. */
export function parseDiagnostics(output: string): BicepDiagnostic[] {
  const diagnostics: BicepDiagnostic[] = [];
  for (const line of output.split(/\r?\n/)) {
    const match = diagnosticLine.exec(line.trim());
    if (!match) continue;
    const [, file = '', row = '0', column = '0', level = '', code = '', message = ''] = match;
    diagnostics.push({ file, line: Number(row), column: Number(column), level, code, message });
  }
  return diagnostics;
}

/** Every .bicep file under infra/, relative to infra/, sorted. */
export function listBicepFiles(dir = infraDir, prefix = ''): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const relative = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) files.push(...listBicepFiles(path.join(dir, entry.name), relative));
    else if (entry.name.endsWith('.bicep')) files.push(relative);
  }
  return files.sort();
}

export interface CompileResult {
  build: BicepRun;
  lint: BicepRun;
  /** Compiled ARM JSON per .bicep file (key: path relative to infra/, e.g. "modules/storage.bicep"). */
  templates: Map<string, ArmTemplate>;
}

/** Builds and lints every .bicep file under infra/ once (two compiler runs), writing the JSON into outDir. */
export function compileInfra(outDir: string): CompileResult {
  bicepVersion();
  const build = runBicep(['build', '--pattern', '**/*.bicep', '--outdir', outDir], infraDir);
  const lint = runBicep(['lint', '--pattern', '**/*.bicep'], infraDir);
  const templates = new Map<string, ArmTemplate>();
  if (build.status === 0) {
    for (const file of listBicepFiles()) {
      const jsonPath = path.join(outDir, file.replace(/\.bicep$/, '.json'));
      templates.set(file, JSON.parse(readFileSync(jsonPath, 'utf8')) as ArmTemplate);
    }
  }
  return { build, lint, templates };
}
