/**
 * Child process of the benchmark: runs one scenario against the local stack
 * (Azurite, the Key Vault stand-in, the Functions host with dist/) started in
 * this process, and prints one `RESULT {json}` line. A child because a process
 * hosts one app, and the build scenario needs the app started with other
 * budgets on the same data.
 *
 *   node --import tsx bench/stack-scenario.ts '{"mode":"ingest","dataDir":"/tmp/x","tokens":1500,...}'
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { TableClient } from '@azure/data-tables';
import { BlobServiceClient } from '@azure/storage-blob';
import { createLocalSecretClient } from '../dev/keyvault/client.js';
import { repoRoot, startStack, type Stack } from '../dev/stack.js';
import type { KeyVaultRealism } from '../dev/keyvault/server.js';
import { totpCode } from '../shared/core/totp.js';
import { secretNameForSerial } from '../shared/pipeline/secret-names.js';
import { startExtraHost, settingsWith } from './extra-host.js';
import { assignmentsCsv, benchTokens, entraSeedCsv, type BenchToken } from './seeds.js';
import { firstToLastRatePerSecond, peakInWindow, percentile, round, sustainedRatePerSecond } from './stats.js';

export interface ScenarioConfig {
  mode: 'ingest' | 'build' | 'scale' | 'multi';
  dataDir: string;
  /** Tokens in the seed file (ingest) or generated for lookup (build). */
  tokens: number;
  createBudget: number;
  readBudget: number;
  kvRealism: KeyVaultRealism;
  /** Build: how many tokens get an assignment (and are read by the build). */
  assigned?: number;
  /** Ingest: tokens checked by the verify latency run (3 codes each) and warm-up requests. */
  verifyTokens?: number;
  verifyWarmup?: number;
  timeoutMs?: number;
  /** The host's blob polling interval (ms). */
  pollIntervalMs?: number;
  /** Multi: seed files dropped at once (tokens each). */
  files?: number;
  /** Scale / multi: INGEST_INVOCATION_BUDGET_SECONDS, so the ingest hands off as a long one does. */
  invocationBudgetSeconds?: number;
  /** Azurite in memory (its disk persistence stalls it for about a second every 5 s at tens of thousands of rows). */
  azuriteInMemory?: boolean;
}

export interface ScaleScenarioResult {
  mode: 'scale';
  tokens: number;
  createBudgetPer10s: number;
  ingestSeconds: number;
  floorSeconds: number;
  ratio: number;
  peakRssMB: number | null;
  handOffs: number;
  standInThrottled: number;
  creates: PaceFigures;
}

export interface MultiScenarioResult {
  mode: 'multi';
  hosts: number;
  files: number;
  tokens: number;
  ratio: number;
  throttled: number;
  failedInvocations: number;
  creates: PaceFigures;
}

export interface PaceFigures {
  operations: number;
  budgetPer10s: number;
  sustainedPerSecond: number;
  ratio: number;
  sustainedRatio: number;
  firstToLastSeconds: number;
  firstToLastPerSecond: number;
  firstToLastRatio: number;
  peakPer10s: number;
}

export interface AppVaultStats {
  creates: number;
  reads: number;
  retries: number;
  throttled: number;
}

export interface IngestScenarioResult {
  mode: 'ingest';
  tokens: number;
  stored: number | null;
  wallSeconds: number;
  creates: PaceFigures;
  reads: PaceFigures;
  standInThrottled: number;
  standInStatusCodes: Record<string, number>;
  app: AppVaultStats | null;
  verify: {
    requests: number;
    warmup: number;
    valid: number;
    notValid: number;
    p50Ms: number;
    p90Ms: number;
    p99Ms: number;
    maxMs: number;
    meanMs: number;
    backingFloor: LatencyFigures;
  };
}

/** The backing calls of one verify (table read, vault read, table write) made straight with the SDKs: what the app cannot go below. */
export interface LatencyFigures {
  requests: number;
  p50Ms: number;
  p99Ms: number;
  /**
   * The local host's share: a verify request the app answers without any backing call (a body with no code),
   * through the same host. `withHostRoundTrip`: that round trip plus the backing calls, timed as one, in turn with them.
   */
  hostRoundTrip: { p50Ms: number; p99Ms: number };
  withHostRoundTrip: { p50Ms: number; p99Ms: number };
}

export interface BuildScenarioResult {
  mode: 'build';
  assigned: number;
  exportedRows: number;
  wallSeconds: number;
  reads: PaceFigures;
  standInThrottled: number;
  standInStatusCodes: Record<string, number>;
  app: AppVaultStats | null;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function paceFigures(stamps: readonly number[], budgetPer10s: number): PaceFigures {
  const perSecond = budgetPer10s / 10;
  const sustained = sustainedRatePerSecond(stamps);
  const firstToLast = firstToLastRatePerSecond(stamps);
  return {
    operations: stamps.length,
    budgetPer10s,
    sustainedPerSecond: round(sustained, 2),
    // The figure: operations per second from the first to the last, over the budget.
    ratio: round(firstToLast / perSecond, 3),
    sustainedRatio: round(sustained / perSecond, 3),
    firstToLastSeconds: stamps.length > 1 ? round((stamps[stamps.length - 1]! - stamps[0]!) / 1000, 2) : 0,
    firstToLastPerSecond: round(firstToLast, 2),
    firstToLastRatio: round(firstToLast / perSecond, 3),
    peakPer10s: peakInWindow(stamps, 10_000),
  };
}

async function waitUntil(what: string, deadline: number, check: () => Promise<boolean> | boolean): Promise<void> {
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}.`);
    await sleep(100);
  }
}

/** The PacedVault of the app the host loaded: the same module instance, since the URL is the same. */
async function appVaultStats(): Promise<AppVaultStats | null> {
  try {
    const mod = (await import(
      pathToFileURL(join(repoRoot, 'dist', 'shared', 'app', 'context.js')).href
    )) as typeof import('../shared/app/context.js');
    const { stats } = (await mod.getAppContext()).vault;
    return { creates: stats.creates, reads: stats.reads, retries: stats.retries, throttled: stats.throttled };
  } catch {
    return null;
  }
}

async function ingestScenario(stack: Stack, cfg: ScenarioConfig, deadline: number): Promise<IngestScenarioResult> {
  const tokens = benchTokens(cfg.tokens);
  const blobs = BlobServiceClient.fromConnectionString(stack.azurite.connectionString);
  const csv = entraSeedCsv(tokens);
  const started = Date.now();
  await blobs.getContainerClient('seeds').getBlockBlobClient('bench-seeds.csv').upload(csv, Buffer.byteLength(csv));
  await waitUntil('the ingest to store every token', deadline, () => stack.keyVault.stats().creates >= tokens.length);
  await waitUntil('the seed file to be deleted', deadline, async () => {
    for await (const _ of blobs.getContainerClient('seeds').listBlobsFlat()) return false;
    return true;
  });
  await stack.idle();
  const wallSeconds = (Date.now() - started) / 1000;
  const stats = stack.keyVault.stats();
  const app = await appVaultStats();

  let stored: number | null = null;
  for await (const blob of blobs.getContainerClient('reports').listBlobsFlat({ prefix: 'bench-seeds.csv-' })) {
    if (!blob.name.endsWith('.json')) continue;
    const report = JSON.parse((await blobs.getContainerClient('reports').getBlobClient(blob.name).downloadToBuffer()).toString('utf8')) as {
      counts?: { stored?: number };
    };
    stored = report.counts?.stored ?? null;
  }

  const verify = await verifyLatency(stack, tokens, cfg);
  return {
    mode: 'ingest',
    tokens: tokens.length,
    stored,
    wallSeconds: round(wallSeconds, 2),
    creates: paceFigures(stats.createTimestamps, cfg.kvRealism.createsPer10s ?? 300),
    reads: paceFigures(stats.readTimestamps, cfg.kvRealism.othersPer10s ?? 4000),
    standInThrottled: stats.throttled,
    standInStatusCodes: stats.statusCodes,
    app,
    verify,
  };
}

/** Warm instance, stand-ins at zero latency; every code is inside Entra's sign-in window (steps -1, 0, +1). */
async function verifyLatency(stack: Stack, tokens: readonly BenchToken[], cfg: ScenarioConfig): Promise<IngestScenarioResult['verify']> {
  stack.keyVault.setRealism({ latencyMs: 0 });
  const count = Math.min(cfg.verifyTokens ?? 500, tokens.length);
  const warmup = Math.min(cfg.verifyWarmup ?? 100, tokens.length - count);
  const check = async (token: BenchToken, offsetSteps: number) => {
    const code = totpCode(
      { secret: token.secret, algorithm: 'SHA1', digits: 6, period: 30 },
      Math.floor(Date.now() / 1000) + offsetSteps * 30,
    );
    const t0 = performance.now();
    const res = await fetch(`${stack.functions.url}/api/tokens/${token.serial}/verify`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ code }),
    });
    const body = (await res.json()) as { valid?: boolean };
    return { ms: performance.now() - t0, valid: res.status === 200 && body.valid === true };
  };
  for (let i = 0; i < warmup; i++) await check(tokens[count + i]!, 0);
  const times: number[] = [];
  let valid = 0;
  // Rounds in ascending steps, so no code repeats an accepted step (that would be a replay).
  for (const offset of [-1, 0, 1]) {
    for (let i = 0; i < count; i++) {
      const r = await check(tokens[i]!, offset);
      times.push(r.ms);
      if (r.valid) valid++;
    }
  }
  const backingFloor = await backingCallsLatency(stack, tokens[tokens.length - 1]!, times.length, tokens[0]!.serial);
  return {
    backingFloor,
    requests: times.length,
    warmup,
    valid,
    notValid: times.length - valid,
    p50Ms: round(percentile(times, 50), 2),
    p90Ms: round(percentile(times, 90), 2),
    p99Ms: round(percentile(times, 99), 2),
    maxMs: round(Math.max(...times), 2),
    meanMs: round(times.reduce((a, b) => a + b, 0) / times.length, 2),
  };
}

async function backingCallsLatency(stack: Stack, token: BenchToken, requests: number, hopSerial: string): Promise<LatencyFigures> {
  const table = TableClient.fromConnectionString(stack.azurite.connectionString, 'tokens', { allowInsecureConnection: true });
  const vault = createLocalSecretClient(stack.keyVault.url);
  let row: Record<string, unknown> & { partitionKey?: string; rowKey?: string; etag?: string } = {};
  for await (const e of table.listEntities<Record<string, unknown>>({ queryOptions: { filter: `serial eq '${token.serial}'` } })) row = e;
  if (!row.partitionKey || !row.rowKey) throw new Error('The inventory row of the floor token was not found.');
  const { partitionKey, rowKey } = row;
  const once = async () => {
    const t0 = performance.now();
    const entity = await table.getEntity<Record<string, unknown>>(partitionKey, rowKey);
    await vault.getSecret(secretNameForSerial(token.serial));
    const { etag: _etag, timestamp: _ts, ...value } = entity;
    await table.updateEntity({ ...value, partitionKey, rowKey }, 'Replace', { etag: entity.etag });
    return performance.now() - t0;
  };
  // The round trip through the local host: the app refuses the body before any backing call (400).
  const hop = async () => {
    const t0 = performance.now();
    const res = await fetch(`${stack.functions.url}/api/tokens/${hopSerial}/verify`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    await res.arrayBuffer();
    if (res.status !== 400) throw new Error(`The host round trip answered ${res.status}, not 400.`);
    return performance.now() - t0;
  };
  for (let i = 0; i < 50; i++) await hop().then(once);
  const times: number[] = [];
  const hops: number[] = [];
  const sums: number[] = [];
  for (let i = 0; i < requests; i++) {
    const h = await hop();
    const b = await once();
    hops.push(h);
    times.push(b);
    sums.push(h + b);
  }
  const figures = (t: number[]) => ({ p50Ms: round(percentile(t, 50), 2), p99Ms: round(percentile(t, 99), 2) });
  return { requests, ...figures(times), hostRoundTrip: figures(hops), withHostRoundTrip: figures(sums) };
}

async function buildScenario(stack: Stack, cfg: ScenarioConfig, deadline: number): Promise<BuildScenarioResult> {
  const assigned = benchTokens(cfg.tokens).slice(0, cfg.assigned ?? 500);
  const blobs = BlobServiceClient.fromConnectionString(stack.azurite.connectionString);
  const csv = assignmentsCsv(assigned);
  const started = Date.now();
  // The assignment trigger records the list, then runs an import build.
  await blobs.getContainerClient('assignments').getBlockBlobClient('bench-assignments.csv').upload(csv, Buffer.byteLength(csv));
  const imports = blobs.getContainerClient('imports');
  const csvRows = async () => {
    let rows = 0;
    for await (const blob of imports.listBlobsFlat()) {
      const text = (await imports.getBlobClient(blob.name).downloadToBuffer()).toString('utf8');
      rows += text.split(/\r?\n/).filter((l) => l.trim() !== '').length - 1;
    }
    return rows;
  };
  await waitUntil(
    'the import build to read every assigned token',
    deadline,
    () => stack.keyVault.stats().readTimestamps.filter((t) => t >= started).length >= assigned.length,
  );
  await stack.idle();
  const wallSeconds = (Date.now() - started) / 1000;
  const stats = stack.keyVault.stats();
  return {
    mode: 'build',
    assigned: assigned.length,
    exportedRows: await csvRows(),
    wallSeconds: round(wallSeconds, 2),
    reads: paceFigures(
      stats.readTimestamps.filter((t) => t >= started),
      cfg.kvRealism.othersPer10s ?? 4000,
    ),
    standInThrottled: stats.throttled,
    standInStatusCodes: stats.statusCodes,
    app: await appVaultStats(),
  };
}

async function seedsLeft(stack: Stack, container: string): Promise<number> {
  let n = 0;
  for await (const _ of BlobServiceClient.fromConnectionString(stack.azurite.connectionString)
    .getContainerClient(container)
    .listBlobsFlat())
    n++;
  return n;
}

/**
 * One large file through one instance: a host process of its own (the stack's host watches another container),
 * so its peak RSS is the app's. Ingest time from the drop to the seed file's deletion (the report written).
 */
async function scaleScenario(stack: Stack, cfg: ScenarioConfig, deadline: number): Promise<ScaleScenarioResult> {
  const settingsPath = join(stack.dataDir, 'scale.settings.json');
  await writeFile(settingsPath, settingsWith(stack.settingsPath, { SEEDS_CONTAINER: 'seeds', INGEST_CONTINUE_QUEUE: 'ingest-continue' }));
  const blobs = BlobServiceClient.fromConnectionString(stack.azurite.connectionString);
  await blobs.getContainerClient('seeds').createIfNotExists();
  const host = await startExtraHost(settingsPath, cfg.pollIntervalMs ?? 1000);
  try {
    const csv = entraSeedCsv(benchTokens(cfg.tokens, 'scale'));
    const started = Date.now();
    await blobs.getContainerClient('seeds').getBlockBlobClient('scale-seeds.csv').upload(csv, Buffer.byteLength(csv));
    await waitUntil('the large ingest to finish', deadline, async () => (await seedsLeft(stack, 'seeds')) === 0);
    const ingestSeconds = (Date.now() - started) / 1000;
    const stats = stack.keyVault.stats();
    if (stats.creates !== cfg.tokens) throw new Error(`${stats.creates} creates for ${cfg.tokens} tokens`);
    const floorSeconds = cfg.tokens / (cfg.createBudget / 10);
    return {
      mode: 'scale',
      tokens: cfg.tokens,
      createBudgetPer10s: cfg.createBudget,
      ingestSeconds: round(ingestSeconds, 1),
      floorSeconds: round(floorSeconds, 1),
      ratio: round(floorSeconds / ingestSeconds, 3),
      peakRssMB: host.peakRssMB(),
      handOffs: host
        .output()
        .split('\n')
        .filter((l) => l.includes('handed to a new invocation')).length,
      standInThrottled: stats.throttled,
      creates: paceFigures(stats.createTimestamps, cfg.kvRealism.createsPer10s ?? 300),
    };
  } finally {
    await host.stop();
  }
}

/** Files dropped at once, two instances (the stack's host and one more process) sharing the vault's budget. */
async function multiScenario(stack: Stack, cfg: ScenarioConfig, deadline: number): Promise<MultiScenarioResult> {
  const host = await startExtraHost(stack.settingsPath, cfg.pollIntervalMs ?? 250);
  try {
    const files = cfg.files ?? 4;
    const blobs = BlobServiceClient.fromConnectionString(stack.azurite.connectionString).getContainerClient('seeds');
    await Promise.all(
      Array.from({ length: files }, (_, f) => {
        const csv = entraSeedCsv(benchTokens(cfg.tokens, `multi-${f}`).map((t) => ({ ...t, serial: `M${f}${t.serial}` })));
        return blobs.getBlockBlobClient(`multi-${f}.csv`).upload(csv, Buffer.byteLength(csv));
      }),
    );
    await waitUntil('every file to be ingested', deadline, async () => (await seedsLeft(stack, 'seeds')) === 0);
    await stack.idle();
    const stats = stack.keyVault.stats();
    if (stats.creates !== files * cfg.tokens) throw new Error(`${stats.creates} creates for ${files * cfg.tokens} tokens`);
    const creates = paceFigures(stats.createTimestamps, cfg.kvRealism.createsPer10s ?? 300);
    const failed = (text: string) => text.split('\n').filter((l) => l.includes('(Failed,')).length;
    return {
      mode: 'multi',
      hosts: 2,
      files,
      tokens: files * cfg.tokens,
      ratio: creates.ratio,
      throttled: stats.throttled,
      failedInvocations: failed(host.output()),
      creates,
    };
  } finally {
    await host.stop();
  }
}

async function main(): Promise<void> {
  const cfg = JSON.parse(process.argv[2] ?? '{}') as ScenarioConfig;
  const deadline = Date.now() + (cfg.timeoutMs ?? 180_000);
  const logTail: string[] = [];
  const stack = await startStack({
    dataDir: cfg.dataDir,
    ports: 'free',
    azuriteInMemory: cfg.azuriteInMemory,
    pollIntervalMs: cfg.pollIntervalMs ?? 1000,
    kvRealism: cfg.kvRealism,
    settings: {
      KEY_VAULT_CREATE_BUDGET: String(cfg.createBudget),
      KEY_VAULT_READ_BUDGET: String(cfg.readBudget),
      // No reconciler run in the middle of a measurement.
      RECONCILE_SCHEDULE: '0 0 0 1 1 *',
      ...(cfg.invocationBudgetSeconds && { INGEST_INVOCATION_BUDGET_SECONDS: String(cfg.invocationBudgetSeconds) }),
      // Scale: the stack's own host watches a container nobody drops into; a host process of its own ingests.
      ...(cfg.mode === 'scale' && { SEEDS_CONTAINER: 'scale-idle', INGEST_CONTINUE_QUEUE: 'scale-idle' }),
    },
    // The host logs every invocation; keep only the tail for a failure message.
    log: (line) => {
      logTail.push(line);
      if (logTail.length > 40) logTail.shift();
    },
  });
  try {
    const result =
      cfg.mode === 'ingest'
        ? await ingestScenario(stack, cfg, deadline)
        : cfg.mode === 'build'
          ? await buildScenario(stack, cfg, deadline)
          : cfg.mode === 'scale'
            ? await scaleScenario(stack, cfg, deadline)
            : await multiScenario(stack, cfg, deadline);
    process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\nLast host log lines:\n${logTail.join('\n')}\n`);
    process.exitCode = 1;
  } finally {
    await stack.close();
  }
}

await main();
