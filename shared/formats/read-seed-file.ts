/** Picks the reader for a seed file from its content, not its name. */
import { readCsvSeed } from './csv-seed.js';
import { looksLikePskc, readPskc } from './pskc.js';
import type { ReadOptions, SeedReadResult } from './types.js';

export function readSeedFile(bytes: Uint8Array, opts: ReadOptions): SeedReadResult {
  return looksLikePskc(bytes) ? readPskc(bytes, opts) : readCsvSeed(bytes, opts);
}
