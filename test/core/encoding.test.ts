import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { decideEncoding, decodeBase32, decodeHex, toCanonicalBase32 } from '../../shared/core/encoding.js';
import { FileError } from '../../shared/core/problems.js';

const vendor = JSON.parse(readFileSync(new URL('../fixtures/vendor-hex-vectors.json', import.meta.url), 'utf8')) as { vectors: { hex: string; base32: string }[] };

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
    for (const text of ['czu6xxghccgcol6yo3ww472wewb34fvj', 'CZU6 XXGH CCGC OL6Y O3WW 472W EWB3 4FVJ', 'CZU6-XXGH-CCGC-OL6Y-O3WW-472W-EWB3-4FVJ']) {
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
    assert.deepEqual(decideEncoding('f', ['CZU6XXGHCCGCOL6YO3WW472WEWB34FVJ', 'ABCDEF2345672345ABCDEF2345672345']), { encoding: 'base32', decidedBy: 'detected' });
    assert.deepEqual(decideEncoding('f', ['1669EBDCC7108C272FD876ED6E7F562583BE16A9', 'ABCDEF2345672345ABCDEF2345672345']), { encoding: 'hex', decidedBy: 'detected' });
    assert.deepEqual(decideEncoding('f', ['AAAA'], 'hex'), { encoding: 'hex', decidedBy: 'forced' });
    assert.throws(
      () => decideEncoding('seeds.csv', ['AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', 'ABCDEF2345672345ABCDEF2345672345']),
      (err: unknown) => err instanceof FileError && err.code === 'ENCODING_AMBIGUOUS' && /--secret-encoding/.test(err.message) && err.message.includes('seeds.csv'),
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
