/**
 * Browser end-to-end test of the web app against the real service.
 *
 *   cd /work/main && node --import tsx --test test/e2e/browser.test.ts
 *
 * Starts `node --import tsx src/app/main.ts` on a free port with a fresh SQLite
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
 *
 * Round 2 (issue 12): the service runs with the DEFAULT cookie policy
 * (COOKIE_SECURE=auto); trust is also checked on a host name that is not
 * localhost (app.test, mapped to 127.0.0.1 with --host-resolver-rules), and
 * against a service with COOKIE_SECURE=true on that host (the page must say
 * the device was NOT remembered); trust survives 1280x800 at ratio 1 →
 * 640x400 at ratio 2 (zoom / another monitor), a fresh browser profile is not
 * trusted; a second tab is signed in (refresh cookie); wrong codes show the
 * attempts left and, after 5, offer to sign in again; axe-core finds no
 * violation of any impact on every page state; every page state is
 * screenshotted in light, dark and at 390x844.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import {
  ARTIFACTS_DIR,
  chromiumInstalled,
  CHROMIUM_PATH,
  launchChromium,
  OTHER_HOST,
  startService,
  TotpCodes,
  type RunningService,
} from './helpers.ts';
import { closeAtEnd } from '../helpers/teardown.ts';

const WAIT = 15_000;
const PASSWORD = 'Correct-Horse-Battery-9';
// Upper case only as "Ä": the page must apply the API's Unicode-aware policy.
const NEW_PASSWORD = 'Ärger-staple-77';
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

test('web app: sign up, TOTP, trust / not now / revoke a device, in a real browser', { timeout: 240_000 }, async (t) => {
  if (!chromiumInstalled()) {
    const message = `Chromium not installed: browser test NOT run (expected ${CHROMIUM_PATH})`;
    console.log(message);
    t.skip(message);
    return;
  }
  mkdirSync(ARTIFACTS_DIR, { recursive: true });

  const service: RunningService = closeAtEnd(t, await startService({}, t.signal), (s) => s.stop());
  const browser: Browser = closeAtEnd(t, await launchChromium(), (b) => b.close());

  let shotNo = 0;
  /**
   * Screenshots of the current page state in light and dark at the current
   * size, and at 390x844 (light), plus an axe-core check in each.
   */
  const shot = async (page: Page, name: string, options: { axe?: boolean } = {}) => {
    shotNo += 1;
    const base = join(ARTIFACTS_DIR, `${String(shotNo).padStart(2, '0')}-${name}`);
    const size = page.viewportSize();
    await page.screenshot({ path: `${base}-light.png`, fullPage: true });
    if (options.axe !== false) await axeCheck(page, `${name} (light)`);
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.screenshot({ path: `${base}-dark.png`, fullPage: true });
    if (options.axe !== false) await axeCheck(page, `${name} (dark)`);
    await page.emulateMedia({ colorScheme: 'light' });
    if (size && size.width > 390) {
      await page.setViewportSize({ width: 390, height: 844 });
      await page.screenshot({ path: `${base}-390.png`, fullPage: true });
      if (options.axe !== false) await axeCheck(page, `${name} (390 px)`);
      await page.setViewportSize(size);
    }
  };

  /** axe-core violations of ANY impact fail the test (collected, reported at the end). */
  const axeFindings: string[] = [];
  let axeRuns = 0;
  const axeCheck = async (page: Page, state: string) => {
    // Page.evaluate runs outside the page's CSP, so axe needs no inline <script>.
    if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(AXE_SOURCE);
    await page.waitForTimeout(250); // let CSS transitions settle (contrast is measured on final colours)
    const violations = await page.evaluate(async () => {
      const result = await (window as any).axe.run(document, { resultTypes: ['violations'] });
      return (result.violations as any[]).map((v) => `${v.id} [${v.impact}] ${v.help}: ${v.nodes.map((n: any) => n.target.join(' ')).slice(0, 4).join(', ')}`);
    });
    axeRuns += 1;
    for (const v of violations) axeFindings.push(`${state}: ${v}`);
  };

  /** Page problems that must not happen: script errors and CSP violations. */
  const problems: string[] = [];
  const watch = (page: Page) => {
    page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));
    page.on('console', (msg) => {
      const text = msg.text();
      // Browsers ignore (and say so) Cross-Origin-Opener-Policy on plain http to a non-localhost host: expected on app.test.
      const coopOnHttp = text.startsWith('The Cross-Origin-Opener-Policy header has been ignored') && page.url().startsWith(`http://${OTHER_HOST}:`);
      if (msg.type() === 'error' && !text.startsWith('Failed to load resource') && !coopOnHttp) problems.push(`console: ${text}`);
      if (/Content Security Policy/i.test(text)) problems.push(`csp: ${text}`);
    });
    page.on('requestfailed', (request) => {
      if (!/^http:\/\/(127\.0\.0\.1|app\.test):\d+\//.test(request.url())) problems.push(`external request: ${request.url()}`);
    });
  };

  const newContext = async (options: Parameters<Browser['newContext']>[0] = {}): Promise<[BrowserContext, Page]> => {
    const context = await browser.newContext({ baseURL: service.baseUrl, locale: 'en-US', timezoneId: 'Europe/Paris', ...options });
    context.setDefaultTimeout(WAIT);
    const page = await context.newPage();
    watch(page);
    // Only the services themselves may be contacted (no CDN, no external fonts).
    await context.route(/^(?!http:\/\/(127\.0\.0\.1|app\.test):\d+\/)/, (route) => {
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

  const deviceCards = (page: Page) => page.getByRole('list', { name: 'Devices that skip the code' }).getByRole('listitem');

  const [context, page] = await newContext({ viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1 });
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
    // Download (.txt) and Print
    const downloading = page.waitForEvent('download');
    await mfaCard.getByRole('button', { name: 'Download (.txt)' }).click();
    const download = await downloading;
    assert.equal(download.suggestedFilename(), 'trusted-devices-backup-codes.txt');
    const file = readFileSync(await download.path(), 'utf8');
    for (const code of backupCodes) assert.ok(file.includes(code), 'every code is in the file');
    await page.evaluate(() => {
      (window as any).printed = 0;
      window.print = () => {
        (window as any).printed += 1;
      };
    });
    await mfaCard.getByRole('button', { name: 'Print' }).click();
    assert.equal(await page.evaluate(() => (window as any).printed), 1);
    assert.ok(await page.evaluate(() => document.body.classList.contains('printing-codes')), 'print styles show only the codes');
    await mfaCard.getByRole('button', { name: /saved them/ }).click();
    await visible(mfaCard.getByText('On', { exact: true }));
    assert.equal(await mfaCard.getByRole('list', { name: 'Backup codes' }).count(), 0, 'codes are not shown again');
    await shot(page, 'mfa-on');
  });

  await step('log out, log in with TOTP, trust this device', () => page, async () => {
    await logOut(page);
    await logIn(page);
    await visible(heading(page, 'Two-step verification'));
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'mfa-code', 'the code page focuses the code input');
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

  let fingerprintAtRatio1 = '';
  /** The x-device-fingerprint header value a page sends (from the client's browser helper the web app imports). */
  const readFingerprint = (p: Page) =>
    p.evaluate(async () => {
      // Assets are served under a versioned prefix (/assets/<build id>/…): resolve next to the app's script.
      const app = (document.querySelector('script[type=module]') as HTMLScriptElement).src;
      const mod = await import(new URL('vendor/trusted-devices-browser.js', app).href);
      return (await mod.fingerprintHeader()) as string;
    });

  await step('the fingerprint is valid and the same across reloads', () => page, async () => {
    const read = () => readFingerprint(page);
    const before = await read();
    fingerprintAtRatio1 = before;
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
    for (const k of ['timezone', 'language', 'platform', 'color_depth', 'hardware_concurrency', 'canvas', 'canvas_text']) {
      assert.ok(k in signals, `signal ${k} is collected`);
    }
    assert.ok(!('screen' in signals), 'screen size is not collected (it changes with zoom and monitors)');
    assert.equal(signals.timezone, 'Europe/Paris');
  });

  await step('the refresh token is an HttpOnly cookie; an expired access token is refreshed from it', () => page, async () => {
    const refreshCookie = async () => (await context.cookies()).find((c) => c.name === 'td_refresh');
    const before = await refreshCookie();
    assert.ok(before, 'td_refresh is set');
    assert.equal(before.httpOnly, true);
    assert.equal(before.sameSite, 'Strict');
    assert.equal(before.path, '/api/v1/auth');
    assert.equal(before.secure, true, 'COOKIE_SECURE=auto: Secure on 127.0.0.1');
    assert.equal(await page.evaluate(() => document.cookie.includes('td_refresh')), false, 'script cannot read it');
    assert.equal(await page.evaluate(() => JSON.stringify({ ...sessionStorage, ...localStorage }).includes('tdr_')), false, 'no refresh token in storage');

    const stale = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.invalid-signature';
    await page.evaluate((token) => sessionStorage.setItem('td.access_token', token), stale);
    const refreshCalls: number[] = [];
    page.on('response', (res) => {
      if (res.url().endsWith('/api/v1/auth/refresh')) refreshCalls.push(res.status());
    });
    await page.reload();
    await visible(heading(page, 'Your devices'));
    await visible(deviceCards(page).first());
    assert.equal(refreshCalls.length, 1, `concurrent 401s share one refresh, got ${JSON.stringify(refreshCalls)}`);
    assert.equal(refreshCalls[0], 200);
    assert.notEqual(await page.evaluate(() => sessionStorage.getItem('td.access_token')), stale);
    assert.notEqual((await refreshCookie())?.value, before.value, 'the refresh cookie was rotated');
  });

  await step('a second tab is signed in too (from the refresh cookie)', () => page, async () => {
    const tab = await context.newPage();
    watch(tab);
    await tab.goto('/');
    await visible(heading(tab, 'Your devices'));
    await visible(deviceCards(tab).first());
    await tab.close();
    // The first tab still works after the second one rotated the cookie.
    await page.getByRole('link', { name: 'Security' }).click();
    await visible(heading(page, 'Security'));
    await page.getByRole('link', { name: 'Your devices' }).click();
    await visible(heading(page, 'Your devices'));
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

  await step('the same browser at 640x400 with pixel ratio 2 (200% zoom / another monitor) keeps trust', () => page, async () => {
    // The same profile (its device cookie and its device key in IndexedDB), shown at another size and ratio:
    // DevTools' device-metrics override on this very page, then a reload so the app measures again.
    const cdp = await context.newCDPSession(page);
    await cdp.send('Emulation.setDeviceMetricsOverride', { width: 640, height: 400, deviceScaleFactor: 2, mobile: false });
    try {
      await logOut(page);
      await page.reload();
      await logIn(page);
      await visible(heading(page, 'Your devices'));
      assert.match(await flashText(page).innerText(), /no code was needed/i);
      // The ratio did change what the browser sends (text rendering), and trust held anyway.
      const atRatio1 = JSON.parse(fingerprintAtRatio1) as Record<string, unknown>;
      const atRatio2 = JSON.parse(await readFingerprint(page)) as Record<string, unknown>;
      assert.equal(await page.evaluate(() => window.devicePixelRatio), 2);
      assert.notEqual(atRatio2.canvas_text, atRatio1.canvas_text, 'text pixels depend on the pixel ratio');
      assert.equal(atRatio2.canvas, atRatio1.canvas, 'geometry pixels do not');
      await shot(page, 'zoomed-trusted', { axe: false });
    } finally {
      await cdp.send('Emulation.clearDeviceMetricsOverride');
      await cdp.detach();
    }
  });

  await step('a different browser profile (no device cookie) is not trusted', () => page, async () => {
    const [fresh, freshPage] = await newContext({ viewport: { width: 1280, height: 800 } });
    try {
      await logIn(freshPage);
      await visible(heading(freshPage, 'Two-step verification'));
    } finally {
      await fresh.close();
    }
  });

  await step('revoke the device; the next login asks for MFA again', () => page, async () => {
    const current = deviceCards(page).filter({ has: page.getByText('This device', { exact: true }) });
    await current.getByRole('button', { name: /^Revoke/ }).click();
    const dialog = page.getByRole('dialog');
    await visible(dialog);
    await shot(page, 'revoke-confirm');
    await dialog.getByRole('button', { name: 'Revoke device' }).click();
    // Revoking this device also signs it out (what ends what, docs/sessions.md): the session opened on it has ended.
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

  let pageB: Page = page;
  await step('sessions: B sees where the account is signed in; revoking device A from B signs A out at its next page load', () => pageB, async () => {
    // A: the main browser, trusted again.
    await logIn(page);
    await enterBackupCode(page, backupCodes[4]!);
    await visible(heading(page, /Remember this device/));
    await view(page, /Remember this device/).getByLabel(/Device name/).fill('Workstation A');
    await page.getByRole('button', { name: 'Trust this device' }).click();
    await visible(heading(page, 'Your devices'));
    // B: another browser profile, not trusted.
    const [contextB, b] = await newContext({ viewport: { width: 1280, height: 800 } });
    pageB = b;
    closeAtEnd(t, contextB, (c) => c.close());
    await logIn(b);
    await enterBackupCode(b, backupCodes[5]!);
    await visible(heading(b, /Remember this device/));
    await b.getByRole('button', { name: 'Not now' }).click();
    await visible(heading(b, 'Your devices'));
    const groups = b.getByRole('list', { name: 'Where you’re signed in' }).getByRole('listitem').filter({ has: b.getByRole('heading') });
    await visible(groups.nth(1));
    assert.equal(await groups.count(), 2, 'two devices signed in');
    const groupA = groups.filter({ has: b.getByText('Skips the code') });
    await visible(groupA);
    const groupB = groups.filter({ has: b.getByText('This session') });
    await visible(groupB.getByText('Asks for a code'));
    await shot(b, 'sessions');

    // B revokes A (the trusted device): the dialog says it is signed out too.
    await deviceCards(b).first().getByRole('button', { name: /^Revoke/ }).click();
    const dialog = b.getByRole('dialog');
    await visible(dialog.getByText(/signed out at once/));
    await shot(b, 'revoke-other-confirm');
    await dialog.getByRole('button', { name: 'Revoke device' }).click();
    await visible(b.getByText(/and signed it out/));
    await visible(b.getByRole('heading', { name: 'No trusted devices' }));
    const history = b.getByRole('list', { name: 'Device history' });
    const revokedItem = history.getByRole('listitem').filter({ hasText: 'Device revoked' }).filter({ hasText: 'Workstation A' });
    await visible(revokedItem.first()); // the list reloads after the action
    const revokedEvent = await revokedItem.first().innerText();
    assert.match(revokedEvent, /Workstation A/, 'the history names the subject');
    assert.match(revokedEvent, /by Chrome on Linux/, 'and who did it');
    await shot(b, 'sessions-after-revoke');

    // A's next page load is signed out.
    await page.reload();
    await visible(heading(page, 'Sign in'));

    // A signs in again (password + code: no longer trusted); B signs out everywhere else.
    await logIn(page);
    await enterBackupCode(page, backupCodes[6]!);
    await visible(heading(page, /Remember this device/));
    await page.getByRole('button', { name: 'Not now' }).click();
    await visible(heading(page, 'Your devices'));
    await b.bringToFront();
    await b.evaluate(() => window.dispatchEvent(new Event('focus'))); // the page reloads its lists on focus
    await visible(groups.nth(1));
    await b.getByRole('button', { name: 'Sign out everywhere else' }).click();
    await b.getByRole('dialog').getByRole('button', { name: 'Sign out everywhere else' }).click();
    await visible(b.getByText(/Signed out 1 other session/));
    // The list re-renders after the answer: wait for the other group to go, then count.
    await groups.nth(1).waitFor({ state: 'detached' });
    assert.equal(await groups.count(), 1);
    await page.reload();
    await visible(heading(page, 'Sign in'));
  });

  await context.close();

  await step(`a host name that is not localhost (${OTHER_HOST}), default config: trust is kept`, () => page, async () => {
    const [other, otherPage] = await newContext({ baseURL: `http://${OTHER_HOST}:${service.port}`, viewport: { width: 1280, height: 800 } });
    try {
      await logIn(otherPage);
      await enterBackupCode(otherPage, backupCodes[1]!);
      await visible(heading(otherPage, /Remember this device/));
      await otherPage.getByRole('button', { name: 'Trust this device' }).click();
      await visible(heading(otherPage, 'Your devices'));
      // Only said after GET /devices showed this browser as the trusted device.
      assert.match(await flashText(otherPage).innerText(), /trusted until/i);
      const cookie = (await other.cookies()).find((c) => c.name === 'td_device');
      assert.ok(cookie && !cookie.secure, 'COOKIE_SECURE=auto: not Secure on plain http to a non-loopback host');
      await logOut(otherPage);
      await logIn(otherPage);
      await visible(heading(otherPage, 'Your devices'));
      assert.match(await flashText(otherPage).innerText(), /no code was needed/i);
      // Leave no trusted device behind for the steps below (this also signs this browser out).
      await otherPage.getByRole('button', { name: 'Revoke all' }).click();
      await otherPage.getByRole('dialog').getByRole('button', { name: 'Revoke all' }).click();
      // The trusted device stood in for the second factor: revoking every device asks for a code first (docs/step-up.md).
      const confirmItsYou = otherPage.getByRole('form', { name: 'Confirm it’s you' });
      // (A backup code: no wait for the next TOTP step.)
      await confirmItsYou.getByRole('button', { name: 'Use a backup code instead' }).click();
      await confirmItsYou.getByLabel('Backup code').fill(backupCodes[7]!);
      await confirmItsYou.getByRole('button', { name: 'Confirm' }).click();
      await visible(view(otherPage, 'Sign in'));
    } finally {
      await other.close();
    }
  });

  let strictPage: Page = page;
  await step(`with COOKIE_SECURE=true on ${OTHER_HOST} the page says the device was NOT remembered`, () => strictPage, async () => {
    const strict = closeAtEnd(t, await startService({ COOKIE_SECURE: 'true' }, t.signal), (s) => s.stop());
    const [other, otherPage] = await newContext({ baseURL: `http://${OTHER_HOST}:${strict.port}`, viewport: { width: 1280, height: 800 } });
    closeAtEnd(t, other, (c) => c.close());
    strictPage = otherPage;
    {
      const strictEmail = `strict-${Date.now()}@example.com`;
      await otherPage.goto('/#/signup');
      const form = view(otherPage, 'Create your account');
      await form.getByLabel('Email').fill(strictEmail);
      await form.getByLabel('Password', { exact: true }).fill(PASSWORD);
      await form.getByRole('button', { name: 'Create account' }).click();
      const mfaCard = otherPage.getByRole('region', { name: 'Two-step verification' });
      await mfaCard.getByRole('button', { name: 'Set up authenticator app' }).click();
      await visible(mfaCard.getByRole('img', { name: /QR code/ }));
      const strictTotp = new TotpCodes(await mfaCard.getByLabel('Setup key').inputValue());
      await mfaCard.getByLabel('6-digit code').fill(await strictTotp.next());
      await mfaCard.getByRole('button', { name: 'Turn on' }).click();
      const codes = mfaCard.getByRole('list', { name: 'Backup codes' }).getByRole('listitem');
      await visible(codes.first());
      const strictBackup = (await codes.first().innerText()).trim();
      await mfaCard.getByRole('button', { name: /saved them/ }).click();
      await logOut(otherPage);
      await otherPage.goto('/#/login');
      const login = view(otherPage, 'Sign in');
      await login.getByLabel('Email').fill(strictEmail);
      await login.getByLabel('Password').fill(PASSWORD);
      await login.getByRole('button', { name: 'Sign in' }).click();
      await enterBackupCode(otherPage, strictBackup);
      await visible(heading(otherPage, /Remember this device/));
      await otherPage.getByRole('button', { name: 'Trust this device' }).click();
      const alert = view(otherPage, /Remember this device/).getByRole('alert');
      await visible(alert.getByText(/did not keep the device cookie/));
      await shot(otherPage, 'device-not-remembered');
      await otherPage.getByRole('link', { name: 'Continue' }).click();
      await visible(heading(otherPage, 'Your devices'));
      await visible(deviceCards(otherPage).first());
      assert.equal(await deviceCards(otherPage).filter({ has: otherPage.getByText('This device', { exact: true }) }).count(), 0, 'never shown as this device');
    }
  });

  const [phone, phonePage] = await newContext({ viewport: { width: 390, height: 844 }, hasTouch: true });

  await step('"Not now" in a fresh browser (phone size): the next login asks for MFA again', () => phonePage, async () => {
    await logIn(phonePage);
    await visible(heading(phonePage, 'Two-step verification'));
    // A wrong code says how many attempts this sign-in has left.
    const mfa = view(phonePage, 'Two-step verification');
    await mfa.getByLabel('Authentication code').fill('000000');
    await mfa.getByRole('button', { name: 'Verify' }).click();
    await visible(mfa.getByRole('alert').getByText(/4 attempts left for this sign-in/));
    assert.equal(await mfa.getByLabel('Authentication code').getAttribute('aria-invalid'), 'true');
    await shot(phonePage, 'phone-wrong-code');
    await enterTotp(phonePage);
    await visible(heading(phonePage, 'Remember this device for 30 days?'));
    await shot(phonePage, 'phone-trust-prompt');
    await phonePage.getByRole('button', { name: 'Not now' }).click();
    await visible(heading(phonePage, 'Your devices'));
    await visible(phonePage.getByRole('heading', { name: 'No trusted devices' }));
    // "Not now" is no line of its own: the sign-in is one line (docs/security-center.md, "History").
    await visible(phonePage.getByRole('list', { name: 'Device history' }).getByText(/^Signed in/).first());
    await shot(phonePage, 'phone-not-now');

    await logOut(phonePage);
    await logIn(phonePage);
    await visible(heading(phonePage, 'Two-step verification'));
    await shot(phonePage, 'phone-mfa-again');
  });

  await step('"Revoke all" revokes the trusted device', () => phonePage, async () => {
    await enterBackupCode(phonePage, backupCodes[2]!);
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
    await enterBackupCode(phonePage, backupCodes[3]!);
    await visible(heading(phonePage, /Remember this device/));
    await phonePage.getByRole('button', { name: 'Trust this device' }).click();
    await visible(heading(phonePage, 'Your devices'));
    await visible(deviceCards(phonePage).first());

    await phonePage.getByRole('link', { name: 'Security' }).click();
    const form = phonePage.getByRole('region', { name: 'Change password' });
    await visible(form);
    // Turning two-step verification off asks first (cancelled here).
    const mfaCard = phonePage.getByRole('region', { name: 'Two-step verification' });
    await visible(mfaCard.getByText('On', { exact: true }));
    await mfaCard.getByText('Turn off two-step verification').click();
    await mfaCard.getByLabel('Your password').fill(PASSWORD);
    await mfaCard.getByRole('button', { name: 'Turn off' }).click();
    const dialog = phonePage.getByRole('dialog');
    await visible(dialog.getByRole('heading', { name: 'Turn off two-step verification?' }));
    await shot(phonePage, 'phone-mfa-off-confirm');
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await visible(mfaCard.getByText('On', { exact: true }));

    // A wrong current password is a field error in plain words, without a reference id.
    await form.getByLabel('Current password').fill('Not-the-password-1');
    await form.getByLabel('New password', { exact: true }).fill(NEW_PASSWORD);
    await form.getByLabel('Confirm new password').fill(NEW_PASSWORD);
    await form.getByRole('button', { name: 'Change password' }).click();
    const wrong = form.getByRole('alert');
    await visible(wrong.getByText('That password isn’t correct.'));
    assert.doesNotMatch(await wrong.innerText(), /Reference/);
    assert.equal(await form.getByLabel('Current password').getAttribute('aria-invalid'), 'true');
    await shot(phonePage, 'phone-wrong-current-password');

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

  await step('after 5 wrong codes the page says the sign-in must restart, and offers it', () => phonePage, async () => {
    const mfa = view(phonePage, 'Two-step verification');
    for (let i = 0; i < 5; i++) {
      await mfa.getByLabel('Authentication code').fill('000000');
      await mfa.getByRole('button', { name: 'Verify' }).click();
      if (i < 4) await visible(mfa.getByRole('alert').getByText(`${4 - i} attempt${4 - i === 1 ? '' : 's'} left`));
    }
    const alert = mfa.getByRole('alert');
    await visible(alert.getByText(/Sign in again/));
    assert.doesNotMatch(await alert.innerText(), /second|wait/i, 'no "wait 1 second"');
    const again = mfa.getByRole('link', { name: 'Sign in again' });
    await visible(again);
    await shot(phonePage, 'phone-mfa-restart');
    await again.click();
    await visible(heading(phonePage, 'Sign in'));
  });

  await phone.close();

  await t.test('no script errors, CSP violations or external requests', () => {
    assert.deepEqual(problems, []);
  });

  await t.test('axe-core: no violation of any impact on any page state', () => {
    assert.ok(axeRuns >= 30, `axe ran ${axeRuns} times`);
    assert.deepEqual(axeFindings, []);
  });
});
