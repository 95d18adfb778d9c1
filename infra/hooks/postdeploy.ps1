# azd postdeploy hook (part of `azd up`): Event Grid subscriptions for the EventGrid blob triggers, then one
# named function key per group of callers (helpdesk: verify only; admin: the admin functions).
# Runs after the code is deployed because the webhook needs the host's blobs_extension key and per-function
# keys need the functions to exist.
$ErrorActionPreference = 'Stop'
Set-Location (Join-Path $PSScriptRoot '..' '..')
if (-not (Test-Path 'node_modules/tsx') -or -not (Test-Path 'node_modules/@azure/identity')) {
  Write-Error "postdeploy: node_modules is missing; run 'npm ci' in $(Get-Location) and then 'azd hooks run postdeploy'"
  exit 1
}
node --import tsx scripts/event-grid-subscriptions.ts
if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
node --import tsx scripts/function-keys.ts
exit $LASTEXITCODE
