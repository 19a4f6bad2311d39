/**
 * Browser end-to-end test of the web app against the real service.
 *
 *   cd /work/main && node --import tsx --test test/e2e/browser.test.ts
 *
 * Starts `node --import tsx src/main.ts` on a free port with a fresh SQLite
 * database, drives Debian's Chromium (/usr/bin/chromium) through
 * playwright-core, and saves a screenshot of every step to artifacts/e2e/.
 * Without /usr/bin/chromium the test is skipped, and says so on stdout.
 *
 * Flow: sign up → turn on TOTP (key read from the page, codes computed with
 * otpauth) → log out → log in → MFA → "Trust this device" → log out → log in
 * without MFA → "Your devices" shows the device with the "This device" badge
 * → rename it → revoke it → the next login asks for MFA again (answered with
 * a backup code). Then, in a fresh phone-sized browser context: log in → MFA
 * → "Not now" → log out → log in asks for MFA again; trust the device, change
 * the password, and check that this revoked the device.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import {
  ARTIFACTS_DIR,
  chromiumInstalled,
  CHROMIUM_PATH,
  launchChromium,
  startService,
  TotpCodes,
  type RunningService,
} from './helpers.ts';

const WAIT = 15_000;
const PASSWORD = 'Correct-Horse-Battery-9';
const NEW_PASSWORD = 'Even-Better-Staple-7';

test('web app: sign up, TOTP, trust / not now / revoke a device, in a real browser', { timeout: 240_000 }, async (t) => {
  if (!chromiumInstalled()) {
    const message = `Chromium not installed: browser test NOT run (expected ${CHROMIUM_PATH})`;
    console.log(message);
    t.skip(message);
    return;
  }
  mkdirSync(ARTIFACTS_DIR, { recursive: true });

  const service: RunningService = await startService();
  let browser: Browser | undefined;
  t.after(async () => {
    await browser?.close().catch(() => undefined);
    await service.stop();
  });
  browser = await launchChromium();

  let shotNo = 0;
  const shot = async (page: Page, name: string) => {
    shotNo += 1;
    await page.screenshot({ path: join(ARTIFACTS_DIR, `${String(shotNo).padStart(2, '0')}-${name}.png`), fullPage: true });
  };

  /** Page problems that must not happen: script errors and CSP violations. */
  const problems: string[] = [];
  const watch = (page: Page) => {
    page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));
    page.on('console', (msg) => {
      const text = msg.text();
      if (msg.type() === 'error' && !text.startsWith('Failed to load resource')) problems.push(`console: ${text}`);
      if (/Content Security Policy/i.test(text)) problems.push(`csp: ${text}`);
    });
    page.on('requestfailed', (request) => {
      if (!request.url().startsWith(service.baseUrl)) problems.push(`external request: ${request.url()}`);
    });
  };

  const newContext = async (options: Parameters<Browser['newContext']>[0] = {}): Promise<[BrowserContext, Page]> => {
    const context = await browser!.newContext({ baseURL: service.baseUrl, locale: 'en-US', timezoneId: 'Europe/Paris', ...options });
    context.setDefaultTimeout(WAIT);
    const page = await context.newPage();
    watch(page);
    // Only the service itself may be contacted (no CDN, no external fonts).
    await context.route(/^(?!http:\/\/127\.0\.0\.1:\d+\/)/, (route) => {
      problems.push(`external request: ${route.request().url()}`);
      return route.abort();
    });
    return [context, page];
  };

  const heading = (page: Page, name: string | RegExp) => page.getByRole('heading', { level: 1, name });
  const view = (page: Page, name: string | RegExp) => page.getByRole('region', { name });
  const visible = (locator: Locator) => locator.waitFor({ state: 'visible' });
  const flashText = (page: Page) => page.getByRole('status').first();

  const email = `e2e-${Date.now()}@example.com`;
  let totp: TotpCodes | undefined;
  let backupCodes: string[] = [];

  const logIn = async (page: Page, password = PASSWORD) => {
    await page.goto('/#/login');
    const form = view(page, 'Sign in');
    await visible(form);
    await form.getByLabel('Email').fill(email);
    await form.getByLabel('Password').fill(password);
    await form.getByRole('button', { name: 'Sign in' }).click();
  };

  const logOut = async (page: Page) => {
    await page.getByRole('button', { name: 'Log out' }).click();
    await visible(heading(page, 'Sign in'));
  };

  const enterTotp = async (page: Page) => {
    const mfa = view(page, 'Two-step verification');
    await visible(mfa);
    await mfa.getByLabel('Authentication code').fill(await totp!.next());
    await mfa.getByRole('button', { name: 'Verify' }).click();
  };

  const enterBackupCode = async (page: Page, code: string) => {
    const mfa = view(page, 'Two-step verification');
    await visible(mfa);
    await mfa.getByRole('button', { name: 'Use a backup code instead' }).click();
    await mfa.getByLabel('Backup code').fill(code);
    await mfa.getByRole('button', { name: 'Verify' }).click();
  };

  const deviceCards = (page: Page) => page.getByRole('list', { name: 'Your devices' }).getByRole('listitem');

  const [context, page] = await newContext({ viewport: { width: 1280, height: 900 } });

  await t.test('sign up', async () => {
    await page.goto('/');
    await visible(heading(page, 'Sign in'));
    await shot(page, 'login');
    await page.getByRole('link', { name: 'Create an account' }).click();
    const form = view(page, 'Create your account');
    await visible(form);
    await form.getByLabel('Email').fill(email);
    await form.getByLabel(/Display name/).fill('E2E Tester');
    await form.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await shot(page, 'signup');
    await form.getByRole('button', { name: 'Create account' }).click();
    await visible(heading(page, 'Security'));
    assert.match(await flashText(page).innerText(), /account is ready/i);
  });

  await t.test('turn on TOTP: QR code, manual key, confirm, backup codes shown once', async () => {
    const mfaCard = page.getByRole('region', { name: 'Two-step verification' });
    await visible(mfaCard.getByText('Off', { exact: true }));
    await mfaCard.getByRole('button', { name: 'Set up authenticator app' }).click();
    const qr = mfaCard.getByRole('img', { name: /QR code/ });
    await visible(qr);
    assert.ok(await qr.evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth > 0), 'QR code image rendered');
    assert.match((await qr.getAttribute('src')) ?? '', /^data:image\/png;base64,/);
    const key = await mfaCard.getByLabel('Setup key').inputValue();
    assert.match(key.replace(/\s/g, ''), /^[A-Z2-7]{16,}=*$/i, 'manual entry key is base32');
    totp = new TotpCodes(key);
    await shot(page, 'totp-setup');

    await mfaCard.getByLabel('6-digit code').fill(await totp.next());
    await mfaCard.getByRole('button', { name: 'Turn on' }).click();
    const codes = mfaCard.getByRole('list', { name: 'Backup codes' }).getByRole('listitem');
    await visible(codes.first());
    backupCodes = (await codes.allInnerTexts()).map((c) => c.trim());
    assert.equal(backupCodes.length, 10, 'ten backup codes are shown');
    await visible(mfaCard.getByRole('button', { name: 'Copy codes' }));
    await shot(page, 'backup-codes');
    await mfaCard.getByRole('button', { name: /saved them/ }).click();
    await visible(mfaCard.getByText('On', { exact: true }));
    assert.equal(await mfaCard.getByRole('list', { name: 'Backup codes' }).count(), 0, 'codes are not shown again');
    await shot(page, 'mfa-on');
  });

  await t.test('log out, log in with TOTP, trust this device', async () => {
    await logOut(page);
    await logIn(page);
    await visible(heading(page, 'Two-step verification'));
    await shot(page, 'mfa-prompt');
    await enterTotp(page);
    const prompt = heading(page, /Remember this device/);
    await visible(prompt);
    assert.equal(await prompt.innerText(), 'Remember this device for 30 days?', 'days come from trusted_device.trust_ttl_days');
    await shot(page, 'trust-prompt');
    await page.getByRole('button', { name: 'Trust this device' }).click();
    await visible(heading(page, 'Your devices'));
    assert.match(await flashText(page).innerText(), /trusted until/i);
    await visible(deviceCards(page).first());
    await shot(page, 'trusted');
  });

  await t.test('the fingerprint is valid and the same across reloads', async () => {
    const read = () =>
      page.evaluate(async () => {
        const mod = await import('/js/fingerprint.js' as string);
        return (await mod.fingerprintHeader()) as string;
      });
    const before = await read();
    await page.reload();
    await visible(heading(page, 'Your devices')); // the session survives a reload
    const after = await read();
    assert.equal(after, before);
    assert.ok(Buffer.byteLength(before) <= 4096);
    const signals = JSON.parse(before) as Record<string, unknown>;
    const keys = Object.keys(signals);
    assert.ok(keys.length > 0 && keys.length <= 32);
    for (const [k, v] of Object.entries(signals)) {
      assert.match(k, /^[A-Za-z0-9_.-]{1,64}$/);
      assert.ok(['string', 'number', 'boolean'].includes(typeof v), `${k} is a scalar`);
      if (typeof v === 'string') assert.ok(v.length <= 512);
    }
    for (const k of ['timezone', 'language', 'platform', 'screen', 'color_depth', 'hardware_concurrency', 'canvas']) {
      assert.ok(k in signals, `signal ${k} is collected`);
    }
    assert.equal(signals.timezone, 'Europe/Paris');
  });

  await t.test('log in again without MFA; the device is listed as "This device"', async () => {
    await logOut(page);
    await logIn(page);
    await visible(heading(page, 'Your devices'));
    assert.match(await flashText(page).innerText(), /no code was needed/i);
    const current = deviceCards(page).filter({ has: page.getByText('This device', { exact: true }) });
    await visible(current);
    assert.equal(await current.count(), 1);
    const text = await current.innerText();
    for (const label of ['Browser and OS', 'Last used', 'IP address', 'Trusted since', 'Expires']) assert.match(text, new RegExp(label, 'i'));
    assert.match(text, /Chrom/);
    assert.match(text, /127\.0\.0\.1/);
    const history = page.getByRole('list', { name: 'Device history' });
    await visible(history.getByText('Device trusted').first());
    await visible(history.getByText(/Signed in without a code/).first());
    await shot(page, 'devices');

    // Rename
    await current.getByRole('button', { name: /^Rename/ }).click();
    await current.getByLabel('New device name').fill('E2E workstation');
    await current.getByRole('button', { name: 'Save' }).click();
    await visible(deviceCards(page).getByRole('heading', { name: 'E2E workstation' }));
    await shot(page, 'renamed');
  });

  await t.test('revoke the device; the next login asks for MFA again', async () => {
    const current = deviceCards(page).filter({ has: page.getByText('This device', { exact: true }) });
    await current.getByRole('button', { name: /^Revoke/ }).click();
    const dialog = page.getByRole('dialog');
    await visible(dialog);
    await shot(page, 'revoke-confirm');
    await dialog.getByRole('button', { name: 'Revoke device' }).click();
    await visible(page.getByRole('heading', { name: 'No trusted devices' }));
    assert.equal(await deviceCards(page).count(), 0);
    await visible(page.getByRole('list', { name: 'Device history' }).getByText('Device revoked').first());
    await shot(page, 'revoked');

    await logOut(page);
    await logIn(page);
    await visible(heading(page, 'Two-step verification'));
    await enterBackupCode(page, backupCodes[0]!);
    await visible(heading(page, /Remember this device/));
    await page.getByRole('button', { name: 'Not now' }).click();
    await visible(heading(page, 'Your devices'));
    await logOut(page);
  });

  await context.close();

  const [phone, phonePage] = await newContext({ viewport: { width: 390, height: 844 }, hasTouch: true });

  await t.test('"Not now" in a fresh browser (phone size): the next login asks for MFA again', async () => {
    await logIn(phonePage);
    await visible(heading(phonePage, 'Two-step verification'));
    await enterTotp(phonePage);
    await visible(heading(phonePage, 'Remember this device for 30 days?'));
    await shot(phonePage, 'phone-trust-prompt');
    await phonePage.getByRole('button', { name: 'Not now' }).click();
    await visible(heading(phonePage, 'Your devices'));
    await visible(phonePage.getByRole('heading', { name: 'No trusted devices' }));
    await visible(phonePage.getByRole('list', { name: 'Device history' }).getByText(/Not now/).first());
    await shot(phonePage, 'phone-not-now');

    await logOut(phonePage);
    await logIn(phonePage);
    await visible(heading(phonePage, 'Two-step verification'));
    await shot(phonePage, 'phone-mfa-again');
  });

  await t.test('changing the password revokes trusted devices', async () => {
    await enterBackupCode(phonePage, backupCodes[1]!);
    await visible(heading(phonePage, /Remember this device/));
    await phonePage.getByRole('button', { name: 'Trust this device' }).click();
    await visible(heading(phonePage, 'Your devices'));
    await visible(deviceCards(phonePage).first());
    await shot(phonePage, 'phone-devices');

    await phonePage.getByRole('link', { name: 'Security' }).click();
    const form = phonePage.getByRole('region', { name: 'Change password' });
    await visible(form);
    await form.getByLabel('Current password').fill(PASSWORD);
    await form.getByLabel('New password', { exact: true }).fill(NEW_PASSWORD);
    await form.getByLabel('Confirm new password').fill(NEW_PASSWORD);
    await form.getByRole('button', { name: 'Change password' }).click();
    await visible(phonePage.getByText(/Password changed/));
    await shot(phonePage, 'phone-password-changed');

    await phonePage.getByRole('link', { name: 'Your devices' }).click();
    await visible(phonePage.getByRole('heading', { name: 'No trusted devices' }));
    await logOut(phonePage);
    await logIn(phonePage, NEW_PASSWORD);
    await visible(heading(phonePage, 'Two-step verification'));
  });

  await phone.close();

  await t.test('no script errors, CSP violations or external requests', () => {
    assert.deepEqual(problems, []);
  });
});
