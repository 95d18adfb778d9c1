/**
 * Size limits of input blobs, checked on the blob's properties before any content is loaded, and again on what a
 * bounded read returned (the blob can be replaced in between).
 */
import { FileError } from '../core/problems.js';

export function checkBlobSize(name: string, contentLength: number, maxBytes: number): void {
  if (contentLength > maxBytes) {
    throw new FileError(
      'FILE_TOO_LARGE',
      `${name}: the file is ${contentLength} bytes, above the limit of ${maxBytes}. Split it into smaller files.`,
    );
  }
}
