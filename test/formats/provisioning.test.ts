// The provisioning forms of a programmed token: minted secrets, otpauth URIs, their QR codes, and seed files.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parse as parseOtpauth } from '@otplib/uri';
import QRCode from 'qrcode';
import { decodeBase32, toCanonicalBase32 } from '../../shared/core/encoding.js';
import { MINTED_SECRET_BYTES, mintSecret, type OathToken } from '../../shared/core/token.js';
import { otpauthIssuerFault, otpauthSerialFault, otpauthUri } from '../../shared/formats/otpauth.js';
import { qrSvg } from '../../shared/formats/qr.js';
import { readSeedFile } from '../../shared/formats/read-seed-file.js';
import { seedCsvFault, seedCsvLayout, writeSeedCsv } from '../../shared/formats/seed-writer.js';
import { decodeQrSvg, svgModules } from '../helpers/qr.js';

const SECRET = new Uint8Array(Buffer.from('3132333435363738393031323334353637383930', 'hex'));

void describe('minted secrets', () => {
  void test('are as long as the hash output, and fresh each time', () => {
    assert.equal(mintSecret('SHA1').length, 20);
    assert.equal(mintSecret('SHA256').length, 32);
    assert.equal(MINTED_SECRET_BYTES.SHA512, 64);
    const seen = new Set(Array.from({ length: 50 }, () => toCanonicalBase32(mintSecret('SHA1'))));
    assert.equal(seen.size, 50);
  });
});

void describe('otpauth URIs', () => {
  void test('follow the Key Uri Format with every parameter written', () => {
    const uri = otpauthUri({ issuer: 'Entra ID', serial: 'TK0001', secret: SECRET, algorithm: 'SHA1', digits: 6, period: 30 });
    assert.equal(
      uri,
      'otpauth://totp/Entra%20ID:TK0001?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Entra%20ID&algorithm=SHA1&digits=6&period=30',
    );
  });

  void test('percent-encode issuer and serial so an independent parser gets them back', () => {
    const secret = mintSecret('SHA256');
    const issuer = 'Contoso & Co / IT?#';
    const serial = 'AB 12/3?#&=+é';
    const uri = otpauthUri({ issuer, serial, secret, algorithm: 'SHA256', digits: 8, period: 60 });
    assert.ok(!/[ &=?#+é]/.test(uri.slice('otpauth://totp/'.length, uri.indexOf('?'))), 'the label holds nothing unencoded');
    const parsed = parseOtpauth(uri);
    assert.equal(parsed.type, 'totp');
    assert.equal(parsed.label, `${issuer}:${serial}`);
    assert.equal(parsed.params.issuer, issuer);
    assert.equal(parsed.params.algorithm, 'sha256');
    assert.equal(parsed.params.digits, 8);
    assert.equal(parsed.params.period, 60);
    assert.deepEqual(decodeBase32(parsed.params.secret), secret);
  });

  void test('refuse a serial or issuer with a colon, and issuers the format cannot carry', () => {
    assert.match(otpauthSerialFault('A:1') ?? '', /colon/);
    assert.equal(otpauthSerialFault('A-1'), undefined);
    assert.throws(() => otpauthUri({ issuer: 'X', serial: 'A:1', secret: SECRET, algorithm: 'SHA1', digits: 6, period: 30 }), /colon/);
    assert.match(otpauthIssuerFault('a:b') ?? '', /colon/);
    assert.match(otpauthIssuerFault('') ?? '', /1 to 64/);
    assert.match(otpauthIssuerFault('x\u200by') ?? '', /invisible/);
    assert.equal(otpauthIssuerFault('Entra ID'), undefined);
  });
});

void describe('QR codes', () => {
  void test('the rasterizer reads the SVG module for module as the library laid it out', async () => {
    const text =
      'otpauth://totp/Entra%20ID:TK0001?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Entra%20ID&algorithm=SHA1&digits=6&period=30';
    const grid = svgModules(await qrSvg(text));
    const qr = QRCode.create(text, { errorCorrectionLevel: 'M' });
    const size = qr.modules.size;
    assert.equal(grid.length, size + 8, 'a 4-module quiet zone on each side');
    for (let row = 0; row < grid.length; row++) {
      for (let col = 0; col < grid.length; col++) {
        const inside = row >= 4 && col >= 4 && row < size + 4 && col < size + 4;
        const expected = inside ? qr.modules.get(row - 4, col - 4) === 1 : false;
        assert.equal(grid[row]![col], expected, `module ${row},${col}`);
      }
    }
  });

  void test('decode to the exact URI, for the smallest and the largest package', async () => {
    for (const [algorithm, digits, period, serial] of [
      ['SHA1', 6, 30, 'TK0001'],
      ['SHA256', 8, 60, 'S'.repeat(128)],
    ] as const) {
      const uri = otpauthUri({ issuer: 'Entra ID', serial, secret: mintSecret(algorithm), algorithm, digits, period });
      assert.equal(decodeQrSvg(await qrSvg(uri)), uri);
    }
  });

  void test('a different text gives a code that decodes to that text, not the first one', async () => {
    const a = otpauthUri({ issuer: 'Entra ID', serial: 'A', secret: mintSecret('SHA1'), algorithm: 'SHA1', digits: 6, period: 30 });
    const b = a.replace('serial', 'x').replace(/secret=[A-Z2-7]+/, `secret=${toCanonicalBase32(mintSecret('SHA1'))}`);
    assert.equal(decodeQrSvg(await qrSvg(b)), b);
    assert.notEqual(decodeQrSvg(await qrSvg(b)), a);
  });
});

void describe('seed files written for programmed tokens', () => {
  const token = (serial: string, algorithm: OathToken['algorithm'], digits: number, period: number): OathToken => ({
    serial,
    manufacturer: 'Token2',
    model: 'C301',
    type: 'totp',
    algorithm,
    digits,
    period,
    secret: mintSecret(algorithm === 'SHA512' ? 'SHA512' : algorithm),
  });

  void test('read back unchanged by the project readers, in the layout that can carry them', () => {
    for (const tokens of [
      [token('A1', 'SHA1', 6, 30), token('a2', 'SHA1', 6, 60)],
      [token('B1', 'SHA1', 8, 60), token('B2', 'SHA1', 8, 30)],
      [token('C1', 'SHA256', 6, 30), token('C2', 'SHA256', 8, 30)],
      [token('D1', 'SHA256', 6, 60), token('D2', 'SHA1', 8, 60)],
    ]) {
      const text = writeSeedCsv(tokens);
      const read = readSeedFile(new TextEncoder().encode(text), { now: new Date('2026-06-01T00:00:00Z'), fileName: 'minted.csv' });
      assert.deepEqual(read.problems, []);
      assert.equal(read.format, seedCsvLayout(tokens));
      assert.deepEqual(
        read.tokens.map((t) => [t.serial, toCanonicalBase32(t.secret), t.algorithm, t.digits, t.period, t.type]),
        tokens.map((t) => [t.serial, toCanonicalBase32(t.secret), t.algorithm, t.digits, t.period, 'totp']),
      );
      if (read.format === 'csv')
        assert.deepEqual(
          read.tokens.map((t) => [t.manufacturer, t.model]),
          tokens.map(() => ['Token2', 'C301']),
        );
    }
  });

  void test('refuse what no layout can say', () => {
    assert.match(seedCsvFault([token('#A', 'SHA1', 8, 30)]) ?? '', /comment/);
    assert.equal(seedCsvFault([token('#A', 'SHA1', 6, 30)]), undefined, 'a header file has no comments');
    assert.equal(seedCsvFault([token('A', 'SHA256', 6, 60)]), undefined, 'the six-cell layout names the hash');
    assert.throws(() => writeSeedCsv([token('#A', 'SHA1', 8, 30)]));
  });
});
