/** The one normalized token every reader produces and every consumer takes. */
import { randomBytes } from 'node:crypto';

export type TokenType = 'totp' | 'hotp';
export type HashAlgorithm = 'SHA1' | 'SHA256' | 'SHA512';
export const HASH_ALGORITHMS: readonly HashAlgorithm[] = ['SHA1', 'SHA256', 'SHA512'];

export interface OathToken {
  /** Case-sensitive, trimmed. */
  serial: string;
  manufacturer: string;
  model: string;
  type: TokenType;
  algorithm: HashAlgorithm;
  digits: number;
  /** Seconds per step (TOTP); carried for HOTP too, where files give one. */
  period: number;
  secret: Uint8Array;
  /** HOTP moving factor, exact over its whole 64-bit range (PSKC counters exceed 2^53). */
  counter?: bigint;
  /** Positive: the token's clock runs ahead. */
  timeDriftSeconds?: number;
  /** 1-based line of the file the token came from, when the format has lines. */
  line?: number;
}

/** RFC 4226 section 4: the shared secret must be at least 128 bits. */
export const MIN_SECRET_BYTES = 16;
/** RFC 4226's counter is an unsigned 64-bit number. */
export const MAX_COUNTER = (1n << 64n) - 1n;

/** Generous upper bound (SHA-512 block size is 128 bytes); longer values are not OATH seeds. */
export const MAX_SECRET_BYTES = 128;

export function parseHashAlgorithm(text: string): HashAlgorithm | undefined {
  const normalized = text
    .trim()
    .toUpperCase()
    .replace(/^HMAC-?/, '')
    .replace('-', '');
  return (HASH_ALGORITHMS as readonly string[]).includes(normalized) ? (normalized as HashAlgorithm) : undefined;
}

export function sameSecret(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/** Bytes of a secret minted here: the hash's output size, as RFC 4226 and RFC 6238 recommend (160 bits for SHA-1). */
export const MINTED_SECRET_BYTES: Readonly<Record<HashAlgorithm, number>> = { SHA1: 20, SHA256: 32, SHA512: 64 };

/** A fresh secret from the operating system's CSPRNG, for a token that is programmed rather than seeded at the factory. */
export function mintSecret(algorithm: HashAlgorithm): Uint8Array {
  return new Uint8Array(randomBytes(MINTED_SECRET_BYTES[algorithm]));
}
