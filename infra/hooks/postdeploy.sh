#!/bin/sh
# azd postdeploy hook (part of `azd up`): Event Grid subscriptions for the EventGrid blob triggers, then one
# named function key per group of callers (helpdesk: verify only; admin: the admin functions).
# Runs after the code is deployed because the webhook needs the host's blobs_extension key and per-function
# keys need the functions to exist.
set -eu
cd "$(dirname "$0")/../.."
if [ ! -d node_modules/tsx ] || [ ! -d node_modules/@azure/identity ]; then
  echo "postdeploy: node_modules is missing; run 'npm ci' in $(pwd) and then 'azd hooks run postdeploy'" >&2
  exit 1
fi
node --import tsx scripts/event-grid-subscriptions.ts
exec node --import tsx scripts/function-keys.ts
