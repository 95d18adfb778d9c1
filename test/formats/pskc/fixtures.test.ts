import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { describe, it } from 'node:test';
import { readPskc } from '../../../shared/formats/pskc.js';
import { generateFixtures } from '../../fixtures/pskc/generate.js';
import { FIXTURES, READ_AT, asExpected, expected, fileError, fixture, keyOptions } from './helpers.js';

void describe('RFC 6030 examples', () => {
  void it('Figure 2: the 4-byte plain secret is reported too short and no token is returned', () => {
    const result = readPskc(fixture('rfc6030-figure2.pskcxml'), { now: READ_AT, fileName: 'figure2.pskcxml' });
    assert.equal(result.format, 'pskc');
    assert.equal(result.secretEncoding, undefined);
    assert.deepEqual(result.embeddedAssignments, []);
    assert.deepEqual(result.tokens, []);
    assert.equal(result.problems.length, 1);
    const [p] = result.problems;
    assert.equal(p!.code, 'SECRET_TOO_SHORT');
    assert.equal(p!.severity, 'error');
    assert.equal(p!.serial, '12345678', 'the serial falls back to the Key Id');
    assert.equal(p!.line, 3);
    assert.match(p!.message, /4 bytes/);
  });

  void it('Figure 6: AES-128-CBC with HMAC-SHA1 and the pre-shared key decrypts to the RFC values', () => {
    const result = readPskc(fixture('rfc6030-figure6.pskcxml'), {
      now: READ_AT,
      fileName: 'figure6.pskcxml',
      psk: Buffer.from('12345678901234567890123456789012', 'hex'),
    });
    assert.deepEqual(result.problems, []);
    assert.equal(result.tokens.length, 1);
    const token = result.tokens[0]!;
    assert.deepEqual(asExpected(token), {
      serial: '987654321',
      manufacturer: 'Manufacturer',
      model: '',
      type: 'hotp',
      algorithm: 'SHA1',
      digits: 8,
      period: 30,
      secretHex: '3132333435363738393031323334353637383930',
      counter: '0',
    });
    assert.equal(Buffer.from(token.secret).toString('ascii'), '12345678901234567890');
    assert.equal(token.line, 11, 'the line of the KeyPackage');
  });
});

void describe('generated fixtures', () => {
  for (const [file, expectation] of Object.entries(expected.valid)) {
    void it(`${file} gives the expected tokens and problems`, () => {
      const result = readPskc(fixture(file), { now: READ_AT, fileName: file, ...keyOptions(expectation) });
      assert.deepEqual(result.tokens.map(asExpected), expectation.tokens);
      assert.deepEqual(
        result.problems.map((p) => ({ code: p.code, severity: p.severity, serial: p.serial })),
        (expectation.problems ?? []).map((p) => ({ code: p.code, severity: p.severity, serial: p.serial })),
      );
    });
  }

  for (const negative of expected.negative) {
    void it(`${negative.file} (${negative.name}) is refused with ${negative.code} and no tokens`, () => {
      const error = fileError(
        () => readPskc(fixture(negative.file), { now: READ_AT, fileName: negative.file, ...keyOptions(negative) }),
        negative.code,
      );
      assert.ok(error.message.startsWith(`${negative.file}`), error.message);
      for (const text of negative.messageIncludes ?? [])
        assert.ok(error.message.includes(text), `${JSON.stringify(text)} not in ${error.message}`);
      // The key itself never shows up in a message.
      if (negative.psk) assert.ok(!error.message.toLowerCase().includes(negative.psk.toLowerCase()));
      if (negative.password) assert.ok(!error.message.includes(negative.password));
    });
  }

  void it('every fixture on disk is either an RFC figure or exactly what generate.ts writes', () => {
    const generated = generateFixtures();
    const onDisk = readdirSync(FIXTURES).filter((f) => f.endsWith('.pskcxml'));
    const rfc = onDisk.filter((f) => f.startsWith('rfc6030-'));
    assert.deepEqual(rfc.sort(), ['rfc6030-figure2.pskcxml', 'rfc6030-figure6.pskcxml']);
    assert.deepEqual(onDisk.filter((f) => !rfc.includes(f)).sort(), Object.keys(generated.files).sort());
    for (const [name, content] of Object.entries(generated.files))
      assert.ok(fixture(name).equals(Buffer.from(content)), `${name} is stale: re-run generate.ts`);
    assert.deepEqual(expected, JSON.parse(JSON.stringify({ valid: generated.valid, negative: generated.negative })));
  });
});
