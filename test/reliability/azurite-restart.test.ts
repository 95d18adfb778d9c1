/**
 * Storage restarted in the middle of an import build. Azurite stops (SIGTERM,
 * saving its data, like a storage outage) at a chosen point of a running build
 * and comes back on the same ports; the build either completes or fails; then
 * the reconciler runs (its clock moved past the minimum age, as a later timer run would see it). After that, never a CSV that lists a
 * token not marked exported to that file, nor a token marked exported that no
 * CSV lists, nor a token left `exporting`; and a later build exports every
 * assigned token exactly once overall.
 *
 * The build runs in this process with the app's real services and adapters
 * (so it outlives the outage and its failure path is observable); the vault
 * stand-in answers after 150 ms so the build spends a couple of seconds
 * between its claims and its CSV. One more case makes the CSV write land but
 * lose its answer (a BlobStore wrapper around the real adapter), the ambiguous
 * failure an outage can cause at the worst moment.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TableClient } from '@azure/data-tables';
import { startKeyVaultStandIn, type KeyVaultStandIn } from '../../dev/keyvault/server.js';
import type { AppContext } from '../../shared/app/context.js';
import { TransientError } from '../../shared/pipeline/errors.js';
import type { BlobStore, TokenEntity } from '../../shared/pipeline/ports.js';
import { appInstance, assignmentCsv, blobNames, capturingLogger, importRows, randomTokens, seedCsv, services, tokenRows, upload, waitFor } from './helpers.js';
import { startRestartableAzurite, type RestartableAzurite } from './restartable-azurite.js';

const TOKENS = 120;

describe('Azurite restarted in the middle of an import build', () => {
  let azurite: RestartableAzurite;
  let vault: KeyVaultStandIn;
  let ctx: AppContext;
  let dataDir: string;
  let users = 0;
  const figures: string[] = [];

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'entra-oath-azurite-restart-'));
    azurite = await startRestartableAzurite(dataDir);
    vault = await startKeyVaultStandIn({ port: 0 });
    ctx = await appInstance(azurite.connectionString, vault.url, { KEY_VAULT_CREATE_BUDGET: '100000', KEY_VAULT_RETRY_BASE_MS: '20' });
  });

  /** The reconciler as its next timer run would see things: the minimum age (and any heartbeat) has passed. */
  function laterReconciler() {
    const aheadMs = (ctx.config.reconcileMinAgeMinutes + 1) * 60_000;
    return services({ ...ctx, clock: { now: () => new Date(Date.now() + aheadMs) } }, capturingLogger()).reconciler;
  }
  after(async () => {
    console.log(figures.map((f) => `[reliability] ${f}`).join('\n'));
    await azurite?.close();
    await vault?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  /** Stored and assigned tokens, ready for a build. */
  async function prepare(prefix: string): Promise<string[]> {
    const tokens = randomTokens(prefix, TOKENS);
    const svc = services(ctx, capturingLogger());
    await upload(azurite.connectionString, 'seeds', `${prefix}.csv`, seedCsv(tokens));
    assert.equal((await svc.ingest.ingest(`${prefix}.csv`)).outcome, 'completed');
    await upload(azurite.connectionString, 'assignments', `${prefix}.csv`, assignmentCsv(tokens.map((t) => ({ upn: `user${users++}@contoso.com`, serial: t.serial }))));
    assert.equal((await svc.assignments.ingest(`${prefix}.csv`)).added, TOKENS);
    return tokens.map((t) => t.serial);
  }

  async function exportingCount(): Promise<number> {
    const table = TableClient.fromConnectionString(azurite.connectionString, 'tokens', { allowInsecureConnection: true });
    let n = 0;
    for await (const _ of table.listEntities<TokenEntity>({ queryOptions: { filter: "state eq 'exporting'" } })) n++;
    return n;
  }

  /** The invariant: CSV contents and inventory agree exactly. */
  async function assertConsistent(): Promise<void> {
    const rows = await importRows(azurite.connectionString);
    const inventory = [...(await tokenRows(azurite.connectionString)).values()];
    assert.deepEqual(inventory.filter((r) => r.state === 'exporting').map((r) => r.serial), [], 'rows left exporting');
    const listed = rows.map((r) => `${r.serial} in ${r.file}`).sort();
    const marked = inventory.filter((r) => r.state === 'exported').map((r) => `${r.serial} in ${r.exportFile}`).sort();
    assert.deepEqual(listed.filter((x) => !marked.includes(x)), [], 'a CSV lists tokens not marked exported to it');
    assert.deepEqual(marked.filter((x) => !listed.includes(x)), [], 'tokens marked exported that no CSV lists');
    assert.equal(new Set(rows.map((r) => r.serial)).size, rows.length, 'a token is listed twice');
  }

  /** Runs a build, restarting storage when `when` says so; then reconciles and checks. */
  async function scenario(label: string, serials: string[], when: () => Promise<boolean>, downMs: number): Promise<void> {
    vault.setRealism({ latencyMs: 150 });
    const outcome = services(ctx, capturingLogger())
      .build.build()
      .then(
        (r) => `completed (${r.exported.length} exported)`,
        (e: unknown) => `failed (${(e as Error).name})`,
      );
    await waitFor(`${label}: restart point`, async () => when().catch(() => false), 30_000, 20);
    await azurite.stop();
    await new Promise((r) => setTimeout(r, downMs));
    await azurite.start();
    const result = await outcome;
    vault.setRealism({ latencyMs: 0 });

    const svc = services(ctx, capturingLogger());
    const settled = await laterReconciler().run();
    await assertConsistent();
    // Whatever happened, the next build exports what is left: every assigned token once overall.
    await svc.build.build();
    await assertConsistent();
    const exported = (await importRows(azurite.connectionString)).filter((r) => serials.includes(r.serial));
    assert.deepEqual(exported.map((r) => r.serial).sort(), [...serials].sort());
    figures.push(
      `Azurite restarted ${label} (down ${downMs} ms): build ${result}; reconciler settled ${settled.exportsSettled} as exported and released ${settled.exportsReleased}; ` +
        `CSVs and inventory agree, ${serials.length} of ${serials.length} exported once`,
    );
  }

  it('while the build reads secrets, after claiming its tokens', { timeout: 90_000 }, async () => {
    const serials = await prepare('AZA');
    await scenario('after the claims, before the CSV', serials, async () => (await exportingCount()) >= TOKENS, 300);
  });

  it('for longer than the storage retries last', { timeout: 90_000 }, async () => {
    const serials = await prepare('AZB');
    await scenario('after the claims, for 6 s', serials, async () => (await exportingCount()) >= TOKENS, 6000);
  });

  it('while the build claims its tokens', { timeout: 90_000 }, async () => {
    const serials = await prepare('AZC');
    await scenario('during the claims', serials, async () => (await exportingCount()) >= 1, 1000);
  });

  it('right after the CSV was written, while tokens are marked exported', { timeout: 90_000 }, async () => {
    const serials = await prepare('AZD');
    const before = new Set(await blobNames(azurite.connectionString, 'imports'));
    await scenario('once the CSV is written', serials, async () => (await blobNames(azurite.connectionString, 'imports')).some((n) => !before.has(n)), 1000);
  });

  it('when the CSV write lands but its answer is lost', { timeout: 90_000 }, async () => {
    const serials = await prepare('AZE');
    const real = ctx.blobs;
    const lossy: BlobStore = {
      read: (c, n) => real.read(c, n),
      properties: (c, n) => real.properties(c, n),
      delete: (c, n, o) => real.delete(c, n, o),
      copy: (f, n, t, tn) => real.copy(f, n, t, tn),
      setMetadata: (c, n, m, o) => real.setMetadata(c, n, m, o),
      list: (c, p) => real.list(c, p),
      acquireLease: (c, n, s) => real.acquireLease(c, n, s),
      write: async (container, name, content, options) => {
        const written = await real.write(container, name, content, options);
        if (container === ctx.config.containers.imports) throw new TransientError(`write ${name}: connection reset`);
        return written;
      },
    };
    const svc = services({ ...ctx, blobs: lossy }, capturingLogger());
    await assert.rejects(svc.build.build(), TransientError);
    const settled = await laterReconciler().run();
    await assertConsistent();
    await services(ctx, capturingLogger()).build.build();
    await assertConsistent();
    const exported = (await importRows(azurite.connectionString)).filter((r) => serials.includes(r.serial));
    assert.deepEqual(exported.map((r) => r.serial).sort(), [...serials].sort());
    figures.push(`CSV write landed but its answer was lost: build failed; reconciler settled ${settled.exportsSettled} as exported; CSVs and inventory agree, no token exported twice`);
  });
});
