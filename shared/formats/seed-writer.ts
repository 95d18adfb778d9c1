/**
 * Writes tokens as a seed file this project's readers take back unchanged (csv-seed.ts): the header CSV family
 * (Entra's columns without `upn`, base32 secrets) when every token is SHA-1 with 6 digits, the only kind that
 * layout can say; otherwise the header-less OATH CSV in LinOTP's six-cell form (hex secret, `totp`, digits, time
 * step, hash name), which names the hash outright rather than leaving it to the seed's length (docs/formats/oath-csv.md).
 */
import { stringify } from 'csv-stringify/sync';
import { toCanonicalBase32 } from '../core/encoding.js';
import type { OathToken } from '../core/token.js';

export const SEED_CSV_HEADER = ['serial number', 'secret key', 'time interval', 'manufacturer', 'model'] as const;

/** Why these tokens cannot be written to one seed file, or undefined. */
export function seedCsvFault(tokens: readonly OathToken[]): string | undefined {
  const headerLayout = seedCsvLayout(tokens) === 'csv';
  for (const t of tokens) {
    // privacyIDEA files may carry comment lines; a row whose first cell starts with # would be one.
    if (!headerLayout && t.serial.startsWith('#'))
      return `serial ${JSON.stringify(t.serial)} starts with #, which privacyIDEA's layout reads as a comment`;
    if (t.type !== 'totp') return `serial ${JSON.stringify(t.serial)} is not a TOTP token`;
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
    tokens.map((t) => [
      t.serial,
      Buffer.from(t.secret).toString('hex'),
      'totp',
      String(t.digits),
      String(t.period),
      t.algorithm.toLowerCase(),
    ]),
    { record_delimiter: '\n' },
  );
}
