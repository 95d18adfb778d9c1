/**
 * Two instances, one vault (local stack): a second Functions host process (dev/host/cli.ts, the same app, the same
 * settings and storage, as a scaled-out instance) runs beside the stack's own, the vault stand-in throttles as Key
 * Vault does (300 creates per 10 s), and four seed files are dropped at once. Each instance paces itself by the
 * budget ledger in `state` (shared/pipeline/vault-budget.ts), so together they stay inside one budget: every
 * secret is stored once, no throttled answer reaches an error, and the creates run at >= 90% of the budget.
 *
 * INGEST_INVOCATION_BUDGET_SECONDS is short (5 s) so the files move between the two hosts through the
 * continuation queue: both instances work on them, whichever picked the message up.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { before, describe, it } from 'node:test';
import { secretNameForSerial } from '../../shared/pipeline/secret-names.js';
import { startTestStack, suiteScope, type TestStack } from '../helpers/stack.js';
import { blobNames, randomTokens, readBlob, seedCsv, upload, vaultStats, waitFor } from './helpers.js';

const repoRoot = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const FILES = 4;
const TOKENS_PER_FILE = 300;
const CREATES_PER_10S = 300;

interface SecondHost {
  url: string;
  output(): string;
  stop(): Promise<void>;
}

/** A second host process on the stack's settings file; stopped at the end of the suite. */
async function startSecondHost(stack: TestStack, scope: { after(fn: () => Promise<void>): void }): Promise<SecondHost> {
  const args = ['--import', 'tsx', join(repoRoot, 'dev', 'host', 'cli.ts'), '--entry', join(repoRoot, 'dist', 'functions', 'index.js')];
  args.push('--settings', join(stack.dataDir, 'local.settings.json'), '--port', '0', '--poll-interval-ms', '250', '--json');
  const child: ChildProcess = spawn(process.execPath, args, { cwd: repoRoot, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 20_000);
    await exited;
    clearTimeout(timer);
  };
  scope.after(stop);
  const url = await new Promise<string>((resolveReady, rejectReady) => {
    let buffered = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        try {
          const parsed = JSON.parse(line) as { ready?: boolean; url?: string; log?: string };
          if (parsed.ready && parsed.url) resolveReady(parsed.url);
          if (parsed.log) text += parsed.log + '\n';
        } catch {
          text += line + '\n';
        }
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
    child.once('exit', (code) => rejectReady(new Error(`The second host exited (code ${code}).\n${text}`)));
  });
  return { url, output: () => text, stop };
}

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
  let second: SecondHost;
  const scope = suiteScope();

  before(async () => {
    stack = await startTestStack(scope, {
      settings: {
        KEY_VAULT_CREATE_BUDGET: String(CREATES_PER_10S),
        INGEST_INVOCATION_BUDGET_SECONDS: '5',
        RECONCILE_SCHEDULE: '0 0 0 1 1 *',
      },
      kvRealism: { throttling: true, createsPer10s: CREATES_PER_10S },
    });
    second = await startSecondHost(stack, scope);
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
      await stack.idle();

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

      const outputs = [stack.output(), second.output()];
      for (const [i, output] of outputs.entries()) {
        assert.doesNotMatch(output, /\(Failed,/, `host ${i + 1}: no invocation failed`);
        assert.ok(/Executed 'Functions\.(ingestSeedFile|continueIngest)' \(Succeeded/.test(output), `host ${i + 1} ingested too`);
      }
      const ratio = ratioToBudget(stats.createTimestamps);
      const peak = peakPer10s(stats.createTimestamps);
      process.stdout.write(
        `# ${total} creates by 2 hosts: ratio ${ratio.toFixed(3)}, peak ${peak} per 10 s, ${stats.throttled} 429s (retried)\n`,
      );
      assert.ok(ratio >= 0.9, `creates ran at ${ratio.toFixed(3)} of the budget`);
    },
  );
});
