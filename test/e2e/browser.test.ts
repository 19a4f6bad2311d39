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
 * otpauth) → log out → log in → MFA → "Trust this device" → (a stale access
 * token is refreshed on 401) → log out → log in
 * without MFA → "Your devices" shows the device with the "This device" badge
 * → rename it → revoke it → the next login asks for MFA again (answered with
 * a backup code). Then, in a fresh phone-sized browser context: log in → MFA
 * → "Not now" → log out → log in asks for MFA again; trust the device and
 * "Revoke all"; trust it again, change the password, and check that this
 * revoked the device.
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

  /**
   * A subtest that, on failure, saves a screenshot and adds the page's alerts
   * and the service's recent output to the error; later steps are skipped.
   */
  let failed = false;
  const step = (name: string, page: () => Page, fn: () => Promise<void>) =>
    t.test(name, async (st) => {
      if (failed) {
        st.skip('an earlier step failed');
        return;
      }
      try {
        await fn();
      } catch (error) {
        failed = true;
        const p = page();
        const file = join(ARTIFACTS_DIR, `FAILED-${name.replace(/[^a-z0-9]+/gi, '-').slice(0, 60)}.png`);
        await p.screenshot({ path: file, fullPage: true }).catch(() => undefined);
        const messages = await p
          .locator('[role=alert]:not(:empty), [role=status]:not(:empty)')
          .allInnerTexts()
          .catch(() => []);
        const extra = [
          `page: ${p.url()}`,
          `messages on the page: ${JSON.stringify(messages)}`,
          `screenshot: ${file}`,
          `service output (last lines):`,
          service.output().split('\n').slice(-40).join('\n'),
        ].join('\n');
        if (error instanceof Error) error.message = `${error.message}\n${extra}`;
        throw error;
      }
    });

  const deviceCards = (page: Page) => page.getByRole('list', { name: 'Your devices' }).getByRole('listitem');

  const [context, page] = await newContext({ viewport: { width: 1280, height: 900 } });
  await context.grantPermissions(['clipboard-read', 'clipboard-write']);

  await step('sign up', () => page, async () => {
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

  await step('turn on TOTP: QR code, manual key, confirm, backup codes shown once', () => page, async () => {
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
    await shot(page, 'backup-codes');
    await mfaCard.getByRole('button', { name: 'Copy codes' }).click();
    await visible(page.getByText('Backup codes copied to the clipboard.'));
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), backupCodes.join('\n'));
    await mfaCard.getByRole('button', { name: /saved them/ }).click();
    await visible(mfaCard.getByText('On', { exact: true }));
    assert.equal(await mfaCard.getByRole('list', { name: 'Backup codes' }).count(), 0, 'codes are not shown again');
    await shot(page, 'mfa-on');
  });

  await step('log out, log in with TOTP, trust this device', () => page, async () => {
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

  await step('the fingerprint is valid and the same across reloads', () => page, async () => {
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

  await step('an expired access token is refreshed transparently', () => page, async () => {
    const stale = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.invalid-signature';
    const refreshBefore = await page.evaluate(() => sessionStorage.getItem('td.refresh_token'));
    await page.evaluate((token) => sessionStorage.setItem('td.access_token', token), stale);
    const refreshCalls: number[] = [];
    page.on('response', (res) => {
      if (res.url().endsWith('/api/v1/auth/refresh')) refreshCalls.push(res.status());
    });
    await page.reload();
    await visible(heading(page, 'Your devices'));
    await visible(deviceCards(page).first());
    assert.ok(refreshCalls.length >= 1 && refreshCalls.every((s) => s === 200), `one refresh, got ${JSON.stringify(refreshCalls)}`);
    assert.equal(refreshCalls.length, 1, 'concurrent 401s share one refresh');
    const [access, refresh] = await page.evaluate(() => [sessionStorage.getItem('td.access_token'), sessionStorage.getItem('td.refresh_token')]);
    assert.notEqual(access, stale);
    assert.notEqual(refresh, refreshBefore, 'the refresh token was rotated');
  });

  await step('log in again without MFA; the device is listed as "This device"', () => page, async () => {
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

  await step('revoke the device; the next login asks for MFA again', () => page, async () => {
    const current = deviceCards(page).filter({ has: page.getByText('This device', { exact: true }) });
    await current.getByRole('button', { name: /^Revoke/ }).click();
    const dialog = page.getByRole('dialog');
    await visible(dialog);
    await shot(page, 'revoke-confirm');
    await dialog.getByRole('button', { name: 'Revoke device' }).click();
    // Revoking this device also signs it out (SPEC §4.1): the session opened on it has ended.
    await visible(view(page, 'Sign in'));
    await shot(page, 'revoked');

    await logIn(page);
    await visible(heading(page, 'Two-step verification'));
    await enterBackupCode(page, backupCodes[0]!);
    await visible(heading(page, /Remember this device/));
    await page.getByRole('button', { name: 'Not now' }).click();
    await visible(heading(page, 'Your devices'));
    await visible(page.getByRole('heading', { name: 'No trusted devices' }));
    assert.equal(await deviceCards(page).count(), 0);
    await visible(page.getByRole('list', { name: 'Device history' }).getByText('Device revoked').first());
    await logOut(page);
  });

  await context.close();

  const [phone, phonePage] = await newContext({ viewport: { width: 390, height: 844 }, hasTouch: true });

  await step('"Not now" in a fresh browser (phone size): the next login asks for MFA again', () => phonePage, async () => {
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

  await step('"Revoke all" revokes the trusted device', () => phonePage, async () => {
    await enterBackupCode(phonePage, backupCodes[1]!);
    await visible(heading(phonePage, /Remember this device/));
    await phonePage.getByRole('button', { name: 'Trust this device' }).click();
    await visible(heading(phonePage, 'Your devices'));
    await visible(deviceCards(phonePage).first());
    await shot(phonePage, 'phone-devices');
    await phonePage.getByRole('button', { name: 'Revoke all' }).click();
    const dialog = phonePage.getByRole('dialog');
    await visible(dialog);
    await shot(phonePage, 'phone-revoke-all-confirm');
    await dialog.getByRole('button', { name: 'Revoke all' }).click();
    // This phone was one of them: it is signed out with them.
    await visible(view(phonePage, 'Sign in'));
    await logIn(phonePage);
    await visible(heading(phonePage, 'Two-step verification'));
  });

  await step('changing the password revokes trusted devices', () => phonePage, async () => {
    await enterBackupCode(phonePage, backupCodes[2]!);
    await visible(heading(phonePage, /Remember this device/));
    await phonePage.getByRole('button', { name: 'Trust this device' }).click();
    await visible(heading(phonePage, 'Your devices'));
    await visible(deviceCards(phonePage).first());

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
