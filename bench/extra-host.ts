/**
 * One more Functions host process (dev/host/cli.ts) running the app beside a stack, on a settings file: a second
 * instance for the multi-instance figure, or the only instance that ingests for the scale figure (its peak RSS is
 * the app's, without the stand-ins that share the stack's process).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './dist.js';

export interface ExtraHost {
  pid: number;
  output(): string;
  /** Peak resident memory of the host process so far (Linux /proc VmHWM), in MB; null elsewhere. */
  peakRssMB(): number | null;
  stop(): Promise<void>;
}

export async function startExtraHost(settingsPath: string, pollIntervalMs = 250): Promise<ExtraHost> {
  const args = ['--import', 'tsx', join(repoRoot, 'dev', 'host', 'cli.ts'), '--entry', join(repoRoot, 'dist', 'functions', 'index.js')];
  args.push('--settings', settingsPath, '--port', '0', '--poll-interval-ms', String(pollIntervalMs), '--json');
  const child = spawn(process.execPath, args, { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  await new Promise<void>((resolveReady, rejectReady) => {
    let buffered = '';
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        if (line.startsWith('{"ready":true')) resolveReady();
        else if (text.length < 200_000) text += line + '\n';
      }
    });
    child.stderr.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
    child.once('exit', (code) => rejectReady(new Error(`The extra host exited (code ${code}).\n${text.slice(-4000)}`)));
  });
  return {
    pid: child.pid!,
    output: () => text,
    peakRssMB() {
      try {
        const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
        return match ? Math.round(Number(match[1]) / 1024) : null;
      } catch {
        return null;
      }
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** The stack's settings file with some values changed (written next to it). */
export function settingsWith(settingsPath: string, changes: Record<string, string>): string {
  const file = JSON.parse(readFileSync(settingsPath, 'utf8')) as { Values: Record<string, string> };
  return JSON.stringify({ ...file, Values: { ...file.Values, ...changes } }, null, 2) + '\n';
}
