/**
 * Import builds racing: ten builds of Entra's import CSV start at once over
 * the same 200 assigned tokens, eight through POST /api/imports on the local
 * host and two from separate app compositions (other instances). No token may
 * be exported twice, and every assigned token exactly once, in the file its
 * inventory row names.
 *
 * The assignments go through the app's AssignmentService into the table from a
 * private container ("raceassign"), so the host's assignment trigger does not
 * start a build of its own before the race. The vault answers after 20 ms to
 * widen the window between claim and CSV.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { startTestStack, suiteScope, type TestStack } from '../helpers/stack.js';
import { appInstance, assignmentCsv, capturingLogger, importRows, randomTokens, seedCsv, services, tokenRows, upload } from './helpers.js';

const TOKENS = 200;

describe('import builds racing', () => {
  let stack: TestStack;
  const scope = suiteScope();

  before(async () => {
    stack = await startTestStack(scope, {
      settings: { RECONCILE_SCHEDULE: '0 0 0 1 1 *', BUILD_QUEUE_SCHEDULE: '0 0 0 1 1 *', KEY_VAULT_RETRY_BASE_MS: '20' },
      kvRealism: { latencyMs: 20 },
    });
  });

  it('exports every assigned token exactly once across ten concurrent builds', { timeout: 90_000 }, async () => {
    const tokens = randomTokens('RACE', TOKENS);
    await upload(stack.connectionString, 'seeds', 'race.csv', seedCsv(tokens));
    await stack.idle();
    const settings = { ASSIGNMENTS_CONTAINER: 'raceassign', KEY_VAULT_RETRY_BASE_MS: '20' };
    const instances = [
      await appInstance(stack.connectionString, stack.keyVaultUrl, settings),
      await appInstance(stack.connectionString, stack.keyVaultUrl, settings),
    ];
    const pairs = tokens.map((t, i) => ({ upn: `user${String(i).padStart(4, '0')}@contoso.com`, serial: t.serial }));
    await upload(stack.connectionString, 'raceassign', 'race.csv', assignmentCsv(pairs));
    const assigned = await services(instances[0]!, capturingLogger()).assignments.ingest('race.csv');
    assert.equal(assigned.added, TOKENS);
    assert.ok([...(await tokenRows(stack.connectionString)).values()].every((r) => r.state === 'stored'));

    const overHttp = Array.from({ length: 8 }, async () => {
      const res = await fetch(`${stack.functionsUrl}/api/imports`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{}',
      });
      const body = (await res.json()) as { exported?: { serial: string }[] };
      return { status: res.status, exported: body.exported?.length ?? 0 };
    });
    const direct = instances.map(async (ctx) => ({
      status: 200,
      exported: (await services(ctx, capturingLogger()).build.build()).exported.length,
    }));
    const results = await Promise.all([...overHttp, ...direct]);
    assert.ok(
      results.every((r) => r.status === 200),
      JSON.stringify(results),
    );
    assert.equal(
      results.reduce((n, r) => n + r.exported, 0),
      TOKENS,
      'the builds together exported each token once',
    );

    const rows = await importRows(stack.connectionString);
    const seen = new Map<string, number>();
    for (const r of rows) seen.set(r.serial, (seen.get(r.serial) ?? 0) + 1);
    assert.deepEqual(
      [...seen.entries()].filter(([, n]) => n > 1),
      [],
      'a token is in two CSVs (or twice in one)',
    );
    assert.deepEqual([...seen.keys()].sort(), pairs.map((p) => p.serial).sort());

    const inventory = await tokenRows(stack.connectionString);
    const byToken = new Map(tokens.map((t) => [t.serial, t]));
    for (const r of rows) {
      const row = inventory.get(r.serial)!;
      assert.equal(row.state, 'exported');
      assert.equal(row.exportFile, r.file, `${r.serial} is listed in ${r.file} but its row names ${row.exportFile}`);
      assert.equal(r.secret, byToken.get(r.serial)!.base32);
      assert.equal(r.upn, pairs.find((p) => p.serial === r.serial)!.upn);
    }
    const files = new Set(rows.map((r) => r.file));
    console.log(
      `[reliability] 10 import builds racing over ${TOKENS} assigned tokens: exports per build ${results.map((r) => r.exported).join('/')}, ` +
        `${rows.length} CSV rows in ${files.size} file(s), no token exported twice, every assigned token once`,
    );
  });
});
