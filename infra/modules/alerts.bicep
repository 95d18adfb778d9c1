// Azure Monitor alerts that reach a person: an action group (e-mail, optional webhook) and one rule per thing
// an operator must act on. Each rule's description says what to do; the README's "Alerts" section says the
// same at more length. Log rules query the Log Analytics workspace: the app's own events (AppTraces, written
// by shared/pipeline/events.ts as `<event name> {json}`), its invocations (AppRequests) and the storage
// queue logs. Metric rules watch Key Vault and the Event Grid system topic.
param location string
param tags object
param resourceToken string
param logAnalyticsWorkspaceId string
param keyVaultId string
param systemTopicId string

@description('E-mail address (a team mailbox or distribution list) that receives the alerts. Empty: no e-mail.')
param alertEmailAddress string

@secure()
@description('Optional HTTPS webhook (chat, ticketing) that receives the alerts in the common alert schema. Empty: none.')
param alertWebhookUrl string

@minValue(1)
@description('Hours an import CSV may wait for its upload to be confirmed before the alert fires.')
param importWaitAlertHours int

@minValue(1)
@description('Verify lockouts within 15 minutes that count as a burst.')
param verifyLockoutAlertThreshold int

// Event names: the constants of shared/pipeline/events.ts (test/infra checks that each query names one).
var seedFileQuarantined = 'SeedFileQuarantined'
var verifyLockout = 'VerifyLockout'
var importWaiting = 'ImportWaiting'
// The Functions host moves a blob here after its last failed try (host.json poisonBlobThreshold).
var poisonQueue = 'webjobs-blobtrigger-poison'

var hasReceivers = !empty(alertEmailAddress) || !empty(alertWebhookUrl)
var actionGroupName = 'ag-${resourceToken}'
var actionGroupIds = hasReceivers ? [resourceId('Microsoft.Insights/actionGroups', actionGroupName)] : []

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (hasReceivers) {
  name: actionGroupName
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'oath-alerts'
    enabled: true
    emailReceivers: empty(alertEmailAddress) ? [] : [
      { name: 'operators', emailAddress: alertEmailAddress, useCommonAlertSchema: true }
    ]
    webhookReceivers: empty(alertWebhookUrl) ? [] : [
      { name: 'webhook', serviceUri: alertWebhookUrl, useCommonAlertSchema: true }
    ]
  }
}

var logRules = [
  {
    name: 'seed-file-quarantined'
    severity: 2
    displayName: 'OATH pipeline: a seed file was quarantined'
    description: 'A seed file went to the quarantine container: rows were rejected, the file was rejected whole, or it failed three reconciler runs. Read its report (quarantine/<file>-<etag>/report.json, or reports/), fix the file or get a corrected one from the vendor, and drop it into seeds again. The valid tokens of a partly rejected file are already stored.'
    query: 'AppTraces | where Message startswith "${seedFileQuarantined} " | extend data = parse_json(substring(Message, ${length(seedFileQuarantined) + 1})) | project TimeGenerated, blob = tostring(data.blob), quarantinedAs = tostring(data.quarantinedAs), outcome = tostring(data.outcome)'
    threshold: 0
    operator: 'GreaterThan'
    windowSize: 'PT15M'
  }
  {
    name: 'verify-lockout-burst'
    severity: 1
    displayName: 'OATH pipeline: burst of verify lockouts'
    description: 'Several tokens were locked by wrong verification codes within 15 minutes: someone may be guessing codes with a function key. Look at the serials in the alert, ask the helpdesk whether these were real users, rotate the verify function key (README, "Who holds which key") if not, and unlock genuine users with POST /api/tokens/{serial}/unlock.'
    query: 'AppTraces | where Message startswith "${verifyLockout} " | extend serial = tostring(parse_json(substring(Message, ${length(verifyLockout) + 1})).serial) | project TimeGenerated, serial'
    threshold: verifyLockoutAlertThreshold
    operator: 'GreaterThanOrEqual'
    windowSize: 'PT15M'
  }
  {
    name: 'import-csv-waiting'
    severity: 2
    displayName: 'OATH pipeline: an import CSV is waiting for upload'
    description: 'An import CSV (seeds in clear) has waited in the imports container longer than ${importWaitAlertHours} h. The Global Administrator should upload it to Entra ID and confirm with POST /api/imports/{file}/uploaded, which deletes it; if it is not needed, delete it. The lifecycle rule deletes it anyway after importRetentionDays, and its tokens then have to be re-exported.'
    query: 'AppTraces | where Message startswith "${importWaiting} " | extend data = parse_json(substring(Message, ${length(importWaiting) + 1})) | where toint(data.waitingMinutes) >= ${importWaitAlertHours * 60} | summarize waitingMinutes = max(toint(data.waitingMinutes)) by file = tostring(data.file)'
    threshold: 0
    operator: 'GreaterThan'
    windowSize: 'PT15M'
  }
  {
    name: 'blob-poisoned'
    severity: 1
    displayName: 'OATH pipeline: a blob reached the poison queue'
    description: 'The Functions host gave up on a seed file or assignment list after every try and put it in the ${poisonQueue} queue. The reconciler retries files still in seeds and assignments, then quarantines a seed file that keeps failing. Read the function logs (AppExceptions, AppTraces) for the cause, fix it (vault access, transport key, file), then clear the queue message.'
    query: 'StorageQueueLogs | where OperationName == "PutMessage" and Uri contains "/${poisonQueue}/" | project TimeGenerated, Uri'
    threshold: 0
    operator: 'GreaterThan'
    windowSize: 'PT15M'
  }
  {
    name: 'function-failures'
    severity: 1
    displayName: 'OATH pipeline: function invocations failing'
    description: 'Function invocations failed (exceptions or 5xx answers, not a 4xx answer to a bad request). Look at AppExceptions and AppRequests in Application Insights for the function and the error class; common causes are a missing role, the vault or storage unreachable (private endpoints, DNS), or a bad app setting (GET /api/health).'
    query: 'AppRequests | where Success == false and not(ResultCode startswith "4") | project TimeGenerated, OperationName, ResultCode'
    threshold: 3
    operator: 'GreaterThanOrEqual'
    windowSize: 'PT15M'
  }
]

resource logAlerts 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = [
  for rule in logRules: {
    name: 'alert-${rule.name}-${resourceToken}'
    location: location
    tags: tags
    kind: 'LogAlert'
    properties: {
      displayName: rule.displayName
      description: rule.description
      severity: rule.severity
      enabled: true
      scopes: [logAnalyticsWorkspaceId]
      evaluationFrequency: 'PT5M'
      windowSize: rule.windowSize
      criteria: {
        allOf: [
          {
            query: rule.query
            timeAggregation: 'Count'
            operator: rule.operator
            threshold: rule.threshold
            failingPeriods: { numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1 }
          }
        ]
      }
      // Stateful: one notification when it starts, one when it resolves.
      autoMitigate: true
      // A new workspace has none of these tables until the first row arrives.
      skipQueryValidation: true
      actions: { actionGroups: actionGroupIds }
    }
    dependsOn: [actionGroup]
  }
]

var metricRules = [
  {
    name: 'key-vault-throttled'
    severity: 2
    description: 'Key Vault answered 429 more than 10 times in 15 minutes. The app backs off and finishes, but slower; the usual cause is several instances, or another application, sharing the vault\'s budget. Lower KEY_VAULT_CREATE_BUDGET / KEY_VAULT_READ_BUDGET, or move the other workload to its own vault.'
    scope: keyVaultId
    namespace: 'Microsoft.KeyVault/vaults'
    metric: 'ServiceApiResult'
    dimensions: [{ name: 'StatusCode', operator: 'Include', values: ['429'] }]
    threshold: 10
  }
  {
    name: 'blob-event-dead-lettered'
    severity: 1
    description: 'Event Grid could not deliver a blob-created event to the app for 24 hours and wrote it to the deadletter container. The reconciler picks up files still waiting in seeds and assignments; check that the app is running and that its Event Grid subscriptions are healthy (azd hooks run postdeploy), then delete the dead letters you have dealt with.'
    scope: systemTopicId
    namespace: 'Microsoft.EventGrid/systemTopics'
    metric: 'DeadLetteredCount'
    dimensions: []
    threshold: 0
  }
  {
    name: 'blob-event-dropped'
    severity: 1
    description: 'Event Grid dropped a blob-created event it could neither deliver nor dead-letter (for example, the deadletter container unreachable). The reconciler still finds files left in seeds and assignments; check the system topic\'s subscriptions and that Event Grid may write to the deadletter container.'
    scope: systemTopicId
    namespace: 'Microsoft.EventGrid/systemTopics'
    metric: 'DroppedEventCount'
    dimensions: []
    threshold: 0
  }
]

resource metricAlerts 'Microsoft.Insights/metricAlerts@2018-03-01' = [
  for rule in metricRules: {
    name: 'alert-${rule.name}-${resourceToken}'
    location: 'global'
    tags: tags
    properties: {
      description: rule.description
      severity: rule.severity
      enabled: true
      scopes: [rule.scope]
      evaluationFrequency: 'PT5M'
      windowSize: 'PT15M'
      criteria: {
        'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
        allOf: [
          {
            criterionType: 'StaticThresholdCriterion'
            name: rule.metric
            metricNamespace: rule.namespace
            metricName: rule.metric
            dimensions: rule.dimensions
            operator: 'GreaterThan'
            threshold: rule.threshold
            timeAggregation: 'Total'
          }
        ]
      }
      autoMitigate: true
      actions: map(actionGroupIds, id => { actionGroupId: id })
    }
    dependsOn: [actionGroup]
  }
]
