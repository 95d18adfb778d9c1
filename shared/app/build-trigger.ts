/**
 * The one way an administrator's correction (an assignment changed or deleted, a file withdrawn, a token retired
 * out of a waiting file) asks for an import build. It builds at once, like POST /api/imports, so the answer can
 * name the new file; dropped files instead go through the coalescing build queue (shared/pipeline/build-queue.ts).
 */
import type { BuildResult } from '../pipeline/build.js';
import type { Logger } from '../pipeline/ports.js';

export interface BuildTrigger {
  build: { build(options?: { reexport?: string[] }): Promise<BuildResult> };
}

/** The build's result, or undefined when it failed (logged; the next change or POST /api/imports builds again). */
export async function requestBuild(svc: BuildTrigger, log: Logger, why: string): Promise<BuildResult | undefined> {
  try {
    return await svc.build.build();
  } catch (err) {
    log.warn('Import build failed; it will be retried', { after: why, error: (err as Error).name });
    return undefined;
  }
}
