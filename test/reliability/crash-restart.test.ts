/**
 * SIGKILL in the middle of an ingest: the whole local stack (host, vault
 * stand-in; Azurite shuts down on its watchdog, keeping its data) dies after
 * K secrets are in the vault, and starts again on the same data folder. The
 * blob trigger must fire again (the killed invocation wrote no receipt), the
 * second run must finish the file, and no secret may get a second version.
 *
 * Scaled: the vault answers every call after 30 ms (no throttling) and the
 * app's create budget is raised, so 1,000 tokens take a few seconds and the
 * kill lands mid-flight. The second run waits for the dead instance's blob
 * lease (15 s) to expire.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { createLocalSecretClient } from '../../dev/keyvault/client.js';
import { mapPool } from '../../shared/pipeline/map-pool.js';
import { secretNameForSerial } from '../../shared/pipeline/secret-names.js';
import { startTestStack, suiteScope, type TestStack } from '../helpers/stack.js';
import { blobNames, elapsedSeconds, randomTokens, readBlob, seedCsv, setVaultRealism, tokenRows, upload, vaultStats } from './helpers.js';

const TOKENS = 1000;
const KILL_AFTER = 300;
const FILE = 'crash-1000.csv';

describe('stack killed with SIGKILL mid-ingest and restarted on its data', () => {
  let stack: TestStack;
  const scope = suiteScope();

  before(async () => {
    stack = await startTestStack(scope, {
      settings: { KEY_VAULT_CREATE_BUDGET: '100000', KEY_VAULT_RETRY_BASE_MS: '50', RECONCILE_SCHEDULE: '0 0 0 1 1 *' },
      kvRealism: { latencyMs: 30 },
    });
  });

  it(
    `finishes the file after a kill at ${KILL_AFTER} secrets, with one version per secret and no token lost`,
    { timeout: 120_000 },
    async () => {
      const tokens = randomTokens('CRS', TOKENS);
      await upload(stack.connectionString, 'seeds', FILE, seedCsv(tokens));

      let createsAtKill = 0;
      for (;;) {
        createsAtKill = (await vaultStats(stack.keyVaultUrl)).creates;
        if (createsAtKill >= KILL_AFTER) break;
        await new Promise((r) => setTimeout(r, 10));
      }
      await stack.kill();
      const firstOutput = stack.output();
      assert.ok(createsAtKill < TOKENS, `the kill came too late (${createsAtKill} creates)`);
      assert.doesNotMatch(firstOutput, /Executed 'Functions\.ingestSeedFile'/, 'the first invocation must not have finished');

      const restarted = Date.now();
      stack = await stack.restart({ crash: true });
      // The seed file survived the crash, in place.
      assert.deepEqual(await blobNames(stack.connectionString, 'seeds'), [FILE]);
      const before = await vaultStats(stack.keyVaultUrl);
      assert.ok(before.secrets >= createsAtKill && before.secrets < TOKENS, `vault held ${before.secrets} secrets after the crash`);
      await stack.idle();
      const recoverySeconds = elapsedSeconds(restarted);

      assert.match(stack.output(), /Executed 'Functions\.ingestSeedFile' \(Succeeded/, 'the trigger fired again after the restart');
      const stats = await vaultStats(stack.keyVaultUrl);
      assert.equal(stats.secrets, TOKENS);
      assert.equal(stats.creates, TOKENS - before.secrets, 'the second run created only what was missing');
      for (const t of tokens) assert.equal(stats.versionsPerSecret[secretNameForSerial(t.serial)], 1, `${t.serial}: more than one version`);

      await setVaultRealism(stack.keyVaultUrl, { latencyMs: 0 });
      const vault = createLocalSecretClient(stack.keyVaultUrl);
      const wrong = (
        await mapPool(tokens, 16, async (t) =>
          (await vault.getSecret(secretNameForSerial(t.serial))).value === t.base32 ? undefined : t.serial,
        )
      ).filter(Boolean);
      assert.deepEqual(wrong, []);

      const rows = await tokenRows(stack.connectionString);
      assert.deepEqual([...rows.keys()].sort(), tokens.map((t) => t.serial).sort(), 'every token has its inventory row');
      assert.deepEqual(await blobNames(stack.connectionString, 'seeds'), []);

      const reportName = (await blobNames(stack.connectionString, 'reports')).find((n) => n.startsWith(`${FILE}-`) && n.endsWith('.json'));
      assert.ok(reportName);
      const report = JSON.parse((await readBlob(stack.connectionString, 'reports', reportName)).toString('utf8')) as {
        outcome: string;
        counts: Record<string, number>;
      };
      assert.equal(report.outcome, 'completed');
      // Secrets this file stored before the crash carry its batch tag: the report counts them as stored, not found.
      assert.equal(report.counts.stored, TOKENS);
      assert.equal(report.counts.unchanged, 0);

      console.log(
        `[reliability] SIGKILL of the whole stack at ${createsAtKill} of ${TOKENS} secrets, restart on its data: the trigger fired again, ` +
          `${before.secrets} stored before the kill + ${stats.creates} after = ${report.counts.stored} stored by this file, 1 version each, no token lost; ` +
          `recovery took ${recoverySeconds} s (restart, and the wait for the dead instance's blob lease to lapse)`,
      );
    },
  );
});
