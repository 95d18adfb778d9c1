/**
 * Loads the app's compiled modules (dist/, what `npm run build` ships) so the
 * timed code is the production JavaScript, not the TypeScript loader's output.
 *   const { readSeedFile } = await fromDist<typeof import('../shared/formats/read-seed-file.js')>('shared/formats/read-seed-file.js');
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export async function fromDist<T>(modulePath: string): Promise<T> {
  const file = join(repoRoot, 'dist', modulePath);
  if (!existsSync(file)) throw new Error(`${file} is missing: run "npm run build" first.`);
  return (await import(pathToFileURL(file).href)) as T;
}
