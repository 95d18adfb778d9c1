# azd preprovision and postprovision hook: the console's app registration in Entra ID (two app roles, the
# service principal, the groups' role assignments), when CONSOLE_SIGN_IN=true; otherwise it says so and does
# nothing. Before provisioning it sets CONSOLE_CLIENT_ID, which turns on App Service Authentication in Bicep;
# after provisioning it adds the Function app's sign-in callback. Idempotent: safe to run any number of times.
$ErrorActionPreference = 'Stop'
Set-Location (Join-Path $PSScriptRoot '..' '..')
if (-not (Test-Path 'node_modules/tsx') -or -not (Test-Path 'node_modules/@azure/identity')) {
  Write-Error "console sign-in: node_modules is missing; run 'npm ci' in $(Get-Location) first"
  exit 1
}
node --import tsx scripts/console-app-registration.ts
exit $LASTEXITCODE
