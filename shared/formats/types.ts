/** What every seed-file reader returns. File-level failures are thrown as FileError instead. */
import type { SecretEncoding } from '../core/encoding.js';
import type { Problem } from '../core/problems.js';
import type { OathToken } from '../core/token.js';

/** csv: a CSV with a header; privacyidea-csv: the header-less OATH CSV of privacyIDEA and LinOTP; pskc: RFC 6030 and its drafts. */
export type SeedFormat = 'csv' | 'privacyidea-csv' | 'pskc';

export interface SeedReadResult {
  file: string;
  format: SeedFormat;
  /** CSV formats only: the encoding used for every secret of the file, and how it was chosen. */
  secretEncoding?: SecretEncoding;
  encodingDecidedBy?: 'forced' | 'detected';
  /** Valid tokens (those with only warnings included), in file order. */
  tokens: OathToken[];
  /** Per-token problems, in file order. */
  problems: Problem[];
  /** UPNs the seed file itself carries (Entra's own layout), for files that need no separate assignment list. */
  embeddedAssignments: { upn: string; serial: string; line: number }[];
}

/** Key material for encrypted formats (PSKC). Never logged, never echoed. */
export interface KeyMaterial {
  /** Pre-shared transport key (raw bytes). */
  psk?: Uint8Array;
  /** Password for PBKDF2-derived keys. */
  password?: string;
}

export interface ReadOptions extends KeyMaterial {
  /** Name used in messages (a path or a blob name). */
  fileName: string;
  /**
   * The caller's clock reading (the CLI's and the pipeline's Clock). Readers judge dates in the file
   * against it (PSKC key policies: expired, not yet valid) and never read the system time themselves.
   */
  now: Date;
  /** CSV only: forces the secret encoding instead of detecting it. */
  secretEncoding?: SecretEncoding;
  /** Refuse files above this many bytes (default 20 MiB). */
  maxBytes?: number;
}

export const DEFAULT_MAX_SEED_FILE_BYTES = 20 * 1024 * 1024;
