/**
 * The Key Vault secret names of tokens, derived from their serials.
 *
 * Key Vault names allow only 0-9 a-z A-Z - (1-127) and ignore case; serials are
 * case-sensitive free text. The scheme:
 *   - a serial of 1-100 lower-case letters and digits: `oath-<serial>` (the usual, readable case);
 *   - any other serial: `oath-x-<hex of its UTF-8 bytes>` while that fits in 127;
 *   - longer ones: `oath-h-<SHA-256 hex of its UTF-8 bytes>`.
 * The three forms cannot collide: readable names have no second dash, and hex
 * is lower case only, so vault case-folding changes nothing.
 */
import { createHash } from 'node:crypto';

export const TOKEN_SECRET_PREFIX = 'oath-';

/**
 * True when names under `prefix` and token secret names can meet: one prefix
 * starts with the other (Key Vault ignores case). `oath`, `o` or `oath-x`
 * would let a seed file's metadata name another token's secret as its
 * transport key.
 */
export function overlapsTokenSecretNames(prefix: string): boolean {
  const lower = prefix.toLowerCase();
  return lower.startsWith(TOKEN_SECRET_PREFIX) || TOKEN_SECRET_PREFIX.startsWith(lower);
}

export function secretNameForSerial(serial: string): string {
  if (/^[0-9a-z]{1,100}$/.test(serial)) return `${TOKEN_SECRET_PREFIX}${serial}`;
  const hex = Buffer.from(serial, 'utf8').toString('hex');
  const name = `${TOKEN_SECRET_PREFIX}x-${hex}`;
  if (name.length <= 127) return name;
  return `${TOKEN_SECRET_PREFIX}h-${createHash('sha256').update(serial, 'utf8').digest('hex')}`;
}
