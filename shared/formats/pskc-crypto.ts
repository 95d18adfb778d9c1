/**
 * The cryptography of PSKC (RFC 6030 section 6): the algorithm URIs this tool
 * accepts, decryption of EncryptedValue payloads, ValueMAC checks and PBKDF2
 * key derivation. Everything goes through node:crypto.
 */
import { createDecipheriv, createHmac, pbkdf2Sync, timingSafeEqual } from 'node:crypto';

const XMLENC = 'http://www.w3.org/2001/04/xmlenc#';
const XMLDSIG = 'http://www.w3.org/2000/09/xmldsig#';
const XMLDSIG_MORE = 'http://www.w3.org/2001/04/xmldsig-more#';

export interface EncryptionAlgorithm {
  /** Short name for messages (the URI fragment). */
  name: string;
  /** node:crypto cipher name. */
  cipher: string;
  keyBytes: number;
  /** CBC: the IV is the first ivBytes of the CipherValue. Key wrap: RFC 3394's fixed IV is used. */
  mode: 'cbc' | 'key-wrap';
  ivBytes: number;
}

export const ENCRYPTION_ALGORITHMS: ReadonlyMap<string, EncryptionAlgorithm> = new Map([
  [`${XMLENC}aes128-cbc`, { name: 'aes128-cbc', cipher: 'aes-128-cbc', keyBytes: 16, mode: 'cbc', ivBytes: 16 }],
  [`${XMLENC}aes192-cbc`, { name: 'aes192-cbc', cipher: 'aes-192-cbc', keyBytes: 24, mode: 'cbc', ivBytes: 16 }],
  [`${XMLENC}aes256-cbc`, { name: 'aes256-cbc', cipher: 'aes-256-cbc', keyBytes: 32, mode: 'cbc', ivBytes: 16 }],
  [`${XMLENC}tripledes-cbc`, { name: 'tripledes-cbc', cipher: 'des-ede3-cbc', keyBytes: 24, mode: 'cbc', ivBytes: 8 }],
  [`${XMLENC}kw-aes128`, { name: 'kw-aes128', cipher: 'id-aes128-wrap', keyBytes: 16, mode: 'key-wrap', ivBytes: 0 }],
  [`${XMLENC}kw-aes192`, { name: 'kw-aes192', cipher: 'id-aes192-wrap', keyBytes: 24, mode: 'key-wrap', ivBytes: 0 }],
  [`${XMLENC}kw-aes256`, { name: 'kw-aes256', cipher: 'id-aes256-wrap', keyBytes: 32, mode: 'key-wrap', ivBytes: 0 }],
]);

/** HMAC algorithms, by URI, as node:crypto hash names. Used for MACMethod and for the PBKDF2 PRF. */
export const HMAC_ALGORITHMS: ReadonlyMap<string, string> = new Map([
  [`${XMLDSIG}hmac-sha1`, 'sha1'],
  [`${XMLDSIG_MORE}hmac-sha224`, 'sha224'],
  [`${XMLDSIG_MORE}hmac-sha256`, 'sha256'],
  [`${XMLDSIG_MORE}hmac-sha384`, 'sha384'],
  [`${XMLDSIG_MORE}hmac-sha512`, 'sha512'],
]);

/** PKCS #5 v2.0 is what RFC 6030 names; XML Encryption 1.1 defines the same PBKDF2 under its own URI. */
export const PBKDF2_ALGORITHMS: ReadonlySet<string> = new Set([
  'http://www.rsasecurity.com/rsalabs/pkcs/schemas/pkcs-5v2-0#pbkdf2',
  'http://www.w3.org/2009/xmlenc11#pbkdf2',
]);

/** RFC 8018: HMAC-SHA1 when the PRF is not given. */
export const DEFAULT_PBKDF2_HASH = 'sha1';

/** A declared count above this would let a hostile file stall the reader; real files use 1,000 to a few 100,000. */
export const MAX_PBKDF2_ITERATIONS = 2_000_000;

/** RFC 3394 section 2.2.3.1 default initial value. */
const KEY_WRAP_IV = Buffer.from('a6a6a6a6a6a6a6a6', 'hex');

/** Thrown when a value does not decrypt (padding, key wrap integrity, length). Carries no detail on purpose. */
export class DecryptionError extends Error {
  constructor() {
    super('decryption failed');
    this.name = 'DecryptionError';
  }
}

/** Decrypts one CipherValue (already base64-decoded). Throws DecryptionError on any failure. */
export function decryptValue(algorithm: EncryptionAlgorithm, key: Uint8Array, cipherValue: Uint8Array): Buffer {
  if (key.length !== algorithm.keyBytes) throw new DecryptionError();
  try {
    if (algorithm.mode === 'cbc') {
      const body = cipherValue.subarray(algorithm.ivBytes);
      const blockBytes = algorithm.ivBytes;
      if (body.length === 0 || body.length % blockBytes !== 0) throw new DecryptionError();
      const decipher = createDecipheriv(algorithm.cipher, key, cipherValue.subarray(0, algorithm.ivBytes));
      return Buffer.concat([decipher.update(body), decipher.final()]);
    }
    // RFC 3394 wraps whole 64-bit blocks, at least two of them plus the integrity block.
    if (cipherValue.length < 24 || cipherValue.length % 8 !== 0) throw new DecryptionError();
    const decipher = createDecipheriv(algorithm.cipher, key, KEY_WRAP_IV);
    return Buffer.concat([decipher.update(cipherValue), decipher.final()]);
  } catch {
    // node:crypto's messages ("bad decrypt", ...) add nothing for the user and must not leak into reports.
    throw new DecryptionError();
  }
}

/** HMAC over IV || ciphertext (the whole CipherValue), compared in constant time. */
export function macMatches(hash: string, macKey: Uint8Array, cipherValue: Uint8Array, expected: Uint8Array): boolean {
  const actual = createHmac(hash, macKey).update(cipherValue).digest();
  // Lengths are public (they follow from the algorithm), so checking them first leaks nothing.
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

export function derivePbkdf2(password: string, salt: Uint8Array, iterations: number, keyLength: number, hash: string): Buffer {
  return pbkdf2Sync(Buffer.from(password, 'utf8'), salt, iterations, keyLength, hash);
}
