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

/** Base32 digit values by character code (either case), -1 outside the alphabet. */
const BASE32_VALUES = (() => {
  const values = new Int8Array(128).fill(-1);
  for (let v = 0; v < 32; v++) {
    const c = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'.charCodeAt(v);
    values[c] = v;
    if (v < 26) values[c + 32] = v;
  }
  return values;
})();
const HEX_VALUES = (() => {
  const values = new Int8Array(128).fill(-1);
  for (let v = 0; v < 16; v++) {
    values['0123456789abcdef'.charCodeAt(v)] = v;
    values['0123456789ABCDEF'.charCodeAt(v)] = v;
  }
  return values;
})();
const PAD = 0x3d;

/** The separators vendors put between groups: white space (as /\s/ has it) and dashes. */
function isSeparator(c: number, text: string, i: number): boolean {
  if (c < 128) return c === 0x20 || c === 0x2d || (c >= 0x09 && c <= 0x0d);
  return /\s/.test(text[i]!);
}

/**
 * The length of the base32 body (the digits, without separators and padding), or undefined when
 * the text is not base32. One pass over the characters, where a regular expression per rule would
 * make several (a file of 100,000 secrets runs this twice per secret).
 */
function base32BodyLength(text: string): number | undefined {
  let body = 0;
  let pad = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === PAD) pad++;
    else if (c < 128 && BASE32_VALUES[c]! >= 0) {
      // Padding, when present, only ends the text.
      if (pad > 0) return undefined;
      body++;
    } else if (!isSeparator(c, text, i)) return undefined;
  }
  if (body === 0) return undefined;
  // Padding, when present, must complete an 8-character block.
  if (pad > 0 && (body + pad) % 8 !== 0) return undefined;
  // Lengths 1, 3 and 6 (mod 8) cannot come from whole bytes.
  const partial = body % 8;
  if (partial === 1 || partial === 3 || partial === 6) return undefined;
  return body;
}

export function isValidBase32(text: string): boolean {
  return base32BodyLength(text) !== undefined;
}

/** The number of hex digits, or undefined when the text is not hex (a digit outside the alphabet, an odd count). */
function hexDigitCount(text: string): number | undefined {
  let digits = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 128 && HEX_VALUES[c]! >= 0) digits++;
    else if (!isSeparator(c, text, i)) return undefined;
  }
  return digits > 0 && digits % 2 === 0 ? digits : undefined;
}

export function isValidHex(text: string): boolean {
  return hexDigitCount(text) !== undefined;
}

/**
 * Decodes base32 in any case, grouped, with or without padding. Returns undefined when invalid.
 * Vendors' secrets (and Microsoft's own example) sometimes end in a character whose unused low
 * bits are set. They carry no key material and are dropped, as lenient decoders do.
 */
export function decodeBase32(text: string): Uint8Array | undefined {
  const body = base32BodyLength(text);
  if (body === undefined) return undefined;
  const out = new Uint8Array(Math.floor((body * 5) / 8));
  let bits = 0;
  let acc = 0;
  let at = 0;
  for (let i = 0; i < text.length && at < out.length; i++) {
    const c = text.charCodeAt(i);
    const v = c < 128 ? BASE32_VALUES[c]! : -1;
    if (v < 0) continue;
    acc = ((acc << 5) | v) & 0x1fff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out[at++] = (acc >> bits) & 0xff;
    }
  }
  return out;
}

export function decodeHex(text: string): Uint8Array | undefined {
  const digits = hexDigitCount(text);
  if (digits === undefined) return undefined;
  const out = new Uint8Array(digits / 2);
  let at = 0;
  let high = -1;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const v = c < 128 ? HEX_VALUES[c]! : -1;
    if (v < 0) continue;
    if (high < 0) high = v;
    else {
      out[at++] = (high << 4) | v;
      high = -1;
    }
  }
  return out;
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
  const tally = new EncodingTally();
  for (const s of secrets) tally.add(s);
  return tally.decide(fileName);
}

/** Which alphabets one secret text is valid in. */
export interface SecretFit {
  base32: boolean;
  hex: boolean;
}

/**
 * decideEncoding's counts, kept as the rows of a file go by, so a reader that
 * streams its rows decides after the last one without keeping every secret.
 */
export class EncodingTally {
  private present = 0;
  private base32 = 0;
  private hex = 0;

  /** Counts one secret text (blank ones do not count) and says which alphabets it fits. */
  add(secret: string): SecretFit {
    if (secret.trim().length === 0) return { base32: false, hex: false };
    const fit = { base32: isValidBase32(secret), hex: isValidHex(secret) };
    this.present++;
    if (fit.base32) this.base32++;
    if (fit.hex) this.hex++;
    return fit;
  }

  decide(fileName: string): EncodingDecision {
    const { present: n, base32: b32, hex } = this;
    if (n === 0) return { encoding: 'base32', decidedBy: 'detected' };
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
}
