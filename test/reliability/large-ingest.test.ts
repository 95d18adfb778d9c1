/**
 * A seed file whose ingest outlives one invocation (local stack, vault throttling on at Key Vault's 300 creates
 * per 10 s): with INGEST_INVOCATION_BUDGET_SECONDS shrunk to 4 s, the blob trigger's invocation saves its
 * checkpoint and hands the rest to the continuation queue, each continuation does the same, and the last one
 * writes the report. Every secret ends with exactly one version, no throttled answer turns into a failure, and
 * nothing of the file's progress is left behind in `state`.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { secretNameForSerial } from '../../shared/pipeline/secret-names.js';
import { INGEST_CHECKPOINT_PREFIX } from '../../shared/pipeline/blob-names.js';
import { startTestStack, suiteScope, type TestStack } from '../helpers/stack.js';
import { blobNames, elapsedSeconds, randomTokens, readBlob, seedCsv, upload, vaultStats, waitFor } from './helpers.js';

const TOKENS = 360;
const FILE = 'large-360.csv';
const BUDGET_SECONDS = 4;

describe('an ingest longer than its invocation budget (local stack)', () => {
  let stack: TestStack;
  const scope = suiteScope();

  before(async () => {
    stack = await startTestStack(scope, {
      settings: { INGEST_INVOCATION_BUDGET_SECONDS: String(BUDGET_SECONDS), RECONCILE_SCHEDULE: '0 0 0 1 1 *' },
      kvRealism: { throttling: true, createsPer10s: 300 },
    });
  });

  it(`finishes ${TOKENS} tokens across invocations with one version per secret`, { timeout: 180_000 }, async () => {
    const tokens = randomTokens('BIG', TOKENS);
    const started = Date.now();
    await upload(stack.connectionString, 'seeds', FILE, seedCsv(tokens));
    await waitFor(
      'the seed file to be finished',
      async () => !(await blobNames(stack.connectionString, 'seeds')).includes(FILE),
      150_000,
      250,
    );
    await stack.idle();
    const seconds = elapsedSeconds(started);

    const stats = await vaultStats(stack.keyVaultUrl);
    assert.equal(stats.creates, TOKENS, 'one create per token across every invocation');
    for (const t of tokens) assert.equal(stats.versionsPerSecret[secretNameForSerial(t.serial)], 1, `${t.serial}`);

    const output = stack.output();
    const handOffs = output.split('\n').filter((l) => l.includes('handed to a new invocation')).length;
    const resumes = output.split('\n').filter((l) => l.includes('resumes from its checkpoint')).length;
    // 360 creates at 285 per 10 s take about 13 s: three or more budgets of 4 s.
    assert.ok(handOffs >= 2, `${handOffs} hand-offs`);
    assert.ok(resumes >= handOffs, `${resumes} resumes`);
    assert.ok(output.includes('continueIngest'), 'the continuation queue trigger ran');
    assert.doesNotMatch(output, /Failed|Exception/, 'no invocation failed');

    const reports = (await blobNames(stack.connectionString, 'reports')).filter((n) => n.startsWith(`${FILE}-`) && n.endsWith('.json'));
    assert.equal(reports.length, 1);
    const report = JSON.parse((await readBlob(stack.connectionString, 'reports', reports[0]!)).toString('utf8')) as {
      outcome: string;
      counts: Record<string, number>;
      problems: unknown[];
    };
    assert.equal(report.outcome, 'completed');
    assert.equal(report.counts.stored, TOKENS);
    assert.deepEqual(report.problems, []);
    assert.deepEqual(
      (await blobNames(stack.connectionString, 'state')).filter((n) => n.startsWith(INGEST_CHECKPOINT_PREFIX)),
      [],
      'the checkpoint went with the file',
    );
    process.stdout.write(`# ${TOKENS} tokens in ${seconds} s, ${handOffs} hand-offs, ${stats.throttled} 429s retried\n`);
  });
});

/**
 * The same file on a host whose host.json shrinks functionTimeout to 6 s, far below the ~13 s the file takes: the
 * invocation budget (3 s) hands on before the host would abandon an invocation, so no invocation times out and
 * every secret still ends with one version.
 */
describe('an ingest longer than functionTimeout (host.json shrunk, local stack)', () => {
  let stack: TestStack;
  const scope = suiteScope();
  const FUNCTION_TIMEOUT = '00:00:06';

  before(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'entra-oath-hostjson-'));
    scope.after(() => rm(dir, { recursive: true, force: true }));
    const hostJson = JSON.parse(await readFile(new URL('../../host.json', import.meta.url), 'utf8')) as Record<string, unknown>;
    const shrunk = join(dir, 'host.json');
    await writeFile(shrunk, JSON.stringify({ ...hostJson, functionTimeout: FUNCTION_TIMEOUT }));
    stack = await startTestStack(scope, {
      hostJson: shrunk,
      settings: { INGEST_INVOCATION_BUDGET_SECONDS: '3', RECONCILE_SCHEDULE: '0 0 0 1 1 *' },
      kvRealism: { throttling: true, createsPer10s: 300 },
    });
  });

  it(`finishes ${TOKENS} tokens across invocations, none timed out`, { timeout: 180_000 }, async () => {
    const tokens = randomTokens('TMO', TOKENS);
    const file = 'timeout-360.csv';
    await upload(stack.connectionString, 'seeds', file, seedCsv(tokens));
    await waitFor(
      'the seed file to be finished',
      async () => !(await blobNames(stack.connectionString, 'seeds')).includes(file),
      150_000,
      250,
    );
    await stack.idle();

    const output = stack.output();
    assert.ok(output.includes(`functionTimeout ${FUNCTION_TIMEOUT}`), 'the host follows the shrunk host.json');
    assert.ok(output.split('\n').filter((l) => l.includes('handed to a new invocation')).length >= 2, 'handed on more than once');
    assert.doesNotMatch(output, /Timeout value of/, 'no invocation reached functionTimeout');
    const stats = await vaultStats(stack.keyVaultUrl);
    assert.equal(stats.creates, TOKENS);
    for (const t of tokens) assert.equal(stats.versionsPerSecret[secretNameForSerial(t.serial)], 1, `${t.serial}`);
  });
});
