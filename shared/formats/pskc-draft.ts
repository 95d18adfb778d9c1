/**
 * The pre-RFC 6030 layout of the keyprov drafts
 * (draft-hoyer-keyprov-portable-symmetric-key-container and its successors),
 * which older ActivIdentity exports still use. Read into the same key entries
 * as RFC 6030 files; the differences, written down in docs/formats/pskc.md:
 * - Device / DeviceId / Key KeyId KeyAlgorithm instead of KeyPackage /
 *   DeviceInfo / Key Id Algorithm;
 * - one EncryptionMethod for the whole file (an Algorithm URI and maybe an IV,
 *   or a PBE-3DES112-CBC password scheme) instead of EncryptionKey, and
 *   DigestMethod instead of MACMethod, the MAC keyed with the transport key;
 * - Data Name="SECRET" (COUNTER, TIME, TIME_INTERVAL, TIME_DRIFT) holding a
 *   Value, encrypted when the file names an encryption method and the Value
 *   has a ValueDigest (else plain), and that digest may cover the plaintext;
 * - Usage attributes (OTP="true") and ResponseFormat Format/Length.
 */
import { FileError, quoteValue } from '../core/problems.js';
import { checkIterations, macHash, type EncryptedValue, type KeyNeed, type Keying, type Pbkdf2Parameters } from './pskc-encryption.js';
import type { DataField, KeyEntry, PolicyEntry, PskcDocument } from './pskc-parse.js';
import { usagesOf } from './pskc-policy.js';
import {
  KeyPackageLines,
  child,
  childrenNamed,
  decodeBase64,
  draftAttribute,
  malformed,
  parseXmlInteger,
  repeatedChildren,
  type XmlElement,
} from './pskc-xml.js';

export const DRAFT_NAMESPACES: ReadonlySet<string> = new Set([
  'urn:ietf:params:xml:ns:keyprov:container:1.0',
  'urn:ietf:params:xml:ns:keyprov:container',
]);

const XMLENC = 'http://www.w3.org/2001/04/xmlenc#';

/** The drafts' password scheme: PBKDF2 (HMAC-SHA1) into a two-key 3DES key for CBC. */
const PBE_SCHEMES: ReadonlyMap<string, { cipherUri: string; keyLength: number }> = new Map([
  ['PBE-3DES112-CBC', { cipherUri: `${XMLENC}tripledes-cbc`, keyLength: 16 }],
]);

/** The drafts name MACs by URI or by a short name. */
const DIGEST_NAMES: ReadonlyMap<string, string> = new Map([
  ['HMAC-SHA1', 'http://www.w3.org/2000/09/xmldsig#hmac-sha1'],
  ['HMAC-SHA256', 'http://www.w3.org/2001/04/xmldsig-more#hmac-sha256'],
  ['HMAC-SHA512', 'http://www.w3.org/2001/04/xmldsig-more#hmac-sha512'],
]);

const DATA_NAMES: ReadonlyMap<string, DataField> = new Map([
  ['SECRET', 'Secret'],
  ['COUNTER', 'Counter'],
  ['TIME', 'Time'],
  ['TIME_INTERVAL', 'TimeInterval'],
  ['TIME_DRIFT', 'TimeDrift'],
]);

interface EncryptionMethod {
  cipherUri: string;
  iv: Buffer | undefined;
  pbe: { salt: Buffer; iterations: number; keyLength: number } | undefined;
}

function readEncryptionMethod(fileName: string, element: XmlElement | undefined, ns: string): EncryptionMethod | undefined {
  if (!element) return undefined;
  const algorithm = draftAttribute(element, 'Algorithm');
  if (!algorithm) throw malformed(fileName, 'the EncryptionMethod has no Algorithm.');
  const ivText = child(element, ns, 'IV')?.text;
  const iv = ivText === undefined ? undefined : decodeBase64(ivText);
  if (ivText !== undefined && (!iv || iv.length === 0)) throw malformed(fileName, 'the EncryptionMethod IV is not base64.');
  const scheme = PBE_SCHEMES.get(algorithm);
  if (scheme) {
    const salt = decodeBase64(child(element, ns, 'PBESalt')?.text ?? '');
    if (!salt || salt.length === 0) throw malformed(fileName, 'the PBE EncryptionMethod has no base64 PBESalt.');
    const iterations = checkIterations(fileName, parseXmlInteger(child(element, ns, 'PBEIterationCount')?.text ?? ''));
    return { cipherUri: scheme.cipherUri, iv, pbe: { salt, iterations, keyLength: scheme.keyLength } };
  }
  if (/^PBE-/i.test(algorithm)) {
    // A password scheme whose key size and cipher this tool cannot be sure of: refused by name.
    throw new FileError(
      'PSKC_UNSUPPORTED_ALGORITHM',
      `${fileName}: the draft password scheme ${/^PBE-[A-Za-z0-9]{1,10}-[A-Za-z]{3}$/.test(algorithm) ? quoteValue(algorithm) : 'given'} is not supported (supported: ${[...PBE_SCHEMES.keys()].join(', ')}, or an XML Encryption algorithm URI with a pre-shared key).`,
    );
  }
  return { cipherUri: algorithm, iv, pbe: undefined };
}

function draftKeying(root: XmlElement, method: EncryptionMethod | undefined): Keying {
  const digest = childrenNamed(root, root.ns, 'DigestMethod')[0];
  return {
    need: () => ({ kind: method?.pbe ? 'password' : 'psk', keyName: undefined }),
    mac(fileName) {
      if (!digest) return undefined;
      const named = draftAttribute(digest, 'Algorithm') ?? '';
      const uri = DIGEST_NAMES.get(named.toUpperCase()) ?? named;
      return { hash: macHash(fileName, uri, 'DigestMethod algorithm'), keyValue: undefined };
    },
    pbkdf2: (): Pbkdf2Parameters | undefined =>
      method?.pbe ? { salt: method.pbe.salt, iterations: method.pbe.iterations, keyLength: method.pbe.keyLength, hash: 'sha1' } : undefined,
    macOverPlaintext: true,
  };
}

function readPolicy(key: XmlElement): PolicyEntry | undefined {
  const usage = child(key, key.ns, 'Usage');
  const start = child(key, key.ns, 'StartDate')?.text;
  const expiry = child(key, key.ns, 'ExpiryDate')?.text;
  if (!usage && start === undefined && expiry === undefined) return undefined;
  const policy: PolicyEntry = { keyUsage: usagesOf(usage), unknownItems: 0 };
  if (start !== undefined) policy.startDate = start;
  if (expiry !== undefined) policy.expiryDate = expiry;
  return policy;
}

/** The draft's values are encrypted when the file names an EncryptionMethod and a Value carries a ValueDigest. */
export function draftKeyNeed(root: XmlElement): { encrypted: false } | { encrypted: true; need: KeyNeed } {
  const ns = root.ns;
  const method = child(root, ns, 'EncryptionMethod');
  const digested = childrenNamed(root, ns, 'Device').some((device) =>
    childrenNamed(device, ns, 'Key').some((key) =>
      childrenNamed(key, ns, 'Data').some((data) => child(data, ns, 'ValueDigest') !== undefined),
    ),
  );
  if (!method || !digested) return { encrypted: false };
  return {
    encrypted: true,
    need: { kind: /^PBE-/i.test(draftAttribute(method, 'Algorithm') ?? '') ? 'password' : 'psk', keyName: undefined },
  };
}

/** Reads a container of the draft layout into entries; the value encryption follows the file's one EncryptionMethod. */
export function readDraftContainer(fileName: string, text: string, root: XmlElement): PskcDocument {
  const ns = root.ns;
  const version = draftAttribute(root, 'Version');
  if (version !== undefined && version !== '1.0' && version !== '1') {
    throw malformed(
      fileName,
      `the draft KeyContainer's version is ${/^\d{1,3}(?:\.\d{1,3}){0,2}$/.test(version) ? quoteValue(version) : 'not a version number'}; only 1.0 is supported.`,
    );
  }
  const method = readEncryptionMethod(fileName, child(root, ns, 'EncryptionMethod'), ns);
  const devices = childrenNamed(root, ns, 'Device');
  const lines = new KeyPackageLines(text, devices.length, 'Device');
  const entries: KeyEntry[] = [];
  devices.forEach((device, packageIndex) => {
    const deviceId = child(device, ns, 'DeviceId');
    const line = lines.of(packageIndex);
    for (const key of childrenNamed(device, ns, 'Key')) {
      const serial = child(deviceId, ns, 'SerialNo')?.text.trim() || (draftAttribute(key, 'KeyId') ?? '');
      const responseFormat = child(child(key, ns, 'Usage'), ns, 'ResponseFormat');
      const data: KeyEntry['data'] = {};
      // Read once each: a second copy would be dropped (or win) without a word, so it is named instead.
      const repeated = [
        ...repeatedChildren(device, ns, ['DeviceId']),
        ...repeatedChildren(deviceId, ns, ['SerialNo', 'Manufacturer', 'Model']),
        ...repeatedChildren(key, ns, ['Usage']),
      ];
      for (const element of childrenNamed(key, ns, 'Data')) {
        const field = DATA_NAMES.get((draftAttribute(element, 'Name') ?? '').toUpperCase());
        const valueText = child(element, ns, 'Value')?.text;
        if (!field || valueText === undefined) continue;
        if (data[field] !== undefined) {
          repeated.push(field);
          continue;
        }
        repeated.push(...repeatedChildren(element, ns, ['Value', 'ValueDigest']).map((name) => `${field} ${name}`));
        const what = `the ${field} of Device ${packageIndex + 1}`;
        const digestText = child(element, ns, 'ValueDigest')?.text;
        if (method && digestText !== undefined) {
          const cipherValue = decodeBase64(valueText);
          const valueMac = decodeBase64(digestText);
          if (!cipherValue || cipherValue.length === 0) throw malformed(fileName, `the Value of ${what} is not base64.`, line);
          if (!valueMac) throw malformed(fileName, `the ValueDigest of ${what} is not base64.`, line);
          const encrypted: EncryptedValue = { algorithmUri: method.cipherUri, cipherValue, valueMac, what, line };
          if (method.iv) encrypted.iv = method.iv;
          data[field] = { encrypted };
        } else {
          // The drafts wrote plain secrets and integers as base64 (integers decided in pskc-token.ts).
          data[field] = { plain: valueText };
        }
      }
      entries.push({
        packageIndex,
        serial,
        manufacturer: child(deviceId, ns, 'Manufacturer')?.text.trim() ?? '',
        model: child(deviceId, ns, 'Model')?.text.trim() ?? '',
        algorithmUri: draftAttribute(key, 'KeyAlgorithm'),
        suite: undefined,
        digitsText: draftAttribute(responseFormat, 'Length'),
        responseEncoding: draftAttribute(responseFormat, 'Format'),
        responseCheckDigits: /^(true|1)$/i.test(
          draftAttribute(responseFormat, 'CheckDigits') ?? draftAttribute(responseFormat, 'CheckDigit') ?? '',
        ),
        data,
        policy: readPolicy(key),
        repeated,
      });
    }
  });
  return { layout: 'draft', entries, keying: draftKeying(root, method), lines, packageCount: devices.length };
}
