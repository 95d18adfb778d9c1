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
  pickChildren,
  quoteUri,
  type PickedChildren,
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

function readDataValue(
  fileName: string,
  value: PickedChildren<(typeof VALUE_CHILDREN)[number]>['first'],
  what: string,
  line: number | undefined,
): DataValue | undefined {
  if (value.EncryptedValue) {
    const encrypted = readEncrypted(fileName, value.EncryptedValue, what, line);
    const macText = value.ValueMAC?.text;
    if (macText !== undefined) {
      const mac = decodeBase64(macText);
      if (!mac) throw malformed(fileName, `the ValueMAC of ${what} is not base64.`, line);
      encrypted.valueMac = mac;
    }
    return { encrypted };
  }
  return value.PlainValue ? { plain: value.PlainValue.text } : undefined;
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

const PACKAGE_CHILDREN = ['DeviceInfo', 'DeviceId'] as const;
const DEVICE_CHILDREN = ['SerialNo', 'Manufacturer', 'Model'] as const;
const KEY_CHILDREN = ['AlgorithmParameters', 'Data', 'Policy', 'Usage'] as const;
const PARAMETER_CHILDREN = ['Suite', 'ResponseFormat'] as const;
const USAGE_CHILDREN = ['ResponseFormat'] as const;
const VALUE_CHILDREN = ['PlainValue', 'EncryptedValue', 'ValueMAC'] as const;

function collectKeys(fileName: string, packages: readonly XmlElement[], lines: KeyPackageLines): KeyEntry[] {
  const entries: KeyEntry[] = [];
  packages.forEach((keyPackage, packageIndex) => {
    const inPackage = pickChildren(keyPackage, PSKC_NS, PACKAGE_CHILDREN);
    const deviceInfo = inPackage.first.DeviceInfo ?? inPackage.first.DeviceId;
    const inDevice = pickChildren(deviceInfo, PSKC_NS, DEVICE_CHILDREN);
    for (const key of childrenNamed(keyPackage, PSKC_NS, 'Key')) {
      const serialNo = inDevice.first.SerialNo?.text.trim();
      // Id and Algorithm in RFC 6030; KeyId and KeyAlgorithm in the drafts before it.
      const serial = serialNo || (key.attrs['Id'] ?? key.attrs['KeyId'] ?? '').trim();
      const line = lines.of(packageIndex);
      const label = serial && !checkSerial(serial) ? `key ${quoteValue(serial)}` : `KeyPackage ${packageIndex + 1}`;
      const inKey = pickChildren(key, PSKC_NS, KEY_CHILDREN);
      const inParameters = pickChildren(inKey.first.AlgorithmParameters, PSKC_NS, PARAMETER_CHILDREN);
      const inUsage = pickChildren(inKey.first.Usage, PSKC_NS, USAGE_CHILDREN);
      const inData = pickChildren(inKey.first.Data, PSKC_NS, DATA_FIELDS);
      const responseFormat = inParameters.first.ResponseFormat ?? inUsage.first.ResponseFormat;
      const data: KeyEntry['data'] = {};
      // Every element read below is read once; a second copy would be dropped without a word, so it is named instead.
      const repeated: string[] = [
        ...inPackage.repeated.filter((name) => name === 'DeviceInfo'),
        ...inDevice.repeated,
        ...inKey.repeated,
        ...inParameters.repeated,
        ...inUsage.repeated,
        ...inData.repeated,
      ];
      // A ResponseFormat in both places (RFC 6030's AlgorithmParameters, draft-02's Usage): only one would be read.
      if (inParameters.first.ResponseFormat && inUsage.first.ResponseFormat)
        repeated.push('ResponseFormat (in AlgorithmParameters and in Usage)');
      for (const field of DATA_FIELDS) {
        const fieldElement = inData.first[field];
        if (!fieldElement) continue;
        const inField = pickChildren(fieldElement, PSKC_NS, VALUE_CHILDREN);
        for (const name of inField.repeated) repeated.push(`${field} ${name}`);
        // One value per field: a PlainValue beside an EncryptedValue would be dropped without a word.
        if (inField.first.PlainValue && inField.first.EncryptedValue) repeated.push(`${field} value (a PlainValue and an EncryptedValue)`);
        const value = readDataValue(fileName, inField.first, `the ${field} of ${label}`, line);
        if (value) data[field] = value;
      }
      entries.push({
        packageIndex,
        serial,
        manufacturer: inDevice.first.Manufacturer?.text.trim() ?? '',
        model: inDevice.first.Model?.text.trim() ?? '',
        algorithmUri: (key.attrs['Algorithm'] ?? key.attrs['KeyAlgorithm'])?.trim(),
        suite: inParameters.first.Suite?.text.trim(),
        digitsText: responseFormat?.attrs['Length']?.trim(),
        responseEncoding: responseFormat?.attrs['Encoding']?.trim(),
        responseCheckDigits: /^(true|1)$/i.test((responseFormat?.attrs['CheckDigits'] ?? responseFormat?.attrs['CheckDigit'] ?? '').trim()),
        data,
        policy: readPolicy(inKey.first.Policy, inKey.first.Usage),
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
