/**
 * Regenerates docs/screenshot-devices.png (the README screenshot) and a
 * 390 px phone version in artifacts/e2e/.
 *
 *   cd /work/main && node --import tsx test/e2e/screenshot.ts
 *
 * Starts the real service with a fresh database, signs up, turns on TOTP, and
 * trusts three browsers (two of them with other User-Agents) so the page
 * shows a realistic list. Needs /usr/bin/chromium. Not a test: it is not
 * named *.test.ts, so test runs do not pick it up.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { ARTIFACTS_DIR, chromiumInstalled, launchChromium, ROOT, startService, TotpCodes } from './helpers.ts';

const EMAIL = 'ada@example.com';
const PASSWORD = 'Analytical-Engine-1843';
const OTHER_BROWSERS = [
  {
    name: 'Ada’s iPhone',
    userAgent:
      'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1',
    viewport: { width: 390, height: 844 },
  },
  {
    name: 'Office PC',
    userAgent: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0',
    viewport: { width: 1366, height: 768 },
  },
];

if (!chromiumInstalled()) {
  console.log('Chromium not installed: screenshot NOT taken');
  process.exit(0);
}

const service = await startService();
let browser: Browser | undefined;
try {
  browser = await launchChromium();
  mkdirSync(ARTIFACTS_DIR, { recursive: true });

  const open = async (options: Parameters<Browser['newContext']>[0]) => {
    const context = await browser!.newContext({ baseURL: service.baseUrl, locale: 'en-US', colorScheme: 'light', ...options });
    context.setDefaultTimeout(15_000);
    return { context, page: await context.newPage() };
  };
  const region = (page: Page, name: string | RegExp) => page.getByRole('region', { name });
  const logIn = async (page: Page) => {
    await page.goto('/#/login');
    await region(page, 'Sign in').getByLabel('Email').fill(EMAIL);
    await region(page, 'Sign in').getByLabel('Password').fill(PASSWORD);
    await region(page, 'Sign in').getByRole('button', { name: 'Sign in' }).click();
  };
  const trust = async (page: Page, name?: string) => {
    await page.getByRole('heading', { name: /Remember this device/ }).waitFor();
    if (name) await region(page, /Remember this device/).getByLabel(/Device name/).fill(name);
    await page.getByRole('button', { name: 'Trust this device' }).click();
    await page.getByRole('heading', { level: 1, name: 'Your devices' }).waitFor();
  };

  // 1. Sign up and turn on TOTP in the "main" desktop browser.
  const main = await open({ viewport: { width: 1280, height: 900 } });
  await main.page.goto('/#/signup');
  const signup = region(main.page, 'Create your account');
  await signup.getByLabel('Email').fill(EMAIL);
  await signup.getByLabel(/Display name/).fill('Ada Lovelace');
  await signup.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await signup.getByRole('button', { name: 'Create account' }).click();
  const card = region(main.page, 'Two-step verification');
  await card.getByRole('button', { name: 'Set up authenticator app' }).click();
  await card.getByRole('img', { name: /QR code/ }).waitFor();
  const totp = new TotpCodes(await card.getByLabel('Setup key').inputValue());
  await card.getByLabel('6-digit code').fill(await totp.next());
  await card.getByRole('button', { name: 'Turn on' }).click();
  await card.getByRole('list', { name: 'Backup codes' }).getByRole('listitem').first().waitFor();
  const backup = (await card.getByRole('list', { name: 'Backup codes' }).getByRole('listitem').allInnerTexts()).map((s) => s.trim());
  await card.getByRole('button', { name: /saved them/ }).click();
  await main.page.getByRole('button', { name: 'Log out' }).click();

  // 2. Trust two other browsers (backup codes, so no waiting for TOTP steps).
  for (const [i, other] of OTHER_BROWSERS.entries()) {
    const { context, page } = await open({ userAgent: other.userAgent, viewport: other.viewport });
    await logIn(page);
    const mfa = region(page, 'Two-step verification');
    await mfa.getByRole('button', { name: 'Use a backup code instead' }).click();
    await mfa.getByLabel('Backup code').fill(backup[i]!);
    await mfa.getByRole('button', { name: 'Verify' }).click();
    await trust(page, other.name);
    await context.close();
  }

  // 3. Trust the main browser, sign in again without a code, take the pictures.
  await logIn(main.page);
  await region(main.page, 'Two-step verification').getByLabel('Authentication code').fill(await totp.next());
  await region(main.page, 'Two-step verification').getByRole('button', { name: 'Verify' }).click();
  await trust(main.page);
  await main.page.getByRole('button', { name: 'Log out' }).click();
  await logIn(main.page);
  await main.page.getByRole('heading', { level: 1, name: 'Your devices' }).waitFor();
  await main.page.getByRole('list', { name: 'Device history' }).getByRole('listitem').first().waitFor();
  await main.page.getByRole('button', { name: 'Log out' }).focus(); // no focus ring on the heading in the picture
  await main.page.getByRole('button', { name: 'Log out' }).blur();
  const out = join(ROOT, 'docs', 'screenshot-devices.png');
  await main.page.screenshot({ path: out, fullPage: true });
  console.log(`wrote ${out}`);

  await main.page.setViewportSize({ width: 390, height: 844 });
  await main.page.screenshot({ path: join(ARTIFACTS_DIR, 'readme-devices-phone.png'), fullPage: true });
  await main.page.emulateMedia({ colorScheme: 'dark' });
  await main.page.setViewportSize({ width: 1280, height: 900 });
  await main.page.screenshot({ path: join(ARTIFACTS_DIR, 'readme-devices-dark.png'), fullPage: true });
  console.log(`wrote ${join(ARTIFACTS_DIR, 'readme-devices-phone.png')} and readme-devices-dark.png`);
} finally {
  await browser?.close().catch(() => undefined);
  await service.stop();
}
