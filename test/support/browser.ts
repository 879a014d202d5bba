import { accessSync, constants } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type BrowserContextOptions, type Page } from 'playwright-core';
import { repoRoot } from './server.ts';

/**
 * A real browser for the web console's tests: Debian's Chromium driven by playwright-core
 * (which never downloads a browser here). Tests run as root, hence --no-sandbox.
 */

export const CHROMIUM = '/usr/bin/chromium';

/** Where the console tests save their screenshots (git-ignored: test-results/). */
export const SCREENSHOT_DIR = path.join(repoRoot, 'test-results', 'console');

/**
 * Throws when Chromium is missing: the console tests need it and .ci/run installs it
 * (`apt-get install chromium`), so its absence is a failure, never a skip.
 */
export function requireChromium(): void {
  try {
    accessSync(CHROMIUM, constants.X_OK);
  } catch {
    throw new Error(`${CHROMIUM} is not installed: the web console's tests drive the real browser (apt-get install chromium; .ci/run installs it).`);
  }
}

export async function launchBrowser(): Promise<Browser> {
  requireChromium();
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'], timeout: 60_000 });
}

/** Problems a page reported by itself: uncaught script errors and Content-Security-Policy violations. */
export interface PageProblems {
  list: string[];
}

/**
 * A fresh context (its own cookies) and page. Actions and waits get generous timeouts: the
 * suite shares a loaded 2-core machine with other servers.
 */
export async function newPage(browser: Browser, options: BrowserContextOptions = {}): Promise<{ context: BrowserContext; page: Page; problems: PageProblems }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, ...options });
  context.setDefaultTimeout(30_000);
  context.setDefaultNavigationTimeout(60_000);
  const page = await context.newPage();
  const problems: PageProblems = { list: [] };
  page.on('pageerror', (err) => problems.list.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    if (/Content Security Policy|Refused to (execute|load|apply)/i.test(msg.text())) problems.list.push(`CSP: ${msg.text()}`);
  });
  return { context, page, problems };
}

export interface ConsoleUser {
  accountId: string;
  userName: string;
  password: string;
}

/**
 * Signs in through the sign-in form as a person would (the account field is typed over,
 * whatever it was filled with) and waits until the browser has left the sign-in page.
 * `from` is the page to open first (by default the sign-in page itself).
 */
export async function signIn(page: Page, baseUrl: string, user: ConsoleUser, from = '/console/signin'): Promise<void> {
  await page.goto(new URL(from, baseUrl).toString());
  await page.waitForURL(/\/console\/signin/);
  await page.getByLabel('Account ID or alias').fill(user.accountId);
  await page.getByLabel('IAM user name').fill(user.userName);
  await page.getByLabel('Password', { exact: true }).fill(user.password);
  const [answer] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/console/signin'),
    page.getByRole('button', { name: 'Sign in' }).click(),
  ]);
  if (answer.status() !== 303) {
    await page.waitForLoadState('load');
    const said = await page.locator('main .notice').allInnerTexts().catch(() => []);
    throw new Error(`signing in as ${user.userName} answered ${answer.status()}: ${said.join(' ') || '(no message)'}`);
  }
  await page.waitForURL((url) => !url.pathname.startsWith('/console/signin'));
}

/** Saves a full-page PNG as test-results/console/NAME.png; resolves its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  await mkdir(SCREENSHOT_DIR, { recursive: true });
  const file = path.join(SCREENSHOT_DIR, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

export interface RawPage {
  status: number;
  headers: Headers;
  text: string;
}

/**
 * The raw answer to a request sent with the browser context's cookies for that URL (redirects
 * not followed): what the server wrote, before any parser saw it, for assertions on the HTML
 * itself. A form body is sent as application/x-www-form-urlencoded.
 */
export async function fetchWithCookies(context: BrowserContext, url: string, init: { method?: string; form?: Record<string, string> | URLSearchParams; headers?: Record<string, string> } = {}): Promise<RawPage> {
  const cookies = await context.cookies(url);
  const headers: Record<string, string> = { accept: 'text/html', ...init.headers };
  if (cookies.length) headers['cookie'] = cookies.map((c) => `${c.name}=${c.value}`).join('; ');
  const body = init.form === undefined ? undefined : new URLSearchParams(init.form).toString();
  if (body !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded';
  const res = await fetch(url, { method: init.method ?? (body === undefined ? 'GET' : 'POST'), headers, redirect: 'manual', ...(body !== undefined ? { body } : {}) });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

/** The value of the session cookie the context holds for the console, if any. */
export async function sessionCookie(context: BrowserContext, baseUrl: string): Promise<string | undefined> {
  return (await context.cookies(new URL('/console/', baseUrl).toString())).find((c) => c.name === 'berth_session')?.value;
}
