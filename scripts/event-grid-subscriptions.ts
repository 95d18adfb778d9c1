// Post-deploy step of `azd up` (infra/hooks/postdeploy.*): subscribes the EventGrid blob triggers to the
// storage account's system topic. It cannot be in Bicep: the webhook URL needs the app's blobs_extension
// system key, which the Functions host creates only once the code is deployed and the host has started.
// The key goes from ARM straight into the subscription request body; it is never printed or written to disk.
import type { TokenCredential } from '@azure/identity';
import {
  ArmClient,
  HookError,
  WEB_API_VERSION,
  armConnection,
  azdEnvironment,
  functionAppFromEnvironment,
  isRetryable,
  resourceGroupPath,
  runAsHook,
  sitePath as functionAppPath,
  sleep,
  type FunctionAppTarget,
  type Wait,
} from './azure-hook.js';

export const EVENT_GRID_API_VERSION = '2025-02-15';

/** The blob-triggered functions (names as registered by the app) and the container each one watches. */
export const BLOB_TRIGGER_SUBSCRIPTIONS = [
  { subscriptionName: 'ingest-seeds', functionName: 'ingestSeedFile', container: 'seeds' },
  { subscriptionName: 'ingest-assignments', functionName: 'ingestAssignments', container: 'assignments' },
  { subscriptionName: 'ingest-results', functionName: 'ingestResults', container: 'results' },
] as const;

/** Event Grid's maximum: 30 tries over 24 hours, then the event goes to the dead-letter container. */
export const RETRY_POLICY = { maxDeliveryAttempts: 30, eventTimeToLiveInMinutes: 1440 } as const;

export interface EventGridHookTarget extends FunctionAppTarget {
  systemTopicName: string;
  storageAccountName: string;
  deadLetterContainer: string;
}

export interface EventGridHookOptions extends EventGridHookTarget {
  /** Resource Manager endpoint, e.g. https://management.azure.com */
  armEndpoint: string;
  credential: TokenCredential;
  /** How long to wait for the host to create the blobs_extension key. */
  keyWait?: Wait;
  /** How long to wait for each subscription to finish provisioning (includes Event Grid's webhook handshake). */
  provisioningWait?: Wait;
  log?: (line: string) => void;
}

export interface EventSubscriptionBody {
  properties: {
    destination: {
      endpointType: 'WebHook';
      properties: { endpointUrl: string; maxEventsPerBatch: number; preferredBatchSizeInKilobytes: number };
    };
    filter: { includedEventTypes: string[]; subjectBeginsWith: string };
    eventDeliverySchema: 'EventGridSchema';
    retryPolicy: typeof RETRY_POLICY;
    deadLetterWithResourceIdentity: {
      identity: { type: 'SystemAssigned' };
      deadLetterDestination: {
        endpointType: 'StorageBlob';
        properties: { resourceId: string; blobContainerName: string };
      };
    };
  };
}

export class EventGridHookError extends HookError {
  override name = 'EventGridHookError';
}

/** The blob extension's webhook for one function (Flex Consumption: EventGrid blob triggers only). */
export function blobWebhookUrl(hostName: string, functionName: string, blobsExtensionKey: string): string {
  const url = new URL('/runtime/webhooks/blobs', `https://${hostName}`);
  url.searchParams.set('functionName', `Host.Functions.${functionName}`);
  url.searchParams.set('code', blobsExtensionKey);
  return url.href;
}

export function storageAccountResourceId(target: EventGridHookTarget): string {
  return `${resourceGroupPath(target)}/providers/Microsoft.Storage/storageAccounts/${target.storageAccountName}`;
}

export function eventSubscriptionBody(args: {
  webhookUrl: string;
  container: string;
  storageAccountId: string;
  deadLetterContainer: string;
}): EventSubscriptionBody {
  return {
    properties: {
      destination: {
        endpointType: 'WebHook',
        properties: { endpointUrl: args.webhookUrl, maxEventsPerBatch: 1, preferredBatchSizeInKilobytes: 64 },
      },
      filter: {
        includedEventTypes: ['Microsoft.Storage.BlobCreated'],
        subjectBeginsWith: `/blobServices/default/containers/${args.container}/`,
      },
      eventDeliverySchema: 'EventGridSchema',
      retryPolicy: RETRY_POLICY,
      // The topic's own identity writes dead letters: shared-key access is off on the account.
      deadLetterWithResourceIdentity: {
        identity: { type: 'SystemAssigned' },
        deadLetterDestination: {
          endpointType: 'StorageBlob',
          properties: { resourceId: args.storageAccountId, blobContainerName: args.deadLetterContainer },
        },
      },
    },
  };
}

async function waitForBlobsExtensionKey(arm: ArmClient, sitePath: string, wait: Wait, log: (line: string) => void): Promise<string> {
  let last = 'no answer yet';
  for (let attempt = 1; attempt <= wait.attempts; attempt++) {
    const response = await arm.request('POST', `${sitePath}/host/default/listkeys?api-version=${WEB_API_VERSION}`);
    if (response.status === 200) {
      const key = (response.body as { systemKeys?: Record<string, unknown> } | undefined)?.systemKeys?.['blobs_extension'];
      if (typeof key === 'string' && key.length > 0) {
        arm.redact(key);
        return key;
      }
      last = 'the host has no blobs_extension key yet';
    } else if (!isRetryable(response.status)) {
      throw new EventGridHookError(`listing the function host keys failed: ${arm.describeError(response)}`);
    } else {
      last = arm.describeError(response);
    }
    if (attempt < wait.attempts) {
      log(`waiting for the function host's blobs_extension key (${attempt}/${wait.attempts}): ${last}`);
      await sleep(wait.delayMs);
    }
  }
  throw new EventGridHookError(
    `the function app has no blobs_extension system key after ${wait.attempts} tries (${last}); ` +
      'is the code deployed with EventGrid blob triggers (SEED_TRIGGER_SOURCE=EventGrid)? Re-run `azd deploy` or `azd hooks run postdeploy`.',
  );
}

async function waitForProvisioning(arm: ArmClient, path: string, name: string, wait: Wait): Promise<void> {
  let state = 'unknown';
  for (let attempt = 1; attempt <= wait.attempts; attempt++) {
    const response = await arm.request('GET', path);
    if (response.status === 200) {
      state = String((response.body as { properties?: { provisioningState?: unknown } } | undefined)?.properties?.provisioningState);
      if (state === 'Succeeded') return;
      if (state === 'Failed' || state === 'Canceled') {
        throw new EventGridHookError(
          `event subscription ${name} ended ${state}; Event Grid could not validate the function's webhook (is the function deployed?)`,
        );
      }
    } else if (!isRetryable(response.status)) {
      throw new EventGridHookError(`reading event subscription ${name} failed: ${arm.describeError(response)}`);
    }
    if (attempt < wait.attempts) await sleep(wait.delayMs);
  }
  throw new EventGridHookError(`event subscription ${name} still ${state} after ${wait.attempts} checks`);
}

/**
 * Creates or updates one BlobCreated subscription per blob-triggered function, each with the retry policy
 * and dead-lettering into the dead-letter container. Safe to run again (PUT is idempotent); returns the
 * subscription names.
 */
export async function ensureBlobEventSubscriptions(options: EventGridHookOptions): Promise<string[]> {
  const log = options.log ?? ((line: string) => console.log(line));
  const arm = new ArmClient(options.armEndpoint, options.credential);
  const sitePath = functionAppPath(options);
  const topicPath = `${resourceGroupPath(options)}/providers/Microsoft.EventGrid/systemTopics/${options.systemTopicName}`;

  const site = await arm.request('GET', `${sitePath}?api-version=${WEB_API_VERSION}`);
  if (site.status !== 200)
    throw new EventGridHookError(`reading function app ${options.functionAppName} failed: ${arm.describeError(site)}`);
  const hostName = (site.body as { properties?: { defaultHostName?: unknown } } | undefined)?.properties?.defaultHostName;
  if (typeof hostName !== 'string' || hostName.length === 0) {
    throw new EventGridHookError(`function app ${options.functionAppName} has no default host name`);
  }

  const key = await waitForBlobsExtensionKey(arm, sitePath, options.keyWait ?? { attempts: 40, delayMs: 15_000 }, log);
  const created: string[] = [];
  for (const route of BLOB_TRIGGER_SUBSCRIPTIONS) {
    const path = `${topicPath}/eventSubscriptions/${route.subscriptionName}?api-version=${EVENT_GRID_API_VERSION}`;
    const body = eventSubscriptionBody({
      webhookUrl: blobWebhookUrl(hostName, route.functionName, key),
      container: route.container,
      storageAccountId: storageAccountResourceId(options),
      deadLetterContainer: options.deadLetterContainer,
    });
    log(`event subscription ${route.subscriptionName}: BlobCreated in ${route.container} -> ${route.functionName}`);
    const response = await arm.request('PUT', path, body);
    if (response.status !== 200 && response.status !== 201) {
      throw new EventGridHookError(`creating event subscription ${route.subscriptionName} failed: ${arm.describeError(response)}`);
    }
    await waitForProvisioning(arm, path, route.subscriptionName, options.provisioningWait ?? { attempts: 60, delayMs: 5_000 });
    created.push(route.subscriptionName);
  }
  log(`event subscriptions ready: ${created.join(', ')} (dead letters go to ${options.deadLetterContainer})`);
  return created;
}

/** Reads the target from the azd environment (outputs of infra/main.bicep); names the first missing variable. */
export function targetFromEnvironment(env: NodeJS.ProcessEnv): EventGridHookTarget {
  const read = azdEnvironment(env, (message) => new EventGridHookError(message));
  return {
    ...functionAppFromEnvironment(read),
    systemTopicName: read('AZURE_EVENT_GRID_SYSTEM_TOPIC_NAME'),
    storageAccountName: read('AZURE_STORAGE_ACCOUNT_NAME'),
    deadLetterContainer: env['DEAD_LETTER_CONTAINER'] || 'deadletter',
  };
}

runAsHook(import.meta.url, 'post-deploy', async () => {
  await ensureBlobEventSubscriptions({
    ...targetFromEnvironment(process.env),
    ...armConnection(process.env),
  });
});
