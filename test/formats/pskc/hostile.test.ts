/** Input meant to hurt the reader: it must fail fast with a file-level error, never hang or balloon. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readPskc } from '../../../shared/formats/pskc.js';
import { PSKC_NS, buildPskc, deterministicBytes } from '../../fixtures/pskc/generate.js';
import { READ_AT, fileError, fixture } from './helpers.js';

const bytes = (text: string) => Buffer.from(text, 'utf8');
const plainFile = () => buildPskc({ keys: [{ serial: 'S1', keyId: 'k1', type: 'totp', secret: deterministicBytes('h', 20) }], seed: 'h' });

void describe('hostile and broken files', () => {
  void it('refuses DOCTYPE and ENTITY declarations before parsing, whatever their case', () => {
    const bomb = fileError(() => readPskc(fixture('entity-bomb.pskcxml'), { now: READ_AT, fileName: 'bomb.xml' }), 'PSKC_DOCTYPE_REFUSED');
    assert.equal(bomb.line, 2);
    fileError(() => readPskc(bytes(`<!doctype x>${plainFile()}`), { now: READ_AT, fileName: 'f' }), 'PSKC_DOCTYPE_REFUSED');
    fileError(
      () => readPskc(bytes(plainFile().replace('<KeyPackage>', '<KeyPackage><!ENTITY x "y">')), { now: READ_AT, fileName: 'f' }),
      'PSKC_DOCTYPE_REFUSED',
    );
  });

  void it('refuses files above the size limit before decoding them', () => {
    const error = fileError(() => readPskc(bytes(plainFile()), { now: READ_AT, fileName: 'f', maxBytes: 100 }), 'FILE_TOO_LARGE');
    assert.match(error.message, /limit of 100/);
  });

  void it('refuses bytes that are not UTF-8 (Latin-1, UTF-16)', () => {
    fileError(() => readPskc(Buffer.from(plainFile().replace('S1', 'Sé1'), 'latin1'), { now: READ_AT, fileName: 'f' }), 'FILE_NOT_TEXT');
    fileError(
      () => readPskc(Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(plainFile(), 'utf16le')]), { now: READ_AT, fileName: 'f' }),
      'FILE_NOT_TEXT',
    );
  });

  void it('accepts a UTF-8 BOM', () => {
    const withBom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), bytes(plainFile())]);
    assert.equal(readPskc(withBom, { now: READ_AT, fileName: 'f' }).tokens.length, 1);
  });

  void it('reports empty files and containers without keys as FILE_EMPTY', () => {
    fileError(() => readPskc(bytes(''), { now: READ_AT, fileName: 'f' }), 'FILE_EMPTY');
    fileError(() => readPskc(bytes(' \n '), { now: READ_AT, fileName: 'f' }), 'FILE_EMPTY');
    fileError(() => readPskc(bytes(`<KeyContainer Version="1.0" xmlns="${PSKC_NS}"/>`), { now: READ_AT, fileName: 'f' }), 'FILE_EMPTY');
  });

  void it('reports truncated, mismatched, multi-root and non-XML input as PSKC_MALFORMED with a line', () => {
    const truncated = fileError(() => readPskc(fixture('truncated.pskcxml'), { now: READ_AT, fileName: 'f' }), 'PSKC_MALFORMED');
    assert.equal(typeof truncated.line, 'number');
    const mismatched = fileError(
      () => readPskc(bytes(plainFile().replace('</Data>', '</Dato>')), { now: READ_AT, fileName: 'f' }),
      'PSKC_MALFORMED',
    );
    assert.ok(mismatched.line !== undefined && mismatched.line > 1);
    fileError(
      () => readPskc(bytes(`${plainFile()}<KeyContainer Version="1.0" xmlns="${PSKC_NS}"/>`), { now: READ_AT, fileName: 'f' }),
      'PSKC_MALFORMED',
    );
    fileError(() => readPskc(fixture('not-xml.pskcxml'), { now: READ_AT, fileName: 'f' }), 'PSKC_MALFORMED');
    fileError(() => readPskc(Buffer.from([0x3c, 0x00, 0x01, 0x02]), { now: READ_AT, fileName: 'f' }), 'PSKC_MALFORMED');
  });

  void it('stops deep nesting at a fixed depth, quickly, even a million levels deep', () => {
    fileError(() => readPskc(fixture('deeply-nested.pskcxml'), { now: READ_AT, fileName: 'f' }), 'PSKC_MALFORMED');
    const levels = 1_000_000;
    const started = performance.now();
    fileError(
      () => readPskc(bytes(`<KeyContainer Version="1.0" xmlns="${PSKC_NS}">${'<a>'.repeat(levels)}`), { now: READ_AT, fileName: 'f' }),
      'PSKC_MALFORMED',
    );
    // Not a benchmark: a generous bound that only a hang or a quadratic blow-up would break.
    assert.ok(performance.now() - started < 20_000);
  });

  void it('copes with a huge attribute count without hanging', () => {
    let attributes = '';
    for (let i = 0; i < 50_000; i++) attributes += ` a${i}="x"`;
    const started = performance.now();
    fileError(
      () => readPskc(bytes(`<KeyContainer Version="1.0" xmlns="${PSKC_NS}"${attributes}/>`), { now: READ_AT, fileName: 'f' }),
      'FILE_EMPTY',
    );
    fileError(
      () => readPskc(bytes(`<KeyContainer Version="1.0" xmlns="${PSKC_NS}"${attributes} a0="y"/>`), { now: READ_AT, fileName: 'f' }),
      'PSKC_MALFORMED',
    );
    assert.ok(performance.now() - started < 20_000);
  });

  void it('never echoes key material in errors', () => {
    const psk = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
    const error = fileError(
      () => readPskc(fixture('aes128-cbc-hmac-sha1.pskcxml'), { now: READ_AT, fileName: 'f', psk }),
      'PSKC_DECRYPTION_FAILED',
    );
    assert.ok(!error.message.toLowerCase().includes('00112233445566778899aabbccddeeff'));
    const password = 'hunter2-secret-password';
    const pwError = fileError(
      () => readPskc(fixture('pbkdf2-default-prf.pskcxml'), { now: READ_AT, fileName: 'f', password }),
      'PSKC_DECRYPTION_FAILED',
    );
    assert.ok(!pwError.message.includes(password));
  });
});

void describe('messages about broken XML quote no content', () => {
  const secretText = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';

  void it('an XML error gives the line, the column and a generic reason, never the validator text', () => {
    // The validator's own text would quote the "tag name" that is really the secret.
    const file = plainFile().replace(/<PlainValue>[^<]*<\/PlainValue><\/Secret>/, `<PlainValue>MTIz<${secretText}></PlainValue></Secret>`);
    const error = fileError(() => readPskc(bytes(file), { now: READ_AT, fileName: 'f' }), 'PSKC_MALFORMED');
    assert.ok(!error.message.includes(secretText.slice(0, 12)), error.message);
    assert.match(error.message, /line \d+, column \d+/);
    assert.equal(typeof error.line, 'number');
    const unclosed = fileError(
      () => readPskc(bytes(plainFile().replace('</KeyContainer>', `<${secretText}>`)), { now: READ_AT, fileName: 'f' }),
      'PSKC_MALFORMED',
    );
    assert.ok(!unclosed.message.includes(secretText.slice(0, 12)), unclosed.message);
  });

  void it('an unknown reference inside a secret is refused without quoting what follows the ampersand', () => {
    // In text the validator lets names of up to 20 word characters through; in attributes it does not look.
    const inText = plainFile().replace(
      /<PlainValue>[^<]*<\/PlainValue><\/Secret>/,
      `<PlainValue>MTIz&${secretText.slice(0, 20)};</PlainValue></Secret>`,
    );
    const inAttribute = plainFile().replace('<Key ', `<Key Label="&${secretText}" `);
    for (const file of [inText, inAttribute]) {
      assert.ok(file.includes(secretText.slice(0, 20)));
      const error = fileError(() => readPskc(bytes(file), { now: READ_AT, fileName: 'f' }), 'PSKC_MALFORMED');
      assert.ok(!error.message.includes(secretText.slice(0, 12)), error.message);
    }
  });

  void it('attaches and quotes a SerialNo only when it passes the serial check', () => {
    const file = buildPskc({
      keys: [{ serial: `A\u202e${secretText}`, keyId: 'k1', type: 'totp', secret: deterministicBytes('h', 8) }],
      seed: 'h',
    });
    const result = readPskc(bytes(file), { now: READ_AT, fileName: 'f' });
    assert.deepEqual(
      result.problems.map((p) => [p.code, p.serial]),
      [
        ['SECRET_TOO_SHORT', undefined],
        ['SERIAL_INVALID', undefined],
      ],
    );
    for (const p of result.problems) assert.ok(!p.message.includes(secretText.slice(0, 12)), p.message);
  });
});
