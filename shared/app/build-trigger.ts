/**
 * The one way a change asks for an import build (an assignment list ingested, an assignment changed or deleted, a
 * file withdrawn). Today it builds at once; making builds coalesce changes only this function.
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
