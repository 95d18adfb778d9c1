/** Byte-level checks every reader applies before parsing: the size limit and strict UTF-8. */
import { isUtf8 } from 'node:buffer';
import { FileError } from '../core/problems.js';

const BOM = [0xef, 0xbb, 0xbf] as const;

function startsWithBom(bytes: Uint8Array, at: number): boolean {
  return bytes[at] === BOM[0] && bytes[at + 1] === BOM[1] && bytes[at + 2] === BOM[2];
}

/**
 * The bytes of the text decodeUtf8 returns: the file without its BOM (a second
 * one, as some tools write, goes too). Checks strict UTF-8 like decodeUtf8.
 */
export function utf8Body(fileName: string, bytes: Uint8Array): Buffer {
  if (!isUtf8(bytes)) {
    throw new FileError(
      'FILE_NOT_TEXT',
      `${fileName}: the file is not UTF-8 text (binary data or another character set). Save it as UTF-8 and try again.`,
    );
  }
  let start = 0;
  if (startsWithBom(bytes, start)) start += 3;
  if (startsWithBom(bytes, start)) start += 3;
  return Buffer.from(bytes.buffer, bytes.byteOffset + start, bytes.byteLength - start);
}

/** Decodes strict UTF-8 and drops a BOM. Anything else is FILE_NOT_TEXT. */
export function decodeUtf8(fileName: string, bytes: Uint8Array): string {
  return utf8Body(fileName, bytes).toString('utf8');
}

export function checkSize(fileName: string, bytes: Uint8Array, maxBytes: number): void {
  if (bytes.byteLength > maxBytes) {
    throw new FileError(
      'FILE_TOO_LARGE',
      `${fileName}: the file is ${bytes.byteLength} bytes, above the limit of ${maxBytes}. Split it into smaller files.`,
    );
  }
}
