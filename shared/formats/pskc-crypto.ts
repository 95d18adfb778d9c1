/**
 * The cryptography of PSKC (RFC 6030 section 6): the algorithm URIs this tool
 * accepts, decryption of EncryptedValue payloads, ValueMAC checks and PBKDF2
 * key derivation. Everything goes through node:crypto; the only hand-written
 * part is the RFC 3394 / RFC 5649 key-wrap loop for Camellia, whose block
 * cipher node:crypto has but whose key wrap it has not.
 */
import { createDecipheriv, createHmac, pbkdf2Sync, timingSafeEqual, type Decipher } from 'node:crypto';

const XMLENC = 'http://www.w3.org/2001/04/xmlenc#';
const XMLDSIG = 'http://www.w3.org/2000/09/xmldsig#';
const XMLDSIG_MORE = 'http://www.w3.org/2001/04/xmldsig-more#';

export interface EncryptionAlgorithm {
  /** Short name for messages (the URI fragment). */
  name: string;
  /** node:crypto cipher name: the CBC cipher, the key-wrap cipher, or (Camellia key wrap) the ECB block cipher. */
  cipher: string;
  /** Key size in bytes: the one a PBKDF2 derivation without KeyLength produces. */
  keyBytes: number;
  /** Every key size the algorithm takes (3DES also runs with a two-key, 16-byte key). */
  acceptedKeyBytes: readonly number[];
  /**
   * cbc: the IV is the first ivBytes of the CipherValue (or given apart, in the draft layout).
   * key-wrap: node:crypto's key wrap (RFC 3394, RFC 5649 with padding, RFC 3217 for 3DES).
   * key-wrap-ecb: RFC 3394 / RFC 5649 computed here over the ECB block cipher.
   */
  mode: 'cbc' | 'key-wrap' | 'key-wrap-ecb';
  ivBytes: number;
  /** AES key wrap: the RFC 5649 (with padding) cipher, tried when RFC 3394's integrity check fails. */
  paddedCipher?: string;
}

const aesCbc = (bits: 128 | 192 | 256): EncryptionAlgorithm => ({
  name: `aes${bits}-cbc`,
  cipher: `aes-${bits}-cbc`,
  keyBytes: bits / 8,
  acceptedKeyBytes: [bits / 8],
  mode: 'cbc',
  ivBytes: 16,
});
const camelliaCbc = (bits: 128 | 192 | 256): EncryptionAlgorithm => ({
  name: `camellia${bits}-cbc`,
  cipher: `camellia-${bits}-cbc`,
  keyBytes: bits / 8,
  acceptedKeyBytes: [bits / 8],
  mode: 'cbc',
  ivBytes: 16,
});
const aesWrap = (bits: 128 | 192 | 256): EncryptionAlgorithm => ({
  name: `kw-aes${bits}`,
  cipher: `id-aes${bits}-wrap`,
  paddedCipher: `id-aes${bits}-wrap-pad`,
  keyBytes: bits / 8,
  acceptedKeyBytes: [bits / 8],
  mode: 'key-wrap',
  ivBytes: 0,
});
const camelliaWrap = (bits: 128 | 192 | 256): EncryptionAlgorithm => ({
  name: `kw-camellia${bits}`,
  cipher: `camellia-${bits}-ecb`,
  keyBytes: bits / 8,
  acceptedKeyBytes: [bits / 8],
  mode: 'key-wrap-ecb',
  ivBytes: 0,
});
const TRIPLEDES_CBC: EncryptionAlgorithm = {
  name: 'tripledes-cbc',
  cipher: 'des-ede3-cbc',
  keyBytes: 24,
  acceptedKeyBytes: [24, 16],
  mode: 'cbc',
  ivBytes: 8,
};
const TRIPLEDES_WRAP: EncryptionAlgorithm = {
  name: 'kw-tripledes',
  cipher: 'des3-wrap',
  keyBytes: 24,
  acceptedKeyBytes: [24, 16],
  mode: 'key-wrap',
  ivBytes: 0,
};

/**
 * Encryption algorithms by URI. Camellia's URIs are RFC 4051's (xmldsig-more);
 * python-pskc writes its key wrap under the xmlenc namespace, which is read too.
 */
export const ENCRYPTION_ALGORITHMS: ReadonlyMap<string, EncryptionAlgorithm> = new Map([
  [`${XMLENC}aes128-cbc`, aesCbc(128)],
  [`${XMLENC}aes192-cbc`, aesCbc(192)],
  [`${XMLENC}aes256-cbc`, aesCbc(256)],
  [`${XMLENC}tripledes-cbc`, TRIPLEDES_CBC],
  [`${XMLENC}kw-aes128`, aesWrap(128)],
  [`${XMLENC}kw-aes192`, aesWrap(192)],
  [`${XMLENC}kw-aes256`, aesWrap(256)],
  [`${XMLENC}kw-tripledes`, TRIPLEDES_WRAP],
  [`${XMLDSIG_MORE}camellia128-cbc`, camelliaCbc(128)],
  [`${XMLDSIG_MORE}camellia192-cbc`, camelliaCbc(192)],
  [`${XMLDSIG_MORE}camellia256-cbc`, camelliaCbc(256)],
  [`${XMLDSIG_MORE}kw-camellia128`, camelliaWrap(128)],
  [`${XMLDSIG_MORE}kw-camellia192`, camelliaWrap(192)],
  [`${XMLDSIG_MORE}kw-camellia256`, camelliaWrap(256)],
  [`${XMLENC}kw-camellia128`, camelliaWrap(128)],
  [`${XMLENC}kw-camellia192`, camelliaWrap(192)],
  [`${XMLENC}kw-camellia256`, camelliaWrap(256)],
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
/** RFC 5649 section 3: the alternative initial value's fixed half. */
const PADDED_KEY_WRAP_PREFIX = Buffer.from('a65959a6', 'hex');

/** Thrown when a value does not decrypt (padding, key wrap integrity, length). Carries no detail on purpose. */
export class DecryptionError extends Error {
  constructor() {
    super('decryption failed');
    this.name = 'DecryptionError';
  }
}

/** A two-key (16-byte) 3DES key is K1 K2 K1 as a three-key one; node:crypto's des-ede3 ciphers take 24 bytes. */
function cipherKey(algorithm: EncryptionAlgorithm, key: Uint8Array): Uint8Array {
  if (algorithm.keyBytes === 24 && algorithm.acceptedKeyBytes.includes(16) && key.length === 16)
    return Buffer.concat([key, key.subarray(0, 8)]);
  return key;
}

function finish(decipher: Decipher, data: Uint8Array): Buffer {
  return Buffer.concat([decipher.update(data), decipher.final()]);
}

/**
 * Decrypts one CipherValue (already base64-decoded). `iv` is given apart only
 * by the pre-RFC draft layout, whose values do not start with their IV.
 * Throws DecryptionError on any failure.
 */
export function decryptValue(algorithm: EncryptionAlgorithm, key: Uint8Array, cipherValue: Uint8Array, iv?: Uint8Array): Buffer {
  if (!algorithm.acceptedKeyBytes.includes(key.length)) throw new DecryptionError();
  const k = cipherKey(algorithm, key);
  try {
    if (algorithm.mode === 'cbc') {
      const blockBytes = algorithm.ivBytes;
      const givenIv = iv !== undefined && iv.length === blockBytes ? iv : undefined;
      if (iv !== undefined && !givenIv) throw new DecryptionError();
      const body = givenIv ? cipherValue : cipherValue.subarray(blockBytes);
      if (body.length === 0 || body.length % blockBytes !== 0) throw new DecryptionError();
      return finish(createDecipheriv(algorithm.cipher, k, givenIv ?? cipherValue.subarray(0, blockBytes)), body);
    }
    // Key wrap works on whole 64-bit blocks: at least the integrity block and one more.
    if (cipherValue.length < 16 || cipherValue.length % 8 !== 0) throw new DecryptionError();
    if (algorithm.mode === 'key-wrap-ecb') return unwrapOverEcb(algorithm.cipher, k, cipherValue);
    if (algorithm.cipher === 'des3-wrap') return finish(createDecipheriv(algorithm.cipher, k, Buffer.alloc(0)), cipherValue);
    try {
      return finish(createDecipheriv(algorithm.cipher, k, KEY_WRAP_IV), cipherValue);
    } catch (err) {
      // A value wrapped with padding (RFC 5649, for lengths that are not whole blocks) fails RFC 3394's check.
      if (!algorithm.paddedCipher) throw err;
      return finish(createDecipheriv(algorithm.paddedCipher, k, PADDED_KEY_WRAP_PREFIX), cipherValue);
    }
  } catch {
    // node:crypto's messages ("bad decrypt", ...) add nothing for the user and must not leak into reports.
    throw new DecryptionError();
  }
}

/**
 * RFC 3394 key unwrap (and RFC 5649's padded form, told apart by the initial
 * value) over an ECB block cipher with 16-byte blocks. Used for Camellia,
 * whose key wrap (RFC 3657) is RFC 3394 with Camellia as the block cipher.
 */
export function unwrapOverEcb(ecbCipher: string, key: Uint8Array, wrapped: Uint8Array): Buffer {
  const blocks = wrapped.length / 8 - 1;
  if (!Number.isInteger(blocks) || blocks < 1) throw new DecryptionError();
  const decryptBlock = (block: Buffer): Buffer => {
    const decipher = createDecipheriv(ecbCipher, key, null);
    decipher.setAutoPadding(false);
    return finish(decipher, block);
  };
  let a: Buffer = Buffer.from(wrapped.subarray(0, 8));
  const r: Buffer[] = Array.from({ length: blocks }, (_, i) => Buffer.from(wrapped.subarray(8 * (i + 1), 8 * (i + 2))));
  if (blocks === 1) {
    // RFC 5649 section 4.2: one block wraps with a single ECB decryption.
    const plain = decryptBlock(Buffer.concat([a, r[0]!]));
    a = plain.subarray(0, 8);
    r[0] = plain.subarray(8);
  } else {
    const t = Buffer.alloc(8);
    for (let j = 5; j >= 0; j--) {
      for (let i = blocks; i >= 1; i--) {
        t.writeBigUInt64BE(BigInt(blocks * j + i));
        for (let b = 0; b < 8; b++) a[b]! ^= t[b]!;
        const plain = decryptBlock(Buffer.concat([a, r[i - 1]!]));
        a = plain.subarray(0, 8);
        r[i - 1] = plain.subarray(8);
      }
    }
  }
  const data = Buffer.concat(r);
  if (timingSafeEqual(a, KEY_WRAP_IV) && blocks > 1) return data;
  // RFC 5649: A = A65959A6 || 32-bit length; the padding (at most 7 bytes) must be zeros.
  if (!a.subarray(0, 4).equals(PADDED_KEY_WRAP_PREFIX)) throw new DecryptionError();
  const length = a.readUInt32BE(4);
  if (length > data.length || length <= data.length - 8 || !data.subarray(length).every((byte) => byte === 0)) throw new DecryptionError();
  return data.subarray(0, length);
}

/** HMAC over the given bytes (IV || ciphertext in RFC 6030; the plaintext in the old draft), compared in constant time. */
export function macMatches(hash: string, macKey: Uint8Array, data: Uint8Array, expected: Uint8Array): boolean {
  const actual = createHmac(hash, macKey).update(data).digest();
  // Lengths are public (they follow from the algorithm), so checking them first leaks nothing.
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

export function derivePbkdf2(password: string, salt: Uint8Array, iterations: number, keyLength: number, hash: string): Buffer {
  return pbkdf2Sync(Buffer.from(password, 'utf8'), salt, iterations, keyLength, hash);
}
