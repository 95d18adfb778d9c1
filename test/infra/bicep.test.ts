// The infrastructure is part of the product's security: compile it with the real Bicep CLI (pinned NuGet
// package) and assert the security properties on the compiled ARM JSON.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { accessSync, constants, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { asText, collectResources, hasDeploymentTimePart, type ArmTemplate, type FoundResource, type Json } from './arm-template.js';
import {
  compileInfra,
  infraDir,
  listBicepFiles,
  parseDiagnostics,
  pinnedBicepVersion,
  repoRoot,
  runBicep,
  bicepVersion,
  type CompileResult,
} from './bicep-compiler.js';
import { BLOB_TRIGGER_SUBSCRIPTIONS, targetFromEnvironment } from '../../scripts/event-grid-subscriptions.js';
import { loadConfig, SETTINGS, STORAGE_CONNECTION_NAME } from '../../shared/config.js';
import { PipelineEvent } from '../../shared/pipeline/events.js';
import { blobPoisonQueue } from '../../dev/host/blob-trigger.js';

/** Built-in roles the app identity must not hold on the vault: the custom role grants only what it uses. */
const BROAD_KEY_VAULT_ROLE = {
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7',
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6',
  keyVaultAdministrator: '00482a5a-887f-4fb3-b363-3b7fe8e74483',
};
const ROLE = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b',
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88',
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3',
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb',
  storageBlobDataReader: '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1',
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe',
};
const ADMIN_GROUP = '11111111-2222-3333-4444-555555555555';
const TOP_LEVEL = { environmentName: 'ci', location: 'westeurope' };
const GRAPH_GROUP = '0a0a0a0a-1111-4111-8111-000000000001';

type Obj = { [key: string]: Json };
const obj = (value: Json | undefined): Obj => {
  assert.ok(value !== null && typeof value === 'object' && !Array.isArray(value), `expected an object, got ${JSON.stringify(value)}`);
  return value;
};
const list = (value: Json | undefined): Json[] => {
  assert.ok(Array.isArray(value), `expected an array, got ${JSON.stringify(value)}`);
  return value;
};

let outDir: string;
let compiled: CompileResult;
let main: ArmTemplate;
let resources: FoundResource[];
let withAdminGroup: FoundResource[];
let privateNetwork: FoundResource[];

const ofType = (type: string, from = resources) => from.filter((r) => r.raw.type.toLowerCase() === type.toLowerCase());
const single = (type: string, from = resources): FoundResource => {
  const found = ofType(type, from);
  assert.equal(found.length, 1, `expected one ${type}, found ${found.length}`);
  return found[0]!;
};
const props = (resource: FoundResource): Obj => obj(resource.value['properties']);
/** The resource's id path as resourceId() would give it, e.g. Microsoft.Storage/storageAccounts/st…/blobServices/default. */
const idOf = (resource: FoundResource): string => {
  const [namespace, ...types] = resource.raw.type.split('/');
  const names = asText(resource.value['name']).split('/');
  return [namespace, ...types.flatMap((segment, index) => [segment, names[index]])].join('/');
};
const lastNameSegment = (resource: FoundResource) => asText(resource.value['name']).split('/').pop();
const deployed = (resource: FoundResource) => resource.deployed;
const roleGuid = (assignment: FoundResource) => asText(props(assignment)['roleDefinitionId']).split('/').pop();
/** Every .ts file under dir. */
const listSourceFiles = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? listSourceFiles(path.join(dir, entry.name)) : entry.name.endsWith('.ts') ? [path.join(dir, entry.name)] : [],
  );
const assignmentsOf = (guid: string, from = resources) =>
  ofType('Microsoft.Authorization/roleAssignments', from).filter((r) => roleGuid(r) === guid);

before(() => {
  outDir = mkdtempSync(path.join(tmpdir(), 'bicep-out-'));
  // Throws with "the Bicep compiler is not available..." when it cannot be fetched: every test then fails.
  compiled = compileInfra(outDir);
  const template = compiled.templates.get('main.bicep');
  assert.ok(template, `main.bicep did not compile:\n${compiled.build.stderr}`);
  main = template;
  resources = collectResources(main, TOP_LEVEL);
  withAdminGroup = collectResources(main, { ...TOP_LEVEL, adminGroupObjectId: ADMIN_GROUP });
  privateNetwork = collectResources(main, { ...TOP_LEVEL, privateNetworking: true });
});

after(() => {
  if (outDir) rmSync(outDir, { recursive: true, force: true });
});

void describe('Bicep compiler', () => {
  void test('is the version pinned in infra/tools/bicep-cli.csproj', () => {
    assert.match(bicepVersion(), new RegExp(`Bicep CLI version ${pinnedBicepVersion().replaceAll('.', '\\.')} `));
  });

  void test('builds every .bicep file with zero errors and zero warnings', () => {
    const files = listBicepFiles();
    assert.ok(files.includes('main.bicep') && files.length >= 5, `found ${files.join(', ')}`);
    assert.deepEqual(parseDiagnostics(compiled.build.stderr + compiled.build.stdout), []);
    assert.equal(compiled.build.status, 0, compiled.build.stderr);
    assert.deepEqual([...compiled.templates.keys()].sort(), files);
  });

  void test('lints every .bicep file with zero errors and zero warnings', () => {
    assert.deepEqual(parseDiagnostics(compiled.lint.stderr + compiled.lint.stdout), []);
    assert.equal(compiled.lint.status, 0, compiled.lint.stderr);
  });

  void test('the diagnostics check does see a linter warning', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'bicep-lint-'));
    try {
      writeFileSync(path.join(dir, 'unused.bicep'), 'param unusedParameter string\n');
      const run = runBicep(['lint', path.join(dir, 'unused.bicep')]);
      const diagnostics = parseDiagnostics(run.stderr + run.stdout);
      assert.deepEqual(
        diagnostics.map((d) => [d.level, d.code]),
        [['Warning', 'no-unused-params']],
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  void test('every suppressed linter rule says why', () => {
    for (const file of listBicepFiles()) {
      const lines = readFileSync(path.join(infraDir, file), 'utf8').split('\n');
      lines.forEach((line, index) => {
        if (/#disable-(next-line|diagnostics)/.test(line)) {
          assert.match(lines[index - 1] ?? '', /\/\/\s*\S/, `${file}:${index + 1} suppresses a rule without a comment above it`);
        }
      });
    }
  });
});

void describe('no keys anywhere', () => {
  void test('no list*() call (listKeys, listAccountSas, ...) in any compiled template', () => {
    for (const [file, template] of compiled.templates) {
      assert.doesNotMatch(JSON.stringify(template), /\blist[A-Za-z]*\(/, `${file} calls a list function`);
    }
  });

  void test('no secure outputs or key material in outputs', () => {
    for (const [name, output] of Object.entries(main.outputs ?? {})) {
      assert.notEqual(output.type.toLowerCase(), 'securestring', name);
      assert.doesNotMatch(JSON.stringify(output.value), /\blist[A-Za-z]*\(|AccountKey|SharedAccessSignature/i, name);
    }
  });
});

void describe('storage account', () => {
  void test('shared-key access off, no public blob access, HTTPS and TLS 1.2 only', () => {
    const account = props(single('Microsoft.Storage/storageAccounts'));
    assert.equal(account['allowSharedKeyAccess'], false);
    assert.equal(account['allowBlobPublicAccess'], false);
    assert.equal(account['supportsHttpsTrafficOnly'], true);
    assert.equal(account['minimumTlsVersion'], 'TLS1_2');
    assert.equal(account['defaultToOAuthAuthentication'], true);
    assert.equal(account['allowCrossTenantReplication'], false);
  });

  void test('blob versioning, blob soft delete and container soft delete are off', () => {
    const blobService = props(single('Microsoft.Storage/storageAccounts/blobServices'));
    assert.equal(blobService['isVersioningEnabled'], false);
    assert.equal(obj(blobService['deleteRetentionPolicy'])['enabled'], false);
    assert.equal(obj(blobService['containerDeleteRetentionPolicy'])['enabled'], false);
  });

  void test('the containers and tables exist, all private', () => {
    const containers = ofType('Microsoft.Storage/storageAccounts/blobServices/containers');
    assert.deepEqual(containers.map(lastNameSegment).sort(), [
      'app-package',
      'assignments',
      'deadletter',
      'imports',
      'quarantine',
      'reports',
      'results',
      'seeds',
      'state',
    ]);
    for (const container of containers) assert.equal(props(container)['publicAccess'], 'None', lastNameSegment(container));
    const tables = ofType('Microsoft.Storage/storageAccounts/tableServices/tables');
    assert.deepEqual(tables.map(lastNameSegment).sort(), ['assignments', 'tokens']);
    // The continuation queue of large ingests, named as the app setting names it.
    assert.deepEqual(ofType('Microsoft.Storage/storageAccounts/queueServices/queues').map(lastNameSegment), ['ingest-continue']);
  });

  void test('lifecycle rules delete import CSVs after 1 day, quarantined files after 30 days, reports after 180 days (defaults)', () => {
    const policy = obj(props(single('Microsoft.Storage/storageAccounts/managementPolicies'))['policy']);
    const rules = list(policy['rules']).map((rule) => {
      const definition = obj(obj(rule)['definition']);
      const deleteAction = obj(obj(obj(obj(definition['actions'])['baseBlob'])['delete']));
      return {
        enabled: obj(rule)['enabled'],
        prefixes: obj(definition['filters'])['prefixMatch'],
        days: deleteAction['daysAfterModificationGreaterThan'],
      };
    });
    assert.deepEqual(rules, [
      { enabled: true, prefixes: ['imports/'], days: 1 },
      { enabled: true, prefixes: ['quarantine/'], days: 30 },
      { enabled: true, prefixes: ['reports/'], days: 180 },
    ]);
  });

  void test('the retention days are parameters of main.bicep', () => {
    const custom = collectResources(main, { ...TOP_LEVEL, importRetentionDays: 3, quarantineRetentionDays: 60, reportRetentionDays: 400 });
    const policy = obj(props(single('Microsoft.Storage/storageAccounts/managementPolicies', custom))['policy']);
    const days = list(policy['rules']).map(
      (rule) => obj(obj(obj(obj(obj(rule)['definition'])['actions'])['baseBlob'])['delete'])['daysAfterModificationGreaterThan'],
    );
    assert.deepEqual(days, [3, 60, 400]);
  });
});

void describe('Key Vault', () => {
  void test('RBAC mode, soft delete and purge protection on', () => {
    const vault = props(single('Microsoft.KeyVault/vaults'));
    assert.equal(vault['enableRbacAuthorization'], true);
    assert.equal(vault['enableSoftDelete'], true);
    assert.equal(vault['enablePurgeProtection'], true);
    assert.equal(vault['softDeleteRetentionInDays'], 90);
    assert.equal(vault['accessPolicies'], undefined);
  });
});

void describe('role assignments', () => {
  const functionPrincipal = /^«reference\(resourceId\('Microsoft\.ManagedIdentity\/userAssignedIdentities'.*\)\.principalId»$/;

  const customRole = () => single('Microsoft.Authorization/roleDefinitions');

  void test('only the expected roles are granted, never at resource group or subscription scope', () => {
    const guids = new Set(ofType('Microsoft.Authorization/roleAssignments', withAdminGroup).map(roleGuid));
    assert.deepEqual([...guids].sort(), [...Object.values(ROLE), asText(customRole().value['name'])].sort());
    for (const assignment of ofType('Microsoft.Authorization/roleAssignments', withAdminGroup)) {
      assert.ok(typeof assignment.value['scope'] === 'string', `${asText(assignment.value['name'])} has no resource scope`);
    }
  });

  void test('the function identity gets a custom vault role with exactly get, metadata, set, update and recover on secrets', () => {
    const role = props(customRole());
    assert.equal(role['type'], 'CustomRole');
    const [permissions, ...more] = list(role['permissions']);
    assert.deepEqual(more, []);
    assert.deepEqual(obj(permissions)['actions'], []);
    assert.deepEqual(obj(permissions)['notActions'], []);
    assert.deepEqual(obj(permissions)['notDataActions'], []);
    assert.deepEqual(
      list(obj(permissions)['dataActions'])
        .map((a) => asText(a))
        .sort(),
      [
        'Microsoft.KeyVault/vaults/secrets/getSecret/action',
        'Microsoft.KeyVault/vaults/secrets/readMetadata/action',
        'Microsoft.KeyVault/vaults/secrets/recover/action',
        'Microsoft.KeyVault/vaults/secrets/setSecret/action',
        'Microsoft.KeyVault/vaults/secrets/update/action',
      ],
    );
    // Assignable in this resource group only (a custom role cannot be scoped to one resource).
    assert.deepEqual(role['assignableScopes'], ['«resourceGroup().id»']);
    assert.match(asText(role['roleName']), /kv-/);
  });

  void test('the custom role is assigned to the function identity on the vault only; no built-in Key Vault role is', () => {
    const vault = idOf(single('Microsoft.KeyVault/vaults'));
    const [assignment, ...others] = assignmentsOf(asText(customRole().value['name']));
    assert.ok(assignment);
    assert.deepEqual(others, []);
    assert.equal(props(assignment)['roleDefinitionId'], `Microsoft.Authorization/roleDefinitions/${asText(customRole().value['name'])}`);
    assert.equal(assignment.value['scope'], vault);
    assert.match(asText(props(assignment)['principalId']), functionPrincipal);
    assert.equal(props(assignment)['principalType'], 'ServicePrincipal');
    for (const [name, guid] of Object.entries(BROAD_KEY_VAULT_ROLE)) {
      assert.deepEqual(assignmentsOf(guid, withAdminGroup), [], `${name} is granted`);
    }
    const onVault = ofType('Microsoft.Authorization/roleAssignments', withAdminGroup).filter((a) => a.value['scope'] === vault);
    assert.deepEqual(
      onVault,
      [assignment].map((a) => onVault.find((b) => b.value['name'] === a.value['name'])),
    );
  });

  for (const [role, guid] of [
    ['Storage Blob Data Owner', ROLE.storageBlobDataOwner],
    ['Storage Queue Data Contributor', ROLE.storageQueueDataContributor],
    ['Storage Table Data Contributor', ROLE.storageTableDataContributor],
  ] as const) {
    void test(`the function identity is ${role} on the storage account only`, () => {
      const found = assignmentsOf(guid);
      assert.equal(found.length, 1);
      assert.equal(found[0]!.value['scope'], idOf(single('Microsoft.Storage/storageAccounts')));
      assert.match(asText(props(found[0]!)['principalId']), functionPrincipal);
    });
  }

  void test('the function identity is Monitoring Metrics Publisher on Application Insights, which has local auth off', () => {
    const found = assignmentsOf(ROLE.monitoringMetricsPublisher);
    assert.equal(found.length, 1);
    const appInsights = single('Microsoft.Insights/components');
    assert.equal(found[0]!.value['scope'], idOf(appInsights));
    assert.match(asText(props(found[0]!)['principalId']), functionPrincipal);
    assert.equal(props(appInsights)['DisableLocalAuth'], true);
  });

  void test('the admin group reads imports and reports, writes results (failure files) only, and only when given', () => {
    assert.deepEqual(assignmentsOf(ROLE.storageBlobDataReader).filter(deployed), []);
    const granted = assignmentsOf(ROLE.storageBlobDataReader, withAdminGroup).filter(deployed);
    const containerId = (name: string) =>
      idOf(ofType('Microsoft.Storage/storageAccounts/blobServices/containers', withAdminGroup).find((c) => lastNameSegment(c) === name)!);
    assert.deepEqual(granted.map((a) => a.value['scope']).sort(), [containerId('imports'), containerId('reports')].sort());
    for (const assignment of granted) {
      assert.equal(props(assignment)['principalId'], ADMIN_GROUP);
      assert.equal(props(assignment)['principalType'], 'Group');
    }
    const adminAssignments = ofType('Microsoft.Authorization/roleAssignments', withAdminGroup).filter(
      (a) => props(a)['principalId'] === ADMIN_GROUP,
    );
    assert.equal(adminAssignments.length, 3);
    const writer = assignmentsOf(ROLE.storageBlobDataContributor, withAdminGroup).filter((a) => props(a)['principalId'] === ADMIN_GROUP);
    assert.deepEqual(
      writer.map((a) => a.value['scope']),
      [containerId('results')],
    );
  });

  void test('Event Grid may write dead letters into the deadletter container only', () => {
    const found = assignmentsOf(ROLE.storageBlobDataContributor).filter(deployed);
    assert.equal(found.length, 1);
    const deadLetter = ofType('Microsoft.Storage/storageAccounts/blobServices/containers').find(
      (c) => lastNameSegment(c) === 'deadletter',
    )!;
    assert.equal(found[0]!.value['scope'], idOf(deadLetter));
    assert.match(asText(props(found[0]!)['principalId']), /Microsoft\.EventGrid\/systemTopics.*identity\.principalId/);
  });
});

void describe('Function app', () => {
  const site = () => single('Microsoft.Web/sites');
  const settings = (): Map<string, Json> => {
    const entries = list(obj(props(site())['siteConfig'])['appSettings']).map(
      (entry) => [asText(obj(entry)['name']), obj(entry)['value'] ?? null] as const,
    );
    const map = new Map(entries);
    assert.equal(map.size, entries.length, 'duplicate app setting');
    return map;
  };

  void test('Flex Consumption on Linux with the Node 22 runtime', () => {
    const plan = single('Microsoft.Web/serverfarms');
    assert.deepEqual(plan.value['sku'], { name: 'FC1', tier: 'FlexConsumption' });
    assert.equal(props(plan)['reserved'], true);
    assert.equal(site().value['kind'], 'functionapp,linux');
    const config = obj(props(site())['functionAppConfig']);
    assert.deepEqual(config['runtime'], { name: 'node', version: '22' });
    const storage = obj(obj(config['deployment'])['storage']);
    assert.equal(obj(storage['authentication'])['type'], 'UserAssignedIdentity');
    assert.match(asText(storage['value']), /app-package$/);
  });

  void test('runs as the user-assigned identity only', () => {
    const identity = obj(site().value['identity']);
    assert.equal(identity['type'], 'UserAssigned');
    assert.deepEqual(Object.keys(obj(identity['userAssignedIdentities'])), [
      idOf(single('Microsoft.ManagedIdentity/userAssignedIdentities')),
    ]);
  });

  void test('HTTPS only, TLS 1.2, FTP off, basic publishing credentials off', () => {
    assert.equal(props(site())['httpsOnly'], true);
    const siteConfig = obj(props(site())['siteConfig']);
    assert.equal(siteConfig['minTlsVersion'], '1.2');
    assert.equal(siteConfig['scmMinTlsVersion'], '1.2');
    assert.equal(siteConfig['ftpsState'], 'Disabled');
    const policies = ofType('Microsoft.Web/sites/basicPublishingCredentialsPolicies');
    assert.deepEqual(policies.map((p) => [lastNameSegment(p), props(p)['allow']]).sort(), [
      ['ftp', false],
      ['scm', false],
    ]);
  });

  void test('app settings: identity-based connections only, no key or connection string', () => {
    const map = settings();
    for (const connection of ['AzureWebJobsStorage', 'PipelineStorage']) {
      assert.equal(map.get(`${connection}__credential`), 'managedidentity');
      assert.match(asText(map.get(`${connection}__clientId`)), /userAssignedIdentities.*clientId/);
      for (const service of ['blob', 'queue', 'table']) {
        assert.match(asText(map.get(`${connection}__${service}ServiceUri`)), new RegExp(`^https://st.*\\.${service}\\.`));
      }
    }
    assert.equal(map.has('AzureWebJobsStorage'), false, 'AzureWebJobsStorage must not be a connection string');
    for (const [name, value] of map) {
      assert.doesNotMatch(asText(value), /AccountKey=|SharedAccessSignature|DefaultEndpointsProtocol|sig=/i, name);
      if (name !== 'APPLICATIONINSIGHTS_CONNECTION_STRING') assert.doesNotMatch(name, /ConnectionString|_KEY$|PASSWORD/i, name);
    }
    assert.match(asText(map.get('AZURE_CLIENT_ID')), /userAssignedIdentities.*clientId/);
    assert.equal(map.get('APPLICATIONINSIGHTS_AUTHENTICATION_STRING'), `ClientId=${asText(map.get('AZURE_CLIENT_ID'))};Authorization=AAD`);
    assert.match(asText(map.get('KEY_VAULT_URL')), /^«reference\(resourceId\('Microsoft\.KeyVault\/vaults'.*\)\.vaultUri»$/);
  });

  void test('app settings: exactly the names the config module reads, with their Azure values', () => {
    const map = settings();
    assert.deepEqual(
      [...map.keys()].sort(),
      [
        'APPLICATIONINSIGHTS_AUTHENTICATION_STRING',
        'APPLICATIONINSIGHTS_CONNECTION_STRING',
        'ASSIGNMENTS_CONTAINER',
        'ASSIGNMENTS_TABLE',
        'AZURE_CLIENT_ID',
        'AzureWebJobsStorage__accountName',
        'BUILD_SETTLE_SECONDS',
        'AzureWebJobsStorage__blobServiceUri',
        'AzureWebJobsStorage__clientId',
        'AzureWebJobsStorage__credential',
        'AzureWebJobsStorage__queueServiceUri',
        'AzureWebJobsStorage__tableServiceUri',
        'DEFAULT_TRANSPORT_KEY_SECRET',
        'GRAPH_ACTIVATE_FROM_SEED',
        'GRAPH_ALLOWED_GROUP_ID',
        'GRAPH_ALLOW_PRIVILEGED_USERS',
        'GRAPH_BASE_URL',
        'IMPORTS_CONTAINER',
        'IMPORT_MAX_ROWS',
        'IMPORT_MODE',
        'INGEST_CONTINUE_QUEUE',
        'KEY_VAULT_CREATE_BUDGET',
        'KEY_VAULT_READ_BUDGET',
        'KEY_VAULT_URL',
        'MAX_SEED_FILE_BYTES',
        'PipelineStorage__blobServiceUri',
        'PipelineStorage__clientId',
        'PipelineStorage__credential',
        'PipelineStorage__queueServiceUri',
        'PipelineStorage__tableServiceUri',
        'QUARANTINE_CONTAINER',
        'RECONCILE_MIN_AGE_MINUTES',
        'REPORTS_CONTAINER',
        'RESULTS_CONTAINER',
        'SEEDS_CONTAINER',
        'SEED_TRIGGER_SOURCE',
        'STATE_CONTAINER',
        'TOKENS_TABLE',
        'TRANSPORT_KEY_PREFIX',
        'VERIFY_LOCKOUT_LIMIT',
        'VERIFY_LOCKOUT_MINUTES',
      ].sort(),
    );
    assert.deepEqual(Object.fromEntries([...map].filter(([, value]) => !hasDeploymentTimePart(value))), {
      AzureWebJobsStorage__credential: 'managedidentity',
      PipelineStorage__credential: 'managedidentity',
      SEED_TRIGGER_SOURCE: 'EventGrid',
      SEEDS_CONTAINER: 'seeds',
      ASSIGNMENTS_CONTAINER: 'assignments',
      IMPORTS_CONTAINER: 'imports',
      REPORTS_CONTAINER: 'reports',
      QUARANTINE_CONTAINER: 'quarantine',
      RESULTS_CONTAINER: 'results',
      STATE_CONTAINER: 'state',
      INGEST_CONTINUE_QUEUE: 'ingest-continue',
      TOKENS_TABLE: 'tokens',
      ASSIGNMENTS_TABLE: 'assignments',
      TRANSPORT_KEY_PREFIX: 'transport-',
      DEFAULT_TRANSPORT_KEY_SECRET: '',
      KEY_VAULT_CREATE_BUDGET: '300',
      KEY_VAULT_READ_BUDGET: '4000',
      VERIFY_LOCKOUT_LIMIT: '10',
      VERIFY_LOCKOUT_MINUTES: '15',
      IMPORT_MAX_ROWS: '0',
      RECONCILE_MIN_AGE_MINUTES: '15',
      BUILD_SETTLE_SECONDS: '30',
      MAX_SEED_FILE_BYTES: '20971520',
      // CSV mode by default; Graph mode's settings at their safe defaults.
      IMPORT_MODE: 'csv',
      GRAPH_BASE_URL: 'https://graph.microsoft.com',
      GRAPH_ALLOW_PRIVILEGED_USERS: 'false',
      GRAPH_ALLOWED_GROUP_ID: '',
      GRAPH_ACTIVATE_FROM_SEED: 'false',
    });
  });

  void test('Graph mode parameters reach the app settings, in the form the config module reads', () => {
    const graph = collectResources(main, {
      ...TOP_LEVEL,
      importMode: 'graph',
      graphAllowPrivilegedUsers: true,
      graphAllowedGroupId: GRAPH_GROUP,
      graphActivateFromSeed: true,
    });
    const map = new Map(
      list(obj(props(single('Microsoft.Web/sites', graph))['siteConfig'])['appSettings']).map(
        (entry) => [asText(obj(entry)['name']), obj(entry)['value'] ?? null] as const,
      ),
    );
    const env = Object.fromEntries(
      [...map].filter(([name]) => /^(IMPORT_MODE|GRAPH_)/.test(name)).map(([name, value]) => [name, asText(value)]),
    );
    assert.deepEqual(env, {
      IMPORT_MODE: 'graph',
      GRAPH_BASE_URL: 'https://graph.microsoft.com',
      GRAPH_ALLOW_PRIVILEGED_USERS: 'true',
      GRAPH_ALLOWED_GROUP_ID: GRAPH_GROUP,
      GRAPH_ACTIVATE_FROM_SEED: 'true',
    });
    const config = loadConfig({ KEY_VAULT_URL: 'https://kv.vault.azure.net/', PipelineStorage: 'UseDevelopmentStorage=true', ...env });
    assert.deepEqual(
      [config.importMode, config.graphAllowPrivilegedUsers, config.graphAllowedGroupId, config.graphActivateFromSeed],
      ['graph', true, GRAPH_GROUP, true],
    );
    assert.deepEqual(main.parameters?.['importMode']?.allowedValues, ['csv', 'graph']);
    const parameters = JSON.parse(readFileSync(path.join(infraDir, 'main.parameters.json'), 'utf8')) as {
      parameters: Record<string, { value: string }>;
    };
    assert.deepEqual(
      ['importMode', 'graphAllowPrivilegedUsers', 'graphAllowedGroupId', 'graphActivateFromSeed'].map(
        (name) => parameters.parameters[name]?.value,
      ),
      ['${IMPORT_MODE=csv}', '${GRAPH_ALLOW_PRIVILEGED_USERS=false}', '${GRAPH_ALLOWED_GROUP_ID=}', '${GRAPH_ACTIVATE_FROM_SEED=false}'],
    );
  });

  void test('the pipeline settings are the ones the config module reads, required ones included', () => {
    const map = settings();
    const platform = /^(AzureWebJobsStorage__|APPLICATIONINSIGHTS_)/;
    for (const name of map.keys()) {
      if (platform.test(name) || name.startsWith(`${STORAGE_CONNECTION_NAME}__`)) continue;
      assert.ok(name in SETTINGS, `${name} is not a setting of shared/config.ts`);
    }
    for (const [name, spec] of Object.entries(SETTINGS)) {
      if ('required' in spec && spec.required) assert.ok(map.has(name), `required setting ${name} is missing`);
    }
  });

  void test('the container and table settings name containers and tables the template creates', () => {
    const map = settings();
    const containers = new Set(ofType('Microsoft.Storage/storageAccounts/blobServices/containers').map(lastNameSegment));
    const tables = new Set(ofType('Microsoft.Storage/storageAccounts/tableServices/tables').map(lastNameSegment));
    for (const name of [
      'SEEDS_CONTAINER',
      'ASSIGNMENTS_CONTAINER',
      'IMPORTS_CONTAINER',
      'REPORTS_CONTAINER',
      'QUARANTINE_CONTAINER',
      'RESULTS_CONTAINER',
    ]) {
      assert.ok(containers.has(asText(map.get(name))), name);
    }
    for (const name of ['TOKENS_TABLE', 'ASSIGNMENTS_TABLE']) assert.ok(tables.has(asText(map.get(name))), name);
    for (const route of BLOB_TRIGGER_SUBSCRIPTIONS) assert.ok(containers.has(route.container), route.container);
  });
});

void describe('private networking (parameter privateNetworking)', () => {
  const NETWORK_TYPES = [
    'Microsoft.Network/virtualNetworks',
    'Microsoft.Network/networkSecurityGroups',
    'Microsoft.Network/privateEndpoints',
    'Microsoft.Network/privateEndpoints/privateDnsZoneGroups',
    'Microsoft.Network/privateDnsZones',
    'Microsoft.Network/privateDnsZones/virtualNetworkLinks',
  ];
  const deployedOf = (type: string, from: FoundResource[]) => ofType(type, from).filter(deployed);
  const oneDeployed = (type: string, from: FoundResource[]) => {
    const found = deployedOf(type, from);
    assert.equal(found.length, 1, `expected one deployed ${type}, found ${found.length}`);
    return found[0]!;
  };
  const dataStores = (from: FoundResource[]) => [
    oneDeployed('Microsoft.Storage/storageAccounts', from),
    oneDeployed('Microsoft.KeyVault/vaults', from),
  ];

  void test("off (the default): today's template, public endpoints guarded by RBAC, no network resources", () => {
    for (const type of NETWORK_TYPES) assert.deepEqual(deployedOf(type, resources), [], type);
    for (const store of dataStores(resources)) {
      assert.equal(props(store)['publicNetworkAccess'], 'Enabled', store.raw.type);
      assert.deepEqual(props(store)['networkAcls'], { defaultAction: 'Allow', bypass: 'AzureServices' }, store.raw.type);
    }
    assert.equal(props(single('Microsoft.Web/sites'))['virtualNetworkSubnetId'], null);
  });

  void test('on: no public network access on the storage account or the vault, where the seeds live', () => {
    const [storage, vault] = dataStores(privateNetwork);
    for (const store of [storage!, vault!]) {
      assert.equal(props(store)['publicNetworkAccess'], 'Disabled', store.raw.type);
      assert.equal(obj(props(store)['networkAcls'])['defaultAction'], 'Deny', store.raw.type);
      assert.deepEqual(obj(props(store)['networkAcls'])['ipRules'], [], store.raw.type);
      assert.deepEqual(obj(props(store)['networkAcls'])['virtualNetworkRules'], [], store.raw.type);
    }
    // Event Grid writes dead letters as a trusted service; the vault needs no exception at all.
    assert.equal(obj(props(storage!)['networkAcls'])['bypass'], 'AzureServices');
    assert.equal(obj(props(vault!)['networkAcls'])['bypass'], 'None');
    // Still Entra-only and private, whatever the network.
    assert.equal(props(storage!)['allowSharedKeyAccess'], false);
    assert.equal(props(storage!)['allowBlobPublicAccess'], false);
  });

  void test('on: the app joins a delegated subnet of the virtual network; the endpoints get their own subnet', () => {
    const vnet = oneDeployed('Microsoft.Network/virtualNetworks', privateNetwork);
    assert.deepEqual(obj(props(vnet)['addressSpace'])['addressPrefixes'], ['10.20.0.0/24']);
    const subnets = new Map(list(props(vnet)['subnets']).map((subnet) => [asText(obj(subnet)['name']), obj(obj(subnet)['properties'])]));
    assert.deepEqual([...subnets.keys()].sort(), ['app', 'private-endpoints']);
    assert.deepEqual(
      list(subnets.get('app')!['delegations']).map((d) => obj(obj(d)['properties'])['serviceName']),
      ['Microsoft.App/environments'],
    );
    assert.equal(subnets.get('private-endpoints')!['delegations'], undefined);
    const nsg = idOf(oneDeployed('Microsoft.Network/networkSecurityGroups', privateNetwork));
    for (const subnet of subnets.values()) assert.equal(obj(subnet['networkSecurityGroup'])['id'], nsg);
    const site = props(single('Microsoft.Web/sites', privateNetwork));
    assert.equal(site['virtualNetworkSubnetId'], `${idOf(vnet)}/subnets/app`);
    // The app stays reachable: Event Grid's webhook and the API callers come over HTTPS.
    assert.equal(site['publicNetworkAccess'], 'Enabled');
  });

  void test('on: a private endpoint and a linked privatelink DNS zone for the vault and for blob, queue and table', () => {
    const vnet = idOf(oneDeployed('Microsoft.Network/virtualNetworks', privateNetwork));
    const storage = idOf(oneDeployed('Microsoft.Storage/storageAccounts', privateNetwork));
    const vault = idOf(oneDeployed('Microsoft.KeyVault/vaults', privateNetwork));
    const expected: Record<string, { target: string; zone: string }> = {
      vault: { target: vault, zone: 'privatelink.vaultcore.azure.net' },
      blob: { target: storage, zone: 'privatelink.blob.core.windows.net' },
      queue: { target: storage, zone: 'privatelink.queue.core.windows.net' },
      table: { target: storage, zone: 'privatelink.table.core.windows.net' },
    };
    const zones = deployedOf('Microsoft.Network/privateDnsZones', privateNetwork);
    assert.deepEqual(
      zones.map((z) => z.value['name']).sort(),
      Object.values(expected)
        .map((e) => e.zone)
        .sort(),
    );
    const links = deployedOf('Microsoft.Network/privateDnsZones/virtualNetworkLinks', privateNetwork);
    assert.deepEqual(
      links.map((l) => asText(l.value['name']).split('/')[0]).sort(),
      Object.values(expected)
        .map((e) => e.zone)
        .sort(),
    );
    for (const link of links) {
      assert.equal(obj(props(link)['virtualNetwork'])['id'], vnet);
      assert.equal(props(link)['registrationEnabled'], false);
    }

    const endpoints = deployedOf('Microsoft.Network/privateEndpoints', privateNetwork);
    const groups = deployedOf('Microsoft.Network/privateEndpoints/privateDnsZoneGroups', privateNetwork);
    assert.equal(endpoints.length, 4);
    const seen: string[] = [];
    for (const endpoint of endpoints) {
      const [connection, ...more] = list(props(endpoint)['privateLinkServiceConnections']);
      assert.deepEqual(more, []);
      const [group, ...moreGroups] = list(obj(obj(connection)['properties'])['groupIds']).map((g) => asText(g));
      assert.deepEqual(moreGroups, []);
      seen.push(group!);
      assert.equal(obj(obj(connection)['properties'])['privateLinkServiceId'], expected[group!]!.target, group);
      assert.equal(obj(props(endpoint)['subnet'])['id'], `${vnet}/subnets/private-endpoints`, group);
      // Its DNS record goes into the zone of its own service.
      const zoneGroup = groups.find((g) => asText(g.value['name']).split('/')[0] === endpoint.value['name']);
      assert.ok(zoneGroup, `no DNS zone group on the ${group} endpoint`);
      const [config, ...moreConfigs] = list(props(zoneGroup)['privateDnsZoneConfigs']);
      assert.deepEqual(moreConfigs, []);
      assert.equal(obj(obj(config)['properties'])['privateDnsZoneId'], `Microsoft.Network/privateDnsZones/${expected[group!]!.zone}`);
    }
    assert.deepEqual(seen.sort(), ['blob', 'queue', 'table', 'vault']);
  });

  void test('on, with operator addresses: the firewalls let exactly those through and deny the rest', () => {
    const withOperators = collectResources(main, {
      ...TOP_LEVEL,
      privateNetworking: true,
      allowedIpAddresses: ' 203.0.113.7, 198.51.100.0/24 ,',
    });
    const [storage, vault] = dataStores(withOperators);
    assert.equal(props(storage!)['publicNetworkAccess'], 'Enabled');
    assert.deepEqual(props(storage!)['networkAcls'], {
      defaultAction: 'Deny',
      bypass: 'AzureServices',
      ipRules: [
        { value: '203.0.113.7', action: 'Allow' },
        { value: '198.51.100.0/24', action: 'Allow' },
      ],
      virtualNetworkRules: [],
    });
    assert.equal(props(vault!)['publicNetworkAccess'], 'Enabled');
    assert.deepEqual(props(vault!)['networkAcls'], {
      defaultAction: 'Deny',
      bypass: 'None',
      ipRules: [{ value: '203.0.113.7' }, { value: '198.51.100.0/24' }],
      virtualNetworkRules: [],
    });
    // Without private networking the list changes nothing.
    const publicWithList = collectResources(main, { ...TOP_LEVEL, allowedIpAddresses: '203.0.113.7' });
    for (const store of dataStores(publicWithList))
      assert.deepEqual(props(store)['networkAcls'], { defaultAction: 'Allow', bypass: 'AzureServices' });
  });

  void test('azd passes PRIVATE_NETWORKING and ALLOWED_IP_ADDRESSES through', () => {
    const parameters = JSON.parse(readFileSync(path.join(infraDir, 'main.parameters.json'), 'utf8')) as {
      parameters: Record<string, { value: string }>;
    };
    assert.equal(parameters.parameters['privateNetworking']?.value, '${PRIVATE_NETWORKING=false}');
    assert.equal(parameters.parameters['allowedIpAddresses']?.value, '${ALLOWED_IP_ADDRESSES=}');
  });
});

void describe('alerts', () => {
  const EMAIL = 'oath-ops@contoso.com';
  const WEBHOOK = 'https://hooks.contoso.com/alerts?token=abc';
  let withEmail: FoundResource[];
  before(() => {
    withEmail = collectResources(main, { ...TOP_LEVEL, alertEmailAddress: EMAIL, importWaitAlertHours: 6, verifyLockoutAlertThreshold: 5 });
  });
  const logRules = (from = resources) => ofType('Microsoft.Insights/scheduledQueryRules', from);
  const metricRules = (from = resources) => ofType('Microsoft.Insights/metricAlerts', from);
  const ruleName = (rule: FoundResource) => asText(rule.value['name']).replace(/-«.*$/, '');
  const queryOf = (rule: FoundResource) => asText(obj(list(obj(props(rule)['criteria'])['allOf'])[0])['query']);
  const criterionOf = (rule: FoundResource) => obj(list(obj(props(rule)['criteria'])['allOf'])[0]);
  const byName = (name: string, from = resources) =>
    [...logRules(from), ...metricRules(from)].find((r) => ruleName(r) === `alert-${name}`)!;

  void test('one rule for each thing an operator must act on, each with a description that says what to do', () => {
    assert.deepEqual(logRules().map(ruleName).sort(), [
      'alert-blob-poisoned',
      'alert-function-failures',
      'alert-import-csv-waiting',
      'alert-seed-file-quarantined',
      'alert-verify-lockout-burst',
    ]);
    assert.deepEqual(metricRules().map(ruleName).sort(), [
      'alert-blob-event-dead-lettered',
      'alert-blob-event-dropped',
      'alert-key-vault-throttled',
    ]);
    for (const rule of [...logRules(), ...metricRules()]) {
      const description = asText(props(rule)['description']);
      assert.ok(description.length >= 150, `${ruleName(rule)}: the description must say what happened and what to do`);
      assert.equal(props(rule)['enabled'], true, ruleName(rule));
      assert.equal(props(rule)['autoMitigate'], true, ruleName(rule));
    }
    // Log rules query the workspace that holds Application Insights' tables and the storage logs.
    const workspace = idOf(single('Microsoft.OperationalInsights/workspaces'));
    for (const rule of logRules()) {
      assert.deepEqual(props(rule)['scopes'], [workspace], ruleName(rule));
      assert.equal(rule.value['kind'], 'LogAlert');
    }
  });

  void test('without an e-mail or webhook there is no action group; with them, every rule notifies it', () => {
    assert.deepEqual(ofType('Microsoft.Insights/actionGroups').filter(deployed), []);
    for (const rule of logRules()) assert.deepEqual(obj(props(rule)['actions'])['actionGroups'], [], ruleName(rule));
    for (const rule of metricRules()) assert.deepEqual(props(rule)['actions'], [], ruleName(rule));

    const group = single('Microsoft.Insights/actionGroups', withEmail);
    assert.ok(deployed(group));
    assert.deepEqual(props(group)['emailReceivers'], [{ name: 'operators', emailAddress: EMAIL, useCommonAlertSchema: true }]);
    assert.deepEqual(props(group)['webhookReceivers'], []);
    for (const rule of logRules(withEmail)) assert.deepEqual(obj(props(rule)['actions'])['actionGroups'], [idOf(group)], ruleName(rule));
    for (const rule of metricRules(withEmail)) assert.deepEqual(props(rule)['actions'], [{ actionGroupId: idOf(group) }], ruleName(rule));

    const withWebhook = collectResources(main, { ...TOP_LEVEL, alertWebhookUrl: WEBHOOK });
    const hooked = single('Microsoft.Insights/actionGroups', withWebhook);
    assert.ok(deployed(hooked));
    assert.deepEqual(props(hooked)['emailReceivers'], []);
    assert.deepEqual(props(hooked)['webhookReceivers'], [{ name: 'webhook', serviceUri: WEBHOOK, useCommonAlertSchema: true }]);
    // The webhook URL can carry a token: a secure parameter, never an output.
    assert.equal(main.parameters?.['alertWebhookUrl']?.type, 'securestring');
  });

  void test("every query on the app's own events names an event of shared/pipeline/events.ts, and every event has a rule", () => {
    const events = new Set<string>(Object.values(PipelineEvent));
    const named = new Set<string>();
    for (const rule of logRules()) {
      const query = queryOf(rule);
      if (!query.startsWith('AppTraces')) continue;
      const match = /^AppTraces \| where Message startswith "(\w+) " \| extend \w+ = .*parse_json\(substring\(Message, (\d+)\)\)/.exec(
        query,
      );
      assert.ok(match, `${ruleName(rule)}: ${query}`);
      assert.ok(events.has(match[1]!), `${ruleName(rule)} queries ${match[1]}, which the app never logs`);
      // The JSON starts right after "<event> ".
      assert.equal(Number(match[2]), match[1]!.length + 1, ruleName(rule));
      named.add(match[1]!);
    }
    assert.deepEqual([...named].sort(), [...events].sort());
  });

  void test('the app logs each event through logEvent somewhere outside events.ts', () => {
    const sources = listSourceFiles(path.join(repoRoot, 'shared')).filter((file) => !file.endsWith('events.ts'));
    const text = sources.map((file) => readFileSync(file, 'utf8')).join('\n');
    for (const name of Object.keys(PipelineEvent)) {
      assert.match(text, new RegExp(`logEvent\\([^;]*PipelineEvent\\.${name}\\b`), `nothing logs PipelineEvent.${name}`);
    }
  });

  void test('thresholds: quarantine and poison at the first event, lockouts and import age from parameters', () => {
    for (const name of ['seed-file-quarantined', 'import-csv-waiting', 'blob-poisoned']) {
      assert.deepEqual([criterionOf(byName(name))['operator'], criterionOf(byName(name))['threshold']], ['GreaterThan', 0], name);
    }
    assert.deepEqual(
      [criterionOf(byName('verify-lockout-burst'))['operator'], criterionOf(byName('verify-lockout-burst'))['threshold']],
      ['GreaterThanOrEqual', 3],
    );
    assert.equal(criterionOf(byName('verify-lockout-burst', withEmail))['threshold'], 5);
    assert.match(queryOf(byName('import-csv-waiting')), /toint\(data\.waitingMinutes\) >= 240 /);
    assert.match(queryOf(byName('import-csv-waiting', withEmail)), /toint\(data\.waitingMinutes\) >= 360 /);
    assert.match(asText(props(byName('import-csv-waiting', withEmail))['description']), /longer than 6 h/);
  });

  void test('a poisoned blob is seen in the storage queue logs, which the template sends to the workspace', () => {
    assert.match(
      queryOf(byName('blob-poisoned')),
      new RegExp(`^StorageQueueLogs \\| where OperationName == "PutMessage" and Uri contains "/${blobPoisonQueue}/"`),
    );
    const queueService = single('Microsoft.Storage/storageAccounts/queueServices');
    const [setting, ...others] = ofType('Microsoft.Insights/diagnosticSettings').filter((d) => d.value['scope'] === idOf(queueService));
    assert.ok(setting);
    assert.deepEqual(others, []);
    assert.equal(props(setting)['workspaceId'], idOf(single('Microsoft.OperationalInsights/workspaces')));
    assert.deepEqual(props(setting)['logs'], [{ category: 'StorageWrite', enabled: true }]);
  });

  void test('function failures leave out 4xx answers (bad requests, locked tokens are answers, not failures)', () => {
    assert.match(queryOf(byName('function-failures')), /^AppRequests \| where Success == false and not\(ResultCode startswith "4"\)/);
  });

  void test('metric rules: Key Vault 429s on the vault, dead-lettered and dropped events on the system topic', () => {
    const vaultRule = byName('key-vault-throttled');
    assert.deepEqual(props(vaultRule)['scopes'], [idOf(single('Microsoft.KeyVault/vaults'))]);
    assert.deepEqual(
      [criterionOf(vaultRule)['metricNamespace'], criterionOf(vaultRule)['metricName'], criterionOf(vaultRule)['dimensions']],
      ['Microsoft.KeyVault/vaults', 'ServiceApiResult', [{ name: 'StatusCode', operator: 'Include', values: ['429'] }]],
    );
    const topic = idOf(single('Microsoft.EventGrid/systemTopics'));
    for (const [name, metric] of [
      ['blob-event-dead-lettered', 'DeadLetteredCount'],
      ['blob-event-dropped', 'DroppedEventCount'],
    ] as const) {
      const rule = byName(name);
      assert.deepEqual(props(rule)['scopes'], [topic], name);
      assert.deepEqual(
        [
          criterionOf(rule)['metricNamespace'],
          criterionOf(rule)['metricName'],
          criterionOf(rule)['operator'],
          criterionOf(rule)['threshold'],
        ],
        ['Microsoft.EventGrid/systemTopics', metric, 'GreaterThan', 0],
        name,
      );
    }
  });

  void test('Application Insights keeps every trace and request (sampling would drop the events the rules count)', () => {
    const host = JSON.parse(readFileSync(path.join(repoRoot, 'host.json'), 'utf8')) as {
      logging: { applicationInsights: { samplingSettings: { isEnabled: boolean; excludedTypes?: string } } };
    };
    const sampling = host.logging.applicationInsights.samplingSettings;
    if (sampling.isEnabled) {
      const excluded = (sampling.excludedTypes ?? '').split(';');
      for (const type of ['Trace', 'Request']) assert.ok(excluded.includes(type), `host.json samples ${type} telemetry`);
    }
  });

  void test('azd passes ALERT_EMAIL and ALERT_WEBHOOK_URL through', () => {
    const parameters = JSON.parse(readFileSync(path.join(infraDir, 'main.parameters.json'), 'utf8')) as {
      parameters: Record<string, { value: string }>;
    };
    assert.equal(parameters.parameters['alertEmailAddress']?.value, '${ALERT_EMAIL=}');
    assert.equal(parameters.parameters['alertWebhookUrl']?.value, '${ALERT_WEBHOOK_URL=}');
  });
});

void describe('console sign-in (App Service Authentication)', () => {
  const CLIENT_ID = '5e4a3b2c-1d0e-4f9a-8b7c-6d5e4f3a2b1c';
  const authSettings = (from: FoundResource[]) =>
    ofType('Microsoft.Web/sites/config', from).filter((r) => lastNameSegment(r) === 'authsettingsV2' && r.deployed);

  void test('off without consoleClientId: no authentication settings, so the app believes no principal header', () => {
    assert.deepEqual(authSettings(resources), []);
  });

  void test('on with consoleClientId: Entra ID sign-in of this tenant, unauthenticated requests let through (function keys, Event Grid), no secret, no token store', () => {
    const withConsole = collectResources(main, { ...TOP_LEVEL, consoleClientId: CLIENT_ID });
    const [auth, ...others] = authSettings(withConsole);
    assert.ok(auth, 'no authsettingsV2');
    assert.deepEqual(others, []);
    const p = props(auth);
    assert.deepEqual(p['platform'], { enabled: true });
    assert.deepEqual(p['globalValidation'], { requireAuthentication: false, unauthenticatedClientAction: 'AllowAnonymous' });
    const entra = obj(obj(p['identityProviders'])['azureActiveDirectory']);
    assert.equal(entra['enabled'], true);
    const registration = obj(entra['registration']);
    assert.equal(registration['clientId'], CLIENT_ID);
    assert.deepEqual(Object.keys(registration).sort(), ['clientId', 'openIdIssuer'], 'no client secret setting');
    assert.match(asText(registration['openIdIssuer']), /tenant\(\)|tenantId/);
    assert.deepEqual(obj(entra['validation'])['allowedAudiences'], [CLIENT_ID]);
    assert.deepEqual(obj(obj(p['login'])['tokenStore']), { enabled: false });
    assert.equal(obj(p['httpSettings'])['requireHttps'], true);
    assert.equal(
      asText(auth.value['name']).split('/')[0],
      asText(single('Microsoft.Web/sites', withConsole).value['name']),
      'on the Function app',
    );
  });

  void test("the console's address is an output", () => {
    assert.ok(Object.keys(main.outputs ?? {}).includes('AZURE_CONSOLE_URL'));
  });
});

void describe('monitoring and events', () => {
  const diagnosticsOn = (target: FoundResource) =>
    ofType('Microsoft.Insights/diagnosticSettings').filter((d) => d.value['scope'] === idOf(target));

  void test('Key Vault audit events go to Log Analytics', () => {
    const [setting, ...others] = diagnosticsOn(single('Microsoft.KeyVault/vaults'));
    assert.ok(setting);
    assert.deepEqual(others, []);
    assert.equal(props(setting)['workspaceId'], idOf(single('Microsoft.OperationalInsights/workspaces')));
    assert.deepEqual(props(setting)['logs'], [{ categoryGroup: 'audit', enabled: true }]);
  });

  void test('function logs go to Log Analytics', () => {
    const [setting] = diagnosticsOn(single('Microsoft.Web/sites'));
    assert.ok(setting);
    assert.equal(props(setting)['workspaceId'], idOf(single('Microsoft.OperationalInsights/workspaces')));
    assert.deepEqual(props(setting)['logs'], [{ category: 'FunctionAppLogs', enabled: true }]);
  });

  void test('an Event Grid system topic on the storage account, with an identity for dead-lettering', () => {
    const topic = single('Microsoft.EventGrid/systemTopics');
    assert.equal(props(topic)['source'], idOf(single('Microsoft.Storage/storageAccounts')));
    assert.equal(props(topic)['topicType'], 'Microsoft.Storage.StorageAccounts');
    assert.deepEqual(topic.value['identity'], { type: 'SystemAssigned' });
  });

  void test('outputs carry what the post-deploy hook and the README need', () => {
    const outputs = Object.keys(main.outputs ?? {});
    const env = Object.fromEntries(outputs.map((name) => [name, 'x']));
    // Throws naming the variable if the hook needs an output the template does not give.
    targetFromEnvironment({ ...env, AZURE_SUBSCRIPTION_ID: 'x' });
    for (const name of ['AZURE_FUNCTION_APP_NAME', 'AZURE_KEY_VAULT_URI', 'AZURE_STORAGE_ACCOUNT_NAME', 'AZURE_RESOURCE_GROUP']) {
      assert.ok(outputs.includes(name), name);
    }
  });
});

void describe('azd project', () => {
  const azureYaml = () => readFileSync(path.join(repoRoot, 'azure.yaml'), 'utf8');

  void test('azure.yaml provisions infra/main.bicep and deploys the Function app', () => {
    const yaml = azureYaml();
    assert.match(yaml, /^infra:\n {2}provider: bicep\n {2}path: infra\n {2}module: main$/m);
    assert.match(yaml, /^ {2}api:\n {4}project: \.\n {4}language: ts\n {4}host: function$/m);
  });

  /** The scripts a hook runs, POSIX then PowerShell. */
  const hookRuns = (hook: string): string[] => {
    const section = /^ {2}(\w+):\n((?: {4}.*\n?)*)/gm;
    for (const m of azureYaml().matchAll(section)) if (m[1] === hook) return [...m[2]!.matchAll(/run: (\S+)/g)].map((r) => r[1]!);
    return [];
  };

  void test('the postdeploy hook (part of azd up) runs the Event Grid subscription step, then the function keys step, on both shells', () => {
    const yaml = azureYaml();
    assert.match(yaml, /^hooks:\n/m);
    const runs = hookRuns('postdeploy');
    assert.deepEqual(runs, ['./infra/hooks/postdeploy.sh', './infra/hooks/postdeploy.ps1']);
    accessSync(path.join(repoRoot, 'infra/hooks/postdeploy.sh'), constants.X_OK);
    for (const run of runs) {
      const steps = [...readFileSync(path.join(repoRoot, run), 'utf8').matchAll(/node --import tsx (scripts\/\S+\.ts)/g)].map((m) => m[1]);
      assert.deepEqual(steps, ['scripts/event-grid-subscriptions.ts', 'scripts/function-keys.ts'], run);
    }
    // The PowerShell hook stops when the first step fails; the POSIX one has `set -e`.
    assert.match(
      readFileSync(path.join(repoRoot, 'infra/hooks/postdeploy.ps1'), 'utf8'),
      /event-grid-subscriptions\.ts\nif \(\$LASTEXITCODE -ne 0\) \{ exit \$LASTEXITCODE \}/,
    );
    assert.match(readFileSync(path.join(repoRoot, 'infra/hooks/postdeploy.sh'), 'utf8'), /^set -eu$/m);
  });

  void test("the console's app registration runs before and after provisioning, on both shells, and feeds consoleClientId", () => {
    for (const hook of ['preprovision', 'postprovision'])
      assert.deepEqual(hookRuns(hook), ['./infra/hooks/console-sign-in.sh', './infra/hooks/console-sign-in.ps1'], hook);
    accessSync(path.join(repoRoot, 'infra/hooks/console-sign-in.sh'), constants.X_OK);
    for (const run of hookRuns('preprovision'))
      assert.match(readFileSync(path.join(repoRoot, run), 'utf8'), /node --import tsx scripts\/console-app-registration\.ts/, run);
    const parameters = JSON.parse(readFileSync(path.join(infraDir, 'main.parameters.json'), 'utf8')) as {
      parameters: Record<string, { value: string }>;
    };
    assert.equal(parameters.parameters['consoleClientId']?.value, '${CONSOLE_CLIENT_ID=}');
  });

  void test("the README's parameters table describes every parameter of main.bicep", () => {
    const readme = readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
    const start = readme.indexOf('Template parameters (defaults in `infra/main.bicep`');
    assert.ok(start > 0, 'no parameters table in the README');
    const table = readme.slice(start).split('\n\n')[1] ?? '';
    const documented = new Set([...table.matchAll(/`(\w+)`/g)].map((m) => m[1]));
    for (const name of Object.keys(main.parameters ?? {})) {
      if (name === 'environmentName' || name === 'location') continue;
      assert.ok(documented.has(name), `${name} is not in the README's parameters table`);
    }
  });

  void test('main.parameters.json only sets parameters main.bicep declares', () => {
    const parameters = JSON.parse(readFileSync(path.join(infraDir, 'main.parameters.json'), 'utf8')) as {
      parameters: Record<string, unknown>;
    };
    for (const name of Object.keys(parameters.parameters)) assert.ok(main.parameters?.[name], name);
  });
});
