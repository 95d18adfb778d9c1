/**
 * Storage blob and queue output bindings (`output.storageBlob`,
 * `output.storageQueue`), written after a successful invocation as the host
 * does. Paths take binding expressions from the trigger metadata (`{name}`)
 * and `{rand-guid}` / `{DateTime}`.
 */
import { randomUUID } from 'node:crypto';
import { BlobServiceClient } from '@azure/storage-blob';
import { QueueServiceClient } from '@azure/storage-queue';
import type { RpcBindingInfo, RpcInvocationResponse, RpcTypedData } from './core-types.js';
import { resolveStorageConnection, textOption } from './settings.js';

const supportedOutputs = new Set(['blob', 'queue', 'http']);

export function unsupportedBindings(bindings: Record<string, RpcBindingInfo>): string[] {
  return Object.entries(bindings)
    .filter(([, b]) => !b.type?.toLowerCase().endsWith('trigger'))
    .filter(([, b]) => b.direction !== 'out' || !supportedOutputs.has(b.type?.toLowerCase() ?? ''))
    .map(([name, b]) => `${name} (${b.type ?? '?'}, ${b.direction ?? '?'})`);
}

function typedToBuffer(data: RpcTypedData): Buffer | undefined {
  if (data.bytes) return Buffer.from(data.bytes);
  if (data.stream) return Buffer.from(data.stream);
  if (typeof data.string === 'string') return Buffer.from(data.string, 'utf8');
  if (typeof data.json === 'string') return Buffer.from(data.json, 'utf8');
  if (typeof data.int === 'number' || typeof data.double === 'number') return Buffer.from(String(data.int ?? data.double));
  return undefined;
}

function typedToMessages(data: RpcTypedData): string[] {
  if (typeof data.json === 'string') {
    const parsed = JSON.parse(data.json) as unknown;
    if (Array.isArray(parsed)) return parsed.map((item) => (typeof item === 'string' ? item : JSON.stringify(item)));
    return [data.json];
  }
  const buffer = typedToBuffer(data);
  return buffer ? [buffer.toString('utf8')] : [];
}

export function resolveBindingExpression(template: string, values: Record<string, string>): string {
  return template.replace(/\{([^}]+)\}/g, (_whole, key: string) => {
    const lower = key.toLowerCase();
    if (lower === 'rand-guid') return randomUUID();
    if (lower === 'datetime') return new Date().toISOString();
    const found = Object.entries(values).find(([k]) => k.toLowerCase() === lower);
    if (!found) throw new Error(`Binding expression {${key}} has no value in this invocation.`);
    return found[1];
  });
}

/** Writes the invocation's blob and queue outputs; resolves with the names of the queues written to. */
export async function writeOutputs(
  bindings: Record<string, RpcBindingInfo>,
  response: RpcInvocationResponse,
  expressionValues: Record<string, string>,
): Promise<string[]> {
  const queuesWritten: string[] = [];
  const outputs: { name: string; data: RpcTypedData }[] = [];
  for (const item of response.outputData ?? []) {
    if (item.name && item.data) outputs.push({ name: item.name, data: item.data });
  }
  if (response.returnValue && bindings.$return) outputs.push({ name: '$return', data: response.returnValue });
  for (const { name, data } of outputs) {
    const binding = bindings[name];
    const type = binding?.type?.toLowerCase();
    if (!binding || binding.direction !== 'out') continue;
    if (type === 'blob') {
      const path = resolveBindingExpression(textOption(binding.path), expressionValues);
      const slash = path.indexOf('/');
      const buffer = typedToBuffer(data);
      if (slash < 0 || !buffer) continue;
      const container = BlobServiceClient.fromConnectionString(resolveStorageConnection(binding.connection)).getContainerClient(
        path.slice(0, slash),
      );
      await container.createIfNotExists();
      await container.getBlockBlobClient(path.slice(slash + 1)).uploadData(buffer);
    } else if (type === 'queue') {
      const queueName = resolveBindingExpression(textOption(binding.queueName), expressionValues);
      const queue = QueueServiceClient.fromConnectionString(resolveStorageConnection(binding.connection)).getQueueClient(queueName);
      await queue.createIfNotExists();
      for (const message of typedToMessages(data)) await queue.sendMessage(Buffer.from(message, 'utf8').toString('base64'));
      queuesWritten.push(queueName);
    }
  }
  return queuesWritten;
}
