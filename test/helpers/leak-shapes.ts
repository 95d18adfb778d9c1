/**
 * Seed files with one malformed row each, of the shapes a security review
 * used to pull seeds into problem messages: a missing or extra cell shifts the
 * secret into the serial, interval or type column. Each file also holds
 * well-formed rows, which must still come out. Secrets are random on every
 * call, so a hit in a leak scan cannot be a coincidence with fixed test data.
 */
import { randomBytes } from 'node:crypto';
import { toCanonicalBase32 } from '../../shared/core/encoding.js';

export interface LeakShape {
  /** File name, unique per prefix. */
  name: string;
  /** Where the file is dropped: a seed file, or a seed file handed over as an assignment list by mistake. */
  kind: 'seed' | 'assignments';
  content: string;
  about: string;
  /** Serials of the well-formed rows (seed shapes: the tokens that must come out). */
  goodSerials: string[];
  /** Line of the malformed row. */
  badLine: number;
  /** Every secret in the file. */
  secrets: Uint8Array[];
}

const ENTRA_HEADER = 'upn,serial number,secret key,time interval,manufacturer,model';

export function leakShapes(prefix: string): LeakShape[] {
  const secrets: Uint8Array[] = [];
  const secret = () => {
    const bytes = new Uint8Array(randomBytes(20));
    secrets.push(bytes);
    return bytes;
  };
  const b32 = () => toCanonicalBase32(secret());
  const hex = () => Buffer.from(secret()).toString('hex');
  const shapes: LeakShape[] = [];
  const add = (name: string, kind: LeakShape['kind'], about: string, rows: string[], goodSerials: string[], badLine: number) => {
    shapes.push({
      name: `${prefix}-${name}`,
      kind,
      about,
      content: `${rows.join('\n')}\n`,
      goodSerials,
      badLine,
      secrets: secrets.splice(0),
    });
  };
  const s = (n: string) => `${prefix.toUpperCase()}${n}`;

  add(
    'missing-upn.csv',
    'seed',
    "Entra's layout, a row whose empty leading upn cell is missing (the secret lands in the serial column)",
    [ENTRA_HEADER, `,${s('A1')},${b32()},30,Token2,C202`, `${s('A2')},${b32()},30,Token2,C202`, `,${s('A3')},${b32()},30,Token2,C202`],
    [s('A1'), s('A3')],
    3,
  );
  add(
    'comma-manufacturer.csv',
    'seed',
    'an unquoted comma inside a manufacturer name placed before the secret (the secret lands in the interval column)',
    [
      'serial number,manufacturer,model,secret key,time interval',
      `${s('B1')},Token2,C202,${b32()},30`,
      `${s('B2')},Token2, Inc,C202,${b32()},30`,
      `${s('B3')},Token2,C202,${b32()},30`,
    ],
    [s('B1'), s('B3')],
    3,
  );
  add(
    'missing-upn-and-comma.csv',
    'seed',
    "Entra's layout, a missing upn cell and an unquoted comma in the manufacturer: the cell count matches the header, every cell is shifted",
    [ENTRA_HEADER, `,${s('C1')},${b32()},30,Token2,C202`, `${s('C2')},${b32()},30,Token2, Inc,C202`, `,${s('C3')},${b32()},30,Token2,C202`],
    [s('C1'), s('C3')],
    3,
  );
  add(
    'privacyidea-extra-cell.csv',
    'seed',
    'a privacyIDEA OATH CSV row with an extra empty cell after the serial (the seed lands in the type column)',
    [
      '# privacyIDEA OATH CSV export',
      `${s('D1')}, ${hex()}, totp, 6, 30`,
      `${s('D2')},, ${hex()}, totp, 6, 30`,
      `${s('D3')}, ${hex()}, totp, 6, 30`,
    ],
    [s('D1'), s('D3')],
    3,
  );
  add(
    'seed-as-list.csv',
    'assignments',
    "a seed file in Entra's layout dropped as an assignment list, one row missing its upn cell (the secret lands in the serial column)",
    [ENTRA_HEADER, `ana@contoso.com,${s('E1')},${b32()},30,Token2,C202`, `${s('E2')},${b32()},30,Token2,C202`],
    [s('E1')],
    3,
  );
  return shapes;
}
