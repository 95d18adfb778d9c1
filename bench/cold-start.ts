/**
 * Cold start: the time a fresh Node process takes to load a function app's
 * entry (`@azure/functions` included, functions registered), for the app and
 * for a minimal one-function app, alternating, median of several runs.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { median, round } from './stats.js';

const run = promisify(execFile);

export interface ColdStartFigures {
  runs: number;
  appMs: number;
  baselineMs: number;
  ratio: number;
  appFunctions: number;
  /** Whole process, spawn to exit (Node's own start included), medians. */
  appProcessMs: number;
  baselineProcessMs: number;
  /** Modules the app's entry loads eagerly beyond the baseline's (files under the repo, not node_modules). */
  appEagerModules: string[];
}

interface ChildResult {
  loadMs: number;
  functions: number;
}

export async function measureColdStart(repoRoot: string, runs = 7): Promise<ColdStartFigures> {
  const child = join(repoRoot, 'bench', 'cold-start-child.js');
  // The local host's stand-in for @azure/functions-core, loaded from its TypeScript source with Node's own type
  // stripping (dev code is not built: the build is the deployable app only), before the timed part of each run.
  const coreModule = join(repoRoot, 'dev', 'host', 'core-module.ts');
  const stripTypes = '--experimental-strip-types';
  const appEntry = join(repoRoot, 'dist', 'functions', 'index.js');
  const baselineEntry = join(repoRoot, 'bench', 'baseline-app', 'index.js');
  // The app validates its settings at load: give both processes the same valid local ones.
  const env = {
    ...process.env,
    KEY_VAULT_URL: 'http://127.0.0.1:10010',
    PipelineStorage: 'UseDevelopmentStorage=true',
    AzureWebJobsStorage: 'UseDevelopmentStorage=true',
    FUNCTIONS_WORKER_RUNTIME: 'node',
  };
  const once = async (entry: string, extraArgs: string[] = []) => {
    const started = performance.now();
    const { stdout } = await run(process.execPath, [stripTypes, ...extraArgs, child, entry, coreModule], { cwd: repoRoot, env });
    const processMs = performance.now() - started;
    const line = stdout.trim().split('\n').pop() ?? '{}';
    return { ...(JSON.parse(line) as ChildResult), processMs, stdout };
  };

  // One untimed run each warms the OS file cache.
  await once(appEntry);
  await once(baselineEntry);
  const app: number[] = [];
  const base: number[] = [];
  const appProc: number[] = [];
  const baseProc: number[] = [];
  let appFunctions = 0;
  for (let i = 0; i < runs; i++) {
    const a = await once(appEntry);
    const b = await once(baselineEntry);
    app.push(a.loadMs);
    appProc.push(a.processMs);
    base.push(b.loadMs);
    baseProc.push(b.processMs);
    appFunctions = a.functions;
  }

  // Which of the repo's own files the entry loads before any request: what a cold start pays for.
  const traced = await run(
    process.execPath,
    [stripTypes, '--import', 'data:text/javascript,' + encodeURIComponent(TRACE_HOOK), child, appEntry, coreModule],
    { cwd: repoRoot, env },
  );
  const eager = traced.stderr
    .split('\n')
    .filter((l) => l.startsWith('LOADED '))
    .map((l) => l.slice('LOADED '.length))
    .filter((url) => url.includes('/dist/') && !url.includes('/node_modules/'))
    .map((url) => url.slice(url.indexOf('/dist/') + 1));

  const appMs = median(app);
  const baselineMs = median(base);
  return {
    runs,
    appMs: round(appMs, 1),
    baselineMs: round(baselineMs, 1),
    ratio: round(appMs / baselineMs, 3),
    appFunctions,
    appProcessMs: round(median(appProc), 1),
    baselineProcessMs: round(median(baseProc), 1),
    appEagerModules: [...new Set(eager)].sort(),
  };
}

/** A module-loader hook that names every ES module loaded (run only in the tracing process, never timed). */
const TRACE_HOOK = `
import { register } from 'node:module';
register('data:text/javascript,' + encodeURIComponent(\`
export async function load(url, context, next) {
  process.stderr.write('LOADED ' + url + '\\\\n');
  return next(url, context);
}\`));
`;
