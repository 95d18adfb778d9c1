/**
 * Reader for PSKC 1.0 seed files (RFC 6030): plain and encrypted (pre-shared
 * key or PBKDF2 password) containers, with every MAC checked before any token
 * is returned. Its layers, as in python-pskc:
 * - pskc-xml.ts: XML and namespaces;
 * - pskc-parse.ts: the container's key entries;
 * - pskc-encryption.ts and pskc-crypto.ts: keys, MAC and decryption;
 * - pskc-token.ts: token building, with the rules every format shares.
 */
import { FileError, sortProblems, type Problem } from '../core/problems.js';
import { resolveDuplicates } from '../core/validate.js';
import { decryptAll, keyNeedOf } from './pskc-encryption.js';
import { checkContainer, collectKeys, encryptedValuesOf } from './pskc-parse.js';
import { buildToken } from './pskc-token.js';
import { KeyPackageLines, PSKC_NS, child, childrenNamed, parseDocument, type XmlElement } from './pskc-xml.js';
import { checkSize, decodeUtf8 } from './text.js';
import { DEFAULT_MAX_SEED_FILE_BYTES, type ReadOptions, type SeedReadResult } from './types.js';

/** The reader's parser options, for the benchmark's parser floor. */
export { PSKC_XML_PARSER_OPTIONS } from './pskc-xml.js';

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

  const problems: Problem[] = [];
  const candidates = [];
  for (const entry of entries) {
    const built = buildToken(entry, lines.of(entry.packageIndex));
    problems.push(...built.problems);
    if (built.token) candidates.push(built.token);
  }
  const deduped = resolveDuplicates(candidates);
  problems.push(...deduped.problems);
  return {
    file: fileName,
    format: 'pskc',
    tokens: deduped.tokens,
    problems: sortProblems(problems),
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
