/**
 * CPU cost of one wrong-code check over the full activation window (+/- 1 day
 * of 30 s steps: 5,761 HMACs), against node:crypto doing the same number of
 * HMACs and nothing else (the floor).
 */
import { createHash, createHmac } from 'node:crypto';
import { toCanonicalBase32 } from '../shared/core/encoding.js';
import type { OtpParameters } from '../shared/core/totp.js';
import { activationWindowSteps } from '../shared/entra/drift-windows.js';
import { newTokenEntity } from '../shared/pipeline/inventory.js';
import type { TokenEntity } from '../shared/pipeline/ports.js';
import { VerifyService } from '../shared/pipeline/verify.js';
import { MemorySecretStore, MemoryTable } from '../test/helpers/memory-ports.js';
import { fromDist } from './dist.js';
import { median, round } from './stats.js';

// The scan as shipped (dist/); the whole-service figure below runs the TypeScript sources over test doubles.
const { findMatchingStep, scanSteps, stepAt } = await fromDist<typeof import('../shared/core/totp.js')>('shared/core/totp.js');

export interface VerifyCpuFigures {
  steps: number;
  fullWindowCpuMs: number;
  floorCpuMs: number;
  fullWindowRatio: number;
  /** The whole VerifyService check of a wrong code (sign-in scan, activation scan, lock bookkeeping) over in-memory ports. */
  serviceWrongCodeCpuMs: number;
}

function cpuMsOf(fn: () => void, reps: number): number {
  const start = process.cpuUsage();
  for (let i = 0; i < reps; i++) fn();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000 / reps;
}

export async function measureVerifyCpu(rounds = 5, repsPerRound = 12): Promise<VerifyCpuFigures> {
  const secret = createHash('sha256').update('bench/verify-cpu').digest().subarray(0, 20);
  const params: OtpParameters = { secret, algorithm: 'SHA1', digits: 6, period: 30 };
  const unixSeconds = 1_750_000_000;
  const windowSteps = activationWindowSteps(30);
  const current = stepAt(unixSeconds, 30);
  const steps = 2 * windowSteps + 1;

  // A code that no step of the window produces: the scan runs to the end, as for a wrong code.
  let wrong = 0;
  while (scanSteps(params, String(wrong).padStart(6, '0'), current - windowSteps, current + windowSteps) !== undefined) wrong++;
  const wrongCode = String(wrong).padStart(6, '0');

  const appCheck = () => {
    if (findMatchingStep(params, wrongCode, { unixSeconds, windowSteps }) !== undefined) throw new Error('the wrong code matched');
  };
  const counter = Buffer.alloc(8);
  const floorCheck = () => {
    for (let step = current - windowSteps; step <= current + windowSteps; step++) {
      counter.writeUInt32BE(Math.floor(step / 0x1_0000_0000), 0);
      counter.writeUInt32BE(step >>> 0, 4);
      createHmac('sha1', secret).update(counter).digest();
    }
  };

  // The service end to end, over in-memory ports; the lockout limit is out of reach so every check scans.
  const tokens = new MemoryTable<TokenEntity>();
  const secrets = new MemorySecretStore();
  const now = new Date(unixSeconds * 1000);
  const { version } = await secrets.set('oath-bench', toCanonicalBase32(secret), { contentType: 'text/plain', tags: {} });
  const token = {
    serial: 'bench',
    manufacturer: 'Token2',
    model: 'C202',
    type: 'totp' as const,
    algorithm: 'SHA1' as const,
    digits: 6,
    period: 30,
    secret,
  };
  await tokens.insert('bench', newTokenEntity(token, 'oath-bench', version, 'bench', now.toISOString()));
  const service = new VerifyService({
    tokens,
    secrets,
    clock: { now: () => now },
    log: { info: () => undefined, warn: () => undefined, error: () => undefined },
    lockoutLimit: 1_000_000_000,
    lockoutMinutes: 15,
    lockoutMaxMinutes: 1440,
  });
  const serviceCheck = async (reps: number): Promise<number> => {
    const start = process.cpuUsage();
    for (let i = 0; i < reps; i++) {
      const outcome = await service.verify('bench', { code: wrongCode });
      if (outcome.status !== 'rejected' || outcome.reason !== 'wrong') throw new Error('unexpected verify outcome');
    }
    const used = process.cpuUsage(start);
    return (used.user + used.system) / 1000 / reps;
  };

  // Warm up, then interleave rounds so machine noise hits both sides alike.
  cpuMsOf(appCheck, 3);
  cpuMsOf(floorCheck, 3);
  await serviceCheck(3);
  const app: number[] = [];
  const floor: number[] = [];
  const service_: number[] = [];
  for (let r = 0; r < rounds; r++) {
    app.push(cpuMsOf(appCheck, repsPerRound));
    floor.push(cpuMsOf(floorCheck, repsPerRound));
    service_.push(await serviceCheck(Math.max(3, Math.floor(repsPerRound / 3))));
  }
  const fullWindowCpuMs = median(app);
  const floorCpuMs = median(floor);
  return {
    steps,
    fullWindowCpuMs: round(fullWindowCpuMs, 3),
    floorCpuMs: round(floorCpuMs, 3),
    fullWindowRatio: round(fullWindowCpuMs / floorCpuMs, 3),
    serviceWrongCodeCpuMs: round(median(service_), 3),
  };
}
