// The vault that holds every token seed and the vendors' transport keys.
param location string
param tags object
param keyVaultName string

@description('Principal id of the function app identity; gets the custom pipeline secrets role on this vault only.')
param functionPrincipalId string

param logAnalyticsWorkspaceId string

@minValue(7)
@maxValue(90)
@description('Days a deleted secret stays recoverable (and unpurgeable, with purge protection).')
param softDeleteRetentionDays int = 90

@description('Private networking: the vault refuses its public endpoint (network.bicep gives it a private one).')
param privateNetworking bool

@description('With private networking: public IPv4 addresses or CIDR ranges still let through the vault firewall (operators storing transport keys). Empty: none.')
param allowedIpAddresses array

// Exactly what the app does with secrets, and nothing else: read a seed or transport key, list and read
// metadata, write a new token's seed, change attributes (disable a retired token's seed), recover a
// soft-deleted one. No delete, purge, backup or restore; no keys or certificates.
var pipelineSecretsDataActions = [
  'Microsoft.KeyVault/vaults/secrets/getSecret/action'
  'Microsoft.KeyVault/vaults/secrets/readMetadata/action'
  'Microsoft.KeyVault/vaults/secrets/setSecret/action'
  'Microsoft.KeyVault/vaults/secrets/update/action'
  'Microsoft.KeyVault/vaults/secrets/recover/action'
]

resource keyVault 'Microsoft.KeyVault/vaults@2024-11-01' = {
  name: keyVaultName
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: { family: 'A', name: 'standard' }
    // Azure RBAC only: no access policies that could grant broader rights outside role assignments.
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionDays
    // Nobody, not even an owner, can purge a seed before the retention ends.
    enablePurgeProtection: true
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: privateNetworking && empty(allowedIpAddresses) ? 'Disabled' : 'Enabled'
    networkAcls: privateNetworking
      ? {
          // Only the private endpoint, and the listed operator addresses if any; no trusted-service bypass.
          defaultAction: 'Deny'
          bypass: 'None'
          ipRules: map(allowedIpAddresses, address => { value: address })
          virtualNetworkRules: []
        }
      : {
          // Flex Consumption without a virtual network reaches the vault over the public endpoint; RBAC guards it.
          defaultAction: 'Allow'
          bypass: 'AzureServices'
        }
  }
}

// A custom role rather than Key Vault Secrets Officer, which would also allow delete and purge.
resource pipelineSecretsRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(resourceGroup().id, keyVaultName, 'oath-pipeline-secrets')
  properties: {
    // Role names are unique in the tenant; the vault name is unique in Azure.
    roleName: 'OATH pipeline secrets (${keyVaultName})'
    description: 'What the entra-oath-pipeline Function app does with Key Vault secrets: get, read metadata, set, update attributes (disable), recover. No delete or purge.'
    type: 'CustomRole'
    permissions: [
      {
        actions: []
        notActions: []
        dataActions: pipelineSecretsDataActions
        notDataActions: []
      }
    ]
    assignableScopes: [resourceGroup().id]
  }
}

resource pipelineSecrets 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(keyVault.id, functionPrincipalId, pipelineSecretsRole.name)
  scope: keyVault
  properties: {
    // The same subscription-level id form as a built-in role's.
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', pipelineSecretsRole.name)
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource auditLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'audit-to-log-analytics'
  scope: keyVault
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      // Every secret read and write, with the caller's identity.
      { categoryGroup: 'audit', enabled: true }
    ]
  }
}

output keyVaultName string = keyVault.name
output keyVaultId string = keyVault.id
output keyVaultUri string = keyVault.properties.vaultUri
