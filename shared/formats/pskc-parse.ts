/**
 * Reading a PSKC KeyContainer into key entries: the device and key
 * information of each KeyPackage, and each Data field as a plain or an
 * encrypted value. Nothing is decrypted or judged here.
 */
import { quoteValue } from '../core/problems.js';
import { checkSerial } from '../core/validate.js';
import { readEncrypted, type EncryptedValue } from './pskc-encryption.js';
import { PSKC_NS, child, childrenNamed, decodeBase64, malformed, quoteUri, type KeyPackageLines, type XmlElement } from './pskc-xml.js';

export type DataValue = { plain: string } | { encrypted: EncryptedValue };

export const DATA_FIELDS = ['Secret', 'Counter', 'Time', 'TimeInterval', 'TimeDrift'] as const;
export type DataField = (typeof DATA_FIELDS)[number];

export interface KeyEntry {
  packageIndex: number;
  serial: string;
  manufacturer: string;
  model: string;
  algorithmUri: string | undefined;
  suite: string | undefined;
  digitsText: string | undefined;
  responseEncoding: string | undefined;
  data: Partial<Record<DataField, DataValue>>;
}

export function checkContainer(fileName: string, root: XmlElement): XmlElement {
  if (root.name !== 'KeyContainer' || root.ns !== PSKC_NS) {
    const namespace = root.ns ? `in namespace ${quoteUri(root.ns)}` : 'without a namespace';
    throw malformed(fileName, `the root element is ${root.name === 'KeyContainer' ? 'a KeyContainer' : 'not a KeyContainer'} ${namespace}, so this is not a PSKC file (a KeyContainer in namespace ${PSKC_NS}).`);
  }
  const version = root.attrs['Version'];
  if (version !== '1.0') {
    const shown = version === undefined ? 'missing' : /^\d{1,3}(?:\.\d{1,3}){0,2}$/.test(version) ? quoteValue(version) : 'not a version number';
    throw malformed(fileName, `the KeyContainer's Version is ${shown}; only PSKC 1.0 is supported.`);
  }
  return root;
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

export function collectKeys(fileName: string, container: XmlElement, lines: KeyPackageLines): KeyEntry[] {
  const entries: KeyEntry[] = [];
  childrenNamed(container, PSKC_NS, 'KeyPackage').forEach((keyPackage, packageIndex) => {
    const deviceInfo = child(keyPackage, PSKC_NS, 'DeviceInfo');
    for (const key of childrenNamed(keyPackage, PSKC_NS, 'Key')) {
      const serialNo = child(deviceInfo, PSKC_NS, 'SerialNo')?.text.trim();
      const serial = serialNo || (key.attrs['Id'] ?? '').trim();
      const line = lines.of(packageIndex);
      const label = serial && !checkSerial(serial) ? `key ${quoteValue(serial)}` : `KeyPackage ${packageIndex + 1}`;
      const parameters = child(key, PSKC_NS, 'AlgorithmParameters');
      const responseFormat = child(parameters, PSKC_NS, 'ResponseFormat');
      const dataElement = child(key, PSKC_NS, 'Data');
      const data: KeyEntry['data'] = {};
      if (dataElement) {
        for (const field of DATA_FIELDS) {
          const fieldElement = child(dataElement, PSKC_NS, field);
          const value = fieldElement && readDataValue(fileName, fieldElement, `the ${field} of ${label}`, line);
          if (value) data[field] = value;
        }
      }
      entries.push({
        packageIndex,
        serial,
        manufacturer: child(deviceInfo, PSKC_NS, 'Manufacturer')?.text.trim() ?? '',
        model: child(deviceInfo, PSKC_NS, 'Model')?.text.trim() ?? '',
        algorithmUri: key.attrs['Algorithm']?.trim(),
        suite: child(parameters, PSKC_NS, 'Suite')?.text.trim(),
        digitsText: responseFormat?.attrs['Length']?.trim(),
        responseEncoding: responseFormat?.attrs['Encoding']?.trim(),
        data,
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
