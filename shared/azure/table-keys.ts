/**
 * Azure Table Storage row keys from the pipeline's free-form keys (serials). Row keys forbid / \ # ? and control
 * characters: they are percent-escaped, and % itself too, so the mapping stays reversible and collision-free.
 */

export function escapeTableKey(key: string): string {
  // eslint-disable-next-line no-control-regex
  return key.replace(/[%/\\#?\u0000-\u001f\u007f-\u009f]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
}

export function unescapeTableKey(key: string): string {
  return key.replace(/%([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
}
