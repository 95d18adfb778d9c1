/**
 * What the stand-ins' command lines share: number options, the "listening on" line, a clean stop on SIGINT/SIGTERM
 * and exit codes (0 stopped, 1 failed while stopping, 2 bad options or failed to start).
 */

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
