/** Byte-level checks every reader applies before parsing: the size limit and strict UTF-8. */
import { FileError } from '../core/problems.js';

/** Decodes strict UTF-8 and drops a BOM. Anything else is FILE_NOT_TEXT. */
export function decodeUtf8(fileName: string, bytes: Uint8Array): string {
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  } catch {
    throw new FileError('FILE_NOT_TEXT', `${fileName}: the file is not UTF-8 text (binary data or another character set). Save it as UTF-8 and try again.`);
  }
}

export function checkSize(fileName: string, bytes: Uint8Array, maxBytes: number): void {
  if (bytes.byteLength > maxBytes) {
    throw new FileError('FILE_TOO_LARGE', `${fileName}: the file is ${bytes.byteLength} bytes, above the limit of ${maxBytes}. Split it into smaller files.`);
  }
}
