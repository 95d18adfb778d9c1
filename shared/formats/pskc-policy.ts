/**
 * Judging a PSKC key's Policy (RFC 6030 section 5) against the caller's
 * clock: an expired key is an error (never stored, never exported), a key not
 * valid yet a warning, and every other rule that changes how the token may be
 * used is reported rather than dropped. Dates and names are shown only in the
 * reader's own normalized form, never as the file wrote them.
 */
import { problem, type Problem } from '../core/problems.js';
import type { ProblemPlace } from '../core/validate.js';
import type { PolicyEntry } from './pskc-parse.js';
import { draftAttribute, type XmlElement } from './pskc-xml.js';

/** The drafts' Usage attributes (OTP="true", ...): the usages they say yes to. */
const USAGE_ATTRIBUTES = ['OTP', 'CR', 'Integrity', 'Encrypt', 'Unlock'] as const;

/** The usages a draft Usage element allows, by its attributes (any case of the first letter, "true" or "1"). */
export function usagesOf(usage: XmlElement | undefined): string[] {
  if (!usage) return [];
  return USAGE_ATTRIBUTES.filter((name) => /^(true|1)$/i.test(draftAttribute(usage, name) ?? ''));
}

/** RFC 6030's KeyUsage values. */
const KEY_USAGES: ReadonlySet<string> = new Set([
  'OTP',
  'CR',
  'Encrypt',
  'Integrity',
  'Verify',
  'Unlock',
  'Decrypt',
  'KeyWrap',
  'Unwrap',
  'Derive',
  'Generate',
]);

const XS_DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2}):(\d{2})(?:\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})?$/;

/**
 * An xs:dateTime (or xs:date) as a Date. Without a time zone it is taken as
 * UTC: the file does not say which local time it meant, and a few hours do
 * not change whether a key expired years ago.
 */
export function parseXsDateTime(text: string): Date | undefined {
  const m = XS_DATE_TIME.exec(text.trim());
  if (!m) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map((part) => Number(part ?? 0)) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const zone = m[7];
  const utc = Date.UTC(year, month - 1, day, hour, minute, second);
  const check = new Date(utc);
  // Date.UTC rolls 2026-02-30 over into March; a date that does not come back unchanged does not exist.
  if (
    check.getUTCFullYear() !== year ||
    check.getUTCMonth() !== month - 1 ||
    check.getUTCDate() !== day ||
    hour > 23 ||
    minute > 59 ||
    second > 59
  )
    return undefined;
  const offsetMinutes =
    zone === undefined || zone === 'Z' ? 0 : (zone.startsWith('-') ? -1 : 1) * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6)));
  return new Date(utc - offsetMinutes * 60_000);
}

function shown(date: Date): string {
  return date.toISOString().replace('.000Z', 'Z');
}

/** The problems a key's policy raises at `now`; `where` names the key (its serial only once that passed its check). */
export function judgePolicy(policy: PolicyEntry, now: Date, where: ProblemPlace): Problem[] {
  const problems: Problem[] = [];
  const add = (code: Problem['code'], severity: Problem['severity'], detail: string) =>
    problems.push(problem(code, severity, detail, where));

  if (policy.unknownItems > 0) {
    add(
      'POLICY_UNKNOWN',
      'error',
      `The key's Policy holds ${policy.unknownItems} element(s) or PINPolicy attribute(s) outside RFC 6030's list; RFC 6030 section 5 says the key must then not be used. Ask the vendor what the rule means, and for a file without it.`,
    );
  }
  for (const [name, text] of [
    ['StartDate', policy.startDate],
    ['ExpiryDate', policy.expiryDate],
  ] as const) {
    if (text === undefined) continue;
    const date = parseXsDateTime(text);
    if (!date) {
      add(
        'FIELD_INVALID',
        'error',
        `The Policy ${name} is not an xs:dateTime (for example 2030-12-31T00:00:00Z), so whether the key may be used cannot be told.`,
      );
    } else if (name === 'ExpiryDate' && date.getTime() < now.getTime()) {
      add(
        'POLICY_EXPIRED',
        'error',
        `The key expired on ${shown(date)} (its Policy ExpiryDate); an expired key is neither stored nor exported. Ask the vendor for a current seed.`,
      );
    } else if (name === 'StartDate' && date.getTime() > now.getTime()) {
      add(
        'POLICY_NOT_YET_VALID',
        'warning',
        `The key may be used only from ${shown(date)} (its Policy StartDate); it is stored, but codes may be refused by the token's issuer rules until then.`,
      );
    }
  }
  if (policy.keyUsage.length > 0 && !policy.keyUsage.includes('OTP')) {
    const known = policy.keyUsage.filter((u) => KEY_USAGES.has(u));
    const unknown = policy.keyUsage.length - known.length;
    const list = [...known, ...(unknown > 0 ? [`${unknown} value(s) RFC 6030 does not define`] : [])].join(', ');
    add(
      'POLICY_KEY_USAGE',
      'warning',
      `The key's Policy allows it only for ${list}, not for one-time passwords (OTP); check with the vendor that the token shows OTP codes before assigning it.`,
    );
  }
  if (policy.pin) {
    const mode = policy.pin.usageMode;
    if (mode === 'Algorithmic') {
      add(
        'POLICY_PIN',
        'error',
        "The key's PINPolicy puts the PIN into the code computation (PINUsageMode Algorithmic): codes cannot be checked without the PIN, and Entra does not take one.",
      );
    } else if (mode === 'Prepend' || mode === 'Append') {
      add(
        'POLICY_PIN',
        'warning',
        `The key's PINPolicy has the user type a PIN ${mode === 'Prepend' ? 'before' : 'after'} the code for the issuer's server to check (PINUsageMode ${mode}); Entra checks the code alone, so that PIN is not checked any more.`,
      );
    } else {
      add(
        'POLICY_PIN',
        'warning',
        `The key's PINPolicy (PINUsageMode ${mode === 'Local' ? 'Local' : 'not given or not one RFC 6030 defines'}) has the token ask for a PIN before it shows a code; users need that PIN, which is not in this file's tokens.`,
      );
    }
  }
  if (policy.numberOfTransactions !== undefined) {
    const n = /^\s*\d{1,12}\s*$/.test(policy.numberOfTransactions) ? Number(policy.numberOfTransactions) : undefined;
    add(
      'POLICY_TRANSACTION_LIMIT',
      'warning',
      `The key's Policy limits it to ${n === undefined ? 'a number of' : n} uses (NumberOfTransactions); Entra does not count uses, so the limit is not enforced.`,
    );
  }
  return problems;
}
