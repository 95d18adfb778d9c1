/**
 * Storage queue triggers, polled like the host does: messages are base64
 * text by default (the extension's `messageEncoding`), a message failing 5
 * times moves to `<queue>-poison`, and a processed message is deleted.
 */
import { QueueServiceClient, type QueueClient } from '@azure/storage-queue';
import type { FunctionDescription } from './core-module.js';
import type { RpcTypedData } from './core-types.js';
import { resolveAppSettingExpressions, resolveStorageConnection, textOption } from './settings.js';

export const maxDequeueCount = 5;

export interface QueueInvocation {
  fn: FunctionDescription;
  triggerName: string;
  data: RpcTypedData;
  triggerMetadata: Record<string, RpcTypedData>;
}

interface QueueWatch {
  fn: FunctionDescription;
  triggerName: string;
  queue: QueueClient;
  poison: QueueClient;
}

function decodeMessage(text: string): string {
  // The host refuses non-base64 text by default; locally it is passed through unchanged.
  if (/^[A-Za-z0-9+/]*={0,2}$/.test(text) && text.length % 4 === 0) {
    const decoded = Buffer.from(text, 'base64');
    if (decoded.toString('base64') === text) return decoded.toString('utf8');
  }
  return text;
}

export class QueuePoller {
  #watches: QueueWatch[] = [];
  #running = new Set<Promise<void>>();
  #timer: NodeJS.Timeout | undefined;
  #cycle: Promise<void> | undefined;
  #stopped = false;
  #lastCycleFound = 0;
  /** A message was written to a watched queue while a poll ran: poll again as soon as it ends. */
  #pollAgain = false;
  #cycleWaiters: (() => void)[] = [];
  #options: { pollIntervalMs: number; invoke: (call: QueueInvocation) => Promise<void>; log: (line: string) => void };

  constructor(options: {
    functions: FunctionDescription[];
    pollIntervalMs: number;
    invoke: (call: QueueInvocation) => Promise<void>;
    log: (line: string) => void;
  }) {
    this.#options = options;
    for (const fn of options.functions) {
      for (const [triggerName, binding] of Object.entries(fn.metadata.bindings)) {
        if (binding.type?.toLowerCase() !== 'queuetrigger') continue;
        const service = QueueServiceClient.fromConnectionString(resolveStorageConnection(binding.connection));
        const name = resolveAppSettingExpressions(textOption(binding.queueName));
        this.#watches.push({ fn, triggerName, queue: service.getQueueClient(name), poison: service.getQueueClient(`${name}-poison`) });
      }
    }
  }

  get busy(): boolean {
    return this.#running.size > 0 || this.#lastCycleFound > 0;
  }

  async start(): Promise<void> {
    for (const watch of this.#watches) await watch.queue.createIfNotExists();
    if (this.#watches.length > 0) this.#schedule(0);
  }

  #schedule(delay: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#cycle = this.#poll()
        .catch((error: unknown) =>
          this.#options.log(`[host] Queue polling failed: ${error instanceof Error ? error.message : String(error)}`),
        )
        .finally(() => {
          this.#cycle = undefined;
          this.#cycleWaiters.splice(0).forEach((w) => w());
          const again = this.#pollAgain;
          this.#pollAgain = false;
          this.#schedule(again ? 0 : this.#options.pollIntervalMs);
        });
    }, delay);
  }

  /**
   * A function of this host wrote a message to `queueName` through an output binding: a watched queue is polled
   * now rather than at the next interval, as the Functions host's queue listener is told of its own host's writes
   * (so a hand-off through a queue waits for no poll, whatever maxPollingInterval says).
   */
  notifyEnqueued(queueName: string): void {
    if (this.#stopped || !this.#watches.some((w) => w.queue.name === queueName)) return;
    if (this.#cycle) {
      this.#pollAgain = true;
      return;
    }
    clearTimeout(this.#timer);
    this.#schedule(0);
  }

  async settle(): Promise<void> {
    for (;;) {
      if (this.#stopped || this.#watches.length === 0) return;
      const waitOne = (): Promise<void> => new Promise<void>((r) => this.#cycleWaiters.push(r));
      if (this.#cycle) await waitOne();
      await waitOne();
      await Promise.allSettled([...this.#running]);
      if (!this.busy) return;
    }
  }

  async #poll(): Promise<void> {
    let found = 0;
    for (const watch of this.#watches) {
      if (this.#stopped) return;
      const received = await watch.queue.receiveMessages({ numberOfMessages: 16, visibilityTimeout: 600 });
      for (const message of received.receivedMessageItems) {
        found += 1;
        const run = this.#handle(watch, message).catch((error: unknown) =>
          this.#options.log(`[host] Queue ${watch.queue.name}: ${error instanceof Error ? error.message : String(error)}`),
        );
        this.#running.add(run);
        void run.finally(() => this.#running.delete(run));
      }
    }
    this.#lastCycleFound = found;
  }

  async #handle(
    watch: QueueWatch,
    message: {
      messageId: string;
      popReceipt: string;
      messageText: string;
      dequeueCount: number;
      insertedOn: Date;
      expiresOn: Date;
      nextVisibleOn: Date;
    },
  ): Promise<void> {
    const text = decodeMessage(message.messageText);
    const triggerMetadata: Record<string, RpcTypedData> = {
      Id: { string: message.messageId },
      DequeueCount: { json: String(message.dequeueCount) },
      ExpirationTime: { string: message.expiresOn.toISOString() },
      InsertionTime: { string: message.insertedOn.toISOString() },
      NextVisibleTime: { string: message.nextVisibleOn.toISOString() },
      PopReceipt: { string: message.popReceipt },
      QueueTrigger: { string: text },
    };
    try {
      await this.#options.invoke({ fn: watch.fn, triggerName: watch.triggerName, data: { string: text }, triggerMetadata });
    } catch {
      if (message.dequeueCount >= maxDequeueCount) {
        await watch.poison.createIfNotExists();
        await watch.poison.sendMessage(message.messageText);
        await watch.queue.deleteMessage(message.messageId, message.popReceipt);
      } else {
        // Visible again at once, as with the host's default visibilityTimeout of 0.
        await watch.queue.updateMessage(message.messageId, message.popReceipt, undefined, 0);
      }
      return;
    }
    await watch.queue.deleteMessage(message.messageId, message.popReceipt);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#cycleWaiters.splice(0).forEach((w) => w());
    await this.#cycle?.catch(() => undefined);
    await Promise.allSettled([...this.#running]);
  }
}
