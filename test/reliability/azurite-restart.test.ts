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
 * (so it outlives the outage and its failure path is observable). Its storage
 * calls pass a gate (./gate.ts): at the chosen point (the 120th claim, the 10th
 * claim, the CSV written) the gate closes, the calls already running finish,
 * and the test checks in storage that the build is where the case says it is.
 * Then Azurite stops, the gate opens (the build's waiting call meets the
 * outage), and Azurite comes back after the case's downtime. One more case
 * makes the CSV write land but lose its answer (a BlobStore wrapper around the
 * real adapter), the ambiguous failure an outage can cause at the worst moment.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startKeyVaultStandIn, type KeyVaultStandIn } from '../../dev/keyvault/server.js';
import type { AppContext } from '../../shared/app/context.js';
import { TransientError } from '../../shared/pipeline/errors.js';
import type { BlobStore, TokenEntity } from '../../shared/pipeline/ports.js';
import { Gate, gatedBlobs, gatedTable } from './gate.js';
import {
  appInstance,
  assignmentCsv,
  blobNames,
  capturingLogger,
  importRows,
  randomTokens,
  seedCsv,
  services,
  tokenRows,
  upload,
} from './helpers.js';
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
    await upload(
      azurite.connectionString,
      'assignments',
      `${prefix}.csv`,
      assignmentCsv(tokens.map((t) => ({ upn: `user${users++}@contoso.com`, serial: t.serial }))),
    );
    assert.equal((await svc.assignments.ingest(`${prefix}.csv`)).added, TOKENS);
    return tokens.map((t) => t.serial);
  }

  /** The invariant: CSV contents and inventory agree exactly. */
  async function assertConsistent(): Promise<void> {
    const rows = await importRows(azurite.connectionString);
    const inventory = [...(await tokenRows(azurite.connectionString)).values()];
    assert.deepEqual(
      inventory.filter((r) => r.state === 'exporting').map((r) => r.serial),
      [],
      'rows left exporting',
    );
    const listed = rows.map((r) => `${r.serial} in ${r.file}`).sort();
    const marked = inventory
      .filter((r) => r.state === 'exported')
      .map((r) => `${r.serial} in ${r.exportFile}`)
      .sort();
    assert.deepEqual(
      listed.filter((x) => !marked.includes(x)),
      [],
      'a CSV lists tokens not marked exported to it',
    );
    assert.deepEqual(
      marked.filter((x) => !listed.includes(x)),
      [],
      'tokens marked exported that no CSV lists',
    );
    assert.equal(new Set(rows.map((r) => r.serial)).size, rows.length, 'a token is listed twice');
  }

  /** Where the build stands in storage, for the serials of one case. */
  interface Snapshot {
    stored: number;
    exporting: number;
    exported: number;
    csvWritten: boolean;
  }

  async function snapshot(serials: string[], csvsBefore: Set<string>): Promise<Snapshot> {
    const rows = [...(await tokenRows(azurite.connectionString)).values()].filter((r) => serials.includes(r.serial));
    const count = (state: string) => rows.filter((r) => r.state === state).length;
    const csvWritten = (await blobNames(azurite.connectionString, 'imports')).some((n) => !csvsBefore.has(n));
    return { stored: count('stored'), exporting: count('exporting'), exported: count('exported'), csvWritten };
  }

  interface RestartPoint {
    label: string;
    /** Sees each storage call of the build that succeeded; true for the call after which storage goes down. */
    stopAfter: (method: string, args: unknown[]) => boolean;
    /** What storage holds when it goes down: proof that the restart hits the phase the label names. */
    phase: (at: Snapshot) => void;
    downMs: number;
    /** The outage outlasts the storage retries, so the build must fail. */
    mustFail?: boolean;
  }

  const claims = (count: number) => {
    let seen = 0;
    return (method: string, args: unknown[]) => method === 'replace' && (args[1] as TokenEntity).state === 'exporting' && ++seen === count;
  };

  type BuildOutcome = { completed: true; exported: number } | { completed: false; error: string };

  /** Runs a build, restarting storage at `point`; then reconciles and checks. */
  async function scenario(point: RestartPoint, serials: string[]): Promise<void> {
    const csvsBefore = new Set(await blobNames(azurite.connectionString, 'imports'));
    let stopped = false;
    const gate: Gate = new Gate((method, args) => {
      if (!stopped && point.stopAfter(method, args)) {
        stopped = true;
        gate.close();
      }
    });
    const gated: AppContext = {
      ...ctx,
      blobs: gatedBlobs(ctx.blobs, gate),
      tokens: gatedTable(ctx.tokens, gate),
      assignments: gatedTable(ctx.assignments, gate),
    };
    const outcome: Promise<BuildOutcome> = services(gated, capturingLogger())
      .build.build()
      .then(
        (r) => ({ completed: true as const, exported: r.exported.length }),
        (e: unknown) => ({ completed: false as const, error: (e as Error).name }),
      );
    // The build reached the point: nothing of it runs in storage, and its next storage call waits at the gate.
    await Promise.race([
      gate.until(() => gate.isClosed && gate.inFlight === 0 && gate.waiting > 0),
      outcome.then((o) => {
        throw new Error(`${point.label}: the build ended (${JSON.stringify(o)}) before the restart point`);
      }),
    ]);
    const at = await snapshot(serials, csvsBefore);
    point.phase(at);

    await azurite.stop();
    gate.open();
    await new Promise((r) => setTimeout(r, point.downMs));
    await azurite.start();
    const result = await outcome;
    if (result.completed) {
      assert.ok(!point.mustFail, `${point.label}: the build rode out an outage longer than its storage retries`);
      assert.equal(result.exported, serials.length, 'a completed build exported every claimed token');
    } else {
      assert.equal(result.error, 'TransientError', 'a build that meets an outage fails with a TransientError (retried later)');
    }

    const svc = services(ctx, capturingLogger());
    const settled = await laterReconciler().run();
    if (at.csvWritten) {
      assert.equal(settled.exportsReleased, 0, 'the CSV exists: no claim of it is released');
      if (!result.completed)
        assert.ok(settled.exportsSettled > 0, 'the build failed after its CSV: the reconciler settles its claims as exported');
    } else {
      assert.equal(settled.exportsSettled, 0, 'no CSV was written before the outage: nothing to settle as exported');
    }
    await assertConsistent();
    // Whatever happened, the next build exports what is left: every assigned token once overall.
    await svc.build.build();
    await assertConsistent();
    const exported = (await importRows(azurite.connectionString)).filter((r) => serials.includes(r.serial));
    assert.deepEqual(exported.map((r) => r.serial).sort(), [...serials].sort());
    const described = result.completed ? `completed (${result.exported} exported)` : `failed (${result.error})`;
    figures.push(
      `Azurite restarted ${point.label} (down ${point.downMs} ms; at the stop ${at.exporting} exporting, ${at.exported} exported, CSV ${at.csvWritten ? 'written' : 'not written'}): ` +
        `build ${described}; reconciler settled ${settled.exportsSettled} as exported and released ${settled.exportsReleased}; CSVs and inventory agree, ${serials.length} of ${serials.length} exported once`,
    );
  }

  const afterTheClaims = (at: Snapshot) =>
    assert.deepEqual(at, { stored: 0, exporting: TOKENS, exported: 0, csvWritten: false }, 'every token claimed, no CSV yet');

  it('while the build reads secrets, after claiming its tokens', { timeout: 90_000 }, async () => {
    const serials = await prepare('AZA');
    await scenario({ label: 'after the claims, before the CSV', stopAfter: claims(TOKENS), phase: afterTheClaims, downMs: 300 }, serials);
  });

  it('for longer than the storage retries last', { timeout: 90_000 }, async () => {
    const serials = await prepare('AZB');
    await scenario(
      { label: 'after the claims, for 6 s', stopAfter: claims(TOKENS), phase: afterTheClaims, downMs: 6000, mustFail: true },
      serials,
    );
  });

  it('while the build claims its tokens', { timeout: 90_000 }, async () => {
    const serials = await prepare('AZC');
    const phase = (at: Snapshot) => {
      assert.ok(at.exporting >= 10 && at.exporting < TOKENS, `some tokens claimed, not all: ${at.exporting} of ${TOKENS}`);
      assert.deepEqual([at.stored + at.exporting, at.exported, at.csvWritten], [TOKENS, 0, false]);
    };
    await scenario({ label: 'during the claims', stopAfter: claims(10), phase, downMs: 1000 }, serials);
  });

  it('right after the CSV was written, while tokens are marked exported', { timeout: 90_000 }, async () => {
    const serials = await prepare('AZD');
    const phase = (at: Snapshot) =>
      assert.deepEqual(at, { stored: 0, exporting: TOKENS, exported: 0, csvWritten: true }, 'CSV written, no token marked exported yet');
    await scenario(
      {
        label: 'once the CSV is written',
        stopAfter: (method, args) => method === 'write' && args[0] === ctx.config.containers.imports,
        phase,
        downMs: 1000,
      },
      serials,
    );
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
    figures.push(
      `CSV write landed but its answer was lost: build failed; reconciler settled ${settled.exportsSettled} as exported; CSVs and inventory agree, no token exported twice`,
    );
  });
});
