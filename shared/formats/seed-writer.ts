/**
 * Writes tokens as a seed file this project's readers take back unchanged (csv-seed.ts): the header CSV family
 * (Entra's columns without `upn`, base32 secrets) when every token is SHA-1 with 6 digits, the only kind that
 * layout can say; otherwise privacyIDEA's header-less OATH CSV (hex secrets, digits, and the time step or the
 * hash name in the fifth cell).
 */
import { stringify } from 'csv-stringify/sync';
import { toCanonicalBase32 } from '../core/encoding.js';
import type { OathToken } from '../core/token.js';

export const SEED_CSV_HEADER = ['serial number', 'secret key', 'time interval', 'manufacturer', 'model'] as const;
const DEFAULT_PERIOD = 30;

/** Why these tokens cannot be written to one seed file, or undefined. */
export function seedCsvFault(tokens: readonly OathToken[]): string | undefined {
  const headerLayout = seedCsvLayout(tokens) === 'csv';
  for (const t of tokens) {
    // privacyIDEA files may carry comment lines; a row whose first cell starts with # would be one.
    if (!headerLayout && t.serial.startsWith('#')) return `serial ${JSON.stringify(t.serial)} starts with #, which privacyIDEA's layout reads as a comment`;
    if (t.type !== 'totp') return `serial ${JSON.stringify(t.serial)} is not a TOTP token`;
    // privacyIDEA's fifth cell holds the time step or a hash name, not both: a non-SHA-1 token keeps the default step.
    if (t.algorithm !== 'SHA1' && t.period !== DEFAULT_PERIOD) return `no seed-file layout this project reads carries ${t.algorithm} with a ${t.period} s period; use ${DEFAULT_PERIOD} s, or SHA1`;
  }
  return undefined;
}

/** The layout writeSeedCsv picks, named as the readers report it (SeedReadResult.format). */
export function seedCsvLayout(tokens: readonly OathToken[]): 'csv' | 'privacyidea-csv' {
  return tokens.every((t) => t.algorithm === 'SHA1' && t.digits === 6) ? 'csv' : 'privacyidea-csv';
}

export function writeSeedCsv(tokens: readonly OathToken[]): string {
  const fault = seedCsvFault(tokens);
  if (fault) throw new Error(`Cannot write the seed file: ${fault}.`);
  if (seedCsvLayout(tokens) === 'csv') {
    return stringify(
      tokens.map((t) => [t.serial, toCanonicalBase32(t.secret), String(t.period), t.manufacturer, t.model]),
      { header: true, columns: [...SEED_CSV_HEADER], record_delimiter: '\n' },
    );
  }
  return stringify(
    tokens.map((t) => [t.serial, Buffer.from(t.secret).toString('hex'), 'totp', String(t.digits), t.algorithm === 'SHA1' ? String(t.period) : t.algorithm]),
    { record_delimiter: '\n' },
  );
}
