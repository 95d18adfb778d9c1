import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { decryptValue, ENCRYPTION_ALGORITHMS, macMatches } from '../../../shared/formats/pskc-crypto.js';
import { describePskcKeyNeed, looksLikePskc, readPskc } from '../../../shared/formats/pskc.js';
import {
  PSKC_NS,
  buildEncryptedPskc,
  buildDraftPskc,
  buildPskc,
  deterministicBytes,
  expectedToken,
  keyBytesOf,
  type CipherName,
  type FixtureKey,
  type HashName,
} from '../../fixtures/pskc/generate.js';
import { READ_AT, asExpected, expected, fileError, fixture } from './helpers.js';

const bytes = (text: string) => Buffer.from(text, 'utf8');

function totp(serial: string, extra: Partial<FixtureKey> = {}): FixtureKey {
  return {
    serial,
    keyId: `id-${serial}`,
    manufacturer: 'Acme',
    model: 'M1',
    type: 'totp',
    digits: 6,
    secret: deterministicBytes(`t/${serial}`, 20),
    ...extra,
  };
}

void describe('namespaces', () => {
  void it('reads PSKC elements under any prefix, and ignores look-alikes from other namespaces', () => {
    const xml = `<p:KeyContainer Version="1.0" xmlns:p="${PSKC_NS}" xmlns:q="urn:other">
  <q:KeyPackage><p:Key Id="ignored" Algorithm="${PSKC_NS}:totp"/></q:KeyPackage>
  <p:KeyPackage>
    <p:DeviceInfo><p:SerialNo>S1</p:SerialNo><q:SerialNo>not-this</q:SerialNo></p:DeviceInfo>
    <p:Key Id="k1" Algorithm="${PSKC_NS}:totp">
      <p:Data><p:Secret><p:PlainValue>${deterministicBytes('ns', 20).toString('base64')}</p:PlainValue></p:Secret></p:Data>
    </p:Key>
    <Key xmlns="urn:other" Id="k2" Algorithm="${PSKC_NS}:totp"/>
  </p:KeyPackage>
</p:KeyContainer>`;
    const result = readPskc(bytes(xml), { now: READ_AT, fileName: 'ns.xml' });
    assert.deepEqual(result.problems, []);
    assert.deepEqual(
      result.tokens.map((t) => [t.serial, Buffer.from(t.secret).toString('hex')]),
      [['S1', deterministicBytes('ns', 20).toString('hex')]],
    );
  });

  void it('refuses a pskc: prefix bound to another namespace', () => {
    const xml = buildPskc({ keys: [totp('S1')], prefix: 'pskc', seed: 'x' }).replace(`xmlns:pskc="${PSKC_NS}"`, 'xmlns:pskc="urn:evil"');
    fileError(() => readPskc(bytes(xml), { now: READ_AT, fileName: 'f' }), 'PSKC_MALFORMED');
  });

  void it('refuses an undeclared prefix and a KeyContainer of another version', () => {
    fileError(() => readPskc(bytes(`<x:KeyContainer Version="1.0"/>`), { now: READ_AT, fileName: 'f' }), 'PSKC_MALFORMED');
    const v2 = buildPskc({ keys: [totp('S1')], seed: 'x' }).replace('Version="1.0"', 'Version="2.0"');
    assert.match(fileError(() => readPskc(bytes(v2), { now: READ_AT, fileName: 'f' }), 'PSKC_MALFORMED').message, /"2\.0"/);
  });

  void it('decodes predefined entities, character references and CDATA, and refuses unknown entities', () => {
    const secret = deterministicBytes('ent', 20).toString('base64');
    const xml = buildPskc({ keys: [totp('S&1', { manufacturer: 'A&B <C>' })], seed: 'x' })
      .replace('<SerialNo>S&amp;1</SerialNo>', '<SerialNo>S&#38;&#x31;</SerialNo>')
      .replace(`<PlainValue>${secret}</PlainValue>`, `<PlainValue><![CDATA[${secret}]]></PlainValue><!-- a comment -->`);
    const [token] = readPskc(bytes(xml), { now: READ_AT, fileName: 'f' }).tokens;
    assert.equal(token?.serial, 'S&1');
    assert.equal(token?.manufacturer, 'A&B <C>');
    const unknown = buildPskc({ keys: [totp('S1', { manufacturer: '&foo;' })], seed: 'x' }).replace('&amp;foo;', '&foo;');
    fileError(() => readPskc(bytes(unknown), { now: READ_AT, fileName: 'f' }), 'PSKC_MALFORMED');
  });
});

void describe('token fields', () => {
  void it('falls back to the Key Id, defaults manufacturer and model to empty, interval 30, 6 digits, SHA1', () => {
    const xml = `<KeyContainer Version="1.0" xmlns="${PSKC_NS}"><KeyPackage><Key Id=" K-9 " Algorithm="${PSKC_NS}:totp"><Data><Secret><PlainValue>
      ${deterministicBytes('d', 20).toString('base64')}
    </PlainValue></Secret></Data></Key></KeyPackage></KeyContainer>`;
    const result = readPskc(bytes(xml), { now: READ_AT, fileName: 'f' });
    assert.deepEqual(result.tokens.map(asExpected), [
      {
        serial: 'K-9',
        manufacturer: '',
        model: '',
        type: 'totp',
        algorithm: 'SHA1',
        digits: 6,
        period: 30,
        secretHex: deterministicBytes('d', 20).toString('hex'),
      },
    ]);
    assert.equal(result.tokens[0]!.line, 1);
  });

  void it('turns TimeDrift intervals into seconds and keeps Counter', () => {
    const key = totp('S1', { interval: 60, drift: 3, counter: 12, suite: 'HMAC-SHA512', digits: 8 });
    const [token] = readPskc(bytes(buildPskc({ keys: [key], seed: 'x' })), { now: READ_AT, fileName: 'f' }).tokens;
    assert.equal(token?.timeDriftSeconds, 180);
    assert.equal(token?.counter, 12n);
    assert.equal(token?.algorithm, 'SHA512');
    assert.equal(token?.digits, 8);
  });

  void it('reports a secret that is not base64, a secret above the maximum, and a bad Counter', () => {
    const keys = [totp('B64'), totp('LONG', { secret: deterministicBytes('long', 129) }), totp('CTR', { counter: 5 })];
    const xml = buildPskc({ keys, seed: 'x' })
      .replace(`<PlainValue>${keys[0]!.secret!.toString('base64')}</PlainValue>`, '<PlainValue>not*base64</PlainValue>')
      .replace('<Counter><PlainValue>5</PlainValue></Counter>', '<Counter><PlainValue>-5</PlainValue></Counter>');
    const result = readPskc(bytes(xml), { now: READ_AT, fileName: 'f' });
    assert.deepEqual(result.tokens, []);
    assert.deepEqual(
      result.problems.map((p) => [p.code, p.serial]),
      [
        ['SECRET_INVALID_CHARACTERS', 'B64'],
        ['SECRET_TOO_LONG', 'LONG'],
        ['FIELD_INVALID', 'CTR'],
      ],
    );
  });

  void it('reports an HOTP key whose TimeInterval is not a number instead of dropping it without a word', () => {
    const xml = buildPskc({ keys: [totp('H1', { type: 'hotp', interval: 30 })], seed: 'x' }).replace(
      '<TimeInterval><PlainValue>30<',
      '<TimeInterval><PlainValue>thirty<',
    );
    const result = readPskc(bytes(xml), { now: READ_AT, fileName: 'f' });
    assert.deepEqual(result.tokens, []);
    assert.deepEqual(
      result.problems.map((p) => [p.code, p.serial]),
      [['INTERVAL_INVALID', 'H1']],
    );
  });

  void it('sorts its problems by line, duplicates included', () => {
    const keys = [totp('D1'), totp('BAD', { digits: 7 }), totp('D1', { secret: deterministicBytes('other', 20) })];
    const result = readPskc(bytes(buildPskc({ keys, seed: 'x' })), { now: READ_AT, fileName: 'f' });
    const lines = result.problems.map((p) => p.line!);
    assert.deepEqual(
      result.problems.map((p) => p.code),
      ['DUPLICATE_SERIAL_CONFLICT', 'DIGITS_INVALID', 'DUPLICATE_SERIAL_CONFLICT'],
    );
    assert.deepEqual(
      lines,
      [...lines].sort((a, b) => a - b),
    );
  });

  void it('does not report a serial conflict between a valid key and one left out for another error', () => {
    const result = readPskc(
      bytes(buildPskc({ keys: [totp('S1'), totp('S1', { digits: 7, secret: deterministicBytes('other', 20) })], seed: 'x' })),
      {
        now: READ_AT,
        fileName: 'f',
      },
    );
    assert.deepEqual(
      result.tokens.map((t) => t.serial),
      ['S1'],
    );
    assert.deepEqual(
      result.problems.map((p) => p.code),
      ['DIGITS_INVALID'],
    );
  });

  void it('treats the same serial and secret with different settings as a conflict', () => {
    const result = readPskc(bytes(buildPskc({ keys: [totp('S1'), totp('S1', { digits: 8 })], seed: 'x' })), {
      now: READ_AT,
      fileName: 'f',
    });
    assert.deepEqual(result.tokens, []);
    assert.deepEqual(
      result.problems.map((p) => p.code),
      ['DUPLICATE_SERIAL_CONFLICT', 'DUPLICATE_SERIAL_CONFLICT'],
    );
    assert.match(result.problems[0]!.message, /same secret but different settings/);
  });
});

void describe('encryption', () => {
  void it('decrypts the RFC figure 6 MACKey to the published MAC key', () => {
    const macKeyCipher = Buffer.from('ESIzRFVmd4iZABEiM0RVZgKn6WjLaTC1sbeBMSvIhRejN9vJa2BOlSaMrR7I5wSX', 'base64');
    const aes128 = ENCRYPTION_ALGORITHMS.get('http://www.w3.org/2001/04/xmlenc#aes128-cbc')!;
    assert.equal(
      decryptValue(aes128, Buffer.from('12345678901234567890123456789012', 'hex'), macKeyCipher).toString('hex'),
      '1122334455667788990011223344556677889900',
    );
  });

  void it('round-trips every cipher with every MAC hash, prefixed or not (property)', () => {
    const ciphers: CipherName[] = [
      'aes128-cbc',
      'aes192-cbc',
      'aes256-cbc',
      'tripledes-cbc',
      'kw-aes128',
      'kw-aes192',
      'kw-aes256',
      'kw-tripledes',
      'camellia128-cbc',
      'camellia192-cbc',
      'camellia256-cbc',
      'kw-camellia128',
      'kw-camellia192',
      'kw-camellia256',
    ];
    const hashes: HashName[] = ['sha1', 'sha224', 'sha256', 'sha384', 'sha512'];
    fc.assert(
      fc.property(
        fc.constantFrom(...ciphers),
        fc.constantFrom(...hashes),
        fc.boolean(),
        fc.boolean(),
        fc.array(fc.integer({ min: 2, max: 8 }), { minLength: 1, maxLength: 3 }),
        fc.string({ minLength: 1, maxLength: 8 }),
        (cipher, hash, prefixed, withMacKey, blocks, seed) => {
          const keys = blocks.map((b, i) => totp(`S${i}`, { secret: deterministicBytes(`${seed}/${i}`, b * 8) }));
          const psk = deterministicBytes(`psk/${seed}`, keyBytesOf(cipher));
          const xml = buildPskc({ keys, seed, prefix: prefixed ? 'pskc' : '', encryption: { cipher, psk, mac: { hash, withMacKey } } });
          const result = readPskc(bytes(xml), { now: READ_AT, fileName: 'f', psk });
          assert.deepEqual(result.tokens.map(asExpected), keys.map(expectedToken));
          assert.deepEqual(result.problems, []);
        },
      ),
      { numRuns: 40 },
    );
  });

  void it('derives keys with PBKDF2 for the SHA-224 and SHA-384 PRFs too', () => {
    for (const prf of ['sha224', 'sha384'] as const) {
      const keys = [totp('P1')];
      const password = { password: 'pässwörd', salt: deterministicBytes(`salt/${prf}`, 16), iterations: 500, prf };
      const xml = buildPskc({ keys, seed: prf, encryption: { cipher: 'aes192-cbc', password, mac: { hash: 'sha256', withMacKey: true } } });
      assert.deepEqual(
        readPskc(bytes(xml), { now: READ_AT, fileName: 'f', password: 'pässwörd' }).tokens.map(asExpected),
        keys.map(expectedToken),
      );
      fileError(() => readPskc(bytes(xml), { now: READ_AT, fileName: 'f', password: 'passwort' }), 'PSKC_DECRYPTION_FAILED');
    }
  });

  void it('checks every MAC before using any token: an altered last MAC fails the whole file', () => {
    const psk = deterministicBytes('last', 16);
    const xml = buildPskc({
      keys: [totp('A'), totp('B'), totp('C')],
      seed: 'last',
      encryption: { cipher: 'aes128-cbc', psk, mac: { hash: 'sha256', withMacKey: true } },
    });
    const macs = [...xml.matchAll(/<ValueMAC>([^<]+)<\/ValueMAC>/g)];
    const last = macs[macs.length - 1]!;
    const altered = Buffer.from(last[1]!, 'base64');
    altered[altered.length - 1]! ^= 0x01;
    const tampered =
      xml.slice(0, last.index) + `<ValueMAC>${altered.toString('base64')}</ValueMAC>` + xml.slice(last.index + last[0].length);
    fileError(() => readPskc(bytes(tampered), { now: READ_AT, fileName: 'f', psk }), 'PSKC_DECRYPTION_FAILED');
  });

  void it('refuses a ValueMAC when no MACMethod says how to check it', () => {
    const psk = deterministicBytes('orphan', 16);
    const xml = buildPskc({
      keys: [totp('A')],
      seed: 'o',
      encryption: { cipher: 'aes128-cbc', psk, mac: { hash: 'sha1', withMacKey: false } },
    }).replace(/<MACMethod[^>]*\/>/, '');
    assert.match(fileError(() => readPskc(bytes(xml), { now: READ_AT, fileName: 'f', psk }), 'PSKC_MALFORMED').message, /MACMethod/);
  });

  void it('refuses every CBC cipher without a MAC before decrypting, and still reads key wrap without one', () => {
    const keys = [totp('A')];
    for (const cipher of ['aes128-cbc', 'aes192-cbc', 'aes256-cbc', 'tripledes-cbc'] as const) {
      const psk = deterministicBytes(`nomac/${cipher}`, keyBytesOf(cipher));
      const xml = buildPskc({ keys, seed: cipher, encryption: { cipher, psk } });
      const error = fileError(() => readPskc(bytes(xml), { now: READ_AT, fileName: 'f', psk }), 'PSKC_MAC_REQUIRED');
      assert.match(error.message, new RegExp(`${cipher}.*Ask the vendor for a MAC-protected file`));
    }
    const psk = deterministicBytes('nomac/kw', 16);
    const wrapped = buildPskc({
      keys: [totp('W', { secret: deterministicBytes('kw', 32) })],
      seed: 'kw',
      encryption: { cipher: 'kw-aes128', psk },
    });
    const result = readPskc(bytes(wrapped), { now: READ_AT, fileName: 'f', psk });
    assert.deepEqual(result.problems, []);
    assert.equal(result.tokens.length, 1);
  });

  void it('gives one answer for a MAC-stripped CBC file whatever its ciphertext (no padding oracle)', () => {
    // The review's attack: strip the MAC, then alter the last block and watch whether the padding still decodes.
    const psk = deterministicBytes('oracle', 16);
    const xml = buildPskc({
      keys: [totp('A')],
      seed: 'oracle',
      encryption: { cipher: 'aes128-cbc', psk, mac: { hash: 'sha256', withMacKey: true } },
    });
    const stripped = xml.replace(/\s*<MACMethod[\s\S]*?<\/MACMethod>/, '').replace(/\s*<ValueMAC>[^<]*<\/ValueMAC>/g, '');
    const cipherText = /<xenc:CipherValue>([^<]+)<\/xenc:CipherValue>/.exec(stripped)![1]!;
    const messages = new Set<string>();
    for (let flip = 0; flip < 256; flip++) {
      const altered = Buffer.from(cipherText, 'base64');
      altered[altered.length - 17]! ^= flip; // the IV of the last block: flip 0 leaves valid padding, most others break it
      const variant = stripped.replace(cipherText, altered.toString('base64'));
      messages.add(fileError(() => readPskc(bytes(variant), { now: READ_AT, fileName: 'f', psk }), 'PSKC_MAC_REQUIRED').message);
    }
    assert.equal(messages.size, 1);
  });

  void it('refuses a ValueMAC shorter than the HMAC output, even when it is a true prefix of it', () => {
    const psk = deterministicBytes('short-mac', 16);
    const xml = buildPskc({
      keys: [totp('A')],
      seed: 'short-mac',
      encryption: { cipher: 'aes128-cbc', psk, mac: { hash: 'sha256', withMacKey: true } },
    });
    for (const keep of [0, 1, 16, 31]) {
      const cut = xml.replace(
        /(<ValueMAC>)([^<]+)(<\/ValueMAC>)/,
        (_w, open: string, value: string, close: string) =>
          `${open}${Buffer.from(value, 'base64').subarray(0, keep).toString('base64')}${close}`,
      );
      fileError(() => readPskc(bytes(cut), { now: READ_AT, fileName: 'f', psk }), 'PSKC_DECRYPTION_FAILED');
    }
  });

  void it('macMatches takes only the full HMAC output, never a prefix or an extension of it', () => {
    const key = deterministicBytes('mac key', 20);
    const data = deterministicBytes('data', 48);
    const full = createHmac('sha1', key).update(data).digest();
    assert.equal(macMatches('sha1', key, data, full), true);
    assert.equal(macMatches('sha1', key, data, full.subarray(0, 19)), false);
    assert.equal(macMatches('sha1', key, data, full.subarray(0, 1)), false);
    assert.equal(macMatches('sha1', key, data, Buffer.alloc(0)), false);
    assert.equal(macMatches('sha1', key, data, Buffer.concat([full, Buffer.from([0])])), false);
  });

  void it('refuses a hostile PBKDF2 iteration count before deriving anything', () => {
    const password = { password: 'pw', salt: deterministicBytes('s', 8), iterations: 1000 };
    const xml = buildPskc({
      keys: [totp('A')],
      seed: 'i',
      encryption: { cipher: 'aes128-cbc', password, mac: { hash: 'sha1', withMacKey: true } },
    }).replace('<IterationCount>1000<', '<IterationCount>999999999999<');
    assert.match(
      fileError(() => readPskc(bytes(xml), { now: READ_AT, fileName: 'f', password: 'pw' }), 'PSKC_MALFORMED').message,
      /IterationCount/,
    );
  });

  void it('reads a large AES-CBC + HMAC file from the bulk generator', () => {
    const psk = deterministicBytes('bulk-psk', 16);
    const { xml, tokens } = buildEncryptedPskc({ count: 500, psk });
    const result = readPskc(bytes(xml), { now: READ_AT, fileName: 'bulk', psk });
    assert.deepEqual(result.problems, []);
    assert.deepEqual(result.tokens.map(asExpected), tokens);
  });

  void it('ignores a key given for a plain file', () => {
    const result = readPskc(fixture('totp-60s-8digits-sha256.pskcxml'), {
      now: READ_AT,
      fileName: 'f',
      psk: deterministicBytes('x', 16),
      password: 'x',
    });
    assert.equal(result.tokens.length, 1);
  });
});

void describe('looksLikePskc and describePskcKeyNeed', () => {
  void it('sniffs XML after a BOM and whitespace, and nothing else', () => {
    assert.equal(looksLikePskc(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), bytes(' \r\n\t<?xml version="1.0"?>')])), true);
    assert.equal(looksLikePskc(bytes('<KeyContainer/>')), true);
    assert.equal(looksLikePskc(bytes('serial number,secret key\n')), false);
    assert.equal(looksLikePskc(bytes('   ')), false);
    assert.equal(looksLikePskc(new Uint8Array()), false);
  });

  void it('says which key a file needs without any key material', () => {
    assert.deepEqual(describePskcKeyNeed(fixture('rfc6030-figure6.pskcxml')), { encrypted: true, kind: 'psk', keyName: 'Pre-shared-key' });
    assert.deepEqual(describePskcKeyNeed(fixture('pbkdf2-prf-sha256.pskcxml')), {
      encrypted: true,
      kind: 'password',
      keyName: 'My Password 1',
    });
    assert.deepEqual(describePskcKeyNeed(fixture('rfc6030-figure2.pskcxml')), { encrypted: false });
    assert.deepEqual(describePskcKeyNeed(fixture('not-xml.pskcxml')), { encrypted: false });
    const unnamed = buildPskc({
      keys: [totp('A')],
      seed: 'u',
      encryption: { cipher: 'aes128-cbc', psk: deterministicBytes('u', 16) },
    }).replace(/<EncryptionKey>.*<\/EncryptionKey>/, '');
    assert.deepEqual(describePskcKeyNeed(bytes(unnamed)), { encrypted: true, kind: 'psk' });
  });
});

void describe('integers, 64-bit counters and the old draft layout', () => {
  void it('reads a counter given as encrypted ASCII digits as that number, and says what binary would have given', () => {
    const result = readPskc(fixture('integers.pskcxml'), {
      now: READ_AT,
      fileName: 'f',
      psk: Buffer.from(expected.valid['integers.pskcxml']!.psk!, 'hex'),
    });
    const byS = new Map(result.tokens.map((t) => [t.serial, t.counter]));
    assert.equal(byS.get('SN-int-encrypted-ascii'), 298507n);
    assert.equal(byS.get('SN-int-above-2-53'), 16887061004979670n);
    assert.equal(byS.get('SN-int-max-64-bit'), 18446744073709551615n);
    const ascii = result.problems.find((p) => p.serial === 'SN-int-encrypted-ascii')!;
    assert.equal(ascii.code, 'INTEGER_ENCODING_DECIDED');
    assert.match(ascii.message, /ASCII digits of 298507.*55221337534519/);
  });

  void it('says which key a draft-layout file needs', () => {
    assert.deepEqual(describePskcKeyNeed(fixture('draft-activid-aes128.pskcxml')), { encrypted: true, kind: 'psk' });
    assert.deepEqual(describePskcKeyNeed(fixture('draft-pbe-3des.pskcxml')), { encrypted: true, kind: 'password' });
    const plain = readPskc(fixture('draft-activid-aes128.pskcxml'), {
      now: READ_AT,
      fileName: 'f',
      psk: Buffer.from(expected.valid['draft-activid-aes128.pskcxml']!.psk!, 'hex'),
    });
    assert.equal(plain.tokens[0]!.counter, 837830147n);
  });

  void it('refuses a key whose codes carry a Luhn check digit instead of reading it as a plain OATH key', () => {
    const xml = buildPskc({ keys: [totp('CD1'), totp('CD2')], seed: 'x' }).replace(
      'Encoding="DECIMAL"/>',
      'Encoding="DECIMAL" CheckDigits="true"/>',
    );
    const result = readPskc(bytes(xml), { now: READ_AT, fileName: 'f' });
    assert.deepEqual(
      result.tokens.map((t) => t.serial),
      ['CD2'],
    );
    assert.deepEqual(
      result.problems.map((p) => [p.code, p.serial]),
      [['FIELD_INVALID', 'CD1']],
    );
    assert.match(result.problems[0]!.message, /Luhn check digit/);
  });

  void it('names the reason when it refuses a PIN or an OCRA key', () => {
    const result = readPskc(fixture('policy.pskcxml'), { now: READ_AT, fileName: 'f' });
    const refusals = result.problems.filter((p) => p.code === 'TYPE_UNSUPPORTED').map((p) => p.message);
    assert.match(refusals[0]!, /it is a PIN/);
    assert.match(refusals[1]!, /OCRA challenge-response/);
  });
});

void describe('an element a key may hold once, given twice', () => {
  const secret = deterministicBytes('twice/secret', 20);
  const other = deterministicBytes('twice/other', 20);
  const base = buildPskc({
    seed: 'twice',
    keys: [{ serial: 'S1', keyId: 'k1', type: 'hotp', suite: 'HMAC-SHA1', digits: 6, secret, counter: 5 }, totp('S2')],
  });
  const cases: [string, string, string][] = [
    [
      'Secret',
      `<Secret><PlainValue>${secret.toString('base64')}</PlainValue></Secret>`,
      `<Secret><PlainValue>${secret.toString('base64')}</PlainValue></Secret><Secret><PlainValue>${other.toString('base64')}</PlainValue></Secret>`,
    ],
    [
      'Counter',
      '<Counter><PlainValue>5</PlainValue></Counter>',
      '<Counter><PlainValue>5</PlainValue></Counter><Counter><PlainValue>9</PlainValue></Counter>',
    ],
    ['Suite', '<Suite>HMAC-SHA1</Suite>', '<Suite>HMAC-SHA1</Suite><Suite>HMAC-SHA256</Suite>'],
    [
      'ResponseFormat',
      '<ResponseFormat Length="6" Encoding="DECIMAL"/>',
      '<ResponseFormat Length="6" Encoding="DECIMAL"/><ResponseFormat Length="8" Encoding="DECIMAL"/>',
    ],
    ['SerialNo', '<SerialNo>S1</SerialNo>', '<SerialNo>S1</SerialNo><SerialNo>S9</SerialNo>'],
    ['Data', '</Data>', '</Data><Data><Counter><PlainValue>7</PlainValue></Counter></Data>'],
    ['ResponseFormat', '</AlgorithmParameters>', '</AlgorithmParameters><Usage><ResponseFormat Length="8" Encoding="DECIMAL"/></Usage>'],
  ];
  for (const [name, once, twice] of cases) {
    void it(`${name}: that key is refused, naming the element and no value; the other keys are read`, () => {
      // The first copy is S1's.
      assert.ok(base.includes(once), name);
      const result = readPskc(bytes(base.replace(once, twice)), { now: READ_AT, fileName: 'twice.xml' });
      assert.deepEqual(
        result.tokens.map((t) => t.serial),
        ['S2'],
        name,
      );
      const errors = result.problems.filter((p) => p.severity === 'error');
      assert.deepEqual(
        errors.map((p) => p.code),
        ['FIELD_INVALID'],
        name,
      );
      assert.match(errors[0]!.message, new RegExp(`${name} .*more than once`));
      for (const value of [secret.toString('base64').slice(0, 12), other.toString('base64').slice(0, 12), 'HMAC-SHA256', 'S9'])
        assert.ok(!errors[0]!.message.includes(value), errors[0]!.message);
    });
  }

  void it('a PlainValue beside an EncryptedValue in one field: that key is refused', () => {
    const psk = deterministicBytes('twice/psk', 16);
    const xml = buildPskc({
      seed: 'twice-enc',
      keys: [totp('S1', { secret }), totp('S2')],
      encryption: { cipher: 'aes128-cbc', psk, mac: { hash: 'sha256', withMacKey: true } },
    });
    const result = readPskc(
      bytes(xml.replace(/<Secret>\s*<EncryptedValue/, `<Secret><PlainValue>${other.toString('base64')}</PlainValue><EncryptedValue`)),
      { now: READ_AT, fileName: 'enc.xml', psk },
    );
    assert.deepEqual(
      result.tokens.map((t) => t.serial),
      ['S2'],
    );
    const errors = result.problems.filter((p) => p.severity === 'error');
    assert.deepEqual(
      errors.map((p) => [p.code, p.serial]),
      [['FIELD_INVALID', 'S1']],
    );
    assert.match(errors[0]!.message, /Secret value \(a PlainValue and an EncryptedValue\) more than once/);
    assert.ok(!errors[0]!.message.includes(other.toString('base64').slice(0, 12)));
  });

  void it('in the draft layout too: a second SECRET or COUNTER Data element refuses the key', () => {
    const draft = buildDraftPskc({
      seed: 'twice-draft',
      keys: [
        {
          serial: 'D1',
          keyId: 'D1',
          manufacturer: 'ActivIdentity',
          algorithm: 'http://www.ietf.org/keyprov/pskc#hotp',
          digits: 6,
          secret,
          counter: 5,
        },
        {
          serial: 'D2',
          keyId: 'D2',
          manufacturer: 'ActivIdentity',
          algorithm: 'http://www.ietf.org/keyprov/pskc#hotp',
          digits: 6,
          secret: other,
          counter: 1,
        },
      ],
    });
    for (const field of ['SECRET', 'COUNTER']) {
      const first = new RegExp(`<Data Name="${field}"><Value>[^<]*</Value></Data>`).exec(draft)![0];
      const result = readPskc(
        bytes(draft.replace(first, `${first}${first.replace(/<Value>[^<]*</, `<Value>${other.toString('base64')}<`)}`)),
        { now: READ_AT, fileName: 'draft.xml' },
      );
      assert.deepEqual(
        result.tokens.map((t) => t.serial),
        ['D2'],
        field,
      );
      const errors = result.problems.filter((p) => p.severity === 'error');
      assert.deepEqual(
        errors.map((p) => [p.code, p.serial]),
        [['FIELD_INVALID', 'D1']],
        field,
      );
      assert.match(errors[0]!.message, /more than once/);
    }
  });
});
