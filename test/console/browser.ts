/**
 * A real browser for the console tests: Debian's Chromium (or the one CHROMIUM_PATH names) driven by
 * playwright-core, each browser with a fresh profile. Also the page checks every test applies: axe-core
 * (zero serious or critical findings), a look at 375 px (nothing wider than the screen), screenshots
 * (test/console/screenshots/, git-ignored), and the text of pages and of every answer the browser received,
 * kept for the secrets scan.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

export const SCREENSHOTS = resolve(dirname(fileURLToPath(import.meta.url)), 'screenshots');

const LAUNCH_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** CHROMIUM_PATH, else a chromium (or chrome) on the PATH; undefined when there is none. */
export function findChromium(): string | undefined {
  const fromEnv = process.env.CHROMIUM_PATH?.trim();
  if (fromEnv) return existsSync(fromEnv) ? fromEnv : undefined;
  for (const name of ['chromium', 'chromium-browser', 'google-chrome-stable', 'google-chrome']) {
    try {
      const found = execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim();
      if (found) return found;
    } catch {
      // Not on the PATH.
    }
  }
  return undefined;
}

/** Why the browser tests cannot run here, or undefined when they can. */
export function browserSkipReason(): string | undefined {
  if (findChromium()) return undefined;
  return process.env.CHROMIUM_PATH
    ? `CHROMIUM_PATH=${process.env.CHROMIUM_PATH} does not exist: the console's browser tests are skipped`
    : 'no Chromium found (install Debian\'s "chromium" package, as .ci/run does, or set CHROMIUM_PATH): the console\'s browser tests are skipped';
}

export interface Browser {
  context: BrowserContext;
  /** Text of every answer the browser received (URL and body), and of every page looked at. */
  seen: { url: string; text: string }[];
  close(): Promise<void>;
}

export async function launchBrowser(viewport = { width: 1280, height: 900 }): Promise<Browser> {
  const executablePath = findChromium();
  if (!executablePath) throw new Error(browserSkipReason());
  const profile = mkdtempSync(join(tmpdir(), 'console-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: LAUNCH_FLAGS,
    viewport,
    acceptDownloads: true,
  });
  const seen: { url: string; text: string }[] = [];
  context.on('response', (response) => {
    void response
      .body()
      .then((body) => seen.push({ url: response.url(), text: body.toString('utf8') }))
      .catch(() => undefined);
  });
  return {
    context,
    seen,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

const require = createRequire(import.meta.url);
const AXE_SOURCE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: string[];
}

/** axe-core's serious and critical findings on the page as it is now (WCAG 2.x A and AA rules and best practices). */
export async function axeFindings(page: Page): Promise<AxeViolation[]> {
  // Evaluated through the debugging protocol, which the page's Content-Security-Policy does not govern.
  // Browser-side code is given as text: this project compiles for Node, without the DOM's types.
  if (!(await page.evaluate<boolean>("'axe' in window"))) await page.evaluate(AXE_SOURCE);
  const violations = await page.evaluate<AxeViolation[]>(`axe.run(document, { resultTypes: ['violations'] }).then((result) =>
    result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => JSON.stringify(n.target)) })))`);
  return violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

/** Saves a full-page screenshot as screenshots/<name>.png. */
export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

/** How much wider than the window the page is (0 when nothing scrolls sideways). */
export async function horizontalOverflow(page: Page): Promise<number> {
  return page.evaluate<number>('Math.max(0, document.documentElement.scrollWidth - window.innerWidth)');
}

/** Removes earlier screenshots, so the folder shows this run only. */
export function clearScreenshots(): void {
  rmSync(SCREENSHOTS, { recursive: true, force: true });
  mkdirSync(SCREENSHOTS, { recursive: true });
}
