/**
 * The console in a real browser (Chromium through playwright-core) against the local stack running dist/: an
 * administrator uploads an encrypted PSKC file with its key and a CSV seed file, then an assignment list, downloads
 * the import CSV and confirms it, checks codes, unlocks, reassigns and retires; a helpdesk user looks tokens up and
 * checks codes, and is refused everything else, by the pages and by the API. Every page, for each role, passes
 * axe-core with no serious or critical finding, fits 375 px, and is saved as a screenshot. Nothing the browser
 * received, and no log line, holds a piece of any seed or of the transport key, except the one import CSV the
 * administrator downloads on purpose.
 *
 * Needs `npm run build` (the stack runs dist/) and Chromium (CHROMIUM_PATH or `chromium` on the PATH); without a
 * browser the suite is skipped with a message.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import jsQRModule from 'jsqr';
import { decodeBase32, toCanonicalBase32 } from '../../shared/core/encoding.js';
import { scanSteps, stepAt, totpCode } from '../../shared/core/totp.js';
import { PROBLEM_CODES } from '../../shared/core/problems.js';
import { buildPskc } from '../fixtures/pskc/generate.js';
import { randomTokens, seedCsv, type SeedToken } from '../reliability/helpers.js';
import { leakHits, piecesOf, secretForms } from '../helpers/secret-scan.js';
import { startTestStack, suiteScope, type TestStack } from '../helpers/stack.js';
import {
  axeFindings,
  browserSkipReason,
  clearScreenshots,
  horizontalOverflow,
  launchBrowser,
  screenshot,
  type Browser,
} from './browser.js';

const jsQR = jsQRModule.default;
const skip = browserSkipReason();
if (skip) console.log(`# ${skip}`);

const CSV_TOKENS = randomTokens('CON', 62);
const PSKC_TOKENS = randomTokens('PSK', 3);
const PSK = randomBytes(16);
const ALL_TOKENS = [...CSV_TOKENS, ...PSKC_TOKENS];
const secretOf = new Map<string, SeedToken>(ALL_TOKENS.map((t) => [t.serial, t]));
/** A seed too short and a bad interval: a report with problems grouped by code. */
const BAD_ROWS = [
  `,CONBAD1,${toCanonicalBase32(randomBytes(8))},30,Token2,C202\n`,
  `,CONBAD2,${toCanonicalBase32(randomBytes(20))},45,Token2,C202\n`,
];
const BAD_SECRETS = [BAD_ROWS[0]!.split(',')[2]!, BAD_ROWS[1]!.split(',')[2]!];
const ASSIGNED: [string, string][] = [
  ['CON00001', 'alice@contoso.com'],
  ['CON00002', 'alice@contoso.com'],
  ['CON00003', 'ben@contoso.com'],
  ['CON00004', 'chen@contoso.com'],
  ['CON00005', 'dana@contoso.com'],
  ['PSK00001', 'erik@contoso.com'],
];

const unixNow = () => Math.floor(Date.now() / 1000);
const params = (serial: string) => ({ secret: secretOf.get(serial)!.bytes, algorithm: 'SHA1' as const, digits: 6, period: 30 });
const codeAt = (serial: string, at: number) => totpCode(params(serial), at);
/** A code that matches no step within three days of now: surely "Not accepted", never "confirm with the next code". */
function wrongCode(serial: string): string {
  const step = stepAt(unixNow(), 30);
  for (let n = 0; ; n++) {
    const candidate = String((Number(codeAt(serial, unixNow())) + 1 + n * 7919) % 1_000_000).padStart(6, '0');
    if (scanSteps(params(serial), candidate, step - 3 * 2880, step + 3 * 2880) === undefined) return candidate;
  }
}

function pskcFile(): string {
  return buildPskc({
    seed: 'console-test',
    keys: PSKC_TOKENS.map((t, i) => ({
      serial: t.serial,
      keyId: `k${i}`,
      manufacturer: 'Token2',
      model: 'C301',
      type: 'totp',
      suite: 'HMAC-SHA1',
      digits: 6,
      interval: 30,
      secret: Buffer.from(t.bytes),
    })),
    encryption: { cipher: 'aes128-cbc', psk: PSK, mac: { hash: 'sha256', withMacKey: true } },
  });
}

void describe('the console in a browser', { skip }, () => {
  let stack: TestStack;
  const browsers: Browser[] = [];
  const scope = suiteScope();
  /** Every page each role saw, for the report at the end. */
  const visited: string[] = [];

  before(async () => {
    clearScreenshots();
    stack = await startTestStack(scope, {
      settings: { VERIFY_LOCKOUT_LIMIT: '3', RECONCILE_SCHEDULE: '0 0 0 1 1 *', KEY_VAULT_RETRY_BASE_MS: '20' },
    });
  });

  after(async () => {
    for (const b of browsers) await b.close();
  });

  async function browser(): Promise<Browser> {
    const b = await launchBrowser();
    browsers.push(b);
    return b;
  }

  async function signIn(b: Browser, role: 'Helpdesk' | 'Admin'): Promise<Page> {
    const page = await b.context.newPage();
    await page.goto(stack.consoleUrl);
    await page.getByRole('heading', { name: 'Development sign-in' }).waitFor();
    await page.getByRole('button', { name: role, exact: true }).click();
    await page.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();
    return page;
  }

  /** The checks of every page: axe, 375 px, screenshots at both widths. */
  async function check(page: Page, name: string): Promise<void> {
    await page.waitForLoadState('networkidle');
    const findings = await axeFindings(page);
    assert.deepEqual(findings, [], `${name}: axe-core found serious or critical problems`);
    await screenshot(page, name);
    await page.setViewportSize({ width: 375, height: 800 });
    assert.equal(await horizontalOverflow(page), 0, `${name}: wider than a 375 px screen`);
    assert.deepEqual(await axeFindings(page), [], `${name} at 375 px: axe-core found serious or critical problems`);
    await screenshot(page, `${name}-375px`);
    await page.setViewportSize({ width: 1280, height: 900 });
    visited.push(name);
  }

  async function upload(
    page: Page,
    form: 'seed' | 'assignments',
    fileName: string,
    content: string | Buffer,
    key?: string,
  ): Promise<string> {
    await page.goto(`${stack.consoleUrl}/upload`);
    const section = page.locator('section', {
      has: page.getByRole('heading', { name: form === 'seed' ? 'Seed file from the vendor' : 'Assignment list' }),
    });
    await section.locator('input[type="file"]').setInputFiles({ name: fileName, mimeType: 'text/plain', buffer: Buffer.from(content) });
    if (key !== undefined) await section.getByLabel('Pre-shared key (hex) or password, for an encrypted PSKC file').fill(key);
    await section.getByRole('button', { name: form === 'seed' ? 'Upload seed file' : 'Upload assignment list' }).click();
    const link = section.getByRole('link', { name: 'Open the report' });
    await link.waitFor({ timeout: 60_000 });
    const keyField = section.locator('input[name="transportKey"]');
    if ((await keyField.count()) > 0) assert.equal(await keyField.inputValue(), '', 'the key field is emptied once sent');
    return (await section.locator('.progress').innerText()).trim();
  }

  async function api(
    page: Page,
    method: string,
    path: string,
    body?: unknown,
    withHeader = true,
  ): Promise<{ status: number; body: { error?: { code: string } } & Record<string, unknown> }> {
    return page.evaluate(
      async ({ method, path, body, withHeader }) => {
        const res = await fetch(`/api/console/api/${path}`, {
          method,
          headers: { 'content-type': 'application/json', ...(withHeader ? { 'x-console-request': '1' } : {}) },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
        return { status: res.status, body: (await res.json()) as { error?: { code: string } } & Record<string, unknown> };
      },
      { method, path, body, withHeader },
    );
  }

  /** Polls until `read` gives a value `done` accepts (the pages forbid eval, so no in-page wait functions). */
  async function until<T>(what: string, read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 30_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await read();
      if (done(value)) return value;
      if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(value)} after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** The status line of a form once the console has answered. */
  async function answerOf(page: Page, api: string): Promise<string> {
    const line = page.locator(`form[data-api="${api}"] .result`);
    return until(
      `the answer of ${api}`,
      async () => (await line.innerText()).trim(),
      (text) => text !== '' && text !== 'Working…',
    );
  }

  async function checkCode(page: Page, code: string, next?: string): Promise<string> {
    // The page's script sets the status line to "Working…" as the click submits, so no earlier answer is read.
    await page.getByLabel('Code', { exact: true }).fill(code);
    if (next !== undefined) await page.getByLabel('Next code').fill(next);
    await page.getByRole('button', { name: 'Check code' }).click();
    return answerOf(page, 'verify');
  }

  let admin: Page;
  let downloadedCsv = '';
  /** Seeds the console programmed: they reach the browser once, in the programming answer, and nowhere else. */
  const programmed: Uint8Array[] = [];

  /** The text of the QR code the page shows, read from the pixels the browser drew (jsQR, an independent decoder). */
  async function shownQr(page: Page): Promise<string | undefined> {
    const image = await page.evaluate<{ width: number; height: number; data: number[] }>(`(() => {
      const img = document.querySelector('.qr img');
      const canvas = document.createElement('canvas');
      canvas.width = img.naturalWidth || 240; canvas.height = img.naturalHeight || 240;
      const context = canvas.getContext('2d');
      context.fillStyle = '#fff'; context.fillRect(0, 0, canvas.width, canvas.height);
      context.drawImage(img, 0, 0, canvas.width, canvas.height);
      const pixels = context.getImageData(0, 0, canvas.width, canvas.height);
      return { width: pixels.width, height: pixels.height, data: Array.from(pixels.data) };
    })()`);
    return jsQR(Uint8ClampedArray.from(image.data), image.width, image.height)?.data;
  }

  it('without signing in, a page sends you to sign in and the API answers 401', async () => {
    const b = await browser();
    const page = await b.context.newPage();
    await page.goto(`${stack.consoleUrl}/tokens?q=CON`);
    await page.getByRole('heading', { name: 'Development sign-in' }).waitFor();
    assert.match(page.url(), /\/\.auth\/login\/aad\?post_login_redirect_uri=%2Fapi%2Fconsole%2Ftokens%3Fq%3DCON$/);
    await check(page, 'sign-in');
    const answer = await page.evaluate(async () => (await fetch('/api/console/api/tokens')).status);
    assert.equal(answer, 401);
    // A principal header sent by the client is removed, as App Service Authentication does.
    const forged = await fetch(`${stack.consoleUrl}/api/tokens`, {
      headers: {
        'x-ms-client-principal': Buffer.from(
          JSON.stringify({
            claims: [
              { typ: 'roles', val: 'Tokens.Admin' },
              { typ: 'name', val: 'x' },
            ],
          }),
        ).toString('base64'),
      },
    });
    assert.equal(forged.status, 401);
  });

  it('admin: uploads an encrypted PSKC file with its pre-shared key, and the page follows it to its report', async () => {
    admin = await signIn(await browser(), 'Admin');
    await check(admin, 'admin-overview-empty');
    await admin.getByRole('navigation', { name: 'Console sections' }).getByRole('link', { name: 'Upload', exact: true }).click();
    await check(admin, 'admin-upload');
    const outcome = await upload(admin, 'seed', 'vendor batch.pskcxml', pskcFile(), PSK.toString('hex'));
    assert.match(outcome, /Completed: 0 errors, 0 warnings, 3 token rows\./);
    assert.match(outcome, /The pre-shared key or password is now disabled in Key Vault \(transport-console-[0-9a-f]{32}\)/);
    await screenshot(admin, 'admin-upload-followed');
  });

  it("admin: a CSV seed file with two bad rows; its report groups the problems by code with each code's fix and shows the raw JSON", async () => {
    const outcome = await upload(admin, 'seed', 'tokens.csv', seedCsv(CSV_TOKENS, BAD_ROWS));
    assert.match(outcome, /Completed with problems: 2 errors/);
    await admin.getByRole('link', { name: 'Open the report' }).click();
    await admin.getByRole('heading', { name: /^Seed file: seeds\/console-.*tokens\.csv$/ }).waitFor();
    for (const code of ['SECRET_TOO_SHORT', 'INTERVAL_INVALID'] as const) {
      const group = admin.locator('section.problem-group', { has: admin.getByRole('heading', { name: new RegExp(code) }) });
      assert.match(await group.innerText(), new RegExp(`What to do: ${PROBLEM_CODES[code].replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    }
    await admin.getByText('Show the report as stored').click();
    assert.match(await admin.locator('pre.raw').innerText(), /"kind": "seed-file"/);
    await check(admin, 'admin-batch-report');
  });

  it('admin: an assignment list; the build that follows waits on the overview; download it, then mark it uploaded', async () => {
    const list = 'upn,serial number\n' + ASSIGNED.map(([serial, upn]) => `${upn},${serial}\n`).join('');
    assert.match(await upload(admin, 'assignments', 'team.csv', list), /Completed: 0 errors/);
    // The list requests a build, which runs once the settle period has passed: wait for it, then reload the overview.
    await stack.buildsSettled();
    const waiting = admin.getByRole('heading', { name: /^Import CSVs waiting for upload/ });
    await until(
      'the import CSV on the overview',
      async () => (await admin.goto(stack.consoleUrl), await waiting.innerText()),
      (text) => text.endsWith('(1)'),
    );
    const imports = admin.locator('section', { has: waiting });
    const chart = admin.getByRole('table', { name: /^Tokens by state, 65 in all$/ });
    const byState = (await chart.locator('tbody tr').allInnerTexts()).filter((row) =>
      /^(stored|exporting|exported|imported|retired)\t/.test(row),
    );
    assert.deepEqual(byState, ['stored\t59\t', 'exporting\t0\t', 'exported\t6\t', 'imported\t0\t', 'retired\t0\t']);
    await check(admin, 'admin-overview');

    const download = admin.waitForEvent('download');
    await imports.getByRole('link', { name: /^Download entra-oath-/ }).click();
    const csv = readFileSync(await (await download).path(), 'utf8');
    downloadedCsv = csv;
    for (const [serial, upn] of ASSIGNED)
      assert.ok(csv.includes(`${upn},${serial},${secretOf.get(serial)!.base32}`), `${serial} in the import CSV`);

    admin.once('dialog', (dialog) => void dialog.accept());
    await imports.getByRole('button', { name: /^Mark entra-oath-.* as uploaded$/ }).click();
    await admin.getByText('The import file is marked as uploaded').waitFor();
    await admin.getByRole('heading', { name: 'Import CSVs waiting for upload (0)' }).waitFor();
  });

  it('admin: searches by serial, by UPN and by state, and pages with continuation tokens', async () => {
    await admin.getByRole('navigation', { name: 'Console sections' }).getByRole('link', { name: 'Tokens', exact: true }).click();
    await admin.getByLabel('Serial or UPN').fill('alice@contoso.com');
    await admin.getByRole('button', { name: 'Search' }).click();
    const serials = async () => admin.locator('tbody td[data-label="Serial"]').allInnerTexts();
    assert.deepEqual(await serials(), ['CON00001', 'CON00002']);
    await check(admin, 'admin-tokens-by-user');
    await admin.getByLabel('Serial or UPN').fill('CON0006');
    await admin.getByRole('button', { name: 'Search' }).click();
    assert.deepEqual(await serials(), ['CON00060', 'CON00061', 'CON00062']);
    await admin.getByRole('link', { name: 'Clear' }).click();
    await admin.getByLabel('State').selectOption('stored');
    await admin.getByRole('button', { name: 'Search' }).click();
    const first = await serials();
    assert.equal(first.length, 50);
    await check(admin, 'admin-tokens');
    await admin.getByRole('link', { name: 'Next page' }).click();
    const second = await serials();
    assert.ok(
      second.length > 0 && second.every((s) => !first.includes(s)) && second[0]! > first.at(-1)!,
      'the next page continues after the first',
    );
    assert.equal(await admin.getByRole('link', { name: 'Next page' }).count(), 0);
    await admin.getByRole('link', { name: 'First page' }).waitFor();
  });

  it('admin: a token page checks codes ("Accepted" with the drift, "Not accepted", the next code when asked), with the keyboard alone', async () => {
    await admin.goto(`${stack.consoleUrl}/token?serial=CON00001`);
    await admin.getByRole('heading', { name: 'Token CON00001' }).waitFor();
    assert.match(await admin.locator('.facts').innerText(), /imported[\s\S]*alice@contoso\.com/);
    assert.match(await checkCode(admin, wrongCode('CON00001')), /^Not accepted\.( 2 more wrong codes lock the token\.)?$/);
    // Keyboard only: Tab from the top of the page to the Code field, type, Enter.
    await admin.locator('body').click({ position: { x: 1, y: 1 } });
    const focused = () => admin.evaluate<string | undefined>('document.activeElement?.id');
    for (let i = 0; i < 40 && (await focused()) !== 'code'; i++) await admin.keyboard.press('Tab');
    assert.equal(await focused(), 'code', 'Tab reaches the Code field');
    await admin.keyboard.type(codeAt('CON00001', unixNow()));
    await admin.keyboard.press('Enter');
    assert.match(await answerOf(admin, 'verify'), /^Accepted\. Drift: [+-]?\d+ s\.$/);
    await check(admin, 'admin-token');

    // A code two hours ahead (inside the activation window, outside sign-in): the page asks for the next code.
    await admin.goto(`${stack.consoleUrl}/token?serial=PSK00001`);
    const ahead = unixNow() + 7200;
    assert.match(await checkCode(admin, codeAt('PSK00001', ahead)), /^Not accepted yet: .*Type the next code/);
    assert.equal(await admin.getByLabel('Next code').isVisible(), true);
    await check(admin, 'admin-token-confirm');
    const confirmed = await checkCode(admin, codeAt('PSK00001', ahead), codeAt('PSK00001', ahead + 30));
    assert.match(confirmed, /^Accepted\. Drift: \+7\d{3} s\.$/);
  });

  it('admin: unlocks a locked token, reassigns a stored one (a build follows), retires another', async () => {
    for (let i = 0; i < 3; i++) await api(admin, 'POST', 'verify', { serial: 'CON00003', code: wrongCode('CON00003') });
    await admin.goto(`${stack.consoleUrl}/token?serial=CON00003`);
    assert.match(await admin.locator('.facts').innerText(), /Locked until/);
    await check(admin, 'admin-token-locked');
    await admin.getByRole('button', { name: 'Unlock' }).click();
    await admin.getByText('The token is unlocked').waitFor();
    assert.match(await admin.locator('.facts').innerText(), /Not locked/);
    assert.match(await checkCode(admin, codeAt('CON00003', unixNow())), /^Accepted\./);

    await admin.goto(`${stack.consoleUrl}/token?serial=CON00010`);
    await admin.getByLabel('New user (UPN)').fill('fay@contoso.com');
    await admin.getByRole('button', { name: 'Reassign' }).click();
    await admin.getByText('The token is assigned to the new user').waitFor();
    assert.match(await admin.locator('.timeline').innerText(), /Assigned to fay@contoso\.com/);
    // A token already in Entra offers no reassignment, and the API refuses one.
    await admin.goto(`${stack.consoleUrl}/token?serial=CON00001`);
    assert.equal(await admin.getByRole('button', { name: 'Reassign' }).count(), 0);
    const refused = await api(admin, 'POST', 'reassign', { serial: 'CON00001', upn: 'someone@contoso.com' });
    assert.equal(refused.status, 409);
    assert.equal(refused.body.error?.code, 'TOKEN_STATE_INVALID');

    await admin.goto(`${stack.consoleUrl}/token?serial=CON00020`);
    await admin.getByLabel('Reason for retiring (optional)').fill('lost on a train');
    admin.once('dialog', (dialog) => void dialog.accept());
    await admin.getByRole('button', { name: 'Retire token' }).click();
    await admin.getByText('The token is retired').waitFor();
    assert.match(await admin.locator('.timeline').innerText(), /Retired lost on a train/);
    await check(admin, 'admin-token-retired');
  });

  it('admin: programs two tokens, shows each QR code (it decodes to the otpauth URI) and seed until burned, then forgets them', async () => {
    await admin.getByRole('navigation', { name: 'Console sections' }).getByRole('link', { name: 'Program tokens', exact: true }).click();
    await check(admin, 'admin-program');
    await admin.getByLabel(/^Serials, one per line/).fill('PRG00001\nPRG00002');
    await admin.getByLabel('Model (optional)').fill('C302');
    await admin.getByRole('button', { name: 'Program tokens' }).click();
    const uris: string[] = [];
    for (const [i, serial] of ['PRG00001', 'PRG00002'].entries()) {
      await admin.getByRole('heading', { name: `Token ${i + 1} of 2: ${serial}` }).waitFor();
      const uri = await until(
        'a QR code the decoder reads',
        () => shownQr(admin),
        (text) => text !== undefined,
      );
      assert.match(uri!, new RegExp(`^otpauth://totp/[^?]*${serial}\\?`));
      const secret = new URL(uri!).searchParams.get('secret')!;
      await admin.getByText('Show the seed as text, for a USB programming tool').click();
      assert.equal(await admin.locator('code.base32').innerText(), secret, "the seed as text is the QR code's");
      programmed.push(decodeBase32(secret)!);
      uris.push(uri!);
      if (i === 0) await check(admin, 'admin-program-burn');
      await admin.getByRole('button', { name: i === 0 ? 'Burned: next token' : 'Burned: finish' }).click();
    }
    await admin.getByText('All 2 tokens are burned.').waitFor();
    const page = await admin.content();
    assert.deepEqual(leakHits(piecesOf(programmed.flatMap((bytes) => secretForms(bytes))), page), [], 'the page forgot the seeds');
    assert.equal(await admin.locator('.qr img').getAttribute('src'), null);
    await check(admin, 'admin-program-done');

    // The token works with the seed the QR code carried.
    await admin.goto(`${stack.consoleUrl}/token?serial=PRG00001`);
    assert.match(await admin.locator('.facts').innerText(), /stored[\s\S]*C302/);
    const fromQr = { secret: programmed[0]!, algorithm: 'SHA1' as const, digits: 6, period: 30 };
    assert.match(await checkCode(admin, totpCode(fromQr, unixNow())), /^Accepted\./);
  });

  it('admin: the batches list and an unknown token page', async () => {
    await admin.getByRole('navigation', { name: 'Console sections' }).getByRole('link', { name: 'Batches', exact: true }).click();
    assert.ok((await admin.locator('tbody tr').count()) >= 4, 'the two seed files, the assignment list and at least one build');
    await check(admin, 'admin-batches');
    await admin.goto(`${stack.consoleUrl}/token?serial=NOPE`);
    await admin.getByRole('heading', { name: 'No such token' }).waitFor();
    await check(admin, 'admin-token-unknown');
  });

  it("changes need the console's own page: a request without its header is refused (403)", async () => {
    const refused = await api(admin, 'POST', 'retire', { serial: 'CON00030' }, false);
    assert.equal(refused.status, 403);
    assert.equal(refused.body.error?.code, 'CROSS_SITE_REQUEST');
  });

  it('helpdesk: looks up and checks codes; sees no admin action; the upload page and every admin API answer 403', async () => {
    const helpdesk = await signIn(await browser(), 'Helpdesk');
    for (const link of ['Upload', 'Program tokens'])
      assert.equal(
        await helpdesk.getByRole('navigation', { name: 'Console sections' }).getByRole('link', { name: link, exact: true }).count(),
        0,
        link,
      );
    assert.equal(await helpdesk.getByRole('button', { name: /Mark .* as uploaded|Build import CSV now/ }).count(), 0);
    await check(helpdesk, 'helpdesk-overview');
    await helpdesk.getByRole('navigation', { name: 'Console sections' }).getByRole('link', { name: 'Tokens', exact: true }).click();
    await helpdesk.getByLabel('Serial or UPN').fill('chen@contoso.com');
    await helpdesk.getByRole('button', { name: 'Search' }).click();
    await helpdesk.getByRole('link', { name: 'CON00004' }).click();
    await helpdesk.getByRole('heading', { name: 'Token CON00004' }).waitFor();
    for (const action of ['Unlock', 'Reassign', 'Retire token'])
      assert.equal(await helpdesk.getByRole('button', { name: action }).count(), 0, action);
    assert.match(await checkCode(helpdesk, codeAt('CON00004', unixNow())), /^Accepted\. Drift: /);
    await check(helpdesk, 'helpdesk-token');
    await helpdesk.getByRole('navigation', { name: 'Console sections' }).getByRole('link', { name: 'Batches', exact: true }).click();
    await check(helpdesk, 'helpdesk-batches');

    const response = await helpdesk.goto(`${stack.consoleUrl}/upload`);
    assert.equal(response?.status(), 403);
    await helpdesk.getByRole('heading', { name: 'Not allowed' }).waitFor();
    await check(helpdesk, 'helpdesk-upload-refused');

    for (const [method, path, body] of [
      ['POST', 'retire', { serial: 'CON00030' }],
      ['POST', 'unlock', { serial: 'CON00030' }],
      ['POST', 'reassign', { serial: 'CON00030', upn: 'x@contoso.com' }],
      ['POST', 'imports/build', {}],
      ['POST', 'imports/uploaded', { file: 'x.csv' }],
      ['GET', 'imports/download?file=x.csv', undefined],
      ['GET', 'uploads/status?kind=seeds&name=console-x&etag=x', undefined],
      ['POST', 'program', { tokens: [{ serial: 'HLP1' }] }],
    ] as const) {
      const answer = await api(helpdesk, method, path, body);
      assert.equal(answer.status, 403, `${method} ${path}`);
      assert.equal(answer.body.error?.code, 'ROLE_REQUIRED', `${method} ${path}`);
    }
    const uploadAnswer = await helpdesk.evaluate(async () => {
      const form = new FormData();
      form.append('file', new File(['serial number,secret key\n'], 'x.csv'));
      return (await fetch('/api/console/api/uploads/seeds', { method: 'POST', body: form, headers: { 'x-console-request': '1' } })).status;
    });
    assert.equal(uploadAnswer, 403);
    assert.equal((await api(helpdesk, 'GET', 'token?serial=CON00030')).body.state, 'stored', 'the token was not changed');
  });

  it('no page, answer or log line holds a piece of a seed or of the transport key (only the downloaded import CSV holds seeds)', async () => {
    await new Promise((r) => setTimeout(r, 500));
    const secrets = [...ALL_TOKENS.map((t) => t.bytes), ...BAD_SECRETS.map((s) => decodeBase32(s)!), ...programmed];
    assert.equal(programmed.length, 2);
    const pieces = piecesOf([...secrets.flatMap((bytes) => secretForms(bytes)), PSK.toString('hex'), PSK.toString('hex').toUpperCase()]);
    const seen = browsers.flatMap((b) => b.seen);
    assert.ok(seen.length > 50, `the browsers saw ${seen.length} answers`);
    // The two answers that carry seeds on purpose: the import CSV download and the programming package.
    const others = seen.filter((s) => !s.url.includes('/api/console/api/imports/download') && !s.url.endsWith('/api/console/api/program'));
    assert.ok(
      leakHits(
        pieces,
        seen
          .filter((s) => s.url.endsWith('/api/console/api/program'))
          .map((s) => s.text)
          .join('\n'),
      ).length > 0,
      'the programming answer was seen (and holds the seeds)',
    );
    const hits = others.flatMap((s) => leakHits(pieces, s.text).map((h) => `${s.url}: ${h}`));
    assert.deepEqual(hits, []);
    assert.deepEqual(leakHits(pieces, stack.output()), [], 'the stack logs');
    // The scan does find seeds where they belong: the import CSV the administrator downloaded.
    assert.ok(leakHits(pieces, downloadedCsv).length > 0, 'the scan finds the seeds in the downloaded import CSV');
    console.log(`# pages checked (axe, 375 px, screenshots): ${visited.join(', ')}`);
  });
});
