import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { referenceCode } from '../fixtures/oath-csv/generate.js';
import { runCli } from '../../shared/cli/cli.js';

const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url));
const S1 = 'CZU6XXGHCCGCOL6YO3WW472WEWB34FVJ';
const S2 = 'EZDOCQANJA5PGME5QRSZCR7GLUFJG4JG';

async function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, {
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    env,
    stderrIsTTY: false,
    now: () => 1_700_000_000_000,
  });
  return { code, stdout, stderr };
}

function tmp(name: string, content: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'entra-oath-cli-'));
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

describe('entra-oath inspect', () => {
  it('prints exactly one JSON object without secrets, and exit 0', async () => {
    const r = await cli(['inspect', fixture('csv/token2.csv'), '--json']);
    assert.equal(r.code, 0);
    const out = JSON.parse(r.stdout) as { format: string; secretEncoding: string; tokens: Record<string, unknown>[]; problems: unknown[] };
    assert.equal(out.format, 'csv');
    assert.equal(out.secretEncoding, 'base32');
    assert.deepEqual(out.tokens[0], {
      serial: '60234567',
      manufacturer: 'Token2',
      model: 'C202',
      type: 'totp',
      algorithm: 'SHA1',
      digits: 6,
      period: 30,
    });
    assert.deepEqual(out.problems, []);
    assert.ok(!r.stdout.includes(S1) && !r.stderr.includes(S1));
  });

  it('reveals canonical secrets only with --reveal', async () => {
    const r = await cli(['inspect', fixture('csv/excel-semicolon-hex.csv'), '--json', '--reveal']);
    const out = JSON.parse(r.stdout) as { secretEncoding: string; tokens: { secret: string }[] };
    assert.equal(out.secretEncoding, 'hex');
    assert.equal(out.tokens[0]?.secret, S1);
  });

  it('masks secrets in the table view', async () => {
    const r = await cli(['inspect', fixture('csv/token2.csv')]);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /60234567/);
    assert.match(r.stdout, /secrets base32 \(detected\)/);
    assert.ok(!r.stdout.includes(S1));
  });

  it("shows an HOTP token's counter, exact, in the table view only when the file gives one", async () => {
    const hotp = tmp('oath.csv', `H1, ${'3132333435363738393031323334353637383930'}, hotp, 6, 18446744073709551615\n`);
    const r = await cli(['inspect', hotp]);
    assert.match(r.stdout, /^serial +manufacturer +model +type +algorithm +digits +period +counter +secret$/m);
    assert.match(r.stdout, /^H1 +hotp +SHA1 +6 +30 +18446744073709551615 +•/m);
    assert.doesNotMatch((await cli(['inspect', fixture('csv/token2.csv')])).stdout, /counter/);
  });

  it('says why: every decision a reader took is an info problem on its token, and exit stays 0', async () => {
    const seed32 = '3132333435363738393031323334353637383930313233343536373839303132';
    const oath = tmp('why.csv', `A1, ${seed32}, totp\nB1, ${seed32.replace('31', '41')}\n`);
    const r = await cli(['inspect', oath, '--json']);
    assert.equal(r.code, 0);
    const out = JSON.parse(r.stdout) as {
      tokens: { serial: string; algorithm: string; type: string }[];
      problems: { code: string; severity: string; line: number; serial: string }[];
    };
    assert.deepEqual(
      out.tokens.map((t) => [t.serial, t.type, t.algorithm]),
      [
        ['A1', 'totp', 'SHA256'],
        ['B1', 'hotp', 'SHA256'],
      ],
    );
    const infos = out.problems.filter((p) => p.severity === 'info').map((p) => [p.code, p.line, p.serial]);
    assert.deepEqual(infos, [
      ['HASH_FROM_SEED_LENGTH', 1, 'A1'],
      ['HASH_FROM_SEED_LENGTH', 2, 'B1'],
      ['TYPE_FROM_MISSING_COLUMN', 2, 'B1'],
    ]);
    // The table view prints them too.
    assert.match((await cli(['inspect', oath])).stdout, /INFO HASH_FROM_SEED_LENGTH \(line 1, serial "A1"\): .*HMAC-SHA256/);
  });

  it('exit 1 with every row problem listed; exit 2 with one problem for an unusable file', async () => {
    const bad = tmp('bad.csv', `serial number,secret key\n1,${S1}\n2,MFRGG\n`);
    const r1 = await cli(['inspect', bad, '--json']);
    assert.equal(r1.code, 1);
    assert.deepEqual(
      (JSON.parse(r1.stdout) as { problems: { code: string; line: number }[] }).problems.map((p) => [p.code, p.line]),
      [['SECRET_TOO_SHORT', 3]],
    );

    const r2 = await cli(['inspect', fixture('csv/entra-doc-example.csv'), '--json']);
    assert.equal(r2.code, 2);
    const out2 = JSON.parse(r2.stdout) as { tokens: unknown[]; problems: { code: string }[] };
    assert.deepEqual(out2.tokens, []);
    assert.deepEqual(
      out2.problems.map((p) => p.code),
      ['ENCODING_AMBIGUOUS'],
    );
    assert.equal(r2.stderr.trim().split('\n').length, 1);
    assert.match(r2.stderr, /--secret-encoding/);

    const r3 = await cli(['inspect', '/nonexistent/seed.csv']);
    assert.equal(r3.code, 2);
    assert.match(r3.stderr, /FILE_UNREADABLE/);
  });

  it('warns about tokens Entra cannot import by CSV without failing the file', async () => {
    const r = await cli(['inspect', fixture('csv/privacyidea.csv'), '--json']);
    assert.equal(r.code, 0);
    const out = JSON.parse(r.stdout) as { format: string; problems: { code: string; severity: string; serial: string }[] };
    assert.equal(out.format, 'privacyidea-csv');
    assert.deepEqual(
      out.problems.map((p) => [p.code, p.severity, p.serial]),
      [['ENTRA_NOT_IMPORTABLE', 'warning', 'PI0002']],
    );
  });

  it('reads encrypted PSKC with a key from a flag, a file or the environment, never echoing it', async () => {
    const key = '12345678901234567890123456789012';
    const file = fixture('pskc/rfc6030-figure6.pskcxml');
    const none = await cli(['inspect', file, '--json']);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /pre-shared key/);
    for (const args of [
      ['--psk', key],
      ['--psk-file', tmp('k.hex', `${key}\n`)],
    ]) {
      const r = await cli(['inspect', file, '--json', ...args]);
      const out = JSON.parse(r.stdout) as { format: string; tokens: { serial: string }[] };
      assert.equal(out.format, 'pskc');
      assert.deepEqual(
        out.tokens.map((t) => t.serial),
        ['987654321'],
      );
      assert.ok(!r.stdout.includes(key) && !r.stderr.includes(key));
    }
    const fromEnv = await cli(['inspect', file, '--json'], { ENTRA_OATH_PSK: key });
    assert.equal((JSON.parse(fromEnv.stdout) as { tokens: unknown[] }).tokens.length, 1);
    const wrong = await cli(['inspect', file, '--json', '--psk', '00'.repeat(16)]);
    assert.equal(wrong.code, 2);
    assert.match(wrong.stderr, /PSKC_DECRYPTION_FAILED/);
  });
});

describe('entra-oath convert', () => {
  it("writes Entra's CSV for assigned tokens and summarises the rest", async () => {
    const seeds = tmp(
      'seeds.csv',
      `serial number,secret key,time interval,manufacturer,model\n1001,${S1},30,Token2,C202\n1002,${S2},30,Token2,C202\n1003,${S2}AA,30,Token2,C202\n`,
    );
    const assignments = tmp('a.csv', 'upn,serial number\nhelga@contoso.com,1001\nguest#EXT#@contoso.onmicrosoft.com,1002\n');
    const r = await cli(['convert', seeds, '--assignments', assignments, '--json']);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, `upn,serial number,secret key,time interval,manufacturer,model\nhelga@contoso.com,1001,${S1},30,Token2,C202\n`);
    const summary = JSON.parse(r.stderr) as { exported: unknown[]; notExported: { code: string }[]; unassigned: string[] };
    assert.deepEqual(summary.exported, [{ upn: 'helga@contoso.com', serial: '1001' }]);
    assert.deepEqual(
      summary.notExported.map((p) => p.code),
      ['ASSIGNMENT_GUEST_UPN'],
    );
    assert.deepEqual(summary.unassigned, ['1003']);
  });

  it('splits into numbered files with --max-rows, readable by the owner only', async () => {
    const seeds = tmp('seeds.csv', `serial number,secret key\n1,${S1}\n2,${S2}\n3,${S1.replace('C', 'D')}\n`);
    const assignments = tmp('a.csv', 'upn,serial number\na@contoso.com,1\nb@contoso.com,2\nc@contoso.com,3\n');
    const out = join(mkdtempSync(join(tmpdir(), 'entra-oath-out-')), 'import.csv');
    const r = await cli(['convert', seeds, '--assignments', assignments, '--out', out, '--max-rows', '2']);
    assert.equal(r.code, 0);
    const one = readFileSync(out.replace('import.csv', 'import-1.csv'), 'utf8');
    const two = readFileSync(out.replace('import.csv', 'import-2.csv'), 'utf8');
    assert.equal(one.trim().split('\n').length, 3);
    assert.equal(two.trim().split('\n').length, 2);
    assert.equal(statSync(out.replace('import.csv', 'import-1.csv')).mode & 0o077, 0);
    assert.match(r.stderr, /Exported 3 tokens/);
  });

  it('replaces an existing --out file with one readable by its owner only, and leaves no temporary file', async () => {
    const seeds = tmp('seeds.csv', `serial number,secret key\n1,${S1}\n`);
    const assignments = tmp('a.csv', 'upn,serial number\na@contoso.com,1\n');
    const dir = mkdtempSync(join(tmpdir(), 'entra-oath-out-'));
    const out = join(dir, 'import.csv');
    writeFileSync(out, 'an older, longer import file that must be replaced entirely\n'.repeat(20), { mode: 0o644 });
    chmodSync(out, 0o644); // whatever the umask
    const r = await cli(['convert', seeds, '--assignments', assignments, '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(statSync(out).mode & 0o777, 0o600);
    assert.equal(readFileSync(out, 'utf8'), `upn,serial number,secret key,time interval,manufacturer,model\na@contoso.com,1,${S1},30,,\n`);
    assert.deepEqual(readdirSync(dir), ['import.csv']);
    // When the rename fails (here the target is a directory) the temporary file goes too.
    mkdirSync(join(dir, 'taken.csv'));
    await assert.rejects(cli(['convert', seeds, '--assignments', assignments, '--out', join(dir, 'taken.csv')]));
    assert.deepEqual(readdirSync(dir).sort(), ['import.csv', 'taken.csv']);
    assert.deepEqual(readdirSync(join(dir, 'taken.csv')), []);
  });
});

describe('entra-oath code', () => {
  it('prints the RFC 6238 code for a secret at a time', async () => {
    const secret = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ'; // ASCII 12345678901234567890
    const r = await cli(['code', '--secret', secret, '--at', '59', '--digits', '8']);
    assert.deepEqual([r.code, r.stdout], [0, '94287082\n']);
    const env = await cli(['code', '--at', '1111111109', '--digits', '8'], { ENTRA_OATH_SECRET: secret });
    assert.equal(env.stdout, '07081804\n');
    const bad = await cli(['code', '--secret', 'not base32!']);
    assert.equal(bad.code, 2);
  });

  it('prints the RFC 4226 HOTP code for a counter, over the whole 64-bit range', async () => {
    const secret = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';
    assert.equal((await cli(['code', '--secret', secret, '--counter', '1'])).stdout, '287082\n');
    assert.equal((await cli(['code', '--secret', secret, '--counter', '9'])).stdout, '520489\n');
    const top = await cli(['code', '--secret', secret, '--counter', '18446744073709551615', '--digits', '8']);
    assert.deepEqual(
      [top.code, top.stdout],
      [0, `${referenceCode('SHA1', Buffer.from('12345678901234567890').toString('hex'), (1n << 64n) - 1n, 8)}\n`],
    );
    for (const args of [
      ['--counter', '18446744073709551616'],
      ['--counter', '-1'],
      ['--counter', '1', '--at', '59'],
      ['--counter', '1', '--period', '60'],
    ]) {
      assert.equal((await cli(['code', '--secret', secret, ...args])).code, 2, args.join(' '));
    }
  });
});

describe('the installed binary', () => {
  it('runs on the built output with the documented exit statuses', () => {
    const bin = fileURLToPath(new URL('../../bin/entra-oath.js', import.meta.url));
    const ok = spawnSync(process.execPath, [bin, 'inspect', fixture('csv/token2.csv'), '--json'], { encoding: 'utf8' });
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal((JSON.parse(ok.stdout) as { tokens: unknown[] }).tokens.length, 2);
    const unusable = spawnSync(process.execPath, [bin, 'inspect', fixture('csv/entra-doc-example.csv')], { encoding: 'utf8' });
    assert.equal(unusable.status, 2);
  });

  it('under `npm run cli`, resolves relative paths from the folder npm was run in, and a path error names where it looked', () => {
    const bin = fileURLToPath(new URL('../../bin/entra-oath.js', import.meta.url));
    const repo = fileURLToPath(new URL('../..', import.meta.url));
    const here = mkdtempSync(join(tmpdir(), 'entra-oath-cwd-'));
    writeFileSync(join(here, 'mine.csv'), readFileSync(fixture('csv/token2.csv')));
    // What npm sets for `npm run cli`: the script runs in the package folder, INIT_CWD is where the user stands.
    const env = { ...process.env, npm_lifecycle_event: 'cli', INIT_CWD: here };
    const ok = spawnSync(process.execPath, [bin, 'inspect', 'mine.csv', '--json'], { encoding: 'utf8', cwd: repo, env });
    assert.equal(ok.status, 0, ok.stderr);
    const missing = spawnSync(process.execPath, [bin, 'inspect', 'nope.csv'], { encoding: 'utf8', cwd: repo, env });
    assert.equal(missing.status, 2);
    assert.ok(missing.stderr.includes(`nope.csv (${join(here, 'nope.csv')})`), missing.stderr);
  });
});

describe('entra-oath program', () => {
  it('mints fresh secrets into a new 0600 seed file that inspect and convert read back; nothing secret is printed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'entra-oath-cli-'));
    const out = join(dir, 'minted.csv');
    const r = await cli(['program', '--serials', 'TK01, TK02', '--manufacturer', 'Token2', '--model', 'C301', '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(statSync(out).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(dir), ['minted.csv']);
    const inspected = await cli(['inspect', out, '--json', '--reveal']);
    assert.equal(inspected.code, 0);
    const tokens = (
      JSON.parse(inspected.stdout) as {
        tokens: { serial: string; secret: string; manufacturer: string; algorithm: string; period: number }[];
      }
    ).tokens;
    assert.deepEqual(
      tokens.map((t) => [t.serial, t.manufacturer, t.algorithm, t.period]),
      [
        ['TK01', 'Token2', 'SHA1', 30],
        ['TK02', 'Token2', 'SHA1', 30],
      ],
    );
    assert.ok(
      tokens.every((t) => t.secret.length === 32),
      'a 160-bit secret is 32 base32 characters',
    );
    assert.notEqual(tokens[0]!.secret, tokens[1]!.secret);
    for (const t of tokens) assert.ok(!r.stdout.includes(t.secret.slice(0, 12)) && !r.stderr.includes(t.secret.slice(0, 12)));
    const assignments = tmp('a.csv', 'upn,serial number\nana@contoso.com,TK02\n');
    const converted = await cli(['convert', out, '--assignments', assignments]);
    assert.equal(converted.code, 0, converted.stderr);
    assert.match(converted.stdout, new RegExp(`ana@contoso.com,TK02,${tokens[1]!.secret},30,Token2,C301`));
  });

  it('SHA256 and 8 digits go to the OATH CSV layout (hash named in its sixth cell); a bad serial, a bad option or an existing file is refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'entra-oath-cli-'));
    const out = join(dir, 'sha256.csv');
    assert.equal((await cli(['program', '--serials', 'P1', '--algorithm', 'SHA256', '--digits', '8', '--out', out])).code, 0);
    const read = JSON.parse((await cli(['inspect', out, '--json', '--reveal'])).stdout) as {
      format: string;
      tokens: { algorithm: string; digits: number; secret: string }[];
    };
    assert.deepEqual(
      [read.format, read.tokens[0]!.algorithm, read.tokens[0]!.digits, read.tokens[0]!.secret.length],
      ['privacyidea-csv', 'SHA256', 8, 52],
    );

    const before = readFileSync(out, 'utf8');
    const again = await cli(['program', '--serials', 'P2', '--out', out]);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /already exists; program never overwrites/);
    assert.equal(readFileSync(out, 'utf8'), before, 'the earlier secrets are kept');
    for (const args of [
      ['--serials', 'P1,P1'],
      ['--serials', 'P1,'],
      ['--serials', 'P1', '--digits', '7'],
      ['--serials', 'P1', '--algorithm', 'SHA512'],
    ]) {
      const r = await cli(['program', ...args, '--out', join(dir, 'refused.csv')]);
      assert.equal(r.code, 2, args.join(' '));
      assert.deepEqual(readdirSync(dir).sort(), ['sha256.csv'], args.join(' '));
    }
    // SHA-256 with a 60 s period: the six-cell layout names the hash, so the period needs no default.
    const sixty = join(dir, 'sha256-60.csv');
    assert.equal((await cli(['program', '--serials', 'P3', '--algorithm', 'SHA256', '--period', '60', '--out', sixty])).code, 0);
    const read60 = JSON.parse((await cli(['inspect', sixty, '--json', '--reveal'])).stdout) as {
      tokens: { algorithm: string; period: number }[];
    };
    assert.deepEqual([read60.tokens[0]!.algorithm, read60.tokens[0]!.period], ['SHA256', 60]);
    rmSync(sixty);
    const noOut = await cli(['program', '--serials', 'P1']);
    assert.equal(noOut.code, 2);
    assert.match(noOut.stderr, /needs --out FILE/);
  });
});
