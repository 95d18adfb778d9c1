// Entry point for `azd up`: one resource group holding the whole pipeline.
targetScope = 'subscription'

@minLength(1)
@maxLength(48)
@description('azd environment name; names the resource group and seeds the unique resource names.')
param environmentName string

@minLength(1)
@description('Azure region for every resource. It must offer the Flex Consumption plan.')
@metadata({ azd: { type: 'location' } })
param location string

@description('Optional: object id of an Entra group that may read the import CSVs and the reports (and nothing else). Empty: no such grant.')
param adminGroupObjectId string = ''

@minValue(1)
@description('Days after which the lifecycle rule deletes an import CSV still in `imports` (fallback: the pipeline deletes it once the upload is confirmed).')
param importRetentionDays int = 1

@minValue(1)
@description('Days after which the lifecycle rule deletes a quarantined seed file.')
param quarantineRetentionDays int = 30

@minValue(1)
@description('Days after which the lifecycle rule deletes an ingest or build report in `reports`.')
param reportRetentionDays int = 180

@description('Private networking: a virtual network for the Function app, private endpoints for Key Vault and the storage account\'s blob, queue and table services, and public network access off on both (see the README, "Private networking").')
param privateNetworking bool = false

@description('With private networking: address space of the virtual network (a /24 or larger). Pick one that does not overlap a network you will peer with.')
param virtualNetworkAddressPrefix string = '10.20.0.0/24'

@description('With private networking: comma-separated public IPv4 addresses or CIDR ranges that may still reach the storage account and the vault (operators who drop seed files, store transport keys, download import CSVs). Storage takes single addresses without /32. Empty: only the virtual network.')
param allowedIpAddresses string = ''

@description('E-mail address (a team mailbox or distribution list) that receives the alerts. Empty: the alert rules exist but notify nobody.')
param alertEmailAddress string = ''

@secure()
@description('Optional HTTPS webhook that receives the alerts (common alert schema). It often carries a token, hence secure.')
param alertWebhookUrl string = ''

@minValue(1)
@description('Hours an import CSV may wait for its upload to be confirmed before an alert fires. Keep it below importRetentionDays x 24.')
param importWaitAlertHours int = 4

@minValue(1)
@description('Verify lockouts within 15 minutes that raise the lockout-burst alert.')
param verifyLockoutAlertThreshold int = 3

@description('Optional: name of the Key Vault secret (under the `transport-` prefix) used when a PSKC file names no transport key.')
param defaultTransportKeySecretName string = ''

@minValue(0)
@description('Maximum rows per import CSV; 0 means no split.')
param importMaxRows int = 0

@minValue(40)
@maxValue(1000)
@description('Flex Consumption scale-out limit.')
param maximumInstanceCount int = 40

@allowed([512, 2048, 4096])
@description('Flex Consumption instance memory size.')
param instanceMemoryMB int = 2048

@description('Client id of the console\'s app registration, set by the preprovision hook when CONSOLE_SIGN_IN is true. Empty: no App Service Authentication; the console answers that sign-in is not set up.')
param consoleClientId string = ''

@allowed(['csv', 'graph'])
@description('How builds put tokens into Entra ID (IMPORT_MODE): csv, an import CSV a Global Administrator uploads; graph, created and assigned through Microsoft Graph (grant the identity its Graph permissions once with `npm run grant-graph`).')
param importMode string = 'csv'

@description('Graph mode: Microsoft Graph\'s origin (GRAPH_BASE_URL); national clouds lack the beta hardware OATH API.')
param graphBaseUrl string = 'https://graph.microsoft.com'

@description('Graph mode: also assign tokens to holders of privileged directory roles (GRAPH_ALLOW_PRIVILEGED_USERS).')
param graphAllowPrivilegedUsers bool = false

@description('Graph mode: only members of this group (object id) get tokens (GRAPH_ALLOWED_GROUP_ID). Empty: any member account.')
param graphAllowedGroupId string = ''

@description('Graph mode: allow administrators to activate a token with a code computed from its stored seed (GRAPH_ACTIVATE_FROM_SEED).')
param graphActivateFromSeed bool = false

var tags = { 'azd-env-name': environmentName }
var allowedIpList = filter(map(split(allowedIpAddresses, ','), address => trim(address)), address => !empty(address))

resource resourceGroup 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module pipeline 'resources.bicep' = {
  name: 'pipeline'
  scope: resourceGroup
  params: {
    location: location
    tags: tags
    resourceToken: toLower(uniqueString(subscription().id, environmentName, location))
    adminGroupObjectId: adminGroupObjectId
    importRetentionDays: importRetentionDays
    quarantineRetentionDays: quarantineRetentionDays
    reportRetentionDays: reportRetentionDays
    defaultTransportKeySecretName: defaultTransportKeySecretName
    importMaxRows: importMaxRows
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    privateNetworking: privateNetworking
    virtualNetworkAddressPrefix: virtualNetworkAddressPrefix
    allowedIpAddresses: allowedIpList
    alertEmailAddress: alertEmailAddress
    alertWebhookUrl: alertWebhookUrl
    importWaitAlertHours: importWaitAlertHours
    verifyLockoutAlertThreshold: verifyLockoutAlertThreshold
    consoleClientId: consoleClientId
    importMode: importMode
    graphBaseUrl: graphBaseUrl
    graphAllowPrivilegedUsers: graphAllowPrivilegedUsers
    graphAllowedGroupId: graphAllowedGroupId
    graphActivateFromSeed: graphActivateFromSeed
  }
}

// azd stores these outputs in the environment; the post-deploy hook and the README use them.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = resourceGroup.name
output AZURE_FUNCTION_APP_NAME string = pipeline.outputs.functionAppName
output AZURE_FUNCTION_APP_HOST_NAME string = pipeline.outputs.functionAppHostName
output AZURE_KEY_VAULT_NAME string = pipeline.outputs.keyVaultName
output AZURE_KEY_VAULT_URI string = pipeline.outputs.keyVaultUri
output AZURE_STORAGE_ACCOUNT_NAME string = pipeline.outputs.storageAccountName
output AZURE_EVENT_GRID_SYSTEM_TOPIC_NAME string = pipeline.outputs.eventGridSystemTopicName
output AZURE_MANAGED_IDENTITY_CLIENT_ID string = pipeline.outputs.identityClientId
output AZURE_CONSOLE_URL string = 'https://${pipeline.outputs.functionAppHostName}/api/console'
