/**
 * The key-wrap primitives against published vectors (RFC 3394, RFC 3217, and
 * python-pskc's Camellia key-wrap test value) and against node:crypto's own
 * AES key wrap, with and without RFC 5649 padding.
 */
import assert from 'node:assert/strict';
import { createCipheriv } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { DecryptionError, ENCRYPTION_ALGORITHMS, decryptValue, unwrapOverEcb } from '../../../shared/formats/pskc-crypto.js';
import { keyWrapOverEcb } from '../../fixtures/pskc/generate.js';

const XMLENC = 'http://www.w3.org/2001/04/xmlenc#';
const hex = (text: string) => Buffer.from(text, 'hex');

function nodeAesWrap(key: Buffer, plaintext: Buffer): Buffer {
  const padded = plaintext.length % 8 !== 0 || plaintext.length === 8;
  const cipher = createCipheriv(padded ? 'id-aes128-wrap-pad' : 'id-aes128-wrap', key, padded ? hex('a65959a6') : hex('a6a6a6a6a6a6a6a6'));
  return Buffer.concat([cipher.update(plaintext), cipher.final()]);
}

void describe('key wrap', () => {
  void it('unwraps RFC 3394 section 4.1 (128-bit key data, 128-bit KEK) over AES-ECB', () => {
    const wrapped = hex('1fa68b0a8112b447aef34bd8fb5a7b829d3e862371d2cfe5');
    assert.equal(
      unwrapOverEcb('aes-128-ecb', hex('000102030405060708090a0b0c0d0e0f'), wrapped).toString('hex'),
      '00112233445566778899aabbccddeeff',
    );
  });

  void it("matches node:crypto's AES key wrap (RFC 3394 and RFC 5649) for every length, both ways (property)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.uint8Array({ minLength: 1, maxLength: 80 }), (key, data) => {
        const k = Buffer.from(key);
        const p = Buffer.from(data);
        const byNode = nodeAesWrap(k, p);
        assert.ok(keyWrapOverEcb('aes-128-ecb', k, p).equals(byNode), 'the fixture generator wraps as node:crypto does');
        assert.ok(unwrapOverEcb('aes-128-ecb', k, byNode).equals(p));
        assert.ok(decryptValue(ENCRYPTION_ALGORITHMS.get(`${XMLENC}kw-aes128`)!, k, byNode).equals(p));
      }),
      { numRuns: 200 },
    );
  });

  void it("unwraps python-pskc's kw-camellia128 test value (a 20-byte secret, so RFC 5649 padding)", () => {
    const algorithm = ENCRYPTION_ALGORITHMS.get(`${XMLENC}kw-camellia128`)!;
    const wrapped = Buffer.from('WB128TBZ1WGZzPNJNbwNrWRqQceU7M4FQSJPy2nw6iI=', 'base64');
    assert.equal(decryptValue(algorithm, hex('e35b135a09bfff8b314a5a0c32193c37'), wrapped).toString('ascii'), '12345678901234567890');
  });

  void it('unwraps the RFC 3217 Triple-DES key wrap example', () => {
    const algorithm = ENCRYPTION_ALGORITHMS.get(`${XMLENC}kw-tripledes`)!;
    const wrapped = Buffer.from('aQEHYY7wkrO0jKF5ayNK6foz67QVlgQDfbXWqE6zqsJ2jGMndaRn1A==', 'base64');
    assert.equal(
      decryptValue(algorithm, hex('255e0d1c07b646dfb3134cc843ba8aa71f025b7c0838251f'), wrapped).toString('hex'),
      '2923bf85e06dd6ae529149f1f1bae9eab3a7da3d860d3e98',
    );
  });

  void it('refuses a wrong key, an altered block and a bad length with one DecryptionError and no detail', () => {
    const key = hex('000102030405060708090a0b0c0d0e0f');
    const wrapped = keyWrapOverEcb('camellia-128-ecb', key, Buffer.from('12345678901234567890'));
    const camellia = ENCRYPTION_ALGORITHMS.get(`${XMLENC}kw-camellia128`)!;
    assert.equal(decryptValue(camellia, key, wrapped).toString(), '12345678901234567890');
    const altered = Buffer.from(wrapped);
    altered[9]! ^= 1;
    for (const [k, data] of [
      [hex('ff0102030405060708090a0b0c0d0e0f'), wrapped],
      [key, altered],
      [key, wrapped.subarray(0, 20)],
    ] as const) {
      assert.throws(
        () => decryptValue(camellia, k, data),
        (err: unknown) => err instanceof DecryptionError && err.message === 'decryption failed',
      );
    }
  });

  void it('runs 3DES with a two-key (16-byte) key as K1 K2 K1', () => {
    const key = hex('0123456789abcdeffedcba9876543210');
    const iv = hex('0001020304050607');
    const cipher = createCipheriv('des-ede-cbc', key, iv);
    const body = Buffer.concat([cipher.update(Buffer.from('twenty bytes secret!')), cipher.final()]);
    assert.equal(
      decryptValue(ENCRYPTION_ALGORITHMS.get(`${XMLENC}tripledes-cbc`)!, key, Buffer.concat([iv, body])).toString(),
      'twenty bytes secret!',
    );
  });
});
