#!/bin/sh
# azd preprovision and postprovision hook: the console's app registration in Entra ID (two app roles, the
# service principal, the groups' role assignments), when CONSOLE_SIGN_IN=true; otherwise it says so and does
# nothing. Before provisioning it sets CONSOLE_CLIENT_ID, which turns on App Service Authentication in Bicep;
# after provisioning it adds the Function app's sign-in callback. Idempotent: safe to run any number of times.
set -eu
cd "$(dirname "$0")/../.."
if [ ! -d node_modules/tsx ] || [ ! -d node_modules/@azure/identity ]; then
  echo "console sign-in: node_modules is missing; run 'npm ci' in $(pwd) first" >&2
  exit 1
fi
exec node --import tsx scripts/console-app-registration.ts
