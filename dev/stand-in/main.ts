/**
 * What the stand-ins' command lines share: number options, the "listening on" line, a clean stop on SIGINT/SIGTERM
 * and exit codes (0 stopped, 1 failed while stopping, 2 bad options or failed to start).
 */

/** Options every stand-in's command line takes (parseArgs config); each stand-in adds its own. */
export const COMMON_OPTIONS = {
  port: { type: 'string' },
  host: { type: 'string' },
  data: { type: 'string' },
  throttle: { type: 'boolean' },
  'latency-ms': { type: 'string' },
  'error-rate': { type: 'string' },
  'timeout-rate': { type: 'string' },
  'timeout-ms': { type: 'string' },
  verbose: { type: 'boolean' },
  help: { type: 'boolean' },
} as const;

interface CommonValues {
  port?: string;
  host?: string;
  data?: string;
  throttle?: boolean;
  verbose?: boolean;
}

/** The realism settings both stand-ins have, from the common options (absent ones left out). */
export function commonRealism(values: CommonValues & Record<string, unknown>): {
  throttling: boolean;
  latencyMs?: number;
  errorRate?: number;
  timeoutRate?: number;
  timeoutMs?: number;
} {
  const realism = {
    throttling: values.throttle ?? false,
    latencyMs: numberOption(values, 'latency-ms'),
    errorRate: numberOption(values, 'error-rate'),
    timeoutRate: numberOption(values, 'timeout-rate'),
    timeoutMs: numberOption(values, 'timeout-ms'),
  };
  for (const key of ['latencyMs', 'errorRate', 'timeoutRate', 'timeoutMs'] as const) if (realism[key] === undefined) delete realism[key];
  return realism;
}

/** Where to listen, where to persist and whether to log, from the common options. */
export function commonStartOptions(
  values: CommonValues & Record<string, unknown>,
  defaultPort: number,
): { port: number; host?: string; persistPath?: string; log?: (line: string) => void } {
  return {
    port: numberOption(values, 'port') ?? defaultPort,
    host: values.host,
    persistPath: values.data,
    log: values.verbose ? (line) => process.stderr.write(line + '\n') : undefined,
  };
}

/** The named option as a number (undefined when absent); refuses anything that is not one. */
export function numberOption(values: Record<string, unknown>, name: string): number | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (typeof raw !== 'string' || raw.trim() === '' || !Number.isFinite(n)) throw new Error(`--${name} must be a number`);
  return n;
}

export interface RunningStandIn {
  url: string;
  close(): Promise<void>;
}

/**
 * Starts a stand-in from its command line and keeps it running until a signal. `start` answers undefined when it
 * only printed its usage (--help).
 * @param name e.g. "Graph stand-in", as the lines it prints call it.
 */
export function runStandIn(name: string, usage: string, start: () => Promise<RunningStandIn | undefined>): void {
  const run = async (): Promise<void> => {
    const standIn = await start();
    if (!standIn) return;
    process.stdout.write(`${name} listening on ${standIn.url}\n`);
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      process.stderr.write(`${name}: ${signal}, stopping\n`);
      standIn.close().then(
        () => process.exit(0),
        (err: unknown) => {
          process.stderr.write(`${name}: error while stopping: ${String(err)}\n`);
          process.exit(1);
        },
      );
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
  };
  run().catch((err: unknown) => {
    process.stderr.write(`${name}: ${err instanceof Error ? err.message : String(err)}\n${usage}\n`);
    process.exit(2);
  });
}
