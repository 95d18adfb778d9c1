// The postdeploy step against a local stand-in for Azure Resource Manager (plain HTTP on a free port):
// what it sends, how it waits for the host key and for provisioning, and that the key never leaks.
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AccessToken, TokenCredential } from '@azure/identity';
import {
  BLOB_TRIGGER_SUBSCRIPTIONS,
  EVENT_GRID_API_VERSION,
  EventGridHookError,
  ensureBlobEventSubscriptions,
  targetFromEnvironment,
  type EventGridHookOptions,
} from '../../scripts/event-grid-subscriptions.js';

const KEY = 'blobsExtensionKey-0123456789abcdef==';
const HOST = 'func-abc123-xyz.westeurope-01.azurewebsites.net';
const RG_PATH = '/subscriptions/sub-1/resourceGroups/rg-ci';
const SITE = `${RG_PATH}/providers/Microsoft.Web/sites/func-abc123`;
const TOPIC = `${RG_PATH}/providers/Microsoft.EventGrid/systemTopics/evgt-abc123`;

interface Recorded {
  method: string;
  path: string;
  authorization: string | undefined;
  body: unknown;
}

/** Behaviour knobs of the ARM stand-in, reset before each test. */
const arm = {
  keyAfterCalls: 0,
  listKeysCalls: 0,
  listKeysStatus: 200,
  provisioning: ['Creating', 'Succeeded'] as string[],
  putEchoesEndpoint: false,
  subscriptions: new Map<string, { body: unknown; reads: number }>(),
  requests: [] as Recorded[],
};

function send(response: ServerResponse, status: number, body: unknown) {
  response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

async function handle(request: IncomingMessage, response: ServerResponse) {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  const url = new URL(request.url ?? '/', 'http://localhost');
  arm.requests.push({
    method: request.method ?? '',
    path: url.pathname,
    authorization: request.headers.authorization,
    body: text ? JSON.parse(text) : undefined,
  });
  if (request.headers.authorization !== 'Bearer test-token')
    return send(response, 401, { error: { code: 'AuthenticationFailed', message: 'no token' } });

  if (request.method === 'GET' && url.pathname === SITE) {
    return send(response, 200, { name: 'func-abc123', properties: { defaultHostName: HOST } });
  }
  if (request.method === 'POST' && url.pathname === `${SITE}/host/default/listkeys`) {
    arm.listKeysCalls++;
    if (arm.listKeysStatus !== 200) return send(response, arm.listKeysStatus, { error: { code: 'Forbidden', message: 'not allowed' } });
    if (arm.listKeysCalls <= arm.keyAfterCalls) {
      // The host is still starting: first an error, then keys without the extension's key.
      return arm.listKeysCalls === 1
        ? send(response, 400, { error: { code: 'BadRequest', message: 'Encountered an error (ServiceUnavailable) from host runtime.' } })
        : send(response, 200, { masterKey: 'm', functionKeys: { default: 'f' }, systemKeys: {} });
    }
    return send(response, 200, { masterKey: 'm', functionKeys: { default: 'f' }, systemKeys: { blobs_extension: KEY } });
  }
  const subscription = url.pathname.startsWith(`${TOPIC}/eventSubscriptions/`) ? url.pathname.slice(TOPIC.length + 20) : undefined;
  if (subscription && url.searchParams.get('api-version') === EVENT_GRID_API_VERSION) {
    if (request.method === 'PUT') {
      if (arm.putEchoesEndpoint) {
        const endpointUrl = (JSON.parse(text) as { properties: { destination: { properties: { endpointUrl: string } } } }).properties
          .destination.properties.endpointUrl;
        return send(response, 400, {
          error: { code: 'InvalidRequest', message: `Webhook validation handshake failed for ${endpointUrl}` },
        });
      }
      arm.subscriptions.set(subscription, { body: JSON.parse(text) as unknown, reads: 0 });
      return send(response, 201, { name: subscription, properties: { provisioningState: 'Creating' } });
    }
    const stored = arm.subscriptions.get(subscription);
    if (request.method === 'GET' && stored) {
      const state = arm.provisioning[Math.min(stored.reads++, arm.provisioning.length - 1)];
      return send(response, 200, { name: subscription, properties: { provisioningState: state } });
    }
  }
  send(response, 404, { error: { code: 'NotFound', message: `${request.method} ${url.pathname}` } });
}

const credential: TokenCredential = {
  getToken: (): Promise<AccessToken> => Promise.resolve({ token: 'test-token', expiresOnTimestamp: Date.now() + 3_600_000 }),
};

let server: Server;
let endpoint: string;

before(async () => {
  server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => send(response, 500, { error: { code: 'Test', message: String(error) } }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
});

beforeEach(() => {
  arm.keyAfterCalls = 0;
  arm.listKeysCalls = 0;
  arm.listKeysStatus = 200;
  arm.provisioning = ['Creating', 'Succeeded'];
  arm.putEchoesEndpoint = false;
  arm.subscriptions.clear();
  arm.requests = [];
});

function options(log: string[]): EventGridHookOptions {
  return {
    subscriptionId: 'sub-1',
    resourceGroup: 'rg-ci',
    functionAppName: 'func-abc123',
    systemTopicName: 'evgt-abc123',
    storageAccountName: 'stabc123',
    deadLetterContainer: 'deadletter',
    armEndpoint: endpoint,
    credential,
    keyWait: { attempts: 5, delayMs: 5 },
    provisioningWait: { attempts: 5, delayMs: 5 },
    log: (line) => log.push(line),
  };
}

void describe('Event Grid subscriptions (postdeploy hook)', () => {
  void test('subscribes each blob-triggered function to BlobCreated in its container, with retries and dead-lettering', async () => {
    const log: string[] = [];
    const created = await ensureBlobEventSubscriptions(options(log));
    assert.deepEqual(created, ['ingest-seeds', 'ingest-assignments', 'ingest-results']);
    assert.deepEqual(
      BLOB_TRIGGER_SUBSCRIPTIONS.map((route) => [route.functionName, route.container]),
      [
        ['ingestSeedFile', 'seeds'],
        ['ingestAssignments', 'assignments'],
        ['ingestResults', 'results'],
      ],
    );
    for (const route of BLOB_TRIGGER_SUBSCRIPTIONS) {
      const stored = arm.subscriptions.get(route.subscriptionName);
      assert.ok(stored, route.subscriptionName);
      const endpointUrl = new URL(
        (stored.body as { properties: { destination: { properties: { endpointUrl: string } } } }).properties.destination.properties
          .endpointUrl,
      );
      assert.equal(`${endpointUrl.origin}${endpointUrl.pathname}`, `https://${HOST}/runtime/webhooks/blobs`);
      assert.equal(endpointUrl.searchParams.get('functionName'), `Host.Functions.${route.functionName}`);
      assert.equal(endpointUrl.searchParams.get('code'), KEY);
      assert.deepEqual(stored.body, {
        properties: {
          destination: {
            endpointType: 'WebHook',
            properties: { endpointUrl: endpointUrl.href, maxEventsPerBatch: 1, preferredBatchSizeInKilobytes: 64 },
          },
          filter: {
            includedEventTypes: ['Microsoft.Storage.BlobCreated'],
            subjectBeginsWith: `/blobServices/default/containers/${route.container}/`,
          },
          eventDeliverySchema: 'EventGridSchema',
          retryPolicy: { maxDeliveryAttempts: 30, eventTimeToLiveInMinutes: 1440 },
          deadLetterWithResourceIdentity: {
            identity: { type: 'SystemAssigned' },
            deadLetterDestination: {
              endpointType: 'StorageBlob',
              properties: {
                resourceId: `${RG_PATH}/providers/Microsoft.Storage/storageAccounts/stabc123`,
                blobContainerName: 'deadletter',
              },
            },
          },
        },
      });
      // Waited until provisioning (and Event Grid's webhook handshake) finished.
      assert.equal(stored.reads, 2);
    }
    assert.ok(arm.requests.every((request) => request.authorization === 'Bearer test-token'));
    assert.ok(!log.join('\n').includes(KEY), 'the key must not be logged');
  });

  void test('waits while the host is starting and has no blobs_extension key yet', async () => {
    arm.keyAfterCalls = 3;
    const log: string[] = [];
    await ensureBlobEventSubscriptions(options(log));
    assert.equal(arm.listKeysCalls, 4);
    assert.equal(arm.subscriptions.size, BLOB_TRIGGER_SUBSCRIPTIONS.length);
    assert.equal(log.filter((line) => line.startsWith('waiting for')).length, 3);
  });

  void test('fails with a clear message when the key never appears, creating nothing', async () => {
    arm.keyAfterCalls = 100;
    await assert.rejects(ensureBlobEventSubscriptions(options([])), (error: Error) => {
      assert.ok(error instanceof EventGridHookError);
      assert.match(error.message, /no blobs_extension system key after 5 tries/);
      return true;
    });
    assert.equal(arm.subscriptions.size, 0);
  });

  void test('does not retry an authorization failure', async () => {
    arm.listKeysStatus = 403;
    await assert.rejects(
      ensureBlobEventSubscriptions(options([])),
      /listing the function host keys failed: HTTP 403 \(Forbidden: not allowed\)/,
    );
    assert.equal(arm.listKeysCalls, 1);
  });

  void test('a subscription whose provisioning fails is an error that does not contain the key', async () => {
    arm.provisioning = ['Creating', 'Failed'];
    const log: string[] = [];
    await assert.rejects(ensureBlobEventSubscriptions(options(log)), (error: Error) => {
      assert.match(error.message, /event subscription ingest-seeds ended Failed/);
      assert.ok(!error.message.includes(KEY) && !error.message.includes(encodeURIComponent(KEY)));
      return true;
    });
    assert.ok(!log.join('\n').includes(KEY));
  });

  void test('an ARM error that echoes the webhook URL reaches the caller with the key masked', async () => {
    arm.putEchoesEndpoint = true;
    await assert.rejects(ensureBlobEventSubscriptions(options([])), (error: Error) => {
      assert.match(
        error.message,
        /creating event subscription ingest-seeds failed: HTTP 400 \(InvalidRequest: Webhook validation handshake failed for https:\/\/.*code=\*\*\*/,
      );
      assert.ok(!error.message.includes(KEY) && !error.message.includes(encodeURIComponent(KEY)));
      return true;
    });
  });

  void test('reads its target from the azd environment and names a missing variable', () => {
    const env = {
      AZURE_SUBSCRIPTION_ID: 'sub-1',
      AZURE_RESOURCE_GROUP: 'rg-ci',
      AZURE_FUNCTION_APP_NAME: 'func-abc123',
      AZURE_EVENT_GRID_SYSTEM_TOPIC_NAME: 'evgt-abc123',
      AZURE_STORAGE_ACCOUNT_NAME: 'stabc123',
    };
    assert.deepEqual(targetFromEnvironment(env), {
      subscriptionId: 'sub-1',
      resourceGroup: 'rg-ci',
      functionAppName: 'func-abc123',
      systemTopicName: 'evgt-abc123',
      storageAccountName: 'stabc123',
      deadLetterContainer: 'deadletter',
    });
    assert.throws(
      () => targetFromEnvironment({ ...env, AZURE_EVENT_GRID_SYSTEM_TOPIC_NAME: '' }),
      /AZURE_EVENT_GRID_SYSTEM_TOPIC_NAME is not set/,
    );
  });
});
