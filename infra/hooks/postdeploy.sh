#!/bin/sh
# azd postdeploy hook (part of `azd up`): Event Grid subscriptions for the EventGrid blob triggers.
# Runs after the code is deployed because the webhook needs the host's blobs_extension key.
set -eu
cd "$(dirname "$0")/../.."
if [ ! -d node_modules/tsx ] || [ ! -d node_modules/@azure/identity ]; then
  echo "postdeploy: node_modules is missing; run 'npm ci' in $(pwd) and then 'azd hooks run postdeploy'" >&2
  exit 1
fi
exec node --import tsx scripts/event-grid-subscriptions.ts
