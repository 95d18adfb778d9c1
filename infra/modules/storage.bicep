// The pipeline's storage: host storage, seed drop zone, import CSVs, reports, inventory tables, Event Grid source.
// Container and table names must match the app settings in functionapp.bicep (test/infra checks it).
param location string
param tags object
param storageAccountName string
param systemTopicName string

@minValue(1)
param importRetentionDays int

@minValue(1)
param quarantineRetentionDays int

@minValue(1)
param reportRetentionDays int

@description('Principal id of the function app identity; gets blob, queue and table data roles on this account only.')
param functionPrincipalId string

@description('Optional admin group object id; gets Storage Blob Data Reader on the imports and reports containers only.')
param adminGroupObjectId string

param logAnalyticsWorkspaceId string

@description('Private networking: the account refuses its public endpoint (network.bicep gives its blob, queue and table services private ones).')
param privateNetworking bool

@description('With private networking: public IPv4 addresses or CIDR ranges still let through the firewall (operators dropping seed files, downloading import CSVs). Empty: none.')
param allowedIpAddresses array

@allowed(['Standard_LRS', 'Standard_ZRS'])
param skuName string = 'Standard_LRS'

var roleIds = {
  blobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  queueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  tableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  blobDataReader: '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1'
  blobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
}

resource storage 'Microsoft.Storage/storageAccounts@2024-01-01' = {
  name: storageAccountName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: { name: skuName }
  properties: {
    accessTier: 'Hot'
    // Entra ID only: no account key or SAS can open the seed files.
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: privateNetworking && empty(allowedIpAddresses) ? 'Disabled' : 'Enabled'
    networkAcls: privateNetworking
      ? {
          // Only the private endpoints and the listed operator addresses. The bypass keeps the trusted-service
          // exception that Event Grid uses, with its own identity, to write dead letters.
          defaultAction: 'Deny'
          bypass: 'AzureServices'
          ipRules: map(allowedIpAddresses, address => { value: address, action: 'Allow' })
          virtualNetworkRules: []
        }
      : {
          // Flex Consumption without a virtual network and Event Grid reach the account over its public endpoint.
          defaultAction: 'Allow'
          bypass: 'AzureServices'
        }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2024-01-01' = {
  parent: storage
  name: 'default'
  properties: {
    // A deleted seed or import file must really be gone: no versions, no soft-deleted copies.
    isVersioningEnabled: false
    deleteRetentionPolicy: { enabled: false }
    containerDeleteRetentionPolicy: { enabled: false }
    changeFeed: { enabled: false }
    restorePolicy: { enabled: false }
  }
}

resource seedsContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2024-01-01' = {
  parent: blobService
  name: 'seeds'
  properties: { publicAccess: 'None' }
}

resource assignmentsContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2024-01-01' = {
  parent: blobService
  name: 'assignments'
  properties: { publicAccess: 'None' }
}

resource importsContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2024-01-01' = {
  parent: blobService
  name: 'imports'
  properties: { publicAccess: 'None' }
}

resource reportsContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2024-01-01' = {
  parent: blobService
  name: 'reports'
  properties: { publicAccess: 'None' }
}

resource quarantineContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2024-01-01' = {
  parent: blobService
  name: 'quarantine'
  properties: { publicAccess: 'None' }
}

// Entra's failure files (Failures_<file>.csv), dropped by the admin: their tokens become importFailed.
resource resultsContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2024-01-01' = {
  parent: blobService
  name: 'results'
  properties: { publicAccess: 'None' }
}

// Records every instance shares (the vault's budget ledger, ingest checkpoints): counts and outcomes, no secret.
resource stateContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2024-01-01' = {
  parent: blobService
  name: 'state'
  properties: { publicAccess: 'None' }
}

resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2024-01-01' = {
  parent: blobService
  name: 'deadletter'
  properties: { publicAccess: 'None' }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2024-01-01' = {
  parent: blobService
  name: 'app-package'
  properties: { publicAccess: 'None' }
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2024-01-01' = {
  parent: storage
  name: 'default'
}

resource tokensTable 'Microsoft.Storage/storageAccounts/tableServices/tables@2024-01-01' = {
  parent: tableService
  name: 'tokens'
}

resource assignmentsTable 'Microsoft.Storage/storageAccounts/tableServices/tables@2024-01-01' = {
  parent: tableService
  name: 'assignments'
}

resource lifecycle 'Microsoft.Storage/storageAccounts/managementPolicies@2024-01-01' = {
  parent: storage
  name: 'default'
  properties: {
    policy: {
      rules: [
        {
          // Fallback only: the pipeline deletes an import CSV as soon as its upload is confirmed.
          name: 'delete-import-csv'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: ['blockBlob']
              prefixMatch: ['imports/']
            }
            actions: {
              baseBlob: { delete: { daysAfterModificationGreaterThan: importRetentionDays } }
            }
          }
        }
        {
          name: 'delete-quarantined-files'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: ['blockBlob']
              prefixMatch: ['quarantine/']
            }
            actions: {
              baseBlob: { delete: { daysAfterModificationGreaterThan: quarantineRetentionDays } }
            }
          }
        }
        {
          // Reports name serials, users and file names: kept for audit, not for ever.
          name: 'delete-reports'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: ['blockBlob']
              prefixMatch: ['reports/']
            }
            actions: {
              baseBlob: { delete: { daysAfterModificationGreaterThan: reportRetentionDays } }
            }
          }
        }
      ]
    }
  }
}

// The function identity runs the host (leases, queues, deployment package) and the pipeline on this account only.
resource functionBlobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, functionPrincipalId, roleIds.blobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.blobDataOwner)
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource functionQueueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, functionPrincipalId, roleIds.queueDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.queueDataContributor)
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource functionTableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, functionPrincipalId, roleIds.tableDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.tableDataContributor)
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// The admin group reads what it must upload to Entra (imports) and the build reports; no seeds, no vault.
resource adminImportsReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(adminGroupObjectId)) {
  name: guid(importsContainer.id, adminGroupObjectId, roleIds.blobDataReader)
  scope: importsContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.blobDataReader)
    principalId: adminGroupObjectId
    principalType: 'Group'
  }
}

resource adminReportsReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(adminGroupObjectId)) {
  name: guid(reportsContainer.id, adminGroupObjectId, roleIds.blobDataReader)
  scope: reportsContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.blobDataReader)
    principalId: adminGroupObjectId
    principalType: 'Group'
  }
}

// The admin group drops Entra's failure files into results (they hold serials, UPNs and reasons, no secret).
resource adminResultsWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(adminGroupObjectId)) {
  name: guid(resultsContainer.id, adminGroupObjectId, roleIds.blobDataContributor)
  scope: resultsContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.blobDataContributor)
    principalId: adminGroupObjectId
    principalType: 'Group'
  }
}

// Blob-created events for the EventGrid blob triggers; the subscriptions themselves need the app's
// blobs_extension key, which exists only after the code is deployed (infra/hooks/postdeploy).
resource systemTopic 'Microsoft.EventGrid/systemTopics@2025-02-15' = {
  name: systemTopicName
  location: location
  tags: tags
  identity: { type: 'SystemAssigned' }
  properties: {
    source: storage.id
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

// Event Grid writes undeliverable events with its own identity (shared keys are off), into `deadletter` only.
resource systemTopicDeadLetterWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(deadLetterContainer.id, systemTopicName, roleIds.blobDataContributor)
  scope: deadLetterContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.blobDataContributor)
    principalId: systemTopic.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource blobAuditLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'blob-audit-to-log-analytics'
  scope: blobService
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      // Who read, wrote or deleted seed files and import CSVs.
      { category: 'StorageRead', enabled: true }
      { category: 'StorageWrite', enabled: true }
      { category: 'StorageDelete', enabled: true }
    ]
  }
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2024-01-01' = {
  parent: storage
  name: 'default'
}

// A seed file too large for one invocation is handed on through this queue (functions/continueIngest.ts).
resource ingestContinueQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2024-01-01' = {
  parent: queueService
  name: 'ingest-continue'
}

// Queue writes: the host's poison-blob queue gets a message only after a blob failed every try (the
// poison alert in alerts.bicep looks for it here).
resource queueWriteLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'queue-writes-to-log-analytics'
  scope: queueService
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      { category: 'StorageWrite', enabled: true }
    ]
  }
}

output storageAccountName string = storage.name
output storageAccountId string = storage.id
output deploymentContainerName string = deploymentContainer.name
output systemTopicName string = systemTopic.name
output systemTopicId string = systemTopic.id
