/**
 * Faults: a 1,000-token seed file through the local host while the vault
 * stand-in throttles, fails and times out. The file must end as exactly 1,000
 * secrets with one version each, a report that says so, and the seed blob
 * deleted only after the last secret is in.
 *
 * The faults are injected by count, not by rate, so how many there are does
 * not depend on the machine's speed: the vault refuses every 10th create with
 * 429 Throttled (the app believes it may make 5,000 per 10 s, so only the
 * injected 429s slow it down; it pauses all its vault calls after each), and of
 * the calls that reach it answers every 20th with 503/500 and holds every 50th
 * for 300 ms before dropping the connection (a timeout; the adapter's own
 * per-call deadline, 15 s, is not exercised). Retry backoff starts at 100 ms
 * instead of 1 s. If a token runs out of its 8 attempts the invocation fails
 * and the host's blob-trigger retry finishes the file (the figure printed says
 * how many invocations it took).
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { createLocalSecretClient } from '../../dev/keyvault/client.js';
import { secretNameForSerial } from '../../shared/pipeline/secret-names.js';
import { startTestStack, suiteScope, type TestStack } from '../helpers/stack.js';
import { blobNames, elapsedSeconds, randomTokens, readBlob, seedCsv, setVaultRealism, tokenRows, upload, vaultStats } from './helpers.js';

const TOKENS = 1000;
const FILE = 'faults-1000.csv';

describe('ingest under vault throttling, 5xx and timeouts (local stack)', () => {
  let stack: TestStack;
  const scope = suiteScope();

  before(async () => {
    stack = await startTestStack(scope, {
      settings: { KEY_VAULT_CREATE_BUDGET: '5000', KEY_VAULT_RETRY_BASE_MS: '100', RECONCILE_SCHEDULE: '0 0 0 1 1 *' },
      kvRealism: { throttleEveryNthCreate: 10, errorEveryNth: 20, timeoutEveryNth: 50, timeoutMs: 300 },
    });
  });

  it(`stores ${TOKENS} tokens exactly once each and deletes the seed file only at the end`, { timeout: 120_000 }, async () => {
    const tokens = randomTokens('FLT', TOKENS);
    const started = Date.now();
    await upload(stack.connectionString, 'seeds', FILE, seedCsv(tokens));

    // Watch the seed blob while the vault fills: absent must only ever be seen with every create done.
    const observations: { present: boolean; creates: number }[] = [];
    let finished = false;
    const watcher = (async () => {
      while (!finished) {
        const present = (await blobNames(stack.connectionString, 'seeds')).includes(FILE);
        const { creates } = await vaultStats(stack.keyVaultUrl);
        observations.push({ present, creates });
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    await stack.idle();
    finished = true;
    await watcher;
    const seconds = elapsedSeconds(started);

    const stats = await vaultStats(stack.keyVaultUrl);
    // Faults off for the test's own reads.
    await setVaultRealism(stack.keyVaultUrl, { throttleEveryNthCreate: 0, errorEveryNth: 0, timeoutEveryNth: 0 });
    const names = tokens.map((t) => secretNameForSerial(t.serial));
    assert.equal(stats.secrets, TOKENS);
    assert.equal(stats.creates, TOKENS, 'one successful create per token, no second write');
    for (const name of names) assert.equal(stats.versionsPerSecret[name], 1, `${name} has ${stats.versionsPerSecret[name]} versions`);

    // The faults really happened, exactly as many as the counts say: every 10th create that reached the vault
    // throttled; of the calls past the bearer challenge every 50th held, and every other 20th failed.
    const createAttempts = stats.creates + stats.throttled;
    assert.equal(stats.throttled, Math.floor(createAttempts / 10), `429s on every 10th write: ${stats.throttled} of ${createAttempts}`);
    assert.ok(stats.throttled >= 100, `${stats.throttled} 429s`);
    const faultable = stats.requests - stats.challenges;
    assert.equal(stats.faultsByKind.timeouts, Math.floor(faultable / 50), 'timeouts on every 50th call');
    assert.equal(
      stats.faultsByKind.status500 + stats.faultsByKind.status503,
      Math.floor(faultable / 20) - Math.floor(faultable / 100),
      '5xx on every 20th call not held',
    );
    assert.ok(stats.faultsByKind.status500 + stats.faultsByKind.status503 > 20, 'expected 5xx faults');
    assert.ok(stats.faultsByKind.timeouts > 5, 'expected timeouts');

    // The values are the file's.
    const vault = createLocalSecretClient(stack.keyVaultUrl, { retryOptions: { maxRetries: 0 } });
    for (const t of [tokens[0]!, tokens[499]!, tokens[TOKENS - 1]!])
      assert.equal((await vault.getSecret(secretNameForSerial(t.serial))).value, t.base32);

    assert.deepEqual(await blobNames(stack.connectionString, 'seeds'), []);
    assert.deepEqual(await blobNames(stack.connectionString, 'quarantine'), []);
    const early = observations.filter((o) => !o.present && o.creates < TOKENS);
    assert.deepEqual(early, [], 'the seed blob disappeared before every secret was stored');
    assert.ok(
      observations.some((o) => o.present && o.creates > 0 && o.creates < TOKENS),
      'the blob was watched during the ingest',
    );

    const reportName = (await blobNames(stack.connectionString, 'reports')).find((n) => n.startsWith(`${FILE}-`) && n.endsWith('.json'));
    assert.ok(reportName, 'a JSON report was written');
    const report = JSON.parse((await readBlob(stack.connectionString, 'reports', reportName)).toString('utf8')) as {
      outcome: string;
      counts: Record<string, number>;
      items: { serial: string; result: string }[];
      problems: unknown[];
    };
    assert.equal(report.outcome, 'completed');
    assert.deepEqual(report.problems, []);
    assert.equal(report.counts.tokensInFile, TOKENS);
    assert.equal(report.counts.stored! + report.counts.unchanged!, TOKENS);
    assert.deepEqual(report.items.map((i) => i.serial).sort(), tokens.map((t) => t.serial).sort());
    assert.ok(report.items.every((i) => i.result === 'stored' || i.result === 'unchanged'));

    const rows = await tokenRows(stack.connectionString);
    assert.equal(rows.size, TOKENS);
    assert.ok([...rows.values()].every((r) => r.state === 'stored'));

    const invocations = [...stack.output().matchAll(/Executed 'Functions\.ingestSeedFile' \((\w+)/g)].map((m) => m[1]!);
    const share = (n: number, of: number) => `${Math.round((100 * n) / of)}%`;
    console.log(
      `[reliability] ${TOKENS} tokens under ${share(stats.throttled, createAttempts)} 429s on writes (${stats.throttled} of ${createAttempts} create attempts), ` +
        `${stats.faultsByKind.status500 + stats.faultsByKind.status503} 5xx and ${stats.faultsByKind.timeouts} timeouts (of ${stats.requests} vault requests): ` +
        `${stats.secrets} secrets, 1 version each, ingest took ${seconds} s (${invocations.length} invocation(s): ${invocations.join(', ')})`,
    );
  });
});
