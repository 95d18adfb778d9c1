// The Function app on the Flex Consumption plan (Linux, Node 22), identity-based connections only.
param location string
param tags object
param planName string
param functionAppName string

@description('Resource id of the user-assigned identity the app runs as.')
param identityId string

@description('Client id of that identity (for identity-based connections and DefaultAzureCredential).')
param identityClientId string

param storageAccountName string
param deploymentContainerName string
param appInsightsConnectionString string
param keyVaultUri string
param logAnalyticsWorkspaceId string
param maximumInstanceCount int
param instanceMemoryMB int

@description('Optional Key Vault secret name (under the transport- prefix) used when a PSKC file names none.')
param defaultTransportKeySecretName string

@minValue(0)
@description('Maximum rows per import CSV; 0 means no split.')
param importMaxRows int

@description('Private networking: the subnet (delegated to Microsoft.App/environments) the app joins for its outbound traffic. Empty: none.')
param virtualNetworkSubnetId string

@description('Client id of the console\'s app registration (scripts/console-app-registration.ts). Empty: App Service Authentication stays off and the console answers that sign-in is not set up.')
param consoleClientId string

@allowed(['csv', 'graph'])
@description('IMPORT_MODE: csv (import CSV) or graph (Microsoft Graph).')
param importMode string

@description('GRAPH_BASE_URL: Microsoft Graph\'s origin, no path.')
param graphBaseUrl string

@description('GRAPH_ALLOW_PRIVILEGED_USERS.')
param graphAllowPrivilegedUsers bool

@description('GRAPH_ALLOWED_GROUP_ID: a group\'s object id, or empty.')
param graphAllowedGroupId string

@description('GRAPH_ACTIVATE_FROM_SEED.')
param graphActivateFromSeed bool

// Built from the account name and the cloud's storage suffix: no reference to the account (or its keys) needed.
var blobServiceUri = 'https://${storageAccountName}.blob.${environment().suffixes.storage}/'
var queueServiceUri = 'https://${storageAccountName}.queue.${environment().suffixes.storage}/'
var tableServiceUri = 'https://${storageAccountName}.table.${environment().suffixes.storage}/'

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: functionAppName
  location: location
  // azd finds the app to deploy to by this tag (service `api` in azure.yaml).
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identityId}': {} }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    // Public even with private networking: Event Grid delivers blob events to the app's webhook, and callers
    // use its API with function keys. Its outbound traffic (vault, storage) goes through the virtual network.
    publicNetworkAccess: 'Enabled'
    virtualNetworkSubnetId: empty(virtualNetworkSubnetId) ? null : virtualNetworkSubnetId
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      appSettings: [
        // Identity-based connections: service URIs plus the identity, never a key or connection string.
        { name: 'AzureWebJobsStorage__accountName', value: storageAccountName }
        { name: 'AzureWebJobsStorage__blobServiceUri', value: blobServiceUri }
        { name: 'AzureWebJobsStorage__queueServiceUri', value: queueServiceUri }
        { name: 'AzureWebJobsStorage__tableServiceUri', value: tableServiceUri }
        { name: 'AzureWebJobsStorage__credential', value: 'managedidentity' }
        { name: 'AzureWebJobsStorage__clientId', value: identityClientId }
        { name: 'PipelineStorage__blobServiceUri', value: blobServiceUri }
        { name: 'PipelineStorage__queueServiceUri', value: queueServiceUri }
        { name: 'PipelineStorage__tableServiceUri', value: tableServiceUri }
        { name: 'PipelineStorage__credential', value: 'managedidentity' }
        { name: 'PipelineStorage__clientId', value: identityClientId }
        { name: 'AZURE_CLIENT_ID', value: identityClientId }
        { name: 'KEY_VAULT_URL', value: keyVaultUri }
        // Not a secret: with local auth off, the connection string only says where Entra-authenticated telemetry goes.
        { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: appInsightsConnectionString }
        { name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING', value: 'ClientId=${identityClientId};Authorization=AAD' }
        // Flex Consumption supports only Event Grid blob triggers.
        { name: 'SEED_TRIGGER_SOURCE', value: 'EventGrid' }
        { name: 'SEEDS_CONTAINER', value: 'seeds' }
        { name: 'ASSIGNMENTS_CONTAINER', value: 'assignments' }
        { name: 'IMPORTS_CONTAINER', value: 'imports' }
        { name: 'REPORTS_CONTAINER', value: 'reports' }
        { name: 'QUARANTINE_CONTAINER', value: 'quarantine' }
        { name: 'RESULTS_CONTAINER', value: 'results' }
        { name: 'STATE_CONTAINER', value: 'state' }
        { name: 'INGEST_CONTINUE_QUEUE', value: 'ingest-continue' }
        { name: 'TOKENS_TABLE', value: 'tokens' }
        { name: 'ASSIGNMENTS_TABLE', value: 'assignments' }
        { name: 'TRANSPORT_KEY_PREFIX', value: 'transport-' }
        { name: 'DEFAULT_TRANSPORT_KEY_SECRET', value: defaultTransportKeySecretName }
        // Key Vault's service limits per vault per 10 s.
        { name: 'KEY_VAULT_CREATE_BUDGET', value: '300' }
        { name: 'KEY_VAULT_READ_BUDGET', value: '4000' }
        { name: 'VERIFY_LOCKOUT_LIMIT', value: '10' }
        { name: 'VERIFY_LOCKOUT_MINUTES', value: '15' }
        { name: 'IMPORT_MAX_ROWS', value: string(importMaxRows) }
        { name: 'RECONCILE_MIN_AGE_MINUTES', value: '15' }
        { name: 'BUILD_SETTLE_SECONDS', value: '30' }
        { name: 'MAX_SEED_FILE_BYTES', value: '20971520' }
        { name: 'IMPORT_MODE', value: importMode }
        { name: 'GRAPH_BASE_URL', value: graphBaseUrl }
        // Spelt out: string(false) would be 'False'.
        { name: 'GRAPH_ALLOW_PRIVILEGED_USERS', value: graphAllowPrivilegedUsers ? 'true' : 'false' }
        { name: 'GRAPH_ALLOWED_GROUP_ID', value: graphAllowedGroupId }
        { name: 'GRAPH_ACTIVATE_FROM_SEED', value: graphActivateFromSeed ? 'true' : 'false' }
      ]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${blobServiceUri}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'node'
        version: '22'
      }
    }
  }
}

// Deployments go through Entra-authenticated endpoints only; no FTP or basic-auth publishing profile.
resource ftpCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'ftp'
  properties: { allow: false }
}

resource scmCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'scm'
  properties: { allow: false }
}

// App Service Authentication (Easy Auth) for the console: people sign in with Entra ID; the platform passes the
// signed-in user and their app roles to the app (x-ms-client-principal), which enforces the roles itself.
// Unauthenticated requests are let through, not redirected: automation keeps calling the API with function keys,
// Event Grid keeps reaching the blob webhook, and the console's own pages send people to sign in.
resource consoleSignIn 'Microsoft.Web/sites/config@2024-04-01' = if (!empty(consoleClientId)) {
  parent: functionApp
  name: 'authsettingsV2'
  properties: {
    platform: { enabled: true }
    globalValidation: {
      requireAuthentication: false
      unauthenticatedClientAction: 'AllowAnonymous'
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          // Single tenant. No client secret: sign-in takes an ID token, so there is no secret to store or rotate.
          openIdIssuer: '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
          clientId: consoleClientId
        }
        validation: {
          allowedAudiences: [consoleClientId]
        }
      }
    }
    login: {
      // The console needs no token of the user's to call anything: keep none.
      tokenStore: { enabled: false }
      cookieExpiration: { convention: 'FixedTime', timeToExpiration: '08:00:00' }
    }
    httpSettings: {
      requireHttps: true
      forwardProxy: { convention: 'NoProxy' }
    }
  }
}

resource functionLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'function-logs-to-log-analytics'
  scope: functionApp
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      { category: 'FunctionAppLogs', enabled: true }
    ]
  }
}

output functionAppName string = functionApp.name
output defaultHostName string = functionApp.properties.defaultHostName
output consoleSignIn bool = !empty(consoleClientId)
