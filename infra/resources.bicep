// Everything inside the resource group. Each module grants the function identity its roles on its own resources only.
// Container and table names are literals in storage.bicep and in the app settings of functionapp.bicep;
// test/infra checks that they agree.
param location string
param tags object
param resourceToken string
param adminGroupObjectId string
param importRetentionDays int
param quarantineRetentionDays int
param reportRetentionDays int
param defaultTransportKeySecretName string
param importMaxRows int
param maximumInstanceCount int
param instanceMemoryMB int
param privateNetworking bool
param virtualNetworkAddressPrefix string
param allowedIpAddresses array
param alertEmailAddress string
@secure()
param alertWebhookUrl string
param importWaitAlertHours int
param verifyLockoutAlertThreshold int
param consoleClientId string
param importMode string
param graphBaseUrl string
param graphAllowPrivilegedUsers bool
param graphAllowedGroupId string
param graphActivateFromSeed bool

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-${resourceToken}'
  location: location
  tags: tags
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    location: location
    tags: tags
    logAnalyticsName: 'log-${resourceToken}'
    appInsightsName: 'appi-${resourceToken}'
    functionPrincipalId: identity.properties.principalId
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    location: location
    tags: tags
    storageAccountName: 'st${resourceToken}'
    systemTopicName: 'evgt-${resourceToken}'
    importRetentionDays: importRetentionDays
    quarantineRetentionDays: quarantineRetentionDays
    reportRetentionDays: reportRetentionDays
    functionPrincipalId: identity.properties.principalId
    adminGroupObjectId: adminGroupObjectId
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsWorkspaceId
    privateNetworking: privateNetworking
    allowedIpAddresses: allowedIpAddresses
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  params: {
    location: location
    tags: tags
    keyVaultName: 'kv-${resourceToken}'
    functionPrincipalId: identity.properties.principalId
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsWorkspaceId
    privateNetworking: privateNetworking
    allowedIpAddresses: allowedIpAddresses
  }
}

module network 'modules/network.bicep' = if (privateNetworking) {
  name: 'network'
  params: {
    location: location
    tags: tags
    virtualNetworkName: 'vnet-${resourceToken}'
    addressPrefix: virtualNetworkAddressPrefix
    keyVaultName: keyVault.outputs.keyVaultName
    keyVaultId: keyVault.outputs.keyVaultId
    storageAccountName: storage.outputs.storageAccountName
    storageAccountId: storage.outputs.storageAccountId
  }
}

module alerts 'modules/alerts.bicep' = {
  name: 'alerts'
  params: {
    location: location
    tags: tags
    resourceToken: resourceToken
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsWorkspaceId
    keyVaultId: keyVault.outputs.keyVaultId
    systemTopicId: storage.outputs.systemTopicId
    alertEmailAddress: alertEmailAddress
    alertWebhookUrl: alertWebhookUrl
    importWaitAlertHours: importWaitAlertHours
    verifyLockoutAlertThreshold: verifyLockoutAlertThreshold
  }
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  params: {
    location: location
    tags: tags
    planName: 'plan-${resourceToken}'
    functionAppName: 'func-${resourceToken}'
    identityId: identity.id
    identityClientId: identity.properties.clientId
    // Taking these from module outputs also orders the app after its role assignments exist.
    storageAccountName: storage.outputs.storageAccountName
    deploymentContainerName: storage.outputs.deploymentContainerName
    appInsightsConnectionString: monitoring.outputs.appInsightsConnectionString
    keyVaultUri: keyVault.outputs.keyVaultUri
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsWorkspaceId
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    defaultTransportKeySecretName: defaultTransportKeySecretName
    importMaxRows: importMaxRows
    // With private networking the app waits for the network module: endpoints and DNS records exist first.
    virtualNetworkSubnetId: privateNetworking ? network!.outputs.appSubnetId : ''
    consoleClientId: consoleClientId
    importMode: importMode
    graphBaseUrl: graphBaseUrl
    graphAllowPrivilegedUsers: graphAllowPrivilegedUsers
    graphAllowedGroupId: graphAllowedGroupId
    graphActivateFromSeed: graphActivateFromSeed
  }
}

output functionAppName string = functionApp.outputs.functionAppName
output functionAppHostName string = functionApp.outputs.defaultHostName
output keyVaultName string = keyVault.outputs.keyVaultName
output keyVaultUri string = keyVault.outputs.keyVaultUri
output storageAccountName string = storage.outputs.storageAccountName
output eventGridSystemTopicName string = storage.outputs.systemTopicName
output identityClientId string = identity.properties.clientId
