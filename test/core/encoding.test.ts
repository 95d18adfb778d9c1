import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { decideEncoding, decodeBase32, decodeHex, isValidBase32, isValidHex, toCanonicalBase32 } from '../../shared/core/encoding.js';
import { FileError } from '../../shared/core/problems.js';

const vendor = JSON.parse(readFileSync(new URL('../fixtures/vendor-hex-vectors.json', import.meta.url), 'utf8')) as {
  vectors: { hex: string; base32: string }[];
};

describe('secret encodings', () => {
  it('converts the vendor-published hex secrets to the published base32', () => {
    for (const v of vendor.vectors) {
      const bytes = decodeHex(v.hex);
      assert.ok(bytes);
      assert.equal(toCanonicalBase32(bytes), v.base32);
    }
  });

  it('reads base32 in any case, grouped with spaces or dashes, with or without padding', () => {
    const expected = decodeBase32('CZU6XXGHCCGCOL6YO3WW472WEWB34FVJ');
    assert.ok(expected);
    for (const text of [
      'czu6xxghccgcol6yo3ww472wewb34fvj',
      'CZU6 XXGH CCGC OL6Y O3WW 472W EWB3 4FVJ',
      'CZU6-XXGH-CCGC-OL6Y-O3WW-472W-EWB3-4FVJ',
    ]) {
      assert.deepEqual(decodeBase32(text), expected, text);
    }
    assert.deepEqual(decodeBase32('MFRGG==='), new Uint8Array([0x61, 0x62, 0x63]));
    assert.deepEqual(decodeBase32('MFRGG'), new Uint8Array([0x61, 0x62, 0x63]));
  });

  it('refuses characters outside the alphabet, impossible lengths and broken padding', () => {
    assert.equal(decodeBase32('CZU6XXGHCCGCOL6YO3WW472WEWB34FV1'), undefined);
    assert.equal(decodeBase32('ABC'), undefined); // 3 characters cannot come from whole bytes
    assert.equal(decodeBase32('MFRGG=='), undefined);
    assert.equal(decodeHex('ABC'), undefined);
    assert.equal(decodeHex('GG'), undefined);
  });

  it('decides one encoding per file', () => {
    assert.deepEqual(decideEncoding('f', ['CZU6XXGHCCGCOL6YO3WW472WEWB34FVJ', 'ABCDEF2345672345ABCDEF2345672345']), {
      encoding: 'base32',
      decidedBy: 'detected',
    });
    assert.deepEqual(decideEncoding('f', ['1669EBDCC7108C272FD876ED6E7F562583BE16A9', 'ABCDEF2345672345ABCDEF2345672345']), {
      encoding: 'hex',
      decidedBy: 'detected',
    });
    assert.deepEqual(decideEncoding('f', ['AAAA'], 'hex'), { encoding: 'hex', decidedBy: 'forced' });
    assert.throws(
      () => decideEncoding('seeds.csv', ['AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', 'ABCDEF2345672345ABCDEF2345672345']),
      (err: unknown) =>
        err instanceof FileError &&
        err.code === 'ENCODING_AMBIGUOUS' &&
        /--secret-encoding/.test(err.message) &&
        err.message.includes('seeds.csv'),
    );
  });

  it('agrees with the rules written as regular expressions, for any text of separators, padding and digits', () => {
    // The rules as they read in words: drop separators (white space, dashes); base32 is digits then
    // only padding that completes a block, of a length whole bytes can have; hex is an even count of hex digits.
    const compact = (text: string) => text.replace(/[\s-]+/g, '');
    const referenceBase32 = (text: string): Uint8Array | undefined => {
      const m = /^([A-Za-z2-7]*)(=*)$/.exec(compact(text));
      if (!m || m[1]!.length === 0) return undefined;
      const body = m[1]!.toUpperCase();
      if ((m[2]!.length > 0 && (body.length + m[2]!.length) % 8 !== 0) || [1, 3, 6].includes(body.length % 8)) return undefined;
      let bits = '';
      for (const c of body) bits += 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'.indexOf(c).toString(2).padStart(5, '0');
      return new Uint8Array(bits.match(/.{8}/g)?.map((b) => parseInt(b, 2)) ?? []);
    };
    const referenceHex = (text: string): Uint8Array | undefined => {
      const c = compact(text);
      return c.length > 0 && c.length % 2 === 0 && /^[0-9A-Fa-f]+$/.test(c) ? new Uint8Array(Buffer.from(c, 'hex')) : undefined;
    };
    const pieces = [
      'A',
      'z',
      '2',
      '7',
      '8',
      '1',
      '0',
      'f',
      'G',
      '=',
      '-',
      ' ',
      '\t',
      '\n',
      '\u00a0',
      '\u2003',
      '\ufeff',
      'é',
      '_',
      'MFRGG',
      'CZU6XXGH',
    ];
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...pieces), { maxLength: 24 }), (parts) => {
        const text = parts.join('');
        assert.deepEqual(decodeBase32(text), referenceBase32(text), JSON.stringify(text));
        assert.equal(isValidBase32(text), referenceBase32(text) !== undefined);
        assert.deepEqual(decodeHex(text), referenceHex(text), JSON.stringify(text));
        assert.equal(isValidHex(text), referenceHex(text) !== undefined);
      }),
      { numRuns: 2000 },
    );
  });

  it('round-trips any bytes through base32 and hex', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 80 }), (bytes) => {
        const b32 = toCanonicalBase32(bytes);
        assert.match(b32, /^[A-Z2-7]+$/);
        assert.deepEqual(decodeBase32(b32), bytes);
        assert.deepEqual(decodeBase32(b32.toLowerCase().replace(/(.{4})/g, '$1 ')), bytes);
        assert.deepEqual(decodeHex(Buffer.from(bytes).toString('hex')), bytes);
      }),
    );
  });
});
