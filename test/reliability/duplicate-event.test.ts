/**
 * The same blob event delivered twice at once (Event Grid delivers at least
 * once; two instances may each get it). The local host never does that, so
 * the test plays the two instances itself: two compositions of the app's real
 * services and Azure adapters (own SDK clients, own vault pacer), against the
 * stack's Azurite and vault stand-in, call ingest for the same blob together.
 * One must do the work, the other find it done; no secret gets two versions.
 *
 * The seed container is a private one ("dupseeds") so the host's own trigger
 * stays out of it. The overlap is arranged, not hoped for: the first instance
 * is held at a gate once it has the blob's lease, the second is delivered the
 * event and seen to find the lease taken, and only then does the first go on.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import type { AppContext } from '../../shared/app/context.js';
import type { IngestResult } from '../../shared/pipeline/ingest.js';
import { secretNameForSerial } from '../../shared/pipeline/secret-names.js';
import { startTestStack, suiteScope, type TestStack } from '../helpers/stack.js';
import { Gate, gatedBlobs } from './gate.js';
import { appInstance, blobNames, capturingLogger, randomTokens, seedCsv, services, tokenRows, upload, vaultStats } from './helpers.js';

const SEEDS = 'dupseeds';

describe('one blob event delivered twice, concurrently, to two instances', () => {
  let stack: TestStack;
  let instances: AppContext[];
  const scope = suiteScope();

  before(async () => {
    stack = await startTestStack(scope, { settings: { RECONCILE_SCHEDULE: '0 0 0 1 1 *' } });
    const settings = { SEEDS_CONTAINER: SEEDS, KEY_VAULT_CREATE_BUDGET: '100000', KEY_VAULT_RETRY_BASE_MS: '20' };
    instances = [
      await appInstance(stack.connectionString, stack.keyVaultUrl, settings),
      await appInstance(stack.connectionString, stack.keyVaultUrl, settings),
    ];
  });

  /**
   * The event goes to the first instance, which is stopped at a gate as soon as it holds the blob's lease; then to
   * the second, which must find the lease taken; then the first goes on. Results in delivery order.
   */
  async function ingestTwice(name: string): Promise<IngestResult[]> {
    const [first, second] = instances as [AppContext, AppContext];
    const holdFirst: Gate = new Gate((method, _args, lease) => {
      if (method === 'acquireLease' && lease) holdFirst.close();
    });
    let leaseRefused = 0;
    const watchSecond: Gate = new Gate((method, _args, lease) => {
      if (method === 'acquireLease' && !lease) leaseRefused++;
      watchSecond.changed();
    });
    const firstRun = services({ ...first, blobs: gatedBlobs(first.blobs, holdFirst) }, capturingLogger()).ingest.ingest(name);
    const endedEarly = (run: Promise<IngestResult>, which: string) =>
      run.then((r) => {
        throw new Error(`the ${which} delivery ended (${r.outcome}) before the overlap was set up`);
      });
    // The first instance holds the lease and waits at its next storage call.
    await Promise.race([holdFirst.until(() => holdFirst.waiting > 0), endedEarly(firstRun, 'first')]);
    const secondRun = services({ ...second, blobs: gatedBlobs(second.blobs, watchSecond) }, capturingLogger()).ingest.ingest(name);
    // The second delivery found the blob leased by the first: it waits for it instead of writing twice.
    await Promise.race([watchSecond.until(() => leaseRefused > 0), endedEarly(secondRun, 'second')]);
    holdFirst.open();
    return Promise.all([firstRun, secondRun]);
  }

  it('stores a clean file once: one run completes, the other finds the blob gone', { timeout: 60_000 }, async () => {
    const tokens = randomTokens('DUP', 300);
    await upload(stack.connectionString, SEEDS, 'dup.csv', seedCsv(tokens));
    const createsBefore = (await vaultStats(stack.keyVaultUrl)).creates;

    const results = await ingestTwice('dup.csv');
    assert.deepEqual(results.map((r) => r.outcome).sort(), ['completed', 'gone']);
    assert.deepEqual(
      results.map((r) => r.outcome),
      ['completed', 'gone'],
      'the lease holder does the work; the waiter finds the blob gone',
    );
    const done = results.find((r) => r.outcome === 'completed')!;
    assert.equal(done.counts?.stored, 300);

    const stats = await vaultStats(stack.keyVaultUrl);
    assert.equal(stats.creates - createsBefore, 300);
    for (const t of tokens) assert.equal(stats.versionsPerSecret[secretNameForSerial(t.serial)], 1);
    assert.deepEqual(await blobNames(stack.connectionString, SEEDS), []);
    assert.deepEqual(
      (await blobNames(stack.connectionString, 'reports')).filter((n) => n.startsWith('dup.csv-') && n.endsWith('.json')),
      [done.reportName],
    );
    const rows = await tokenRows(stack.connectionString);
    assert.equal(tokens.filter((t) => rows.get(t.serial)?.state === 'stored').length, 300);

    // A third, late delivery of the same event: nothing left to do.
    assert.equal((await services(instances[0]!, capturingLogger()).ingest.ingest('dup.csv')).outcome, 'gone');
    console.log(
      `[reliability] one blob event delivered to a second instance while the first held the lease (300 tokens): results ${results.map((r) => r.outcome).join(' + ')}, ${stats.creates - createsBefore} creates, 1 version each, 1 report`,
    );
  });

  it('quarantines a file with rejected rows once', { timeout: 60_000 }, async () => {
    const tokens = randomTokens('DUQ', 100);
    await upload(stack.connectionString, SEEDS, 'dup-mixed.csv', seedCsv(tokens, [',DUQ-SHORT,MFRGGZDF,30,Token2,C202\n']));
    const createsBefore = (await vaultStats(stack.keyVaultUrl)).creates;

    const results = await ingestTwice('dup-mixed.csv');
    assert.deepEqual(results.map((r) => r.outcome).sort(), ['completed-with-problems', 'gone']);
    assert.deepEqual(
      results.map((r) => r.outcome),
      ['completed-with-problems', 'gone'],
    );
    const stats = await vaultStats(stack.keyVaultUrl);
    assert.equal(stats.creates - createsBefore, 100);
    for (const t of tokens) assert.equal(stats.versionsPerSecret[secretNameForSerial(t.serial)], 1);
    assert.deepEqual(await blobNames(stack.connectionString, SEEDS), []);
    const quarantined = (await blobNames(stack.connectionString, 'quarantine')).filter((n) => n.startsWith('dup-mixed.csv-'));
    assert.equal(quarantined.filter((n) => n.endsWith('/dup-mixed.csv')).length, 1);
    assert.equal(quarantined.filter((n) => n.endsWith('/report.json')).length, 1);
  });
});
