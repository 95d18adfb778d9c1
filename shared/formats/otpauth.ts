/**
 * The provisioning form of a token: an `otpauth://` URI in Google's Key Uri Format, which phone apps and token
 * burners (NFC apps that write a programmable token) read. ./qr.ts draws it as a QR code.
 *
 *   otpauth://totp/<issuer>:<serial>?secret=<base32>&issuer=<issuer>&algorithm=SHA1&digits=6&period=30
 *
 * Every parameter is written, defaults included: some burners ignore a missing one and some apps mistake it.
 */
import { toCanonicalBase32 } from '../core/encoding.js';
import type { HashAlgorithm } from '../core/token.js';

export interface OtpauthToken {
  issuer: string;
  serial: string;
  secret: Uint8Array;
  algorithm: HashAlgorithm;
  digits: number;
  period: number;
}

/**
 * Why a serial cannot be an otpauth account name, or undefined. The format separates issuer and account with a
 * colon, literal or encoded, and says neither may hold one; readers that decode first would split such a serial.
 */
export function otpauthSerialFault(serial: string): string | undefined {
  return serial.includes(':') ? 'it holds a colon, which separates issuer and account in an otpauth URI' : undefined;
}

/** Why a text cannot be the otpauth issuer, or undefined. */
export function otpauthIssuerFault(issuer: string): string | undefined {
  if (issuer.length === 0 || issuer.length > 64) return 'it must be 1 to 64 characters long';
  if (issuer.includes(':')) return 'it must not hold a colon (the separator of issuer and account)';
  if (/[\p{Cc}\p{Cf}]/u.test(issuer)) return 'it must not hold control or invisible characters';
  return undefined;
}

/** Label parts and values are percent-encoded (spaces as %20, never +), the way the format's readers decode them. */
export function otpauthUri(token: OtpauthToken): string {
  const fault = otpauthSerialFault(token.serial) ?? otpauthIssuerFault(token.issuer);
  if (fault) throw new Error(`No otpauth URI for this token: ${fault}.`);
  const label = `${encodeURIComponent(token.issuer)}:${encodeURIComponent(token.serial)}`;
  const params = [
    ['secret', toCanonicalBase32(token.secret)],
    ['issuer', token.issuer],
    ['algorithm', token.algorithm],
    ['digits', String(token.digits)],
    ['period', String(token.period)],
  ];
  return `otpauth://totp/${label}?${params.map(([k, v]) => `${k}=${encodeURIComponent(v!)}`).join('&')}`;
}
