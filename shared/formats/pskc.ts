/**
 * Reader for PSKC 1.0 seed files (RFC 6030): plain and encrypted (pre-shared
 * key or PBKDF2 password) containers, with every MAC checked before any token
 * is returned. fast-xml-parser does the XML; namespaces are resolved here
 * because its removeNSPrefix only drops prefixes and cannot tell a PSKC
 * element from a look-alike in another namespace.
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { FileError, problem, quoteValue, type Problem, type ProblemCode } from '../core/problems.js';
import { MAX_SECRET_BYTES, MIN_SECRET_BYTES, parseHashAlgorithm, sameSecret, type OathToken, type TokenType } from '../core/token.js';
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
import { checkSerial } from '../core/validate.js';
import { checkSize, decodeUtf8 } from './text.js';
import { DEFAULT_MAX_SEED_FILE_BYTES, type ReadOptions, type SeedReadResult } from './types.js';

const PSKC_NS = 'urn:ietf:params:xml:ns:keyprov:pskc';
const DSIG_NS = 'http://www.w3.org/2000/09/xmldsig#';
const XENC_NS = 'http://www.w3.org/2001/04/xmlenc#';
const XENC11_NS = 'http://www.w3.org/2009/xmlenc11#';
const XML_NS = 'http://www.w3.org/XML/1998/namespace';

const KEY_TYPES: ReadonlyMap<string, TokenType> = new Map([
  ['urn:ietf:params:xml:ns:keyprov:pskc:totp', 'totp'],
  ['urn:ietf:params:xml:ns:keyprov:pskc:hotp', 'hotp'],
]);

/** A PSKC document is about 8 levels deep; anything far deeper is hostile. */
const MAX_NESTING_DEPTH = 32;
const DEFAULT_TIME_INTERVAL = 30;
const DEFAULT_DIGITS = 6;

/** RFC 6030's response encodings: the only Encoding values quoted back. */
const PSKC_RESPONSE_ENCODINGS: ReadonlySet<string> = new Set(['DECIMAL', 'HEXADECIMAL', 'ALPHANUMERIC', 'BASE64', 'BINARY']);

const DECRYPTION_FAILED_TEXT = 'wrong transport key or password, or the file was altered';

// ---------------------------------------------------------------------------
// XML: refuse declarations, validate, parse, resolve namespaces.

interface XmlElement {
  ns: string;
  name: string;
  /** Unprefixed attributes only (PSKC uses no namespaced attributes), entity-decoded. */
  attrs: Record<string, string>;
  children: XmlElement[];
  /** Concatenated, trimmed, entity-decoded character data. */
  text: string;
}

type ParsedNode = Record<string, unknown>;

/** The reader's parser options, exported so the benchmark's parser floor uses exactly these. */
export const PSKC_XML_PARSER_OPTIONS = {
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  parseTagValue: false,
  parseAttributeValue: false,
  // DOCTYPEs are refused before parsing, so only the predefined and numeric references remain; they are decoded here.
  processEntities: false,
  trimValues: true,
  maxNestedTags: MAX_NESTING_DEPTH,
  // No callbacks use paths; building jPath strings for every tag costs about a quarter of the parse.
  jPath: false,
  ignoreDeclaration: true,
  ignorePiTags: true,
} as const;

const parser = new XMLParser(PSKC_XML_PARSER_OPTIONS);

/**
 * An algorithm or namespace URI, quoted only when it has a URI's shape: a
 * scheme and a colon, which no base32, hex or base64 secret holds.
 */
function quoteUri(value: string): string {
  return /^[A-Za-z][A-Za-z0-9+.-]*:\S{1,200}$/.test(value) ? quoteValue(value, 120) : 'a value that is not a URI';
}

function malformed(fileName: string, detail: string, line?: number): FileError {
  return new FileError('PSKC_MALFORMED', `${fileName}${line ? ` line ${line}` : ''}: ${detail}`, line);
}

function refuseDeclarations(fileName: string, text: string): void {
  const match = /<!(DOCTYPE|ENTITY)/i.exec(text);
  if (match) {
    const line = lineAt(text, match.index);
    throw new FileError(
      'PSKC_DOCTYPE_REFUSED',
      `${fileName} line ${line}: the XML declares a ${match[1]!.toUpperCase()}, which is refused (entity-expansion attacks). PSKC files need none; ask the vendor for a file without it.`,
      line,
    );
  }
}

function lineAt(text: string, index: number): number {
  let line = 1;
  for (let i = text.indexOf('\n'); i !== -1 && i < index; i = text.indexOf('\n', i + 1)) line++;
  return line;
}

const PREDEFINED_ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function decodeReferences(fileName: string, value: string): string {
  if (!value.includes('&')) return value;
  return value.replace(/&([^;&\s]*)(;?)/g, (whole, name: string, semicolon: string) => {
    if (semicolon) {
      const predefined = PREDEFINED_ENTITIES[name];
      if (predefined !== undefined) return predefined;
      const numeric = /^#(?:x([0-9a-fA-F]{1,6})|([0-9]{1,7}))$/.exec(name);
      if (numeric) {
        const codePoint = numeric[1] !== undefined ? parseInt(numeric[1], 16) : parseInt(numeric[2]!, 10);
        if (codePoint <= 0x10ffff) return String.fromCodePoint(codePoint);
      }
    }
    // What follows the ampersand may be the rest of a secret: it is not quoted.
    throw malformed(fileName, `a reference (&...;) is neither a predefined XML entity nor a character reference (${whole.length} characters long). Write a literal "&" as &amp;.`);
  });
}

/** Generic reasons for the validator's error codes; its own messages are never shown. */
const XML_FAULTS: Record<string, string> = {
  InvalidTag: 'a tag is malformed, unclosed or closed out of order',
  InvalidAttr: 'an attribute is malformed, repeated or lacks a quoted value',
  InvalidChar: 'a character is not allowed where it stands (a literal "&" or "<" in text, for example)',
  InvalidXml: 'the document structure is broken (text outside the root element, several roots or a missing start tag)',
};

function parseDocument(fileName: string, text: string): XmlElement {
  refuseDeclarations(fileName, text);
  // fast-xml-parser's parser accepts unclosed and mismatched tags; the validator does not.
  const validation = XMLValidator.validate(text, { allowBooleanAttributes: false });
  if (validation !== true) {
    // The validator's text quotes tag names and text, which can be a secret: only where, and what kind of fault.
    const { line, col, code } = validation.err;
    const where = line > 0 ? ` line ${line}${typeof col === 'number' && col > 0 ? `, column ${col}` : ''}` : '';
    throw new FileError('PSKC_MALFORMED', `${fileName}${where}: the file is not well-formed XML (${XML_FAULTS[code] ?? XML_FAULTS.InvalidXml!}).`, line > 0 ? line : undefined);
  }
  let nodes: ParsedNode[];
  try {
    nodes = parser.parse(text) as ParsedNode[];
  } catch (err) {
    const message = err instanceof Error ? err.message : '';
    if (/nested/i.test(message)) throw malformed(fileName, `the XML is nested deeper than ${MAX_NESTING_DEPTH} levels; a PSKC file needs about 8.`);
    // The parser's own messages quote file content, which may be secret.
    throw malformed(fileName, 'the file is not well-formed XML.');
  }
  const roots: XmlElement[] = [];
  const topScope: Scope = { prefixes: new Map([['xml', XML_NS]]), resolved: new Map() };
  for (const node of nodes) {
    const tag = tagOf(node);
    if (tag === undefined || tag === '#text') continue;
    roots.push(toElement(fileName, node, tag, topScope));
  }
  if (roots.length !== 1) throw malformed(fileName, `the XML must have exactly one root element; it has ${roots.length}.`);
  return roots[0]!;
}

function tagOf(node: ParsedNode): string | undefined {
  for (const key in node) if (key !== ':@') return key;
  return undefined;
}

interface Scope {
  prefixes: ReadonlyMap<string, string>;
  /** Qualified tag -> resolved name, so each distinct tag is split and looked up once per scope. */
  resolved: Map<string, { ns: string; name: string }>;
}

const NO_ATTRIBUTES: Record<string, string> = Object.freeze({});

function resolveTag(fileName: string, tag: string, scope: Scope): { ns: string; name: string } {
  let resolved = scope.resolved.get(tag);
  if (!resolved) {
    const colon = tag.indexOf(':');
    const prefix = colon === -1 ? '' : tag.slice(0, colon);
    const ns = scope.prefixes.get(prefix);
    if (ns === undefined && prefix !== '') throw malformed(fileName, 'an element uses a namespace prefix that is not declared (a missing xmlns:prefix attribute).');
    resolved = { ns: ns ?? '', name: colon === -1 ? tag : tag.slice(colon + 1) };
    scope.resolved.set(tag, resolved);
  }
  return resolved;
}

function toElement(fileName: string, node: ParsedNode, tag: string, parentScope: Scope): XmlElement {
  const rawAttrs = node[':@'] as Record<string, string> | undefined;
  let scope = parentScope;
  let attrs = NO_ATTRIBUTES;
  if (rawAttrs) {
    attrs = {};
    let declared: Map<string, string> | undefined;
    for (const attrName in rawAttrs) {
      const value = decodeReferences(fileName, rawAttrs[attrName]!);
      if (attrName === 'xmlns' || attrName.startsWith('xmlns:')) {
        declared ??= new Map(parentScope.prefixes);
        declared.set(attrName === 'xmlns' ? '' : attrName.slice(6), value);
      } else if (!attrName.includes(':')) {
        attrs[attrName] = value;
      }
    }
    if (declared) scope = { prefixes: declared, resolved: new Map() };
  }
  const { ns, name } = resolveTag(fileName, tag, scope);
  const children: XmlElement[] = [];
  let text = '';
  for (const childNode of node[tag] as ParsedNode[]) {
    const childTag = tagOf(childNode);
    if (childTag === undefined) continue;
    if (childTag === '#text') text += String(childNode['#text']);
    else children.push(toElement(fileName, childNode, childTag, scope));
  }
  return { ns, name, attrs, children, text: decodeReferences(fileName, text) };
}

function child(element: XmlElement | undefined, ns: string, name: string): XmlElement | undefined {
  return element?.children.find((c) => c.name === name && c.ns === ns);
}

function childrenNamed(element: XmlElement, ns: string, name: string): XmlElement[] {
  return element.children.filter((c) => c.name === name && c.ns === ns);
}

/** PBKDF2 parameters appear unqualified, in pkcs5 or in xenc11 depending on the producer: match their local name. */
function childByLocalName(element: XmlElement | undefined, name: string): XmlElement | undefined {
  return element?.children.find((c) => c.name === name);
}

function checkContainer(fileName: string, root: XmlElement): XmlElement {
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

function decodeBase64(text: string): Buffer | undefined {
  const compact = /\s/.test(text) ? text.replace(/\s+/g, '') : text;
  if (compact.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(compact)) return undefined;
  return Buffer.from(compact, 'base64');
}

/**
 * Line of the n-th KeyPackage start tag, found by a text scan only when a
 * message needs one. When the scan's count differs from the parsed count
 * (a KeyPackage inside a comment, say) lines are left out rather than wrong.
 */
class KeyPackageLines {
  private lines: number[] | null | undefined;

  constructor(
    private readonly text: string,
    private readonly expectedCount: number,
  ) {}

  of(index: number): number | undefined {
    if (this.lines === undefined) this.lines = this.scan();
    return this.lines?.[index];
  }

  private scan(): number[] | null {
    const starts: number[] = [];
    const pattern = /<(?:[A-Za-z_][\w.-]*:)?KeyPackage(?=[\s/>])/g;
    for (let m = pattern.exec(this.text); m !== null; m = pattern.exec(this.text)) starts.push(m.index);
    if (starts.length !== this.expectedCount) return null;
    const lines: number[] = [];
    let line = 1;
    let newline = this.text.indexOf('\n');
    for (const start of starts) {
      while (newline !== -1 && newline < start) {
        line++;
        newline = this.text.indexOf('\n', newline + 1);
      }
      lines.push(line);
    }
    return lines;
  }
}

// ---------------------------------------------------------------------------
// Collecting the file's keys and encrypted values.

interface EncryptedValue {
  algorithmUri: string;
  cipherValue: Buffer;
  valueMac: Buffer | undefined;
  /** For messages: "the Secret of key 123". */
  what: string;
  line: number | undefined;
  /** Set once decrypted. */
  plaintext?: Buffer;
}

type DataValue = { plain: string } | { encrypted: EncryptedValue };

const DATA_FIELDS = ['Secret', 'Counter', 'Time', 'TimeInterval', 'TimeDrift'] as const;
type DataField = (typeof DATA_FIELDS)[number];

interface KeyEntry {
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

function readEncrypted(fileName: string, element: XmlElement, what: string, line: number | undefined): EncryptedValue {
  const method = child(element, XENC_NS, 'EncryptionMethod');
  if (!method) {
    throw malformed(fileName, `${what} is encrypted but has no xenc:EncryptionMethod, so its encryption algorithm is unknown.`, line);
  }
  const algorithmUri = method.attrs['Algorithm']?.trim();
  if (!algorithmUri) throw malformed(fileName, `the xenc:EncryptionMethod of ${what} has no Algorithm.`, line);
  const cipherData = child(element, XENC_NS, 'CipherData');
  if (child(cipherData, XENC_NS, 'CipherReference')) {
    throw new FileError('PSKC_UNSUPPORTED_ALGORITHM', `${fileName}: ${what} uses an xenc:CipherReference; only inline CipherValue is supported.`, line);
  }
  const cipherText = child(cipherData, XENC_NS, 'CipherValue')?.text;
  if (cipherText === undefined) throw malformed(fileName, `${what} has no xenc:CipherData/xenc:CipherValue.`, line);
  const cipherValue = decodeBase64(cipherText);
  if (!cipherValue || cipherValue.length === 0) throw malformed(fileName, `the CipherValue of ${what} is not base64.`, line);
  return { algorithmUri, cipherValue, valueMac: undefined, what, line };
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

function collectKeys(fileName: string, container: XmlElement, lines: KeyPackageLines): KeyEntry[] {
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

function encryptedValuesOf(entries: readonly KeyEntry[]): EncryptedValue[] {
  const values: EncryptedValue[] = [];
  for (const entry of entries) {
    for (const field of DATA_FIELDS) {
      const value = entry.data[field];
      if (value && 'encrypted' in value) values.push(value.encrypted);
    }
  }
  return values;
}

// ---------------------------------------------------------------------------
// Keys: which one the file needs, derivation, MAC checks, decryption.

interface KeyNeed {
  kind: 'psk' | 'password';
  keyName: string | undefined;
  derivedKey: XmlElement | undefined;
}

function keyNeedOf(container: XmlElement): KeyNeed {
  const encryptionKey = child(container, PSKC_NS, 'EncryptionKey');
  const derivedKey = child(encryptionKey, XENC11_NS, 'DerivedKey');
  if (derivedKey) {
    const name = child(derivedKey, XENC11_NS, 'MasterKeyName')?.text.trim();
    return { kind: 'password', keyName: name || undefined, derivedKey };
  }
  const name = child(encryptionKey, DSIG_NS, 'KeyName')?.text.trim();
  return { kind: 'psk', keyName: name || undefined, derivedKey: undefined };
}

function unsupported(fileName: string, what: string, uri: string, supported: Iterable<string>): FileError {
  const names = [...supported].map((u) => u.slice(u.indexOf('#') + 1)).join(', ');
  return new FileError('PSKC_UNSUPPORTED_ALGORITHM', `${fileName}: the ${what} ${quoteUri(uri)} is not supported (supported: ${names}).`);
}

function encryptionAlgorithm(fileName: string, uri: string): EncryptionAlgorithm {
  const algorithm = ENCRYPTION_ALGORITHMS.get(uri);
  if (!algorithm) throw unsupported(fileName, 'encryption algorithm', uri, ENCRYPTION_ALGORITHMS.keys());
  return algorithm;
}

function macHash(fileName: string, uri: string, what: string): string {
  const hash = HMAC_ALGORITHMS.get(uri);
  if (!hash) throw unsupported(fileName, what, uri, HMAC_ALGORITHMS.keys());
  return hash;
}

interface Pbkdf2Parameters {
  salt: Buffer;
  iterations: number;
  keyLength: number | undefined;
  hash: string;
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
    if (childByLocalName(saltElement, 'OtherSource')) throw new FileError('PSKC_UNSUPPORTED_ALGORITHM', `${fileName}: the PBKDF2 salt comes from an OtherSource; only a Specified salt is supported.`);
    throw malformed(fileName, 'the PBKDF2 parameters have no Salt/Specified value.');
  }
  const salt = decodeBase64(specified.text);
  if (!salt || salt.length === 0) throw malformed(fileName, 'the PBKDF2 salt is not base64.');
  const iterations = parseInteger(childByLocalName(params, 'IterationCount')?.text ?? '');
  if (iterations === undefined || iterations < 1) throw malformed(fileName, 'the PBKDF2 IterationCount is missing or not a positive whole number.');
  if (iterations > MAX_PBKDF2_ITERATIONS) {
    throw malformed(fileName, `the PBKDF2 IterationCount ${iterations} is above this tool's limit of ${MAX_PBKDF2_ITERATIONS}.`);
  }
  const keyLengthText = childByLocalName(params, 'KeyLength')?.text;
  const keyLength = keyLengthText === undefined ? undefined : parseInteger(keyLengthText);
  if (keyLength !== undefined && (keyLength < 1 || keyLength > 64)) throw malformed(fileName, 'the PBKDF2 KeyLength is not a key size in bytes.');
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

interface MacSetup {
  hash: string;
  keyValue: EncryptedValue | undefined;
}

/**
 * Decrypts every encrypted value in place, or throws one file-level error.
 * All algorithms and the presence of MACs on CBC values are checked first,
 * then the key, then every MAC, and only then does anything get decrypted.
 */
function decryptAll(fileName: string, container: XmlElement, values: EncryptedValue[], opts: ReadOptions): void {
  const macMethod = child(container, PSKC_NS, 'MACMethod');
  let mac: MacSetup | undefined;
  if (macMethod) {
    const macKey = child(macMethod, PSKC_NS, 'MACKey');
    mac = {
      hash: macHash(fileName, macMethod.attrs['Algorithm']?.trim() ?? '', 'MAC algorithm'),
      keyValue: macKey ? readEncrypted(fileName, macKey, 'the MACKey', undefined) : undefined,
    };
  }
  const everyCipherValue = mac?.keyValue ? [mac.keyValue, ...values] : values;
  for (const value of everyCipherValue) encryptionAlgorithm(fileName, value.algorithmUri);
  if (!mac) {
    const orphan = values.find((v) => v.valueMac);
    if (orphan) throw malformed(fileName, `${orphan.what} has a ValueMAC but the file declares no MACMethod, so the MAC algorithm is unknown.`, orphan.line);
  }
  refuseUnauthenticatedCbc(fileName, values, mac !== undefined);

  const need = keyNeedOf(container);
  const pbkdf2 = need.derivedKey ? pbkdf2Parameters(fileName, need.derivedKey) : undefined;
  const given = opts.psk ? 'psk' : opts.password !== undefined ? 'password' : undefined;
  const haveKey = need.kind === 'psk' ? opts.psk !== undefined : opts.password !== undefined;
  if (!haveKey) throw keyRequired(fileName, need, given);

  const keyBytes = encryptionAlgorithm(fileName, everyCipherValue[0]!.algorithmUri).keyBytes;
  for (const value of everyCipherValue) {
    const algorithm = encryptionAlgorithm(fileName, value.algorithmUri);
    if (algorithm.keyBytes !== keyBytes) throw malformed(fileName, 'the encrypted values use algorithms with different key sizes under one transport key.');
    if (pbkdf2?.keyLength !== undefined && pbkdf2.keyLength !== keyBytes) {
      throw malformed(fileName, `the PBKDF2 KeyLength is ${pbkdf2.keyLength} bytes but ${algorithm.name} needs ${keyBytes}.`);
    }
  }
  let fileKey: Uint8Array;
  if (pbkdf2) {
    fileKey = derivePbkdf2(opts.password!, pbkdf2.salt, pbkdf2.iterations, pbkdf2.keyLength ?? keyBytes, pbkdf2.hash);
  } else {
    fileKey = opts.psk!;
    if (fileKey.length !== keyBytes) {
      const name = encryptionAlgorithm(fileName, everyCipherValue[0]!.algorithmUri).name;
      throw decryptionFailed(fileName, `the file's ${name} needs a ${keyBytes}-byte key; the key given has ${fileKey.length} bytes`);
    }
  }

  try {
    if (mac) {
      // Old drafts had no MACKey: the MAC is keyed with the encryption key itself.
      const macKey = mac.keyValue ? decryptValue(encryptionAlgorithm(fileName, mac.keyValue.algorithmUri), fileKey, mac.keyValue.cipherValue) : fileKey;
      // Key-wrapped values without a ValueMAC pass: RFC 3394 checks their integrity itself. CBC ones were refused above.
      for (const value of values) {
        if (value.valueMac && !macMatches(mac.hash, macKey, value.cipherValue, value.valueMac)) throw new DecryptionError();
      }
    }
    for (const value of values) value.plaintext = decryptValue(encryptionAlgorithm(fileName, value.algorithmUri), fileKey, value.cipherValue);
  } catch (err) {
    if (err instanceof DecryptionError) throw decryptionFailed(fileName);
    throw err;
  }
}

// ---------------------------------------------------------------------------
// Tokens and per-token problems.

function parseInteger(text: string): number | undefined {
  const trimmed = text.trim();
  if (!/^[+-]?\d{1,15}$/.test(trimmed)) return undefined;
  return Number(trimmed);
}

/** Encrypted integers are big-endian binary (RFC 6030 section 6.1); TimeDrift may be negative. */
function integerFromBytes(bytes: Buffer, signed: boolean): number | undefined {
  if (bytes.length === 0 || bytes.length > 8) return undefined;
  let value = 0n;
  for (const byte of bytes) value = (value << 8n) | BigInt(byte);
  if (signed && (bytes[0]! & 0x80) !== 0) value -= 1n << BigInt(bytes.length * 8);
  return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : undefined;
}

function integerValue(value: DataValue | undefined, signed: boolean): number | undefined | 'invalid' {
  if (!value) return undefined;
  const parsed = 'plain' in value ? parseInteger(value.plain) : integerFromBytes(value.encrypted.plaintext!, signed);
  if (parsed === undefined || (!signed && parsed < 0)) return 'invalid';
  return parsed;
}

interface BuiltKey {
  token: OathToken | undefined;
  problems: Problem[];
}

function buildToken(entry: KeyEntry, line: number | undefined): BuiltKey {
  const problems: Problem[] = [];
  // The same serial rules as every other format (control, invisible and bidi characters; length).
  const serialProblem = entry.serial ? checkSerial(entry.serial, line) : undefined;
  // A serial that fails them is neither attached nor quoted.
  const where = { ...(entry.serial && !serialProblem ? { serial: entry.serial } : {}), ...(line === undefined ? {} : { line }) };
  const error = (code: ProblemCode, detail: string) => problems.push(problem(code, 'error', detail, where));

  if (!entry.serial) error('SERIAL_MISSING', 'The KeyPackage has neither a DeviceInfo SerialNo nor a Key Id.');
  else if (serialProblem) problems.push(serialProblem);

  const type = entry.algorithmUri === undefined ? undefined : KEY_TYPES.get(entry.algorithmUri);
  if (!type) {
    error(
      'TYPE_UNSUPPORTED',
      entry.algorithmUri === undefined
        ? 'The Key has no Algorithm attribute; only TOTP and HOTP keys are supported.'
        : `The key algorithm ${quoteUri(entry.algorithmUri)} is not supported; only TOTP and HOTP keys are.`,
    );
    return { token: undefined, problems };
  }

  let secret: Uint8Array | undefined;
  const secretValue = entry.data.Secret;
  if (!secretValue) error('SECRET_MISSING', 'The key has no Data/Secret.');
  else {
    secret = 'plain' in secretValue ? decodeBase64(secretValue.plain) : secretValue.encrypted.plaintext;
    if (!secret) error('SECRET_INVALID_CHARACTERS', 'The secret PlainValue is not base64.');
    else if (secret.length < MIN_SECRET_BYTES) error('SECRET_TOO_SHORT', `The secret is ${secret.length} bytes; at least ${MIN_SECRET_BYTES} are needed.`);
    else if (secret.length > MAX_SECRET_BYTES) error('SECRET_TOO_LONG', `The secret is ${secret.length} bytes; at most ${MAX_SECRET_BYTES} are accepted.`);
  }

  const algorithm = entry.suite ? parseHashAlgorithm(entry.suite) : 'SHA1';
  if (!algorithm) error('ALGORITHM_UNSUPPORTED', 'The Suite is not HMAC-SHA1, HMAC-SHA256 or HMAC-SHA512.');

  const digits = entry.digitsText === undefined ? DEFAULT_DIGITS : parseInteger(entry.digitsText);
  if (digits !== 6 && digits !== 8) error('DIGITS_INVALID', `The ResponseFormat Length is ${digits !== undefined && digits >= 0 && digits < 100 ? digits : 'not a small whole number'}; it must be 6 or 8.`);
  if (entry.responseEncoding !== undefined && entry.responseEncoding !== 'DECIMAL') {
    const known = PSKC_RESPONSE_ENCODINGS.has(entry.responseEncoding) ? quoteValue(entry.responseEncoding) : 'not a PSKC response encoding';
    error('FIELD_INVALID', `The ResponseFormat Encoding is ${known}; only DECIMAL codes are supported.`);
  }

  const interval = integerValue(entry.data.TimeInterval, false);
  const period = interval ?? DEFAULT_TIME_INTERVAL;
  if (type === 'totp' && period !== 30 && period !== 60) {
    error('INTERVAL_INVALID', `The TimeInterval is ${interval === 'invalid' ? 'not a whole number' : `${period} seconds`}; it must be 30 or 60.`);
  }
  const counter = integerValue(entry.data.Counter, false);
  if (counter === 'invalid') error('FIELD_INVALID', 'The Counter is not a non-negative whole number.');
  const drift = integerValue(entry.data.TimeDrift, true);
  if (drift === 'invalid') error('FIELD_INVALID', 'The TimeDrift is not a whole number of intervals.');
  const time = integerValue(entry.data.Time, false);
  if (time === 'invalid') error('FIELD_INVALID', 'The Time is not a non-negative whole number.');
  // Entra and RFC 6238 count steps from the Unix epoch; a token with another origin would never match.
  else if (type === 'totp' && time !== undefined && time !== 0) error('FIELD_INVALID', `The Time (T0) is ${time}; only 0 (the Unix epoch) is supported.`);

  if (problems.length > 0 || !secret || !algorithm || digits === undefined || typeof period !== 'number') return { token: undefined, problems };
  const token: OathToken = {
    serial: entry.serial,
    manufacturer: entry.manufacturer,
    model: entry.model,
    type,
    algorithm,
    digits,
    period,
    secret: new Uint8Array(secret),
  };
  if (typeof counter === 'number') token.counter = counter;
  if (typeof drift === 'number') token.timeDriftSeconds = drift * period;
  if (line !== undefined) token.line = line;
  return { token, problems };
}

function sameSettings(a: OathToken, b: OathToken): boolean {
  return (
    a.manufacturer === b.manufacturer &&
    a.model === b.model &&
    a.type === b.type &&
    a.algorithm === b.algorithm &&
    a.digits === b.digits &&
    a.period === b.period &&
    a.counter === b.counter &&
    a.timeDriftSeconds === b.timeDriftSeconds
  );
}

/** Conflicting serials lose every token (errors on each); exact repeats keep the first (a warning on the others). */
function resolveDuplicates(built: { entry: KeyEntry; line: number | undefined; result: BuiltKey }[]): void {
  const bySerial = new Map<string, { line: number | undefined; result: BuiltKey }[]>();
  for (const item of built) {
    if (!item.result.token) continue;
    const group = bySerial.get(item.result.token.serial);
    if (group) group.push(item);
    else bySerial.set(item.result.token.serial, [item]);
  }
  for (const [serial, group] of bySerial) {
    if (group.length < 2) continue;
    const first = group[0]!.result.token!;
    const sameSecrets = group.every((g) => sameSecret(g.result.token!.secret, first.secret));
    const conflict = !sameSecrets || group.some((g) => !sameSettings(g.result.token!, first));
    group.forEach((item, i) => {
      const where = { serial, ...(item.line === undefined ? {} : { line: item.line }) };
      if (conflict) {
        item.result.problems.push(
          problem(
            'DUPLICATE_SERIAL_CONFLICT',
            'error',
            `The serial appears ${group.length} times with ${sameSecrets ? 'the same secret but different settings' : 'different secrets'}; none of these keys is used.`,
            where,
          ),
        );
        item.result.token = undefined;
      } else if (i > 0) {
        item.result.problems.push(problem('DUPLICATE_ROW', 'warning', 'The key repeats an earlier key exactly; it is imported once.', where));
        item.result.token = undefined;
      }
    });
  }
}

// ---------------------------------------------------------------------------
// Public API.

/** Cheap sniff: after a BOM and whitespace, the bytes start with '<'. */
export function looksLikePskc(bytes: Uint8Array): boolean {
  let i = 0;
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) i = 3;
  while (i < bytes.length && (bytes[i] === 0x20 || bytes[i] === 0x09 || bytes[i] === 0x0a || bytes[i] === 0x0d)) i++;
  return bytes[i] === 0x3c;
}

function loadContainer(bytes: Uint8Array, opts: Pick<ReadOptions, 'fileName' | 'maxBytes'>): { text: string; container: XmlElement } {
  const { fileName } = opts;
  checkSize(fileName, bytes, opts.maxBytes ?? DEFAULT_MAX_SEED_FILE_BYTES);
  const text = decodeUtf8(fileName, bytes);
  if (!/\S/.test(text)) throw new FileError('FILE_EMPTY', `${fileName}: the file is empty.`);
  return { text, container: checkContainer(fileName, parseDocument(fileName, text)) };
}

/**
 * Reads a PSKC file. File-level failures (malformed XML, refused DOCTYPE,
 * missing or wrong key, MAC mismatch, unsupported algorithm) throw FileError;
 * per-key problems come back in `problems`, with the key left out of `tokens`
 * when any of its problems is an error.
 */
export function readPskc(bytes: Uint8Array, opts: ReadOptions): SeedReadResult {
  const { fileName } = opts;
  const { text, container } = loadContainer(bytes, opts);
  const packageCount = childrenNamed(container, PSKC_NS, 'KeyPackage').length;
  if (packageCount === 0) throw new FileError('FILE_EMPTY', `${fileName}: the PSKC file holds no KeyPackage.`);
  const lines = new KeyPackageLines(text, packageCount);
  const entries = collectKeys(fileName, container, lines);
  if (entries.length === 0) throw new FileError('FILE_EMPTY', `${fileName}: the PSKC file's KeyPackages hold no Key.`);

  const encrypted = encryptedValuesOf(entries);
  if (encrypted.length > 0) decryptAll(fileName, container, encrypted, opts);

  const built = entries.map((entry) => {
    const line = lines.of(entry.packageIndex);
    return { entry, line, result: buildToken(entry, line) };
  });
  resolveDuplicates(built);
  return {
    file: fileName,
    format: 'pskc',
    tokens: built.flatMap((b) => (b.result.token ? [b.result.token] : [])),
    problems: built.flatMap((b) => b.result.problems),
    embeddedAssignments: [],
  };
}

/**
 * Says whether the file is encrypted and with what kind of key, for prompts
 * and messages. Files that cannot be read come back as not encrypted;
 * readPskc then reports why.
 */
export function describePskcKeyNeed(bytes: Uint8Array): { encrypted: boolean; kind?: 'psk' | 'password'; keyName?: string } {
  let container: XmlElement;
  try {
    container = loadContainer(bytes, { fileName: 'file' }).container;
  } catch (err) {
    if (err instanceof FileError) return { encrypted: false };
    throw err;
  }
  const encrypted = childrenNamed(container, PSKC_NS, 'KeyPackage').some((keyPackage) =>
    childrenNamed(keyPackage, PSKC_NS, 'Key').some((key) => {
      const data = child(key, PSKC_NS, 'Data');
      return data?.children.some((field) => child(field, PSKC_NS, 'EncryptedValue') !== undefined) ?? false;
    }),
  );
  if (!encrypted) return { encrypted: false };
  const need = keyNeedOf(container);
  return need.keyName === undefined ? { encrypted: true, kind: need.kind } : { encrypted: true, kind: need.kind, keyName: need.keyName };
}
