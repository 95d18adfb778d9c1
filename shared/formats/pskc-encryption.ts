/**
 * The keys of a PSKC file (RFC 6030 section 6): which key the file needs,
 * PBKDF2 derivation, the MAC checks and the decryption of every encrypted
 * value, all checked before anything is decrypted. The primitives are in
 * pskc-crypto.ts.
 */
import { FileError, quoteValue } from '../core/problems.js';
import {
  DEFAULT_PBKDF2_HASH,
  DecryptionError,
  ENCRYPTION_ALGORITHMS,
  HMAC_ALGORITHMS,
  MAX_PBKDF2_ITERATIONS,
  PBKDF2_ALGORITHMS,
  decryptValue,
  derivePbkdf2,
  macMatches,
  type EncryptionAlgorithm,
} from './pskc-crypto.js';
import {
  DSIG_NS,
  PSKC_NS,
  XENC11_NS,
  XENC_NS,
  child,
  childByLocalName,
  decodeBase64,
  malformed,
  parseXmlInteger,
  quoteUri,
  type XmlElement,
} from './pskc-xml.js';
import type { ReadOptions } from './types.js';

const DECRYPTION_FAILED_TEXT = 'wrong transport key or password, or the file was altered';

/** One encrypted value of the file (a Data field or the MACKey), decrypted in place by decryptAll. */
export interface EncryptedValue {
  algorithmUri: string;
  cipherValue: Buffer;
  valueMac: Buffer | undefined;
  /** For messages: "the Secret of key 123". */
  what: string;
  line: number | undefined;
  /** The pre-RFC draft layout gives the CBC IV once for the file; RFC 6030 values start with their own. */
  iv?: Buffer;
  /** Set once decrypted. */
  plaintext?: Buffer;
}

/** Reads an xenc EncryptedValue-shaped element (EncryptionMethod and CipherData). */
export function readEncrypted(fileName: string, element: XmlElement, what: string, line: number | undefined): EncryptedValue {
  const method = child(element, XENC_NS, 'EncryptionMethod');
  if (!method) {
    throw malformed(fileName, `${what} is encrypted but has no xenc:EncryptionMethod, so its encryption algorithm is unknown.`, line);
  }
  const algorithmUri = method.attrs['Algorithm']?.trim();
  if (!algorithmUri) throw malformed(fileName, `the xenc:EncryptionMethod of ${what} has no Algorithm.`, line);
  const cipherData = child(element, XENC_NS, 'CipherData');
  if (child(cipherData, XENC_NS, 'CipherReference')) {
    throw new FileError(
      'PSKC_UNSUPPORTED_ALGORITHM',
      `${fileName}: ${what} uses an xenc:CipherReference; only inline CipherValue is supported.`,
      line,
    );
  }
  const cipherText = child(cipherData, XENC_NS, 'CipherValue')?.text;
  if (cipherText === undefined) throw malformed(fileName, `${what} has no xenc:CipherData/xenc:CipherValue.`, line);
  const cipherValue = decodeBase64(cipherText);
  if (!cipherValue || cipherValue.length === 0) throw malformed(fileName, `the CipherValue of ${what} is not base64.`, line);
  return { algorithmUri, cipherValue, valueMac: undefined, what, line };
}

export interface KeyNeed {
  kind: 'psk' | 'password';
  keyName: string | undefined;
}

export interface Pbkdf2Parameters {
  salt: Buffer;
  iterations: number;
  keyLength: number | undefined;
  hash: string;
}

export interface MacSetup {
  /** node:crypto hash name. */
  hash: string;
  /** The encrypted MAC key (RFC 6030 MACKey); without it the MAC is keyed with the transport key itself. */
  keyValue: EncryptedValue | undefined;
}

/**
 * How a file's values are keyed and authenticated, read from the layout's
 * own elements (RFC 6030's EncryptionKey and MACMethod, or the old draft's
 * EncryptionMethod and DigestMethod). Each part is read when decryptAll gets
 * to it, so the checks keep their order: algorithms, MAC presence, key.
 */
export interface Keying {
  need(): KeyNeed;
  mac(fileName: string): MacSetup | undefined;
  pbkdf2(fileName: string): Pbkdf2Parameters | undefined;
  /** The old draft computed ValueDigest over the plaintext; RFC 6030's ValueMAC covers IV and ciphertext. */
  macOverPlaintext: boolean;
}

/** RFC 6030 section 6: EncryptionKey (ds:KeyName or xenc11:DerivedKey) and MACMethod. */
export function rfcKeying(container: XmlElement): Keying {
  const encryptionKey = child(container, PSKC_NS, 'EncryptionKey');
  const derivedKey = child(encryptionKey, XENC11_NS, 'DerivedKey');
  return {
    need() {
      if (derivedKey) {
        const name = child(derivedKey, XENC11_NS, 'MasterKeyName')?.text.trim();
        return { kind: 'password', keyName: name || undefined };
      }
      const name = child(encryptionKey, DSIG_NS, 'KeyName')?.text.trim();
      return { kind: 'psk', keyName: name || undefined };
    },
    mac(fileName) {
      const macMethod = child(container, PSKC_NS, 'MACMethod');
      // draft-ietf-keyprov-pskc-02 named the algorithm in MACAlgorithm, keyed with the transport key.
      const macAlgorithm = child(container, PSKC_NS, 'MACAlgorithm')?.text.trim();
      if (!macMethod && macAlgorithm) return { hash: macHash(fileName, macAlgorithm, 'MAC algorithm'), keyValue: undefined };
      if (!macMethod) return undefined;
      const macKey = child(macMethod, PSKC_NS, 'MACKey');
      return {
        hash: macHash(fileName, macMethod.attrs['Algorithm']?.trim() ?? '', 'MAC algorithm'),
        keyValue: macKey ? readEncrypted(fileName, macKey, 'the MACKey', undefined) : undefined,
      };
    },
    pbkdf2: (fileName) => (derivedKey ? pbkdf2Parameters(fileName, derivedKey) : undefined),
    macOverPlaintext: false,
  };
}

function unsupported(fileName: string, what: string, uri: string, supported: Iterable<string>): FileError {
  const names = [...new Set([...supported].map((u) => u.slice(u.indexOf('#') + 1)))].join(', ');
  return new FileError('PSKC_UNSUPPORTED_ALGORITHM', `${fileName}: the ${what} ${quoteUri(uri)} is not supported (supported: ${names}).`);
}

export function encryptionAlgorithm(fileName: string, uri: string): EncryptionAlgorithm {
  const algorithm = ENCRYPTION_ALGORITHMS.get(uri);
  if (!algorithm) throw unsupported(fileName, 'encryption algorithm', uri, ENCRYPTION_ALGORITHMS.keys());
  return algorithm;
}

export function macHash(fileName: string, uri: string, what: string): string {
  const hash = HMAC_ALGORITHMS.get(uri);
  if (!hash) throw unsupported(fileName, what, uri, HMAC_ALGORITHMS.keys());
  return hash;
}

/** Checks an iteration count against the limit that keeps a hostile file from stalling the reader. */
export function checkIterations(fileName: string, iterations: number | undefined): number {
  if (iterations === undefined || iterations < 1)
    throw malformed(fileName, 'the PBKDF2 IterationCount is missing or not a positive whole number.');
  if (iterations > MAX_PBKDF2_ITERATIONS) {
    throw malformed(fileName, `the PBKDF2 IterationCount ${iterations} is above this tool's limit of ${MAX_PBKDF2_ITERATIONS}.`);
  }
  return iterations;
}

function pbkdf2Parameters(fileName: string, derivedKey: XmlElement): Pbkdf2Parameters {
  const method = child(derivedKey, XENC11_NS, 'KeyDerivationMethod');
  if (!method) throw malformed(fileName, 'the DerivedKey has no xenc11:KeyDerivationMethod.');
  const uri = method.attrs['Algorithm']?.trim() ?? '';
  if (!PBKDF2_ALGORITHMS.has(uri)) throw unsupported(fileName, 'key derivation method', uri, ['#pbkdf2']);
  const params = childByLocalName(method, 'PBKDF2-params');
  if (!params) throw malformed(fileName, 'the PBKDF2 key derivation has no PBKDF2-params.');
  const saltElement = childByLocalName(params, 'Salt');
  const specified = childByLocalName(saltElement, 'Specified');
  if (!specified) {
    if (childByLocalName(saltElement, 'OtherSource'))
      throw new FileError(
        'PSKC_UNSUPPORTED_ALGORITHM',
        `${fileName}: the PBKDF2 salt comes from an OtherSource; only a Specified salt is supported.`,
      );
    throw malformed(fileName, 'the PBKDF2 parameters have no Salt/Specified value.');
  }
  const salt = decodeBase64(specified.text);
  if (!salt || salt.length === 0) throw malformed(fileName, 'the PBKDF2 salt is not base64.');
  const iterations = checkIterations(fileName, parseXmlInteger(childByLocalName(params, 'IterationCount')?.text ?? ''));
  const keyLengthText = childByLocalName(params, 'KeyLength')?.text;
  const keyLength = keyLengthText === undefined ? undefined : parseXmlInteger(keyLengthText);
  if (keyLength !== undefined && (keyLength < 1 || keyLength > 64))
    throw malformed(fileName, 'the PBKDF2 KeyLength is not a key size in bytes.');
  if (keyLengthText !== undefined && keyLength === undefined) throw malformed(fileName, 'the PBKDF2 KeyLength is not a whole number.');
  const prfUri = childByLocalName(params, 'PRF')?.attrs['Algorithm']?.trim();
  const hash = prfUri ? macHash(fileName, prfUri, 'PBKDF2 PRF') : DEFAULT_PBKDF2_HASH;
  return { salt, iterations, keyLength, hash };
}

function keyRequired(fileName: string, need: KeyNeed, given: 'psk' | 'password' | undefined): FileError {
  const named = need.keyName ? ` named ${quoteValue(need.keyName)}` : '';
  const kind = need.kind === 'psk' ? `a pre-shared key${named} (hex)` : `a password${named}`;
  const mismatch = given ? ` A ${given === 'psk' ? 'pre-shared key' : 'password'} was given, which this file does not use.` : '';
  return new FileError('PSKC_KEY_REQUIRED', `${fileName}: the file is encrypted and needs ${kind}.${mismatch}`);
}

function decryptionFailed(fileName: string, detail = ''): FileError {
  return new FileError('PSKC_DECRYPTION_FAILED', `${fileName}: ${DECRYPTION_FAILED_TEXT}${detail ? ` (${detail})` : ''}.`);
}

/**
 * CBC has no integrity of its own: without a MAC, whether a tampered value
 * decrypts to valid padding (tokens) or not (an error) is a padding oracle
 * that recovers plaintext. So a CBC value without a ValueMAC, whether the
 * file has no MACMethod or one value's MAC was removed, refuses the file
 * before any key is derived or anything decrypted, with the same answer
 * whatever the key and the ciphertext.
 */
function refuseUnauthenticatedCbc(fileName: string, values: readonly EncryptedValue[], hasMacMethod: boolean): void {
  const unprotected = values.filter((v) => !v.valueMac && ENCRYPTION_ALGORITHMS.get(v.algorithmUri)?.mode === 'cbc');
  if (unprotected.length === 0) return;
  const first = unprotected[0]!;
  const cipher = ENCRYPTION_ALGORITHMS.get(first.algorithmUri)!.name;
  const what = hasMacMethod
    ? `${first.what} (${cipher}) has no ValueMAC although the file declares a MACMethod${unprotected.length > 1 ? `, and ${unprotected.length - 1} more value(s) lack one too` : ''}: the file was altered or damaged`
    : `the file encrypts ${unprotected.length} value(s) with ${cipher} but carries no MAC (no MACMethod and no ValueMAC), so an altered file could not be detected`;
  throw new FileError(
    'PSKC_MAC_REQUIRED',
    `${fileName}: ${what}. It is refused before decryption. Ask the vendor for a MAC-protected file (a MACMethod and a ValueMAC on every encrypted value), or one using AES key wrap.`,
    hasMacMethod ? first.line : undefined,
  );
}

function keySizes(sizes: readonly number[]): string {
  return sizes.map((n) => `${n}-byte`).join(' or ');
}

/**
 * Decrypts every encrypted value in place, or throws one file-level error.
 * All algorithms and the presence of MACs on CBC values are checked first,
 * then the key, then every MAC, and only then does anything get decrypted.
 * The one exception is the old draft's MAC over the plaintext, which can only
 * be checked after decryption; a bad padding and a bad MAC then give the same
 * answer, so the order reveals nothing.
 */
export function decryptAll(fileName: string, keying: Keying, values: EncryptedValue[], opts: ReadOptions): void {
  const mac = keying.mac(fileName);
  const everyCipherValue = mac?.keyValue ? [mac.keyValue, ...values] : values;
  for (const value of everyCipherValue) encryptionAlgorithm(fileName, value.algorithmUri);
  if (!mac) {
    const orphan = values.find((v) => v.valueMac);
    if (orphan)
      throw malformed(
        fileName,
        `${orphan.what} has a ValueMAC but the file declares no MACMethod, so the MAC algorithm is unknown.`,
        orphan.line,
      );
  }
  refuseUnauthenticatedCbc(fileName, values, mac !== undefined);

  const need = keying.need();
  const pbkdf2 = need.kind === 'password' ? keying.pbkdf2(fileName) : undefined;
  const given = opts.psk ? 'psk' : opts.password !== undefined ? 'password' : undefined;
  const haveKey = need.kind === 'psk' ? opts.psk !== undefined : opts.password !== undefined;
  if (!haveKey) throw keyRequired(fileName, need, given);

  const first = encryptionAlgorithm(fileName, everyCipherValue[0]!.algorithmUri);
  let accepted = first.acceptedKeyBytes;
  for (const value of everyCipherValue) {
    const algorithm = encryptionAlgorithm(fileName, value.algorithmUri);
    accepted = accepted.filter((n) => algorithm.acceptedKeyBytes.includes(n));
    if (accepted.length === 0)
      throw malformed(fileName, 'the encrypted values use algorithms with different key sizes under one transport key.');
    if (pbkdf2?.keyLength !== undefined && !algorithm.acceptedKeyBytes.includes(pbkdf2.keyLength)) {
      throw malformed(
        fileName,
        `the PBKDF2 KeyLength is ${pbkdf2.keyLength} bytes but ${algorithm.name} needs ${keySizes(algorithm.acceptedKeyBytes)}.`,
      );
    }
  }
  let fileKey: Uint8Array;
  if (pbkdf2) {
    fileKey = derivePbkdf2(opts.password!, pbkdf2.salt, pbkdf2.iterations, pbkdf2.keyLength ?? accepted[0]!, pbkdf2.hash);
  } else {
    fileKey = opts.psk!;
    if (!accepted.includes(fileKey.length)) {
      throw decryptionFailed(
        fileName,
        `the file's ${first.name} needs a ${keySizes(accepted)} key; the key given has ${fileKey.length} bytes`,
      );
    }
  }

  try {
    const decrypt = (value: EncryptedValue): Buffer =>
      decryptValue(encryptionAlgorithm(fileName, value.algorithmUri), fileKey, value.cipherValue, value.iv);
    // Old drafts had no MACKey: the MAC is keyed with the encryption key itself.
    const macKey = mac ? (mac.keyValue ? decrypt(mac.keyValue) : fileKey) : undefined;
    // Key-wrapped values without a ValueMAC pass: key wrap checks their integrity itself. CBC ones were refused above.
    const macOverCipher = (value: EncryptedValue) => !value.valueMac || macMatches(mac!.hash, macKey!, value.cipherValue, value.valueMac);
    if (!keying.macOverPlaintext) {
      for (const value of values) if (!macOverCipher(value)) throw new DecryptionError();
    }
    for (const value of values) value.plaintext = decrypt(value);
    if (keying.macOverPlaintext) {
      for (const value of values) {
        if (!macOverCipher(value) && !macMatches(mac!.hash, macKey!, value.plaintext!, value.valueMac!)) throw new DecryptionError();
      }
    }
  } catch (err) {
    if (err instanceof DecryptionError) throw decryptionFailed(fileName);
    throw err;
  }
}
