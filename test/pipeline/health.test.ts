/**
 * GET /api/health is anonymous: its answers must not cost a vault call each, or anyone could spend the vault's
 * shared read budget (issue 11). The deep check runs at most once per 30 s of the Clock port's time.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AppContext } from '../../shared/app/context.js';
import { checkHealth } from '../../shared/app/health.js';
import { loadConfig } from '../../shared/config.js';
import type { AssignmentEntity, TokenEntity } from '../../shared/pipeline/ports.js';
import { PacedVault } from '../../shared/pipeline/vault.js';
import { ManualClock } from '../helpers/clock.js';
import { MemoryBlobStore, MemorySecretStore, MemoryTable } from '../helpers/memory-ports.js';

function appContext() {
  const clock = new ManualClock('2026-11-29T10:00:00Z');
  const secrets = new MemorySecretStore();
  const vaultCalls: number[] = [];
  const get = secrets.get.bind(secrets);
  secrets.get = (name) => {
    vaultCalls.push(clock.now().getTime());
    return get(name);
  };
  const ctx: AppContext = {
    config: loadConfig({ PipelineStorage: 'UseDevelopmentStorage=true', KEY_VAULT_URL: 'https://example.vault.azure.net' }),
    blobs: new MemoryBlobStore(clock),
    vault: new PacedVault(secrets, { createBudget: 300, readBudget: 4000, retry: { baseDelayMs: 1 } }),
    tokens: new MemoryTable<TokenEntity>(),
    assignments: new MemoryTable<AssignmentEntity>(),
    clock,
  };
  return { ctx, clock, secrets, vaultCalls };
}

describe('health check', () => {
  it('answers 100 concurrent requests with one vault call', async () => {
    const { ctx, vaultCalls } = appContext();
    const answers = await Promise.all(Array.from({ length: 100 }, () => checkHealth(ctx)));
    assert.equal(vaultCalls.length, 1);
    assert.ok(answers.every((a) => a.status === 'ok' && a.checks.keyVault === 'ok'));
  });

  it('probes the vault at most once per 30 s, whatever the request rate', async () => {
    const { ctx, clock, vaultCalls } = appContext();
    const start = clock.now().getTime();
    // Ten requests a second for two minutes of clock time.
    for (let i = 0; i < 1200; i++) {
      const answer = await checkHealth(ctx);
      assert.equal(answer.status, 'ok');
      assert.ok(new Date(answer.checkedAt).getTime() <= clock.now().getTime());
      assert.ok(clock.now().getTime() - new Date(answer.checkedAt).getTime() < 30_000, 'the answer is never older than 30 s');
      clock.advance(100);
    }
    assert.deepEqual(
      vaultCalls.map((at) => (at - start) / 1000),
      [0, 30, 60, 90],
    );
  });

  it('keeps a failed probe for 30 s too, so a vault outage is not hammered', async () => {
    const { ctx, clock, secrets, vaultCalls } = appContext();
    const get = secrets.get.bind(secrets);
    secrets.get = (name) => {
      void get(name);
      return Promise.reject(new Error('vault down'));
    };
    for (let i = 0; i < 50; i++) {
      const answer = await checkHealth(ctx);
      assert.equal(answer.status, 'degraded');
      assert.equal(answer.checks.keyVault, 'failed');
      clock.advance(500);
    }
    assert.equal(vaultCalls.length, 1);
  });
});
