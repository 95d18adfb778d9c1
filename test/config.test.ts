import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readFileSync } from 'node:fs';
import { ConfigError, INGEST_INVOCATION_BUDGET_DEFAULT_SECONDS, loadConfig } from '../shared/config.js';
import { RECONCILE_MIN_AGE_FLOOR_MINUTES } from '../shared/pipeline/liveness.js';

const base = { KEY_VAULT_URL: 'https://contoso-oath.vault.azure.net', PipelineStorage: 'UseDevelopmentStorage=true' };

function failsOn(setting: string, env: Record<string, string>) {
  assert.throws(
    () => loadConfig({ ...base, ...env }),
    (err: unknown) => err instanceof ConfigError && err.setting === setting && err.message.startsWith(`App setting ${setting}:`),
  );
}

describe('config', () => {
  it('applies the documented defaults', () => {
    const c = loadConfig(base);
    assert.equal(c.keyVaultUrl, 'https://contoso-oath.vault.azure.net');
    assert.equal(c.triggerSource, 'LogsAndContainerScan');
    assert.deepEqual(c.containers, {
      seeds: 'seeds',
      assignments: 'assignments',
      imports: 'imports',
      reports: 'reports',
      quarantine: 'quarantine',
      results: 'results',
      state: 'state',
    });
    assert.equal(c.vaultCreateBudget, 300);
    assert.equal(c.vaultReadBudget, 4000);
    assert.equal(c.lockoutLimit, 10);
    assert.equal(c.lockoutMinutes, 15);
    assert.equal(c.lockoutMaxMinutes, 24 * 60);
    assert.equal(c.transportKeyPrefix, 'transport-');
    assert.equal(c.localVault, false);
    assert.deepEqual(c.storage, { connectionString: 'UseDevelopmentStorage=true' });
  });

  it('reads the scaling settings: interactive share, invocation budget under host.json functionTimeout, continuation queue', () => {
    const c = loadConfig(base);
    assert.deepEqual(
      [c.vaultInteractiveShare, c.ingestInvocationBudgetSeconds, c.ingestContinueQueue],
      [0.05, INGEST_INVOCATION_BUDGET_DEFAULT_SECONDS, 'ingest-continue'],
    );
    // The budget leaves an invocation time for its last calls, checkpoint and report before the host stops it.
    const host = JSON.parse(readFileSync(new URL('../host.json', import.meta.url), 'utf8')) as { functionTimeout: string };
    const [h, m, sec] = host.functionTimeout.split(':').map(Number);
    const timeoutSeconds = h! * 3600 + m! * 60 + sec!;
    assert.ok(
      c.ingestInvocationBudgetSeconds <= timeoutSeconds - 5 * 60,
      `budget ${c.ingestInvocationBudgetSeconds} s vs functionTimeout ${timeoutSeconds} s`,
    );
    const set = loadConfig({
      ...base,
      KEY_VAULT_INTERACTIVE_PERCENT: '0',
      INGEST_INVOCATION_BUDGET_SECONDS: '60',
      INGEST_CONTINUE_QUEUE: 'more-seeds',
      STATE_CONTAINER: 'shared-state',
    });
    assert.deepEqual(
      [set.vaultInteractiveShare, set.ingestInvocationBudgetSeconds, set.ingestContinueQueue, set.containers.state],
      [0, 60, 'more-seeds', 'shared-state'],
    );
    failsOn('KEY_VAULT_INTERACTIVE_PERCENT', { KEY_VAULT_INTERACTIVE_PERCENT: '51' });
    failsOn('INGEST_INVOCATION_BUDGET_SECONDS', { INGEST_INVOCATION_BUDGET_SECONDS: '0' });
    failsOn('INGEST_CONTINUE_QUEUE', { INGEST_CONTINUE_QUEUE: 'Bad_Queue' });
  });

  it('reads the programming settings: issuer and request limits', () => {
    const c = loadConfig(base);
    assert.deepEqual([c.otpauthIssuer, c.programMaxTokens, c.programMaxBodyBytes], ['Entra ID', 500, 1024 * 1024]);
    const set = loadConfig({ ...base, OTPAUTH_ISSUER: 'Contoso IT', PROGRAM_MAX_TOKENS: '50', PROGRAM_MAX_BODY_BYTES: '65536' });
    assert.deepEqual([set.otpauthIssuer, set.programMaxTokens, set.programMaxBodyBytes], ['Contoso IT', 50, 65536]);
    failsOn('OTPAUTH_ISSUER', { OTPAUTH_ISSUER: 'Contoso: IT' });
    failsOn('OTPAUTH_ISSUER', { OTPAUTH_ISSUER: 'x'.repeat(65) });
    failsOn('PROGRAM_MAX_TOKENS', { PROGRAM_MAX_TOKENS: '0' });
    failsOn('PROGRAM_MAX_BODY_BYTES', { PROGRAM_MAX_BODY_BYTES: '100' });
  });

  it('reads identity-based storage connections', () => {
    const c = loadConfig({
      KEY_VAULT_URL: base.KEY_VAULT_URL,
      PipelineStorage__blobServiceUri: 'https://acct.blob.core.windows.net',
      PipelineStorage__queueServiceUri: 'https://acct.queue.core.windows.net',
      PipelineStorage__tableServiceUri: 'https://acct.table.core.windows.net',
      PipelineStorage__clientId: '00000000-0000-0000-0000-000000000001',
      SEED_TRIGGER_SOURCE: 'EventGrid',
    });
    assert.equal(c.storage.tableServiceUri, 'https://acct.table.core.windows.net');
    assert.equal(c.storage.clientId, '00000000-0000-0000-0000-000000000001');
    assert.equal(c.triggerSource, 'EventGrid');
  });

  it('accepts the local stand-in on loopback over http only', () => {
    assert.equal(loadConfig({ ...base, KEY_VAULT_URL: 'http://127.0.0.1:8443' }).localVault, true);
    failsOn('KEY_VAULT_URL', { KEY_VAULT_URL: 'http://vault.example.com' });
    failsOn('KEY_VAULT_URL', { KEY_VAULT_URL: 'https://v.vault.azure.net/some/path' });
  });

  it("refuses a transport-key prefix that overlaps the token secrets' names in either direction, whatever its case", () => {
    for (const prefix of ['oath-keys', 'oath-', 'oath', 'oat', 'o', 'O', 'OATH-X', 'Oath']) {
      assert.throws(
        () => loadConfig({ ...base, TRANSPORT_KEY_PREFIX: prefix }),
        (err: unknown) =>
          err instanceof ConfigError && err.setting === 'TRANSPORT_KEY_PREFIX' && /overlaps the token secrets' names/.test(err.message),
        prefix,
      );
    }
    for (const prefix of ['transport-', 'oathx-', 'oath1', 'x-oath-', 't'])
      assert.equal(loadConfig({ ...base, TRANSPORT_KEY_PREFIX: prefix }).transportKeyPrefix, prefix);
  });

  it('reads GRAPH_BASE_URL: Graph global by default, the local stand-in on loopback http, never a path', () => {
    const defaults = loadConfig(base);
    assert.equal(defaults.graphBaseUrl, 'https://graph.microsoft.com');
    assert.equal(defaults.localGraph, false);
    const local = loadConfig({ ...base, GRAPH_BASE_URL: 'http://127.0.0.1:10011/' });
    assert.equal(local.graphBaseUrl, 'http://127.0.0.1:10011');
    assert.equal(local.localGraph, true);
    failsOn('GRAPH_BASE_URL', { GRAPH_BASE_URL: 'http://graph.example.com' });
    failsOn('GRAPH_BASE_URL', { GRAPH_BASE_URL: 'https://graph.microsoft.com/beta' });
    failsOn('GRAPH_BASE_URL', { GRAPH_BASE_URL: 'graph.microsoft.com' });
  });

  it('reads the Graph mode settings: csv and everything off by default', () => {
    const defaults = loadConfig(base);
    assert.equal(defaults.importMode, 'csv');
    assert.equal(defaults.graphAllowPrivilegedUsers, false);
    assert.equal(defaults.graphAllowedGroupId, undefined);
    assert.equal(defaults.graphActivateFromSeed, false);
    const graph = loadConfig({
      ...base,
      IMPORT_MODE: 'Graph',
      GRAPH_ALLOW_PRIVILEGED_USERS: 'true',
      GRAPH_ALLOWED_GROUP_ID: '0A0A0A0A-1111-4111-8111-000000000001',
      GRAPH_ACTIVATE_FROM_SEED: 'true',
    });
    assert.equal(graph.importMode, 'graph');
    assert.equal(graph.graphAllowPrivilegedUsers, true);
    assert.equal(graph.graphAllowedGroupId, '0a0a0a0a-1111-4111-8111-000000000001');
    assert.equal(graph.graphActivateFromSeed, true);
    failsOn('IMPORT_MODE', { IMPORT_MODE: 'api' });
    failsOn('GRAPH_ALLOWED_GROUP_ID', { GRAPH_ALLOWED_GROUP_ID: 'helpdesk' });
    failsOn('GRAPH_ACTIVATE_FROM_SEED', { GRAPH_ACTIVATE_FROM_SEED: 'sometimes' });
  });

  it('names the setting that is wrong', () => {
    assert.throws(() => loadConfig({ PipelineStorage: 'UseDevelopmentStorage=true' }), /App setting KEY_VAULT_URL: is required/);
    failsOn('KEY_VAULT_CREATE_BUDGET', { KEY_VAULT_CREATE_BUDGET: 'lots' });
    failsOn('VERIFY_LOCKOUT_LIMIT', { VERIFY_LOCKOUT_LIMIT: '0' });
    failsOn('VERIFY_LOCKOUT_MAX_MINUTES', { VERIFY_LOCKOUT_MAX_MINUTES: '0' });
    failsOn('VERIFY_LOCKOUT_MAX_MINUTES', { VERIFY_LOCKOUT_MINUTES: '120', VERIFY_LOCKOUT_MAX_MINUTES: '60' });
    failsOn('SEED_TRIGGER_SOURCE', { SEED_TRIGGER_SOURCE: 'Polling' });
    failsOn('SEEDS_CONTAINER', { SEEDS_CONTAINER: 'Bad_Name' });
    failsOn('TRANSPORT_KEY_PREFIX', { TRANSPORT_KEY_PREFIX: 'oath-keys' });
    failsOn('DEFAULT_TRANSPORT_KEY_SECRET', { DEFAULT_TRANSPORT_KEY_SECRET: 'oath-1234' });
    failsOn('RECOVER_DELETED_SECRETS', { RECOVER_DELETED_SECRETS: 'maybe' });
    failsOn('RECONCILE_SCHEDULE', { RECONCILE_SCHEDULE: '*/5 * * * *' });
    failsOn('RECONCILE_MIN_AGE_MINUTES', { RECONCILE_MIN_AGE_MINUTES: 'soon' });
    assert.throws(
      () => loadConfig({ KEY_VAULT_URL: base.KEY_VAULT_URL }),
      (err: unknown) => err instanceof ConfigError && err.setting === 'PipelineStorage__blobServiceUri',
    );
  });

  it('keeps the reconciler minimum age above the longest gap between heartbeats of a live build', () => {
    assert.equal(RECONCILE_MIN_AGE_FLOOR_MINUTES, 5);
    assert.equal(loadConfig(base).reconcileMinAgeMinutes, 15);
    for (const tooShort of ['0', '1', String(RECONCILE_MIN_AGE_FLOOR_MINUTES - 1)])
      failsOn('RECONCILE_MIN_AGE_MINUTES', { RECONCILE_MIN_AGE_MINUTES: tooShort });
    assert.throws(() => loadConfig({ ...base, RECONCILE_MIN_AGE_MINUTES: '0' }), /at least 5, got 0/);
    assert.equal(
      loadConfig({ ...base, RECONCILE_MIN_AGE_MINUTES: String(RECONCILE_MIN_AGE_FLOOR_MINUTES) }).reconcileMinAgeMinutes,
      RECONCILE_MIN_AGE_FLOOR_MINUTES,
    );
  });
});
