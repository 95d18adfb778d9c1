/**
 * Two instances, one vault (local stack): a second Functions host process (the stack's extra host: the same app,
 * settings and storage, as a scaled-out instance) runs beside the stack's own, the vault stand-in throttles as Key
 * Vault does (300 creates per 10 s), and four seed files are dropped at once. Each instance paces itself by the
 * budget ledger in `state` (shared/pipeline/vault-budget.ts), so together they stay inside one budget: every
 * secret is stored once, no throttled answer reaches an error, and the creates run at >= 90% of the budget.
 *
 * Both hosts run a host.json with blobs.maxDegreeOfParallelism 2, so each takes two of the four files (neither can
 * hold all four), and INGEST_INVOCATION_BUDGET_SECONDS is short (20 s) so the files also change invocation, and
 * host, through the continuation queue mid-way. (Each hand-off leaves a short gap: in Azure the budget is 1,500 s,
 * so gaps are a hundred times rarer than here.)
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { secretNameForSerial } from '../../shared/pipeline/secret-names.js';
import { startTestStack, suiteScope, type TestStack } from '../helpers/stack.js';
import { blobNames, randomTokens, readBlob, seedCsv, upload, vaultStats, waitFor } from './helpers.js';

const FILES = 4;
const TOKENS_PER_FILE = 300;
const CREATES_PER_10S = 300;

/** Creates per second from the first to the last, over the budget per second. */
function ratioToBudget(stamps: readonly number[]): number {
  const sorted = [...stamps].sort((a, b) => a - b);
  const seconds = (sorted.at(-1)! - sorted[0]!) / 1000;
  return (sorted.length - 1) / seconds / (CREATES_PER_10S / 10);
}

function peakPer10s(stamps: readonly number[]): number {
  const sorted = [...stamps].sort((a, b) => a - b);
  let peak = 0;
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while (sorted[i]! - sorted[j]! >= 10_000) j++;
    peak = Math.max(peak, i - j + 1);
  }
  return peak;
}

describe('two instances share one vault budget (local stack, two host processes)', () => {
  let stack: TestStack;
  const scope = suiteScope();

  before(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'entra-oath-hostjson-'));
    scope.after(() => rm(dir, { recursive: true, force: true }));
    const appHostJson = JSON.parse(await readFile(new URL('../../host.json', import.meta.url), 'utf8')) as {
      extensions: { blobs: Record<string, unknown> };
    };
    const hostJson = join(dir, 'host.json');
    const twoBlobsAtOnce = { ...appHostJson.extensions.blobs, maxDegreeOfParallelism: 2 };
    await writeFile(hostJson, JSON.stringify({ ...appHostJson, extensions: { ...appHostJson.extensions, blobs: twoBlobsAtOnce } }));
    stack = await startTestStack(scope, {
      hostJson,
      extraHostJson: hostJson,
      extraHosts: 1,
      settings: {
        KEY_VAULT_CREATE_BUDGET: String(CREATES_PER_10S),
        INGEST_INVOCATION_BUDGET_SECONDS: '20',
        RECONCILE_SCHEDULE: '0 0 0 1 1 *',
      },
      kvRealism: { throttling: true, createsPer10s: CREATES_PER_10S },
    });
  });

  it(
    `${FILES} files at once: every secret once, no throttle reaches an error, creates at >= 90% of the budget`,
    { timeout: 240_000 },
    async () => {
      const files = Array.from({ length: FILES }, (_, f) => ({
        name: `instances-${f}.csv`,
        tokens: randomTokens(`MI${f}`, TOKENS_PER_FILE),
      }));
      await Promise.all(files.map((f) => upload(stack.connectionString, 'seeds', f.name, seedCsv(f.tokens))));
      await waitFor(
        'every seed file to be finished',
        async () => (await blobNames(stack.connectionString, 'seeds')).length === 0,
        200_000,
        250,
      );
      await stack.idleAll();

      const stats = await vaultStats(stack.keyVaultUrl);
      const total = FILES * TOKENS_PER_FILE;
      assert.equal(stats.creates, total, 'one create per token');
      for (const f of files) for (const t of f.tokens) assert.equal(stats.versionsPerSecret[secretNameForSerial(t.serial)], 1, t.serial);
      for (const f of files) {
        const reports = (await blobNames(stack.connectionString, 'reports')).filter(
          (n) => n.startsWith(`${f.name}-`) && n.endsWith('.json'),
        );
        assert.equal(reports.length, 1, `${f.name}: one report`);
        const report = JSON.parse((await readBlob(stack.connectionString, 'reports', reports[0]!)).toString('utf8')) as {
          outcome: string;
          counts: Record<string, number>;
        };
        assert.deepEqual([report.outcome, report.counts.stored], ['completed', TOKENS_PER_FILE], f.name);
      }

      const outputs = [stack.output(), stack.extraHosts[0]!.logs().join('\n')];
      for (const [i, output] of outputs.entries()) {
        assert.doesNotMatch(output, /\(Failed,/, `host ${i + 1}: no invocation failed`);
        const started = output.match(/Executed 'Functions\.ingestSeedFile' \(Succeeded/g) ?? [];
        assert.equal(started.length, FILES / 2, `host ${i + 1} started two of the files (two blobs at once per host)`);
      }
      // Each file needs about 40 s of the shared budget, more than one 20 s invocation: each was continued at least once.
      const continued = outputs.join('\n').match(/Executed 'Functions\.continueIngest' \(Succeeded/g) ?? [];
      assert.ok(continued.length >= FILES, `continuations: ${continued.length}`);
      const ratio = ratioToBudget(stats.createTimestamps);
      const peak = peakPer10s(stats.createTimestamps);
      process.stdout.write(
        `# ${total} creates by 2 hosts: ratio ${ratio.toFixed(3)}, peak ${peak} per 10 s, ${stats.throttled} 429s (retried)\n`,
      );
      assert.ok(ratio >= 0.9, `creates ran at ${ratio.toFixed(3)} of the budget`);
    },
  );
});
