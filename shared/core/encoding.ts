/**
 * Secret encodings: RFC 4648 base32 (the canonical text form) and hex.
 *
 * The encoding is decided per file, never per row: a file whose secrets are all
 * valid in both alphabets is ambiguous unless the user forces one.
 */
import { base32 } from '@scure/base';
import { FileError } from './problems.js';

export type SecretEncoding = 'base32' | 'hex';

/** Canonical text: base32, upper case, no padding. */
export function toCanonicalBase32(bytes: Uint8Array): string {
  return base32.encode(bytes).replace(/=+$/, '');
}

/** Strips the separators vendors put between groups (whitespace, dashes); base32 padding stays, for base32Body to check. */
export function compactSecretText(text: string): string {
  return text.replace(/[\s-]+/g, '');
}

const BASE32_BODY = /^[A-Za-z2-7]+$/;
const HEX_BODY = /^[0-9A-Fa-f]+$/;

function base32Body(text: string): string | undefined {
  const compact = compactSecretText(text);
  const m = /^([A-Za-z2-7]*)(=*)$/.exec(compact);
  if (!m || m[1]!.length === 0) return undefined;
  const body = m[1]!;
  const pad = m[2]!.length;
  // Padding, when present, must complete an 8-character block.
  if (pad > 0 && (body.length + pad) % 8 !== 0) return undefined;
  // Lengths 1, 3 and 6 (mod 8) cannot come from whole bytes.
  if ([1, 3, 6].includes(body.length % 8)) return undefined;
  return BASE32_BODY.test(body) ? body.toUpperCase() : undefined;
}

export function isValidBase32(text: string): boolean {
  return base32Body(text) !== undefined;
}

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
/** Unused low bits of a partial final group, which a strict decoder rejects when set. */
const UNUSED_BITS: Record<number, number> = { 2: 2, 4: 4, 5: 1, 7: 3 };

/**
 * Vendors' secrets (and Microsoft's own example) sometimes end in a character
 * whose unused low bits are set. They carry no key material: clear them, as
 * lenient decoders do, so the bytes are the same as those decoders produce.
 */
function clearTrailingBits(body: string): string {
  const unused = UNUSED_BITS[body.length % 8];
  if (!unused) return body;
  const last = ALPHABET.indexOf(body[body.length - 1]!);
  return body.slice(0, -1) + ALPHABET[last & ~((1 << unused) - 1)]!;
}

export function isValidHex(text: string): boolean {
  const compact = compactSecretText(text);
  return compact.length > 0 && compact.length % 2 === 0 && HEX_BODY.test(compact);
}

/** Decodes base32 in any case, grouped, with or without padding. Returns undefined when invalid. */
export function decodeBase32(text: string): Uint8Array | undefined {
  const body = base32Body(text);
  if (body === undefined) return undefined;
  const padded = clearTrailingBits(body) + '='.repeat((8 - (body.length % 8)) % 8);
  try {
    return base32.decode(padded);
  } catch {
    return undefined;
  }
}

export function decodeHex(text: string): Uint8Array | undefined {
  if (!isValidHex(text)) return undefined;
  return new Uint8Array(Buffer.from(compactSecretText(text), 'hex'));
}

/** Byte lengths of an AES key (128, 192 or 256 bits): the pre-shared transport keys PSKC files are encrypted with. */
export const PRE_SHARED_KEY_BYTES: readonly number[] = [16, 24, 32];

/** A pre-shared transport key written as hex (white space ignored); undefined unless it is hex of an AES key's length. */
export function decodePreSharedKeyHex(text: string): Uint8Array | undefined {
  const compact = text.replace(/\s+/g, '');
  if (!/^(?:[0-9a-fA-F]{2})+$/.test(compact) || !PRE_SHARED_KEY_BYTES.includes(compact.length / 2)) return undefined;
  return new Uint8Array(Buffer.from(compact, 'hex'));
}

export function decodeSecret(text: string, encoding: SecretEncoding): Uint8Array | undefined {
  return encoding === 'base32' ? decodeBase32(text) : decodeHex(text);
}

export function parseSecretEncoding(value: string): SecretEncoding {
  const v = value.trim().toLowerCase();
  if (v === 'base32' || v === 'hex') return v;
  throw new FileError('ENCODING_INVALID_OPTION', `Unknown secret encoding ${JSON.stringify(value)}: use base32 or hex.`);
}

export interface EncodingDecision {
  encoding: SecretEncoding;
  /** How it was decided, for the report. */
  decidedBy: 'forced' | 'detected';
}

/**
 * Decides one encoding for all the secrets of a file.
 * - forced: taken as given (invalid rows are then per-row errors);
 * - every non-empty secret valid base32 and at least one invalid hex: base32;
 * - every non-empty secret valid hex and at least one invalid base32: hex;
 * - all valid in both: ambiguous, a file-level error;
 * - neither alphabet covers every secret: the one that covers more rows, so the
 *   rows that do not fit become per-row errors (ties: ENCODING_UNKNOWN).
 */
export function decideEncoding(fileName: string, secrets: readonly string[], forced?: SecretEncoding): EncodingDecision {
  if (forced) return { encoding: forced, decidedBy: 'forced' };
  const present = secrets.filter((s) => s.trim().length > 0);
  if (present.length === 0) return { encoding: 'base32', decidedBy: 'detected' };
  let b32 = 0;
  let hex = 0;
  for (const s of present) {
    if (isValidBase32(s)) b32++;
    if (isValidHex(s)) hex++;
  }
  const n = present.length;
  if (b32 === n && hex === n) {
    throw new FileError(
      'ENCODING_AMBIGUOUS',
      `${fileName}: every secret is valid as both base32 and hex, so the encoding cannot be detected. Run again with --secret-encoding base32 or --secret-encoding hex (blob metadata "secretencoding" in the pipeline).`,
    );
  }
  if (b32 === n) return { encoding: 'base32', decidedBy: 'detected' };
  if (hex === n) return { encoding: 'hex', decidedBy: 'detected' };
  if (b32 === hex) {
    throw new FileError(
      'ENCODING_UNKNOWN',
      `${fileName}: the secrets are neither all base32 nor all hex (${b32} of ${n} rows fit each). Fix the secrets or force an encoding with --secret-encoding base32|hex.`,
    );
  }
  return { encoding: b32 > hex ? 'base32' : 'hex', decidedBy: 'detected' };
}
