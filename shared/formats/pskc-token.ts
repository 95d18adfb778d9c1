/**
 * Building tokens from PSKC key entries: the PSKC-specific readings (key
 * algorithm, Suite, ResponseFormat, integer Data fields, T0), then the token
 * rules every format shares (shared/core/validate.ts).
 */
import { problem, quoteValue, type Problem, type ProblemCode } from '../core/problems.js';
import { parseHashAlgorithm, type OathToken, type TokenType } from '../core/token.js';
import { checkSerial, checkToken } from '../core/validate.js';
import type { DataValue, KeyEntry } from './pskc-parse.js';
import { decodeBase64, parseXmlInteger, quoteUri } from './pskc-xml.js';

const KEY_TYPES: ReadonlyMap<string, TokenType> = new Map([
  ['urn:ietf:params:xml:ns:keyprov:pskc:totp', 'totp'],
  ['urn:ietf:params:xml:ns:keyprov:pskc:hotp', 'hotp'],
]);

const DEFAULT_TIME_INTERVAL = 30;
const DEFAULT_DIGITS = 6;

/** RFC 6030's response encodings: the only Encoding values quoted back. */
const PSKC_RESPONSE_ENCODINGS: ReadonlySet<string> = new Set(['DECIMAL', 'HEXADECIMAL', 'ALPHANUMERIC', 'BASE64', 'BINARY']);

/** Encrypted integers are big-endian binary (RFC 6030 section 6.1); TimeDrift may be negative. */
function integerFromBytes(bytes: Buffer, signed: boolean): number | undefined {
  if (bytes.length === 0 || bytes.length > 8) return undefined;
  let value = 0n;
  for (const byte of bytes) value = (value << 8n) | BigInt(byte);
  if (signed && (bytes[0]! & 0x80) !== 0) value -= 1n << BigInt(bytes.length * 8);
  return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : undefined;
}

function integerValue(value: DataValue | undefined, signed: boolean): number | undefined | 'invalid' {
  if (!value) return undefined;
  const parsed = 'plain' in value ? parseXmlInteger(value.plain) : integerFromBytes(value.encrypted.plaintext!, signed);
  if (parsed === undefined || (!signed && parsed < 0)) return 'invalid';
  return parsed;
}

export interface BuiltKey {
  token: OathToken | undefined;
  problems: Problem[];
}

/**
 * One key entry as a token, or the reasons it is not one. PSKC's own fields
 * are read here; the rules every format shares (secret length, interval,
 * digits, counter) come from checkToken.
 */
export function buildToken(entry: KeyEntry, line: number | undefined): BuiltKey {
  const problems: Problem[] = [];
  // The same serial rules as every other format (control, invisible and bidi characters; length).
  const serialProblem = entry.serial ? checkSerial(entry.serial, line) : undefined;
  // A serial that fails them is neither attached nor quoted.
  const where = { ...(entry.serial && !serialProblem ? { serial: entry.serial } : {}), ...(line === undefined ? {} : { line }) };
  const error = (code: ProblemCode, detail: string) => problems.push(problem(code, 'error', detail, where));

  if (!entry.serial) error('SERIAL_MISSING', 'The KeyPackage has neither a DeviceInfo SerialNo nor a Key Id.');
  else if (serialProblem) problems.push(serialProblem);

  const type = entry.algorithmUri === undefined ? undefined : KEY_TYPES.get(entry.algorithmUri);
  if (!type) {
    error(
      'TYPE_UNSUPPORTED',
      entry.algorithmUri === undefined
        ? 'The Key has no Algorithm attribute; only TOTP and HOTP keys are supported.'
        : `The key algorithm ${quoteUri(entry.algorithmUri)} is not supported; only TOTP and HOTP keys are.`,
    );
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

  const digits = entry.digitsText === undefined ? DEFAULT_DIGITS : parseXmlInteger(entry.digitsText);
  if (digits === undefined || digits < 0 || digits >= 100) error('DIGITS_INVALID', 'The ResponseFormat Length is not a small whole number; it must be 6 or 8.');
  if (entry.responseEncoding !== undefined && entry.responseEncoding !== 'DECIMAL') {
    const known = PSKC_RESPONSE_ENCODINGS.has(entry.responseEncoding) ? quoteValue(entry.responseEncoding) : 'not a PSKC response encoding';
    error('FIELD_INVALID', `The ResponseFormat Encoding is ${known}; only DECIMAL codes are supported.`);
  }

  const interval = integerValue(entry.data.TimeInterval, false);
  if (interval === 'invalid') error('INTERVAL_INVALID', 'The TimeInterval is not a whole number of seconds; it must be 30 or 60.');
  const period = typeof interval === 'number' ? interval : DEFAULT_TIME_INTERVAL;
  const counter = integerValue(entry.data.Counter, false);
  if (counter === 'invalid') error('FIELD_INVALID', 'The Counter is not a non-negative whole number.');
  const drift = integerValue(entry.data.TimeDrift, true);
  if (drift === 'invalid') error('FIELD_INVALID', 'The TimeDrift is not a whole number of intervals.');
  const time = integerValue(entry.data.Time, false);
  if (time === 'invalid') error('FIELD_INVALID', 'The Time is not a non-negative whole number.');
  // Entra and RFC 6238 count steps from the Unix epoch; a token with another origin would never match.
  else if (type === 'totp' && time !== undefined && time !== 0) error('FIELD_INVALID', `The Time (T0) is ${time}; only 0 (the Unix epoch) is supported.`);

  const draft = {
    type,
    secret,
    digits: digits !== undefined && digits >= 0 && digits < 100 ? digits : undefined,
    period: interval === 'invalid' ? undefined : period,
    counter: typeof counter === 'number' ? counter : undefined,
    timeDriftSeconds: typeof drift === 'number' ? drift * period : undefined,
  };
  problems.push(...checkToken(draft, where));

  if (problems.length > 0 || !secret || !algorithm || draft.digits === undefined) return { token: undefined, problems };
  const token: OathToken = {
    serial: entry.serial,
    manufacturer: entry.manufacturer,
    model: entry.model,
    type,
    algorithm,
    digits: draft.digits,
    period,
    secret: new Uint8Array(secret),
  };
  if (draft.counter !== undefined) token.counter = draft.counter;
  if (draft.timeDriftSeconds !== undefined) token.timeDriftSeconds = draft.timeDriftSeconds;
  if (line !== undefined) token.line = line;
  return { token, problems };
}
