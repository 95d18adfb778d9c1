/**
 * The secrets scan shared by the leak tests: every text form a secret can take
 * (base32 upper, lower, grouped; hex both cases; base64 standard, unpadded,
 * URL-safe), cut into every 12-character piece, and a search of output text
 * for any of those pieces.
 */
import { toCanonicalBase32 } from '../../shared/core/encoding.js';

export const PIECE = 12;

/** Every text form of a secret the scan looks for. */
export function secretForms(bytes: Uint8Array): string[] {
  const b32 = toCanonicalBase32(bytes);
  const groups = b32.match(/.{1,4}/g) ?? [];
  const b64 = Buffer.from(bytes).toString('base64');
  const hex = Buffer.from(bytes).toString('hex');
  return [
    b32,
    b32.toLowerCase(),
    groups.join(' '),
    groups.join(' ').toLowerCase(),
    groups.join('-'),
    hex,
    hex.toUpperCase(),
    b64,
    b64.replace(/=+$/, ''),
    Buffer.from(bytes).toString('base64url'),
  ];
}

export function piecesOf(texts: Iterable<string>): Set<string> {
  const pieces = new Set<string>();
  for (const text of texts) for (let i = 0; i + PIECE <= text.length; i++) pieces.add(text.slice(i, i + PIECE));
  return pieces;
}

/** Where in `haystack` any piece occurs (first few hits), shown without the piece itself. */
export function leakHits(pieces: ReadonlySet<string>, haystack: string, max = 5): string[] {
  const found: string[] = [];
  for (let i = 0; i + PIECE <= haystack.length && found.length < max; i++) {
    if (pieces.has(haystack.slice(i, i + PIECE))) found.push(`...${haystack.slice(Math.max(0, i - 20), i)}[12 chars]...`);
  }
  return found;
}
