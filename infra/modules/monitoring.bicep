// Log Analytics (audit and function logs) and Application Insights with local (key) auth off.
param location string
param tags object
param logAnalyticsName string
param appInsightsName string

@description('Principal id of the function app identity; gets Monitoring Metrics Publisher on Application Insights only.')
param functionPrincipalId string

@minValue(30)
param logRetentionDays int = 30

var monitoringMetricsPublisherRoleId = '3913510d-42f4-4e42-8a64-420c390055eb'

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: logAnalyticsName
  location: location
  tags: tags
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: logRetentionDays
    features: {
      // Diagnostic settings and Application Insights write with Entra ID; the shared workspace keys are not needed.
      disableLocalAuth: true
    }
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: appInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logAnalytics.id
    // Telemetry only from Entra-authenticated senders (the function identity), not from anyone holding the ikey.
    DisableLocalAuth: true
  }
}

resource metricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, functionPrincipalId, monitoringMetricsPublisherRoleId)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisherRoleId)
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

output logAnalyticsWorkspaceId string = logAnalytics.id
// Not a secret: with local auth off the connection string only says where to send Entra-authenticated telemetry.
output appInsightsConnectionString string = appInsights.properties.ConnectionString
