/**
 * Timer triggers. With `useMonitor` (the default, as in the host) the
 * schedule status is kept in `azure-webjobs-hosts/timers/<hostId>/<functionId>/status`,
 * so an occurrence missed while the host was down runs at start-up with
 * `isPastDue: true`. `runOnStartup` runs the function once when the host
 * starts. Invocations of one timer never overlap.
 */
import { BlobServiceClient, RestError, type ContainerClient } from '@azure/storage-blob';
import type { FunctionDescription } from './core-module.js';
import type { RpcTypedData } from './core-types.js';
import { parseSchedule, type Schedule } from './ncrontab.js';
import { hostsContainer } from './blob-trigger.js';
import { resolveAppSettingExpressions, textOption } from './settings.js';

export interface TimerInvocation {
  fn: FunctionDescription;
  triggerName: string;
  data: RpcTypedData;
}

interface ScheduleStatus {
  Last: string;
  Next: string;
  LastUpdated: string;
}

interface TimerWatch {
  fn: FunctionDescription;
  triggerName: string;
  schedule: Schedule;
  runOnStartup: boolean;
  useMonitor: boolean;
  statusBlob: string;
  status: ScheduleStatus | undefined;
  handle: NodeJS.Timeout | undefined;
  running: Promise<void> | undefined;
}

// setTimeout cannot wait longer than ~24.8 days; longer waits are chained.
const maxTimeout = 2 ** 31 - 1;

export class TimerScheduler {
  #watches: TimerWatch[] = [];
  #hosts: ContainerClient;
  #invoke: (call: TimerInvocation) => Promise<void>;
  #log: (line: string) => void;
  #stopped = false;

  constructor(options: {
    functions: FunctionDescription[];
    hostStorage: string;
    hostId: string;
    invoke: (call: TimerInvocation) => Promise<void>;
    log: (line: string) => void;
  }) {
    this.#hosts = BlobServiceClient.fromConnectionString(options.hostStorage).getContainerClient(hostsContainer);
    this.#invoke = options.invoke;
    this.#log = options.log;
    for (const fn of options.functions) {
      for (const [triggerName, binding] of Object.entries(fn.metadata.bindings)) {
        if (binding.type?.toLowerCase() !== 'timertrigger') continue;
        this.#watches.push({
          fn,
          triggerName,
          schedule: parseSchedule(resolveAppSettingExpressions(textOption(binding.schedule))),
          runOnStartup: binding.runOnStartup === true,
          useMonitor: binding.useMonitor !== false,
          statusBlob: `timers/${options.hostId}/Host.Functions.${fn.metadata.name}/status`,
          status: undefined,
          handle: undefined,
          running: undefined,
        });
      }
    }
  }

  get busy(): boolean {
    return this.#watches.some((w) => w.running !== undefined);
  }

  async settle(): Promise<void> {
    while (this.busy) await Promise.allSettled(this.#watches.flatMap((w) => (w.running ? [w.running] : [])));
  }

  async start(): Promise<void> {
    if (this.#watches.length === 0) return;
    await this.#hosts.createIfNotExists();
    const now = new Date();
    for (const watch of this.#watches) {
      if (watch.useMonitor) watch.status = await this.#readStatus(watch);
      const missed = watch.status !== undefined && new Date(watch.status.Next).getTime() < now.getTime();
      if (missed || watch.runOnStartup) {
        this.#fire(watch, missed);
      } else {
        this.#arm(watch);
      }
    }
  }

  async #readStatus(watch: TimerWatch): Promise<ScheduleStatus | undefined> {
    try {
      const buffer = await this.#hosts.getBlockBlobClient(watch.statusBlob).downloadToBuffer();
      return JSON.parse(buffer.toString('utf8')) as ScheduleStatus;
    } catch (error) {
      if (error instanceof RestError && error.statusCode === 404) return undefined;
      throw error;
    }
  }

  #arm(watch: TimerWatch): void {
    if (this.#stopped) return;
    const next = watch.schedule.next(new Date());
    const wait = (): void => {
      const remaining = next.getTime() - Date.now();
      watch.handle = setTimeout(
        () => {
          if (next.getTime() - Date.now() > 0) wait();
          else this.#fire(watch, false);
        },
        Math.min(Math.max(remaining, 0), maxTimeout),
      );
    };
    wait();
  }

  #fire(watch: TimerWatch, isPastDue: boolean): void {
    if (this.#stopped) return;
    const now = new Date();
    const next = watch.schedule.next(now);
    const input = {
      Schedule: { AdjustForDST: true },
      ScheduleStatus: watch.useMonitor
        ? {
            Last: watch.status?.Last ?? now.toISOString(),
            Next: next.toISOString(),
            LastUpdated: watch.status?.LastUpdated ?? now.toISOString(),
          }
        : null,
      IsPastDue: isPastDue,
    };
    watch.running = (async () => {
      try {
        await this.#invoke({ fn: watch.fn, triggerName: watch.triggerName, data: { json: JSON.stringify(input) } });
      } catch {
        // The failure is already logged by the invoker; the schedule goes on, as in the host.
      }
      if (watch.useMonitor) {
        const status: ScheduleStatus = {
          Last: now.toISOString(),
          Next: watch.schedule.next(new Date()).toISOString(),
          LastUpdated: new Date().toISOString(),
        };
        watch.status = status;
        try {
          const text = JSON.stringify(status);
          await this.#hosts.getBlockBlobClient(watch.statusBlob).upload(text, Buffer.byteLength(text));
        } catch (error) {
          this.#log(
            `[host] Could not save the schedule status of ${watch.fn.metadata.name}: ${error instanceof Error ? error.message : String(error)}`,
          );
        }
      }
    })().finally(() => {
      watch.running = undefined;
      this.#arm(watch);
    });
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const watch of this.#watches) if (watch.handle) clearTimeout(watch.handle);
    await Promise.allSettled(this.#watches.flatMap((w) => (w.running ? [w.running] : [])));
  }
}
