# azd postdeploy hook (part of `azd up`): Event Grid subscriptions for the EventGrid blob triggers.
# Runs after the code is deployed because the webhook needs the host's blobs_extension key.
$ErrorActionPreference = 'Stop'
Set-Location (Join-Path $PSScriptRoot '..' '..')
if (-not (Test-Path 'node_modules/tsx') -or -not (Test-Path 'node_modules/@azure/identity')) {
  Write-Error "postdeploy: node_modules is missing; run 'npm ci' in $(Get-Location) and then 'azd hooks run postdeploy'"
  exit 1
}
node --import tsx scripts/event-grid-subscriptions.ts
exit $LASTEXITCODE
