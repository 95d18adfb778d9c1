// The infrastructure is part of the product's security: compile it with the real Bicep CLI (pinned NuGet
// package) and assert the security properties on the compiled ARM JSON.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { asText, collectResources, hasDeploymentTimePart, type ArmTemplate, type FoundResource, type Json } from './arm-template.js';
import { compileInfra, infraDir, listBicepFiles, parseDiagnostics, pinnedBicepVersion, repoRoot, runBicep, bicepVersion, type CompileResult } from './bicep-compiler.js';
import { BLOB_TRIGGER_SUBSCRIPTIONS, targetFromEnvironment } from '../../scripts/event-grid-subscriptions.js';
import { SETTINGS, STORAGE_CONNECTION_NAME } from '../../shared/config.js';

const ROLE = {
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7',
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b',
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88',
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3',
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb',
  storageBlobDataReader: '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1',
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe',
};
const ADMIN_GROUP = '11111111-2222-3333-4444-555555555555';
const TOP_LEVEL = { environmentName: 'ci', location: 'westeurope' };

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
const deployed = (resource: FoundResource) => !('condition' in resource.value) || resource.value['condition'] === true;
const roleGuid = (assignment: FoundResource) => asText(props(assignment)['roleDefinitionId']).split('/').pop();
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
      writeFileSync(path.join(dir, 'unused.bicep'), "param unusedParameter string\n");
      const run = runBicep(['lint', path.join(dir, 'unused.bicep')]);
      const diagnostics = parseDiagnostics(run.stderr + run.stdout);
      assert.deepEqual(diagnostics.map((d) => [d.level, d.code]), [['Warning', 'no-unused-params']]);
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
    assert.deepEqual(containers.map(lastNameSegment).sort(), ['app-package', 'assignments', 'deadletter', 'imports', 'quarantine', 'reports', 'seeds']);
    for (const container of containers) assert.equal(props(container)['publicAccess'], 'None', lastNameSegment(container));
    const tables = ofType('Microsoft.Storage/storageAccounts/tableServices/tables');
    assert.deepEqual(tables.map(lastNameSegment).sort(), ['assignments', 'tokens']);
  });

  void test('lifecycle rules delete import CSVs after 1 day and quarantined files after 30 days (defaults)', () => {
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
    ]);
  });

  void test('the retention days are parameters of main.bicep', () => {
    const custom = collectResources(main, { ...TOP_LEVEL, importRetentionDays: 3, quarantineRetentionDays: 60 });
    const policy = obj(props(single('Microsoft.Storage/storageAccounts/managementPolicies', custom))['policy']);
    const days = list(policy['rules']).map(
      (rule) => obj(obj(obj(obj(obj(rule)['definition'])['actions'])['baseBlob'])['delete'])['daysAfterModificationGreaterThan'],
    );
    assert.deepEqual(days, [3, 60]);
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

  void test('only the expected roles are granted, never at resource group or subscription scope', () => {
    const guids = new Set(ofType('Microsoft.Authorization/roleAssignments', withAdminGroup).map(roleGuid));
    assert.deepEqual([...guids].sort(), Object.values(ROLE).sort());
    for (const assignment of ofType('Microsoft.Authorization/roleAssignments', withAdminGroup)) {
      assert.ok(typeof assignment.value['scope'] === 'string', `${asText(assignment.value['name'])} has no resource scope`);
    }
  });

  void test('the function identity is Key Vault Secrets Officer on the vault only', () => {
    const [assignment, ...others] = assignmentsOf(ROLE.keyVaultSecretsOfficer);
    assert.ok(assignment);
    assert.deepEqual(others, []);
    assert.equal(assignment.value['scope'], idOf(single('Microsoft.KeyVault/vaults')));
    assert.match(asText(props(assignment)['principalId']), functionPrincipal);
    assert.equal(props(assignment)['principalType'], 'ServicePrincipal');
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

  void test('the admin group reads imports and reports only, and only when given', () => {
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
    assert.equal(adminAssignments.length, 2);
  });

  void test('Event Grid may write dead letters into the deadletter container only', () => {
    const found = assignmentsOf(ROLE.storageBlobDataContributor);
    assert.equal(found.length, 1);
    const deadLetter = ofType('Microsoft.Storage/storageAccounts/blobServices/containers').find((c) => lastNameSegment(c) === 'deadletter')!;
    assert.equal(found[0]!.value['scope'], idOf(deadLetter));
    assert.match(asText(props(found[0]!)['principalId']), /Microsoft\.EventGrid\/systemTopics.*identity\.principalId/);
  });
});

void describe('Function app', () => {
  const site = () => single('Microsoft.Web/sites');
  const settings = (): Map<string, Json> => {
    const entries = list(obj(props(site())['siteConfig'])['appSettings']).map((entry) => [asText(obj(entry)['name']), obj(entry)['value'] ?? null] as const);
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
    assert.deepEqual(Object.keys(obj(identity['userAssignedIdentities'])), [idOf(single('Microsoft.ManagedIdentity/userAssignedIdentities'))]);
  });

  void test('HTTPS only, TLS 1.2, FTP off, basic publishing credentials off', () => {
    assert.equal(props(site())['httpsOnly'], true);
    const siteConfig = obj(props(site())['siteConfig']);
    assert.equal(siteConfig['minTlsVersion'], '1.2');
    assert.equal(siteConfig['scmMinTlsVersion'], '1.2');
    assert.equal(siteConfig['ftpsState'], 'Disabled');
    const policies = ofType('Microsoft.Web/sites/basicPublishingCredentialsPolicies');
    assert.deepEqual(policies.map((p) => [lastNameSegment(p), props(p)['allow']]).sort(), [['ftp', false], ['scm', false]]);
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
    assert.deepEqual([...map.keys()].sort(), [
      'APPLICATIONINSIGHTS_AUTHENTICATION_STRING', 'APPLICATIONINSIGHTS_CONNECTION_STRING', 'ASSIGNMENTS_CONTAINER', 'ASSIGNMENTS_TABLE',
      'AZURE_CLIENT_ID', 'AzureWebJobsStorage__accountName', 'AzureWebJobsStorage__blobServiceUri', 'AzureWebJobsStorage__clientId',
      'AzureWebJobsStorage__credential', 'AzureWebJobsStorage__queueServiceUri', 'AzureWebJobsStorage__tableServiceUri',
      'DEFAULT_TRANSPORT_KEY_SECRET', 'IMPORTS_CONTAINER', 'IMPORT_MAX_ROWS', 'KEY_VAULT_CREATE_BUDGET', 'KEY_VAULT_READ_BUDGET', 'KEY_VAULT_URL',
      'MAX_SEED_FILE_BYTES', 'PipelineStorage__blobServiceUri', 'PipelineStorage__clientId', 'PipelineStorage__credential',
      'PipelineStorage__queueServiceUri', 'PipelineStorage__tableServiceUri', 'QUARANTINE_CONTAINER', 'RECONCILE_MIN_AGE_MINUTES',
      'REPORTS_CONTAINER', 'SEEDS_CONTAINER', 'SEED_TRIGGER_SOURCE', 'TOKENS_TABLE', 'TRANSPORT_KEY_PREFIX', 'VERIFY_LOCKOUT_LIMIT',
      'VERIFY_LOCKOUT_MINUTES',
    ].sort());
    assert.deepEqual(Object.fromEntries([...map].filter(([, value]) => !hasDeploymentTimePart(value))), {
      AzureWebJobsStorage__credential: 'managedidentity',
      PipelineStorage__credential: 'managedidentity',
      SEED_TRIGGER_SOURCE: 'EventGrid',
      SEEDS_CONTAINER: 'seeds',
      ASSIGNMENTS_CONTAINER: 'assignments',
      IMPORTS_CONTAINER: 'imports',
      REPORTS_CONTAINER: 'reports',
      QUARANTINE_CONTAINER: 'quarantine',
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
      MAX_SEED_FILE_BYTES: '20971520',
    });
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
    for (const name of ['SEEDS_CONTAINER', 'ASSIGNMENTS_CONTAINER', 'IMPORTS_CONTAINER', 'REPORTS_CONTAINER', 'QUARANTINE_CONTAINER']) {
      assert.ok(containers.has(asText(map.get(name))), name);
    }
    for (const name of ['TOKENS_TABLE', 'ASSIGNMENTS_TABLE']) assert.ok(tables.has(asText(map.get(name))), name);
    for (const route of BLOB_TRIGGER_SUBSCRIPTIONS) assert.ok(containers.has(route.container), route.container);
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

  void test('the postdeploy hook (part of azd up) runs the Event Grid subscription step on both shells', () => {
    const yaml = azureYaml();
    assert.match(yaml, /^hooks:\n {2}postdeploy:\n/m);
    const projectHooks = yaml.slice(yaml.search(/^hooks:$/m));
    const runs = [...projectHooks.matchAll(/run: (\S+)/g)].map((m) => m[1]!);
    assert.deepEqual(runs, ['./infra/hooks/postdeploy.sh', './infra/hooks/postdeploy.ps1']);
    accessSync(path.join(repoRoot, 'infra/hooks/postdeploy.sh'), constants.X_OK);
    for (const run of runs) {
      assert.match(readFileSync(path.join(repoRoot, run), 'utf8'), /node --import tsx scripts\/event-grid-subscriptions\.ts/);
    }
  });

  void test('main.parameters.json only sets parameters main.bicep declares', () => {
    const parameters = JSON.parse(readFileSync(path.join(infraDir, 'main.parameters.json'), 'utf8')) as { parameters: Record<string, unknown> };
    for (const name of Object.keys(parameters.parameters)) assert.ok(main.parameters?.[name], name);
  });
});
