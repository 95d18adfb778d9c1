/**
 * Reading a PSKC KeyContainer into key entries: the device and key
 * information of each KeyPackage, each Data field as a plain or an encrypted
 * value, and the key's Policy as written. Nothing is decrypted or judged
 * here. RFC 6030's layout is read here; the pre-RFC draft layout in
 * pskc-draft.ts into the same entries.
 */
import { quoteValue } from '../core/problems.js';
import { checkSerial } from '../core/validate.js';
import { DRAFT_NAMESPACES, draftKeyNeed, readDraftContainer } from './pskc-draft.js';
import { readEncrypted, rfcKeying, type EncryptedValue, type KeyNeed, type Keying } from './pskc-encryption.js';
import { usagesOf } from './pskc-policy.js';
import {
  KeyPackageLines,
  PSKC_NS,
  child,
  childrenNamed,
  decodeBase64,
  malformed,
  quoteUri,
  repeatedChildren,
  type XmlElement,
} from './pskc-xml.js';

export type DataValue = { plain: string } | { encrypted: EncryptedValue };

export const DATA_FIELDS = ['Secret', 'Counter', 'Time', 'TimeInterval', 'TimeDrift'] as const;
export type DataField = (typeof DATA_FIELDS)[number];

/** A key's usage policy as the file writes it (RFC 6030 section 5); judged in pskc-policy.ts. */
export interface PolicyEntry {
  startDate?: string;
  expiryDate?: string;
  keyUsage: string[];
  numberOfTransactions?: string;
  pin?: { usageMode?: string; keyId?: string; minLength?: string; maxLength?: string; maxFailedAttempts?: string };
  /** Child elements or PINPolicy attributes outside RFC 6030's list (their names are not kept: they are file text). */
  unknownItems: number;
}

export interface KeyEntry {
  packageIndex: number;
  serial: string;
  manufacturer: string;
  model: string;
  algorithmUri: string | undefined;
  suite: string | undefined;
  digitsText: string | undefined;
  responseEncoding: string | undefined;
  /** ResponseFormat CheckDigits (CheckDigit in the drafts): the token appends a Luhn digit to its codes. */
  responseCheckDigits: boolean;
  data: Partial<Record<DataField, DataValue>>;
  policy: PolicyEntry | undefined;
  /** Elements the key may hold once but holds more than once (which one is meant cannot be known): the key is refused. */
  repeated: string[];
}

/** A container read into entries, with how its values are keyed, whatever its layout. */
export interface PskcDocument {
  layout: 'rfc6030' | 'draft';
  entries: KeyEntry[];
  keying: Keying;
  lines: KeyPackageLines;
  /** How many KeyPackages (Devices in the draft) the container holds, keys or not. */
  packageCount: number;
}

/** Reads the root element as an RFC 6030 container or an old draft one, or says why it is neither. */
export function readContainer(fileName: string, text: string, root: XmlElement): PskcDocument {
  if (root.name === 'KeyContainer' && DRAFT_NAMESPACES.has(root.ns)) return readDraftContainer(fileName, text, root);
  if (root.name !== 'KeyContainer' || root.ns !== PSKC_NS) {
    const namespace = root.ns ? `in namespace ${quoteUri(root.ns)}` : 'without a namespace';
    throw malformed(
      fileName,
      `the root element is ${root.name === 'KeyContainer' ? 'a KeyContainer' : 'not a KeyContainer'} ${namespace}, so this is not a PSKC file (a KeyContainer in namespace ${PSKC_NS}).`,
    );
  }
  const version = root.attrs['Version'];
  if (version !== '1.0') {
    const shown =
      version === undefined ? 'missing' : /^\d{1,3}(?:\.\d{1,3}){0,2}$/.test(version) ? quoteValue(version) : 'not a version number';
    throw malformed(fileName, `the KeyContainer's Version is ${shown}; only PSKC 1.0 is supported.`);
  }
  // draft-ietf-keyprov-pskc-02, the last draft before RFC 6030, has its namespace but Device elements for KeyPackages.
  const keyPackages = childrenNamed(root, PSKC_NS, 'KeyPackage');
  const devices = keyPackages.length === 0 ? childrenNamed(root, PSKC_NS, 'Device') : [];
  const packages = devices.length > 0 ? devices : keyPackages;
  const lines = new KeyPackageLines(text, packages.length, devices.length > 0 ? 'Device' : 'KeyPackage');
  return {
    layout: devices.length > 0 ? 'draft' : 'rfc6030',
    entries: collectKeys(fileName, packages, lines),
    keying: rfcKeying(root),
    lines,
    packageCount: packages.length,
  };
}

/**
 * Whether the container holds encrypted values and which key they need, from
 * the elements alone: a file whose encrypted values are broken still says it
 * needs a key, and the reader then says what is broken.
 */
export function keyNeedOfContainer(root: XmlElement): { encrypted: false } | { encrypted: true; need: KeyNeed } {
  if (root.name === 'KeyContainer' && DRAFT_NAMESPACES.has(root.ns)) return draftKeyNeed(root);
  const encrypted = [...childrenNamed(root, PSKC_NS, 'KeyPackage'), ...childrenNamed(root, PSKC_NS, 'Device')].some((keyPackage) =>
    childrenNamed(keyPackage, PSKC_NS, 'Key').some((key) => {
      const data = child(key, PSKC_NS, 'Data');
      return data?.children.some((field) => child(field, PSKC_NS, 'EncryptedValue') !== undefined) ?? false;
    }),
  );
  return encrypted ? { encrypted: true, need: rfcKeying(root).need() } : { encrypted: false };
}

function readDataValue(fileName: string, element: XmlElement, what: string, line: number | undefined): DataValue | undefined {
  const encrypted = child(element, PSKC_NS, 'EncryptedValue');
  if (encrypted) {
    const value = readEncrypted(fileName, encrypted, what, line);
    const macText = child(element, PSKC_NS, 'ValueMAC')?.text;
    if (macText !== undefined) {
      const mac = decodeBase64(macText);
      if (!mac) throw malformed(fileName, `the ValueMAC of ${what} is not base64.`, line);
      value.valueMac = mac;
    }
    return { encrypted: value };
  }
  const plain = child(element, PSKC_NS, 'PlainValue');
  return plain ? { plain: plain.text } : undefined;
}

const POLICY_CHILDREN: ReadonlySet<string> = new Set(['StartDate', 'ExpiryDate', 'NumberOfTransactions', 'KeyUsage', 'PINPolicy']);
const PIN_POLICY_ATTRIBUTES: ReadonlySet<string> = new Set([
  'PINKeyId',
  'PINUsageMode',
  'MaxFailedAttempts',
  'MinLength',
  'MaxLength',
  'PINEncoding',
]);

function readPolicy(element: XmlElement | undefined, usage: XmlElement | undefined): PolicyEntry | undefined {
  const usages = usagesOf(usage);
  if (!element) return usages.length > 0 ? { keyUsage: usages, unknownItems: 0 } : undefined;
  const policy: PolicyEntry = { keyUsage: [...usages], unknownItems: 0 };
  for (const item of element.children) {
    if (item.ns !== PSKC_NS || !POLICY_CHILDREN.has(item.name)) {
      policy.unknownItems++;
      continue;
    }
    if (item.name === 'StartDate') policy.startDate = item.text;
    else if (item.name === 'ExpiryDate') policy.expiryDate = item.text;
    else if (item.name === 'NumberOfTransactions') policy.numberOfTransactions = item.text;
    else if (item.name === 'KeyUsage') policy.keyUsage.push(item.text.trim());
    else {
      const a = item.attrs;
      policy.pin = {
        usageMode: a['PINUsageMode'],
        keyId: a['PINKeyId'],
        minLength: a['MinLength'],
        maxLength: a['MaxLength'],
        maxFailedAttempts: a['MaxFailedAttempts'],
      };
      policy.unknownItems += Object.keys(a).filter((name) => !PIN_POLICY_ATTRIBUTES.has(name)).length + item.children.length;
    }
  }
  return policy;
}

function collectKeys(fileName: string, packages: readonly XmlElement[], lines: KeyPackageLines): KeyEntry[] {
  const entries: KeyEntry[] = [];
  packages.forEach((keyPackage, packageIndex) => {
    const deviceInfo = child(keyPackage, PSKC_NS, 'DeviceInfo') ?? child(keyPackage, PSKC_NS, 'DeviceId');
    for (const key of childrenNamed(keyPackage, PSKC_NS, 'Key')) {
      const serialNo = child(deviceInfo, PSKC_NS, 'SerialNo')?.text.trim();
      // Id and Algorithm in RFC 6030; KeyId and KeyAlgorithm in the drafts before it.
      const serial = serialNo || (key.attrs['Id'] ?? key.attrs['KeyId'] ?? '').trim();
      const line = lines.of(packageIndex);
      const label = serial && !checkSerial(serial) ? `key ${quoteValue(serial)}` : `KeyPackage ${packageIndex + 1}`;
      const parameters = child(key, PSKC_NS, 'AlgorithmParameters');
      const usage = child(key, PSKC_NS, 'Usage');
      const responseFormat = child(parameters, PSKC_NS, 'ResponseFormat') ?? child(usage, PSKC_NS, 'ResponseFormat');
      const dataElement = child(key, PSKC_NS, 'Data');
      const data: KeyEntry['data'] = {};
      // Every element read below is read once; a second copy would be dropped without a word, so it is named instead.
      const repeated = [
        ...repeatedChildren(keyPackage, PSKC_NS, ['DeviceInfo']),
        ...repeatedChildren(deviceInfo, PSKC_NS, ['SerialNo', 'Manufacturer', 'Model']),
        ...repeatedChildren(key, PSKC_NS, ['AlgorithmParameters', 'Data', 'Policy', 'Usage']),
        ...repeatedChildren(parameters, PSKC_NS, ['Suite', 'ResponseFormat']),
        ...repeatedChildren(usage, PSKC_NS, ['ResponseFormat']),
        ...repeatedChildren(dataElement, PSKC_NS, DATA_FIELDS),
      ];
      // A ResponseFormat in both places (RFC 6030's AlgorithmParameters, draft-02's Usage): only one would be read.
      if (child(parameters, PSKC_NS, 'ResponseFormat') && child(usage, PSKC_NS, 'ResponseFormat'))
        repeated.push('ResponseFormat (in AlgorithmParameters and in Usage)');
      if (dataElement) {
        for (const field of DATA_FIELDS) {
          const fieldElement = child(dataElement, PSKC_NS, field);
          repeated.push(
            ...repeatedChildren(fieldElement, PSKC_NS, ['PlainValue', 'EncryptedValue', 'ValueMAC']).map((name) => `${field} ${name}`),
          );
          // One value per field: a PlainValue beside an EncryptedValue would be dropped without a word.
          if (child(fieldElement, PSKC_NS, 'PlainValue') && child(fieldElement, PSKC_NS, 'EncryptedValue'))
            repeated.push(`${field} value (a PlainValue and an EncryptedValue)`);
          const value = fieldElement && readDataValue(fileName, fieldElement, `the ${field} of ${label}`, line);
          if (value) data[field] = value;
        }
      }
      entries.push({
        packageIndex,
        serial,
        manufacturer: child(deviceInfo, PSKC_NS, 'Manufacturer')?.text.trim() ?? '',
        model: child(deviceInfo, PSKC_NS, 'Model')?.text.trim() ?? '',
        algorithmUri: (key.attrs['Algorithm'] ?? key.attrs['KeyAlgorithm'])?.trim(),
        suite: child(parameters, PSKC_NS, 'Suite')?.text.trim(),
        digitsText: responseFormat?.attrs['Length']?.trim(),
        responseEncoding: responseFormat?.attrs['Encoding']?.trim(),
        responseCheckDigits: /^(true|1)$/i.test((responseFormat?.attrs['CheckDigits'] ?? responseFormat?.attrs['CheckDigit'] ?? '').trim()),
        data,
        policy: readPolicy(child(key, PSKC_NS, 'Policy'), usage),
        repeated,
      });
    }
  });
  return entries;
}

export function encryptedValuesOf(entries: readonly KeyEntry[]): EncryptedValue[] {
  const values: EncryptedValue[] = [];
  for (const entry of entries) {
    for (const field of DATA_FIELDS) {
      const value = entry.data[field];
      if (value && 'encrypted' in value) values.push(value.encrypted);
    }
  }
  return values;
}
