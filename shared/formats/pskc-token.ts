/**
 * Building tokens from PSKC key entries: the PSKC-specific readings (key
 * algorithm, Suite, ResponseFormat, integer Data fields, T0, Policy), then the
 * token rules every format shares (shared/core/validate.ts).
 */
import { problem, quoteValue, type Problem, type ProblemCode } from '../core/problems.js';
import { parseHashAlgorithm, type OathToken, type TokenType } from '../core/token.js';
import { checkSerial, checkToken, type ProblemPlace } from '../core/validate.js';
import type { DataField, DataValue, KeyEntry } from './pskc-parse.js';
import { judgePolicy } from './pskc-policy.js';
import { decodeBase64, quoteUri } from './pskc-xml.js';

/** OATH key algorithms: RFC 6030's URNs, and the forms the pre-RFC drafts wrote. */
const KEY_TYPES: ReadonlyMap<string, TokenType> = new Map([
  ['urn:ietf:params:xml:ns:keyprov:pskc:totp', 'totp'],
  ['urn:ietf:params:xml:ns:keyprov:pskc:hotp', 'hotp'],
  ['urn:ietf:params:xml:ns:keyprov:pskc#totp', 'totp'],
  ['urn:ietf:params:xml:ns:keyprov:pskc#hotp', 'hotp'],
  ['http://www.ietf.org/keyprov/pskc#totp', 'totp'],
  ['http://www.ietf.org/keyprov/pskc#hotp', 'hotp'],
  ['TOTP', 'totp'],
  ['HOTP', 'hotp'],
]);

/** Why a known non-OATH key is refused, by a pattern on its algorithm URI. */
const NON_OATH_KEYS: readonly [RegExp, string][] = [
  [/[:#]pin$/i, 'a PIN (the secret is a PIN for another key, not an OTP seed)'],
  [/ocra/i, 'OCRA challenge-response (RFC 6287), which Entra does not take'],
  [/securid/i, 'RSA SecurID, a proprietary algorithm'],
  [/actividentity-3des/i, 'ActivIdentity 3DES, a proprietary algorithm'],
  [/yubikey/i, 'Yubico OTP, not OATH'],
];

const DEFAULT_TIME_INTERVAL = 30;
const DEFAULT_DIGITS = 6;

/** RFC 6030's response encodings: the only Encoding values quoted back. */
const PSKC_RESPONSE_ENCODINGS: ReadonlySet<string> = new Set(['DECIMAL', 'HEXADECIMAL', 'ALPHANUMERIC', 'BASE64', 'BINARY']);

interface IntegerReading {
  value: bigint;
  /** Set when the value was not in RFC 6030's own form and the reader chose how to read it. */
  decision?: string;
}

function bigEndian(bytes: Uint8Array, signed: boolean): bigint {
  let value = 0n;
  for (const byte of bytes) value = (value << 8n) | BigInt(byte);
  if (signed && (bytes[0]! & 0x80) !== 0) value -= 1n << BigInt(bytes.length * 8);
  return value;
}

/** Bytes that are the ASCII digits of a decimal number (a minus sign first for signed fields). */
function asciiDecimal(bytes: Uint8Array, signed: boolean): bigint | undefined {
  const text = Buffer.from(bytes).toString('latin1');
  return (signed ? /^-?\d{1,20}$/ : /^\d{1,20}$/).test(text) ? BigInt(text) : undefined;
}

/**
 * An integer Data field. RFC 6030: a PlainValue is decimal text, an encrypted
 * value a big-endian binary number. Files in the wild also write ASCII digits
 * (encrypted, or base64 in a PlainValue) and base64 binary plain values; the
 * bytes decide which, as python-pskc decides, and the decision is reported.
 */
function readInteger(value: DataValue | undefined, signed: boolean): IntegerReading | undefined | 'invalid' {
  if (!value) return undefined;
  if ('plain' in value) {
    const text = value.plain.trim();
    if ((signed ? /^[+-]?\d{1,20}$/ : /^\+?\d{1,20}$/).test(text)) return { value: BigInt(text) };
    const bytes = decodeBase64(text);
    if (!bytes || bytes.length === 0) return 'invalid';
    const ascii = asciiDecimal(bytes, signed);
    if (ascii !== undefined) return { value: ascii, decision: `is given as base64 of its decimal digits, read as ${ascii}` };
    if (bytes.length > 8) return 'invalid';
    const binary = bigEndian(bytes, signed);
    return { value: binary, decision: `is given as base64 of a ${bytes.length}-byte big-endian number, read as ${binary}` };
  }
  const bytes = value.encrypted.plaintext!;
  const ascii = asciiDecimal(bytes, signed);
  if (ascii !== undefined) {
    const binary = bytes.length <= 8 ? `${bigEndian(bytes, signed)}` : 'a number above 64 bits';
    return {
      value: ascii,
      decision: `decrypts to the ASCII digits of ${ascii}, read as that number (read as RFC 6030's big-endian binary it would be ${binary})`,
    };
  }
  if (bytes.length === 0 || bytes.length > 8) return 'invalid';
  return { value: bigEndian(bytes, signed) };
}

function keyTypeProblem(algorithmUri: string | undefined): string {
  if (algorithmUri === undefined) return 'The Key has no Algorithm attribute; only OATH TOTP and HOTP keys are supported.';
  const reason = NON_OATH_KEYS.find(([pattern]) => pattern.test(algorithmUri))?.[1];
  return `The key algorithm ${quoteUri(algorithmUri)} is not supported${reason ? `: it is ${reason}` : ''}; only OATH TOTP and HOTP keys are.`;
}

export interface BuiltKey {
  token: OathToken | undefined;
  problems: Problem[];
}

/**
 * One key entry as a token, or the reasons it is not one. PSKC's own fields
 * are read here; the rules every format shares (secret length, interval,
 * digits, counter) come from checkToken, the Policy from judgePolicy at `now`.
 */
export function buildToken(entry: KeyEntry, line: number | undefined, now: Date): BuiltKey {
  const problems: Problem[] = [];
  // The same serial rules as every other format (control, invisible and bidi characters; length).
  const serialProblem = entry.serial ? checkSerial(entry.serial, line) : undefined;
  // A serial that fails them is neither attached nor quoted.
  const where: ProblemPlace = {
    ...(entry.serial && !serialProblem ? { serial: entry.serial } : {}),
    ...(line === undefined ? {} : { line }),
  };
  const error = (code: ProblemCode, detail: string) => problems.push(problem(code, 'error', detail, where));

  if (!entry.serial) error('SERIAL_MISSING', 'The KeyPackage has neither a DeviceInfo SerialNo nor a Key Id.');
  else if (serialProblem) problems.push(serialProblem);
  if (entry.repeated.length > 0) {
    error(
      'FIELD_INVALID',
      `The key holds ${entry.repeated.join(', ')} more than once, where PSKC allows one; which one is meant cannot be known, so the key is not read. Ask the vendor for a corrected file.`,
    );
  }

  const type = entry.algorithmUri === undefined ? undefined : KEY_TYPES.get(entry.algorithmUri);
  if (!type) {
    error('TYPE_UNSUPPORTED', keyTypeProblem(entry.algorithmUri));
    return { token: undefined, problems };
  }

  let secret: Uint8Array | undefined;
  const secretValue = entry.data.Secret;
  if (!secretValue) error('SECRET_MISSING', 'The key has no Data/Secret.');
  else {
    secret = 'plain' in secretValue ? decodeBase64(secretValue.plain) : secretValue.encrypted.plaintext;
    if (!secret) error('SECRET_INVALID_CHARACTERS', 'The secret PlainValue is not base64.');
  }

  const algorithm = entry.suite ? parseHashAlgorithm(entry.suite) : 'SHA1';
  if (!algorithm) error('ALGORITHM_UNSUPPORTED', 'The Suite is not HMAC-SHA1, HMAC-SHA256 or HMAC-SHA512.');

  const digitsText = entry.digitsText?.trim();
  const digits = digitsText === undefined ? DEFAULT_DIGITS : /^\d{1,2}$/.test(digitsText) ? Number(digitsText) : undefined;
  if (digits === undefined) error('DIGITS_INVALID', 'The ResponseFormat Length is not a small whole number; it must be 6 or 8.');
  if (entry.responseEncoding !== undefined && entry.responseEncoding !== 'DECIMAL') {
    const known = PSKC_RESPONSE_ENCODINGS.has(entry.responseEncoding) ? quoteValue(entry.responseEncoding) : 'not a PSKC response encoding';
    error('FIELD_INVALID', `The ResponseFormat Encoding is ${known}; only DECIMAL codes are supported.`);
  }
  if (entry.responseCheckDigits) {
    error(
      'FIELD_INVALID',
      'The ResponseFormat says the token appends a Luhn check digit to its codes (CheckDigits); Entra checks plain OATH codes only.',
    );
  }

  const integer = (field: DataField, signed: boolean): IntegerReading | undefined | 'invalid' => {
    const reading = readInteger(entry.data[field], signed);
    if (typeof reading === 'object' && reading.decision) {
      problems.push(problem('INTEGER_ENCODING_DECIDED', 'info', `The ${field} ${reading.decision}.`, where));
    }
    return reading;
  };
  /** A reading that must fit a JS number (seconds and intervals); counters stay bigint. */
  const small = (reading: IntegerReading | undefined | 'invalid'): number | undefined | 'invalid' => {
    if (reading === undefined || reading === 'invalid') return reading;
    return reading.value >= BigInt(Number.MIN_SAFE_INTEGER) && reading.value <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(reading.value)
      : 'invalid';
  };

  const interval = small(integer('TimeInterval', false));
  if (interval === 'invalid') error('INTERVAL_INVALID', 'The TimeInterval is not a whole number of seconds; it must be 30 or 60.');
  const period = typeof interval === 'number' ? interval : DEFAULT_TIME_INTERVAL;
  const counter = integer('Counter', false);
  if (counter === 'invalid')
    error('FIELD_INVALID', 'The Counter is not a non-negative whole number (decimal text, or up to 8 bytes of big-endian binary).');
  const drift = small(integer('TimeDrift', true));
  if (drift === 'invalid') error('FIELD_INVALID', 'The TimeDrift is not a whole number of intervals.');
  const time = small(integer('Time', false));
  if (time === 'invalid') error('FIELD_INVALID', 'The Time is not a non-negative whole number.');
  // Entra and RFC 6238 count steps from the Unix epoch; a token with another origin would never match.
  else if (type === 'totp' && time !== undefined && time !== 0)
    error('FIELD_INVALID', `The Time (T0) is ${time}; only 0 (the Unix epoch) is supported.`);

  if (entry.policy) problems.push(...judgePolicy(entry.policy, now, where));

  const draft = {
    type,
    secret,
    digits,
    period: interval === 'invalid' ? undefined : period,
    counter: typeof counter === 'object' ? counter.value : undefined,
    timeDriftSeconds: typeof drift === 'number' ? drift * period : undefined,
  };
  problems.push(...checkToken(draft, where));

  if (problems.some((p) => p.severity === 'error') || !secret || !algorithm || digits === undefined) return { token: undefined, problems };
  const token: OathToken = {
    serial: entry.serial,
    manufacturer: entry.manufacturer,
    model: entry.model,
    type,
    algorithm,
    digits,
    period,
    secret: new Uint8Array(secret),
  };
  if (draft.counter !== undefined) token.counter = draft.counter;
  if (draft.timeDriftSeconds !== undefined) token.timeDriftSeconds = draft.timeDriftSeconds;
  if (line !== undefined) token.line = line;
  return { token, problems };
}
