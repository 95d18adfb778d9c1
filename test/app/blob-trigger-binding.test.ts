/**
 * The seed and assignment triggers must not make the Functions host load the blob (issue 11, size limits before
 * content is loaded): both register with deferred binding, and the reference the host then sends becomes the
 * function's argument through the app's own factory, in the same @azure/functions the worker runs.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import { before, describe, it } from 'node:test';
import { coreRegistry, installCoreModule } from '../../dev/host/core-module.js';
import type { CoreInvocationContext, RpcInvocationRequest } from '../../dev/host/core-types.js';
import { blobName } from '../../shared/app/registration.js';

before(async () => {
  process.env.PipelineStorage = 'UseDevelopmentStorage=true';
  process.env.KEY_VAULT_URL = 'https://example.vault.azure.net';
  installCoreModule(resolve('functions/index.ts'));
  await import('../../functions/index.js');
});

function triggerOf(functionName: string) {
  const fn = [...coreRegistry.functions.values()].find((f) => f.metadata.name === functionName);
  assert.ok(fn, `${functionName} is registered`);
  const [triggerName, binding] = Object.entries(fn.metadata.bindings).find(([, b]) => b.type === 'blobTrigger')!;
  return { fn, triggerName, binding };
}

/** The function's arguments for one invocation, as @azure/functions builds them from the host's request. */
async function argumentsFor(functionName: string, request: Pick<RpcInvocationRequest, 'inputData' | 'triggerMetadata'>) {
  const { fn } = triggerOf(functionName);
  const coreCtx: CoreInvocationContext = {
    invocationId: randomUUID(),
    request: { invocationId: randomUUID(), functionId: fn.functionId, ...request },
    metadata: { name: fn.metadata.name, functionId: fn.functionId, bindings: fn.metadata.bindings },
    log: () => undefined,
  };
  const model = await coreRegistry.programmingModel!.getInvocationModel(coreCtx);
  return (await model.getArguments()) as { context: { triggerMetadata?: Record<string, unknown> }; inputs: unknown[] };
}

describe('seed, assignment and failure-file blob triggers', () => {
  for (const [functionName, container] of [
    ['ingestSeedFile', 'seeds'],
    ['ingestAssignments', 'assignments'],
    ['ingestResults', 'results'],
  ] as const) {
    it(`${functionName} asks the host for a reference, not the content`, () => {
      const { binding } = triggerOf(functionName);
      assert.equal(binding.properties?.supportsDeferredBinding, 'true');
    });

    it(`${functionName} receives the host's reference as a blob reference with its name`, async () => {
      const { triggerName } = triggerOf(functionName);
      const reference = { Connection: 'PipelineStorage', ContainerName: container, BlobName: 'vendor/batch 7.csv' };
      const { context, inputs } = await argumentsFor(functionName, {
        inputData: [
          {
            name: triggerName,
            data: {
              modelBindingData: {
                version: '1.0',
                source: 'AzureStorageBlobs',
                contentType: 'application/json',
                content: Buffer.from(JSON.stringify(reference)),
              },
            },
          },
        ],
        triggerMetadata: { name: { string: 'vendor/batch 7.csv' } },
      });
      assert.deepEqual(inputs[0], { connection: 'PipelineStorage', container, name: 'vendor/batch 7.csv' });
      assert.equal(blobName(context, inputs[0]), 'vendor/batch 7.csv');
    });
  }
});
