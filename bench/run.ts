/**
 * `npm run bench`: how close the pipeline runs to its limits, measured on this
 * machine in one run. Prints a table and writes bench/results.json (git-ignored).
 *
 *   1. ingest: creates/s against Key Vault's create budget (stand-in throttling on, 10 ms per call)
 *   2. build: reads/s against a scaled read budget
 *   3. verify: endpoint latency (warm, zero-latency stand-ins) and the CPU of a full-window wrong-code check
 *   4. cold start: loading the app's entry against a one-function @azure/functions app
 *   5. parsing: CSV and PSKC tokens/s against their parser floors, peak memory, PBKDF2, hostile inputs
 *   6. scale: one large seed file (100,000 tokens; BENCH_SCALE_TOKENS for a quicker run) through one instance, the
 *      vault stand-in's budget scaled up BENCH_SCALE_FACTOR times (5 by default) so it takes minutes, not an hour:
 *      ingest time against the budget's floor, hand-offs between invocations, the instance's peak RSS
 *   7. multi-instance: two host processes, four files dropped at once, Key Vault's real budget (300 / 10 s)
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { measureColdStart, type ColdStartFigures } from './cold-start.js';
import { repoRoot } from './dist.js';
import { measureParsing, type ParseFigures } from './parse.js';
import type {
  BuildScenarioResult,
  IngestScenarioResult,
  MultiScenarioResult,
  ScaleScenarioResult,
  ScenarioConfig,
} from './stack-scenario.js';
import { round } from './stats.js';
import { measureVerifyCpu, type VerifyCpuFigures } from './verify-cpu.js';

/** Sizes: ingest spans five create windows, the build five read windows. */
const INGEST_TOKENS = 1500;
const CREATE_BUDGET = 300;
const READ_BUDGET = 4000;
const BUILD_ASSIGNED = 500;
const BUILD_READ_BUDGET = 100;
const VAULT_LATENCY_MS = 10;
/** Issue 18: each figure as a ratio to the floor it is built on, so the targets hold on a busy machine. */
const TARGETS = {
  verifyRatio: 1.5,
  csvRatio: 1.5,
  pskcRatio: 1.3,
  csvPeakRssMB: 120,
  scaleRatio: 0.9,
  scalePeakRssMB: 512,
  multiRatio: 0.9,
};
/** Issue 13: a 100,000-token file; the vault's budget scaled up so the run takes minutes (said in the output). */
const SCALE_TOKENS = Number(process.env.BENCH_SCALE_TOKENS ?? 100_000);
const SCALE_FACTOR = Number(process.env.BENCH_SCALE_FACTOR ?? 5);
const MULTI_FILES = 4;
const MULTI_TOKENS_PER_FILE = 300;

interface Check {
  figure: string;
  value: string;
  target: string;
  pass: boolean | null;
}

function log(line: string): void {
  process.stderr.write(`[bench] ${line}\n`);
}

/** Runs bench/stack-scenario.ts in its own process group (the stack starts Azurite), returns its RESULT line. */
function runScenario<T>(cfg: ScenarioConfig, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'bench', 'stack-scenario.ts'), JSON.stringify(cfg)], {
      cwd: repoRoot,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // Gone already.
      }
    }, timeoutMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      const line = stdout.split('\n').find((l) => l.startsWith('RESULT '));
      if (code === 0 && line) resolve(JSON.parse(line.slice('RESULT '.length)) as T);
      else reject(new Error(`The ${cfg.mode} scenario failed (code ${code}, signal ${signal}).\n${stderr.slice(-4000)}`));
    });
  });
}

async function section<T>(name: string, fn: () => Promise<T>, errors: string[]): Promise<T | undefined> {
  const started = Date.now();
  log(`${name}...`);
  try {
    const value = await fn();
    log(`${name} done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return value;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    errors.push(`${name}: ${message}`);
    log(`${name} FAILED: ${message}`);
    return undefined;
  }
}

const fmt = (n: number | null | undefined, digits = 2) =>
  n === null || n === undefined || Number.isNaN(n) ? 'n/a' : n.toLocaleString('en-US', { maximumFractionDigits: digits });

function table(checks: Check[]): string {
  const head = ['Figure', 'Value', 'Target', 'Result'];
  const rows = checks.map((c) => [c.figure, c.value, c.target, c.pass === null ? 'info' : c.pass ? 'pass' : 'FAIL']);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

async function main(): Promise<void> {
  const started = Date.now();
  const errors: string[] = [];
  const loadStart = loadavg().map((l) => round(l, 2));
  const dataDir = await mkdtemp(join(tmpdir(), 'entra-oath-bench-'));
  let ingest: IngestScenarioResult | undefined;
  let build: BuildScenarioResult | undefined;
  let parsing: ParseFigures | undefined;
  try {
    ingest = await section(
      `1. ingest of ${INGEST_TOKENS} tokens at ${CREATE_BUDGET} creates / 10 s (and verify latency)`,
      () =>
        runScenario<IngestScenarioResult>(
          {
            mode: 'ingest',
            dataDir,
            tokens: INGEST_TOKENS,
            createBudget: CREATE_BUDGET,
            readBudget: READ_BUDGET,
            kvRealism: { throttling: true, createsPer10s: CREATE_BUDGET, othersPer10s: READ_BUDGET, latencyMs: VAULT_LATENCY_MS },
            verifyTokens: 300,
            verifyWarmup: 100,
          },
          180_000,
        ),
      errors,
    );
    if (ingest) {
      // Same data folder: the tokens ingested above, the app restarted with a scaled read budget.
      build = await section(
        `2. import build of ${BUILD_ASSIGNED} assigned tokens at ${BUILD_READ_BUDGET} reads / 10 s`,
        () =>
          runScenario<BuildScenarioResult>(
            {
              mode: 'build',
              dataDir,
              tokens: INGEST_TOKENS,
              assigned: BUILD_ASSIGNED,
              createBudget: CREATE_BUDGET,
              readBudget: BUILD_READ_BUDGET,
              kvRealism: { throttling: true, createsPer10s: CREATE_BUDGET, othersPer10s: BUILD_READ_BUDGET, latencyMs: VAULT_LATENCY_MS },
            },
            150_000,
          ),
        errors,
      );
    }
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
  const verifyCpu: VerifyCpuFigures | undefined = await section(
    '3. verify CPU over the full +/- 1 day window',
    () => measureVerifyCpu(),
    errors,
  );
  const coldStart: ColdStartFigures | undefined = await section('4. cold start', () => measureColdStart(repoRoot), errors);
  const scaleBudget = CREATE_BUDGET * SCALE_FACTOR;
  const scaleDir = await mkdtemp(join(tmpdir(), 'entra-oath-bench-scale-'));
  let scale: ScaleScenarioResult | undefined;
  let multi: MultiScenarioResult | undefined;
  try {
    scale = await section(
      `6. scale: ${SCALE_TOKENS} tokens, vault budget scaled up ${SCALE_FACTOR}x to ${scaleBudget} creates / 10 s (floor ${Math.round(SCALE_TOKENS / (scaleBudget / 10))} s)`,
      () =>
        runScenario<ScaleScenarioResult>(
          {
            mode: 'scale',
            dataDir: join(scaleDir, 'scale'),
            tokens: SCALE_TOKENS,
            createBudget: scaleBudget,
            readBudget: READ_BUDGET * SCALE_FACTOR,
            kvRealism: { throttling: true, createsPer10s: scaleBudget, othersPer10s: READ_BUDGET * SCALE_FACTOR },
            // A few hand-offs per run, as a 55-minute file makes at the real budget and the default 25 minutes.
            invocationBudgetSeconds: Math.max(10, Math.round(SCALE_TOKENS / (scaleBudget / 10) / 4)),
            // Azurite on disk writes its whole table database every 5 s: at 50,000 rows that stalled it (and the
            // ingest waiting on it) for about a second each time. Table Storage has no such pause.
            azuriteInMemory: true,
            timeoutMs: Math.round((SCALE_TOKENS / (scaleBudget / 10)) * 4 * 1000) + 300_000,
          },
          Math.round((SCALE_TOKENS / (scaleBudget / 10)) * 4 * 1000) + 360_000,
        ),
      errors,
    );
    multi = await section(
      `7. multi-instance: 2 hosts, ${MULTI_FILES} files of ${MULTI_TOKENS_PER_FILE} tokens at ${CREATE_BUDGET} creates / 10 s`,
      () =>
        runScenario<MultiScenarioResult>(
          {
            mode: 'multi',
            dataDir: join(scaleDir, 'multi'),
            tokens: MULTI_TOKENS_PER_FILE,
            files: MULTI_FILES,
            createBudget: CREATE_BUDGET,
            readBudget: READ_BUDGET,
            kvRealism: { throttling: true, createsPer10s: CREATE_BUDGET, othersPer10s: READ_BUDGET },
            invocationBudgetSeconds: 5,
            pollIntervalMs: 250,
            timeoutMs: 240_000,
          },
          300_000,
        ),
      errors,
    );
  } finally {
    await rm(scaleDir, { recursive: true, force: true });
  }
  const parseDir = await mkdtemp(join(tmpdir(), 'entra-oath-bench-parse-'));
  try {
    parsing = await section('5. parsing', () => measureParsing(repoRoot, parseDir), errors);
  } finally {
    await rm(parseDir, { recursive: true, force: true });
  }

  const verifyRatios = ingest
    ? {
        p50Ratio: round(ingest.verify.p50Ms / ingest.verify.backingFloor.p50Ms, 2),
        p99Ratio: round(ingest.verify.p99Ms / ingest.verify.backingFloor.p99Ms, 2),
      }
    : undefined;
  // The app's share: against the same backing calls plus the one round trip through the local host every request makes.
  const withHop = ingest?.verify.backingFloor.withHostRoundTrip;
  const verifyAppShare =
    ingest && withHop
      ? { p50Ratio: round(ingest.verify.p50Ms / withHop.p50Ms, 2), p99Ratio: round(ingest.verify.p99Ms / withHop.p99Ms, 2) }
      : undefined;
  const inRange = (v: number | undefined) => (v === undefined ? null : v >= 0.9 && v <= 1.0);
  const checks: Check[] = [
    {
      figure: 'Ingest creates/s ÷ create budget (30/s)',
      value: ingest
        ? `${fmt(ingest.creates.ratio, 3)} (${fmt(ingest.creates.firstToLastPerSecond)}/s, peak ${ingest.creates.peakPer10s}/10 s)`
        : 'error',
      target: '0.9-1.0',
      pass: ingest ? inRange(ingest.creates.ratio) : false,
    },
    {
      figure: 'Ingest 429s from the vault / retries',
      value: ingest ? `${ingest.standInThrottled} / ${ingest.app?.retries ?? 'n/a'}` : 'error',
      target: '0 / (counted)',
      pass: ingest ? ingest.standInThrottled === 0 : false,
    },
    {
      figure: 'Build reads/s ÷ read budget (10/s scaled)',
      value: build
        ? `${fmt(build.reads.ratio, 3)} (${fmt(build.reads.firstToLastPerSecond)}/s, peak ${build.reads.peakPer10s}/10 s)`
        : 'error',
      target: '0.9-1.0',
      pass: build ? inRange(build.reads.ratio) && build.standInThrottled === 0 : false,
    },
    {
      figure: 'Verify p50 ÷ backing calls alone p50 (warm)',
      value: verifyRatios
        ? `${fmt(verifyRatios.p50Ratio)} (${fmt(ingest!.verify.p50Ms)} ÷ ${fmt(ingest!.verify.backingFloor.p50Ms)} ms)`
        : 'error',
      target: `<= ${TARGETS.verifyRatio}`,
      pass: verifyRatios ? verifyRatios.p50Ratio <= TARGETS.verifyRatio && ingest!.verify.notValid === 0 : false,
    },
    {
      figure: 'Verify p99 ÷ backing calls alone p99 (warm)',
      value: verifyRatios
        ? `${fmt(verifyRatios.p99Ratio)} (${fmt(ingest!.verify.p99Ms)} ÷ ${fmt(ingest!.verify.backingFloor.p99Ms)} ms)`
        : 'error',
      target: `<= ${TARGETS.verifyRatio}`,
      pass: verifyRatios ? verifyRatios.p99Ratio <= TARGETS.verifyRatio && ingest!.verify.notValid === 0 : false,
    },
    {
      figure: 'Verify p50 / p99 ÷ (backing calls + one local-host round trip)',
      value: verifyAppShare
        ? `${fmt(verifyAppShare.p50Ratio)} / ${fmt(verifyAppShare.p99Ratio)} (round trip alone ${fmt(ingest!.verify.backingFloor.hostRoundTrip.p50Ms)} / ${fmt(ingest!.verify.backingFloor.hostRoundTrip.p99Ms)} ms)`
        : 'error',
      target: "(the app's share)",
      pass: null,
    },
    {
      figure: 'Wrong code, full window: CPU ÷ HMAC floor',
      value: verifyCpu
        ? `${fmt(verifyCpu.fullWindowRatio, 3)} (${fmt(verifyCpu.fullWindowCpuMs)} ms / ${fmt(verifyCpu.floorCpuMs)} ms)`
        : 'error',
      target: '<= 1.5',
      pass: verifyCpu ? verifyCpu.fullWindowRatio <= 1.5 : false,
    },
    {
      figure: 'Cold start: app ÷ one-function app',
      value: coldStart ? `${fmt(coldStart.ratio, 3)} (${fmt(coldStart.appMs, 1)} / ${fmt(coldStart.baselineMs, 1)} ms)` : 'error',
      target: '<= 1.5',
      pass: coldStart ? coldStart.ratio <= 1.5 : false,
    },
    {
      figure: 'CSV reader ÷ csv-parse alone (100,000-token file)',
      value: parsing
        ? `${fmt(parsing.csvFloorRatio)} (${fmt(parsing.csvReaderMs, 0)} ÷ ${fmt(parsing.csvParseFloorMs, 0)} ms; ${fmt(parsing.csvTokensPerSecond, 0)} tokens/s)`
        : 'error',
      target: `<= ${TARGETS.csvRatio}`,
      pass: parsing ? parsing.csvFloorRatio <= TARGETS.csvRatio : false,
    },
    {
      figure: 'CSV peak memory (RSS), 100,000 tokens',
      value: parsing
        ? `${fmt(parsing.peakMemoryMB, 0)} MB (before reading ${fmt(parsing.peakMemoryBeforeParseMB, 0)} MB; csv-parse alone ${fmt(parsing.csvParsePeakMemoryMB, 0)} MB)`
        : 'error',
      target: `<= ${TARGETS.csvPeakRssMB} MB`,
      pass: parsing ? parsing.peakMemoryMB <= TARGETS.csvPeakRssMB : false,
    },
    {
      figure: 'PSKC tokens/s (10,000 keys, AES-CBC + HMAC)',
      value: parsing ? fmt(parsing.pskcTokensPerSecond, 0) : 'error',
      target: '>= 5,000',
      pass: parsing ? parsing.pskcTokensPerSecond >= 5000 : false,
    },
    {
      figure: "PSKC reader ÷ XML parser with the reader's options",
      value: parsing
        ? `${fmt(parsing.pskcParserFloorRatio)} (${fmt(parsing.pskcReaderMs, 0)} ÷ ${fmt(parsing.xmlReaderOptionsParseMs, 0)} ms; default options ${fmt(parsing.pskcParserFloorRatioVsDefaultOptions)}, with crypto ${fmt(parsing.pskcFloorWithCryptoRatio)})`
        : 'error',
      target: `<= ${TARGETS.pskcRatio}`,
      pass: parsing ? parsing.pskcParserFloorRatio <= TARGETS.pskcRatio : false,
    },
    {
      figure: 'PBKDF2 step (1,000 / 2,000,000 iterations)',
      value: parsing ? `${fmt(parsing.pbkdf2Ms)} ms / ${fmt(parsing.pbkdf2MaxIterationsMs, 0)} ms` : 'error',
      target: '(reported)',
      pass: null,
    },
    {
      figure: 'Worst negative PSKC fixture / hostile corpus',
      value: parsing
        ? `${fmt(parsing.negativeWorstMs, 1)} ms / ${parsing.corpusWorstMs === null ? 'no corpus' : `${fmt(parsing.corpusWorstMs, 0)} ms`}`
        : 'error',
      target: '(reported)',
      pass: null,
    },
    {
      figure: `Scale: ${fmt(SCALE_TOKENS, 0)}-token file, one instance, budget scaled up ${SCALE_FACTOR}x (${fmt(CREATE_BUDGET * SCALE_FACTOR, 0)} creates / 10 s): floor ÷ ingest time`,
      value: scale
        ? `${fmt(scale.ratio, 3)} (${fmt(scale.floorSeconds, 0)} s floor ÷ ${fmt(scale.ingestSeconds, 0)} s; ${scale.handOffs} hand-offs; ${scale.standInThrottled} 429s)`
        : 'error',
      target: `>= ${TARGETS.scaleRatio}`,
      pass: scale ? scale.ratio >= TARGETS.scaleRatio : false,
    },
    {
      figure: `Scale: peak RSS of the ingesting instance (${fmt(SCALE_TOKENS, 0)} tokens)`,
      value: scale ? `${scale.peakRssMB === null ? 'n/a' : fmt(scale.peakRssMB, 0)} MB` : 'error',
      target: `< ${TARGETS.scalePeakRssMB} MB`,
      pass: scale && scale.peakRssMB !== null ? scale.peakRssMB < TARGETS.scalePeakRssMB : false,
    },
    {
      figure: `Two instances, ${MULTI_FILES} files at once (${fmt(MULTI_FILES * MULTI_TOKENS_PER_FILE, 0)} tokens, ${CREATE_BUDGET} creates / 10 s): creates/s ÷ budget`,
      value: multi
        ? `${fmt(multi.ratio, 3)} (peak ${multi.creates.peakPer10s} / 10 s; ${multi.throttled} 429s, ${multi.failedInvocations} failed invocations)`
        : 'error',
      target: `>= ${TARGETS.multiRatio}`,
      pass: multi ? multi.ratio >= TARGETS.multiRatio && multi.failedInvocations === 0 : false,
    },
  ];

  const results = {
    generatedAt: new Date().toISOString(),
    machine: {
      node: process.version,
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      loadAverageAtStart: loadStart,
      loadAverageAtEnd: loadavg().map((l) => round(l, 2)),
    },
    durationSeconds: round((Date.now() - started) / 1000, 1),
    ingest: ingest
      ? {
          ratio: ingest.creates.ratio,
          tokens: ingest.tokens,
          stored: ingest.stored,
          wallSeconds: ingest.wallSeconds,
          creates: ingest.creates,
          reads: ingest.reads,
          throttled: ingest.standInThrottled,
          retries: ingest.app?.retries ?? null,
          app: ingest.app,
          vaultLatencyMs: VAULT_LATENCY_MS,
          standInStatusCodes: ingest.standInStatusCodes,
        }
      : { error: true },
    build: build
      ? {
          ratio: build.reads.ratio,
          assigned: build.assigned,
          exportedRows: build.exportedRows,
          wallSeconds: build.wallSeconds,
          reads: build.reads,
          throttled: build.standInThrottled,
          retries: build.app?.retries ?? null,
          app: build.app,
          standInStatusCodes: build.standInStatusCodes,
        }
      : { error: true },
    verify: {
      p50Ms: ingest?.verify.p50Ms ?? null,
      p99Ms: ingest?.verify.p99Ms ?? null,
      fullWindowCpuMs: verifyCpu?.fullWindowCpuMs ?? null,
      fullWindowRatio: verifyCpu?.fullWindowRatio ?? null,
      latency: ingest ? { ...ingest.verify, ...verifyRatios } : null,
      cpu: verifyCpu ?? null,
    },
    coldStart: coldStart ?? { error: true },
    // Issue 18's figures: each ratio with its two sides, measured side by side in this run.
    ratios: {
      verifyP50: ingest
        ? {
            ratio: verifyRatios!.p50Ratio,
            appMs: ingest.verify.p50Ms,
            floorMs: ingest.verify.backingFloor.p50Ms,
            target: TARGETS.verifyRatio,
          }
        : null,
      verifyP99: ingest
        ? {
            ratio: verifyRatios!.p99Ratio,
            appMs: ingest.verify.p99Ms,
            floorMs: ingest.verify.backingFloor.p99Ms,
            target: TARGETS.verifyRatio,
          }
        : null,
      verifyOverBackingAndHostRoundTrip: verifyAppShare
        ? {
            p50Ratio: verifyAppShare.p50Ratio,
            p99Ratio: verifyAppShare.p99Ratio,
            floor: withHop,
            hostRoundTrip: ingest!.verify.backingFloor.hostRoundTrip,
          }
        : null,
      csvReaderOverCsvParse: parsing
        ? { ratio: parsing.csvFloorRatio, readerMs: parsing.csvReaderMs, floorMs: parsing.csvParseFloorMs, target: TARGETS.csvRatio }
        : null,
      pskcReaderOverXmlParser: parsing
        ? {
            ratio: parsing.pskcParserFloorRatio,
            readerMs: parsing.pskcReaderMs,
            floorMs: parsing.xmlReaderOptionsParseMs,
            target: TARGETS.pskcRatio,
          }
        : null,
      csvPeakRss: parsing
        ? {
            peakMB: parsing.peakMemoryMB,
            beforeReadingMB: parsing.peakMemoryBeforeParseMB,
            csvParseAlonePeakMB: parsing.csvParsePeakMemoryMB,
            targetMB: TARGETS.csvPeakRssMB,
          }
        : null,
    },
    parse: parsing ?? { error: true },
    // Issue 13. The vault stand-in's budget is scaled up for `scale` (createBudgetPer10s says by how much).
    scale: scale
      ? {
          tokens: scale.tokens,
          ingestSeconds: scale.ingestSeconds,
          floorSeconds: scale.floorSeconds,
          ratio: scale.ratio,
          peakRssMB: scale.peakRssMB,
          budgetScaledUp: `${SCALE_FACTOR}x: ${scale.createBudgetPer10s} creates / 10 s`,
          handOffs: scale.handOffs,
          throttled: scale.standInThrottled,
          creates: scale.creates,
        }
      : { error: true },
    multiInstance: multi
      ? {
          hosts: multi.hosts,
          files: multi.files,
          ratio: multi.ratio,
          throttled: multi.throttled,
          tokens: multi.tokens,
          failedInvocations: multi.failedInvocations,
          creates: multi.creates,
        }
      : { error: true },
    checks,
    errors,
  };
  await writeFile(join(repoRoot, 'bench', 'results.json'), JSON.stringify(results, null, 2) + '\n');

  process.stdout.write(`\n${table(checks)}\n\n`);
  process.stdout.write(
    `Machine: ${results.machine.cpus} x ${results.machine.cpuModel}, Node ${process.version}, load average ${loadStart.join(' ')} at start. Took ${results.durationSeconds} s.\n`,
  );
  process.stdout.write('Figures in detail: bench/results.json\n');
  if (errors.length > 0) {
    process.stdout.write(`\n${errors.length} part(s) failed:\n${errors.join('\n')}\n`);
    process.exitCode = 1;
  }
}

await main();
