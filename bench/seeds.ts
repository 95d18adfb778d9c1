/**
 * Deterministic benchmark tokens and the files made from them. The secrets are
 * derived from a label (not random, not real): runs are repeatable, and
 * nothing here is a secret worth protecting. They are still never printed.
 */
import { createHash } from 'node:crypto';
import { toCanonicalBase32 } from '../shared/core/encoding.js';

export interface BenchToken {
  serial: string;
  secret: Buffer;
  secretBase32: string;
}

const ENTRA_HEADER = 'upn,serial number,secret key,time interval,manufacturer,model';

export function benchTokens(count: number, label = 'bench'): BenchToken[] {
  const tokens: BenchToken[] = [];
  for (let i = 0; i < count; i++) {
    const secret = createHash('sha256').update(`${label}/${i}`).digest().subarray(0, 20);
    tokens.push({ serial: `BN${String(i).padStart(7, '0')}`, secret, secretBase32: toCanonicalBase32(secret) });
  }
  return tokens;
}

/** Entra's own seed layout (no UPNs: assignments come separately). */
export function entraSeedCsv(tokens: readonly BenchToken[]): string {
  const rows = [ENTRA_HEADER];
  for (const t of tokens) rows.push(`,${t.serial},${t.secretBase32},30,Token2,C202`);
  return rows.join('\n') + '\n';
}

/** One user per token, so Entra's five-tokens-per-user rule never interferes. */
export function assignmentsCsv(tokens: readonly BenchToken[]): string {
  const rows = ['upn,serial number'];
  tokens.forEach((t, i) => rows.push(`bench.user${String(i).padStart(6, '0')}@contoso.com,${t.serial}`));
  return rows.join('\n') + '\n';
}
