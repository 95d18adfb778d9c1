/**
 * Reader for PSKC 1.0 seed files (RFC 6030) and the keyprov drafts before it:
 * plain and encrypted (pre-shared key or PBKDF2 password) containers, with
 * every MAC checked before any token is returned. Its layers, as in python-pskc:
 * - pskc-xml.ts: XML and namespaces;
 * - pskc-parse.ts (RFC 6030) and pskc-draft.ts (the draft layout): the key entries;
 * - pskc-encryption.ts and pskc-crypto.ts: keys, MAC and decryption;
 * - pskc-token.ts and pskc-policy.ts: token building with the rules every
 *   format shares, and the key policies judged at the caller's clock.
 * The rules and their sources: docs/formats/pskc.md.
 */
import { FileError, problem, sortProblems, type Problem } from '../core/problems.js';
import type { OathToken } from '../core/token.js';
import { resolveDuplicates } from '../core/validate.js';
import { decryptAll } from './pskc-encryption.js';
import { encryptedValuesOf, keyNeedOfContainer, readContainer } from './pskc-parse.js';
import { buildToken } from './pskc-token.js';
import { parseDocument, type XmlElement } from './pskc-xml.js';
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

function loadRoot(bytes: Uint8Array, opts: Pick<ReadOptions, 'fileName' | 'maxBytes'>): { text: string; root: XmlElement } {
  const { fileName } = opts;
  checkSize(fileName, bytes, opts.maxBytes ?? DEFAULT_MAX_SEED_FILE_BYTES);
  const text = decodeUtf8(fileName, bytes);
  if (!/\S/.test(text)) throw new FileError('FILE_EMPTY', `${fileName}: the file is empty.`);
  return { text, root: parseDocument(fileName, text) };
}

/**
 * Reads a PSKC file. File-level failures (malformed XML, refused DOCTYPE,
 * missing or wrong key, MAC mismatch, unsupported algorithm) throw FileError;
 * per-key problems come back in `problems`, with the key left out of `tokens`
 * when any of its problems is an error. Key policies are judged at `opts.now`.
 */
export function readPskc(bytes: Uint8Array, opts: ReadOptions): SeedReadResult {
  const { fileName } = opts;
  const { text, root } = loadRoot(bytes, opts);
  const doc = readContainer(fileName, text, root);
  const container = doc.layout === 'draft' ? 'Device' : 'KeyPackage';
  if (doc.packageCount === 0) throw new FileError('FILE_EMPTY', `${fileName}: the PSKC file holds no ${container}.`);
  if (doc.entries.length === 0) throw new FileError('FILE_EMPTY', `${fileName}: the PSKC file's ${container}s hold no Key.`);

  const encrypted = encryptedValuesOf(doc.entries);
  if (encrypted.length > 0) decryptAll(fileName, doc.keying, encrypted, opts);

  const problems: Problem[] = [];
  if (doc.layout === 'draft') {
    problems.push(
      problem(
        'PSKC_DRAFT_LAYOUT',
        'info',
        `${fileName}: the file uses the pre-RFC 6030 draft layout (a KeyContainer of Devices, as older ActivIdentity exports write it); it was read with that layout's rules, a ValueDigest over the plaintext included.`,
      ),
    );
  }
  const candidates: OathToken[] = [];
  for (const entry of doc.entries) {
    const built = buildToken(entry, doc.lines.of(entry.packageIndex), opts.now);
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
  let root: XmlElement;
  try {
    root = loadRoot(bytes, { fileName: 'file' }).root;
  } catch (err) {
    if (err instanceof FileError) return { encrypted: false };
    throw err;
  }
  const found = keyNeedOfContainer(root);
  if (!found.encrypted) return { encrypted: false };
  const { need } = found;
  return need.keyName === undefined ? { encrypted: true, kind: need.kind } : { encrypted: true, kind: need.kind, keyName: need.keyName };
}
