/**
 * Account states of the web app in Chromium (docs/web-app.md, "Account
 * states"), on a desktop (1280x800) and on a phone (390x844, touch, a phone's
 * User-Agent), against the real service with real rate limits and mail over
 * SMTP to a server in this process:
 *
 * - Security: the email address "Not confirmed" with **Resend** (sent; the
 *   fourth within 15 minutes is refused and said plainly), then "Confirmed"
 *   after the link from the mail;
 * - TOTP setup: the setup key is all visible (wraps, grouped in 4s) and an
 *   `otpauth://` "Open in authenticator app" link carries the same secret;
 * - the code prompt with its reason; the code that just turned MFA on is
 *   refused as "This code was just used…" and costs no attempt (a wrong code
 *   afterwards still has 4 left);
 * - the trust prompt shows a phone on the phone and a computer on the desktop;
 *   over plain http on a host that is not localhost (no secure context: no
 *   WebCrypto, no passkeys) it says trust there is weaker;
 * - "This wasn't me" names the device (name, browser/OS, location, time);
 *   once used, or expired, it says so and offers no red button.
 *
 * Every state: a full-page screenshot in artifacts/e2e/account-<state>-<profile>.png
 * and axe-core with no violation of any impact, in the light and the dark theme.
 *
 *   node --import tsx --test test/e2e/account-states.test.ts
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Browser, BrowserContextOptions, Page } from 'playwright-core';
import { ARTIFACTS_DIR, chromiumInstalled, CHROMIUM_PATH, launchChromium, OTHER_HOST, startService, TotpCodes, type RunningService } from './helpers.ts';
import { type CapturedMail, linkUrl, TestSmtpServer } from '../helpers/mail.ts';
import { closeAtEnd } from '../helpers/teardown.ts';

const PASSWORD = 'Correct-Horse-Battery-9';
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const PHONE_UA = 'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36';
/** A public address of the shipped database (Amsterdam), so devices and sign-ins have a location. */
const AMSTERDAM = '193.0.6.139';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Profile {
  name: 'desktop' | 'phone';
  options: BrowserContextOptions;
}
const PROFILES: Profile[] = [
  { name: 'desktop', options: { viewport: { width: 1280, height: 800 } } },
  { name: 'phone', options: { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2, userAgent: PHONE_UA } },
];

test('web app account states: email status, setup key, used code, trust prompt, "This wasn\'t me"', { timeout: 420_000 }, async (t) => {
  if (!chromiumInstalled()) {
    t.skip(`Chromium not installed: browser test NOT run (expected ${CHROMIUM_PATH})`);
    return;
  }
  mkdirSync(ARTIFACTS_DIR, { recursive: true });
  const smtp = closeAtEnd(t, await new TestSmtpServer().start(), (s) => s.stop());
  // Real rate limits (Resend's 3 per 15 minutes is part of what is shown); links point at this service.
  const service: RunningService = closeAtEnd(
    t,
    await startService((port) => ({ RATE_LIMITS: 'on', TRUST_PROXY: '127.0.0.1', SMTP_URL: smtp.url, PUBLIC_URL: `http://127.0.0.1:${port}` }), t.signal),
    (s) => s.stop(),
  );
  const browser: Browser = closeAtEnd(t, await launchChromium(), (b) => b.close());

  const waitForMails = async (to: string, subject: RegExp, count = 1): Promise<CapturedMail[]> => {
    for (let i = 0; i < 300; i++) {
      const mails = smtp.to(to).filter((m) => subject.test(m.subject));
      if (mails.length >= count) return mails;
      await sleep(100);
    }
    throw new Error(`fewer than ${count} mails ${subject} to ${to}; service output:\n${service.output()}`);
  };

  const axeFindings: string[] = [];
  const problems: string[] = [];
  const axe = async (page: Page, label: string) => {
    if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(AXE_SOURCE);
    const violations = await page.evaluate(async () => {
      const result = await (window as any).axe.run(document, { resultTypes: ['violations'] });
      return (result.violations as any[]).map((v) => `${v.id} [${v.impact}] ${v.help}: ${v.nodes.map((n: any) => n.target.join(' ')).slice(0, 4).join(', ')}`);
    });
    for (const v of violations) axeFindings.push(`${label}: ${v}`);
  };
  /** A screenshot and axe-core in the light theme, then axe-core (and for the new colours a screenshot) in the dark one. */
  const shot = async (page: Page, profile: Profile, state: string) => {
    await page.waitForTimeout(200);
    await page.screenshot({ path: join(ARTIFACTS_DIR, `account-${state}-${profile.name}.png`), fullPage: true });
    await axe(page, `${state} (${profile.name})`);
    await page.emulateMedia({ colorScheme: 'dark' });
    if (/trust-prompt-plain-http|report-|email-/.test(state)) await page.screenshot({ path: join(ARTIFACTS_DIR, `account-${state}-${profile.name}-dark.png`), fullPage: true });
    await axe(page, `${state} (${profile.name}, dark)`);
    await page.emulateMedia({ colorScheme: 'light' });
    // Nothing wider than the screen (a clipped key or a sideways scroll on a phone).
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, `${state} (${profile.name}): the page is ${overflow}px wider than the screen`);
  };

  const newPage = async (profile: Profile, baseURL = service.baseUrl) => {
    const context = await browser.newContext({ baseURL, locale: 'en-US', timezoneId: 'Europe/Amsterdam', extraHTTPHeaders: { 'x-forwarded-for': AMSTERDAM }, ...profile.options });
    closeAtEnd(t, context, (c) => c.close());
    context.setDefaultTimeout(20_000);
    const page = await context.newPage();
    page.on('pageerror', (error) => problems.push(`${profile.name}: ${error.message}`));
    return page;
  };

  const signIn = async (page: Page, email: string) => {
    await page.goto('/#/login');
    await page.locator('#login-email').fill(email);
    await page.locator('#login-password').fill(PASSWORD);
    await page.locator('#login-form button[type=submit]').click();
    await page.getByRole('heading', { level: 1, name: 'Two-step verification' }).waitFor();
  };
  const submitCode = async (page: Page, code: string) => {
    await page.locator('#mfa-code').fill(code);
    await page.locator('#mfa-form button[type=submit]').click();
  };
  const formError = (page: Page, selector: string) => page.locator(`${selector} [data-form-error]`);

  let desktop: { email: string; codes: TotpCodes } | null = null;

  for (const profile of PROFILES) {
    const page = await newPage(profile);
    const email = `states-${profile.name}-${Date.now()}@example.com`;
    try {
      // ── Sign up: Security opens, the address is not confirmed yet ──
      await page.goto('/#/signup');
      await page.locator('#signup-email').fill(email);
      await page.locator('#signup-password').fill(PASSWORD);
      await page.locator('#signup-form button[type=submit]').click();
      await page.getByRole('heading', { level: 1, name: 'Security' }).waitFor();
      const emailCard = page.getByRole('region', { name: 'Email address' });
      await emailCard.getByText('Not confirmed', { exact: true }).waitFor();
      await emailCard.getByText(email).waitFor();
      assert.match(await emailCard.innerText(), /is not confirmed yet/);
      const resend = emailCard.getByRole('button', { name: 'Resend confirmation email' });
      await resend.waitFor();
      await shot(page, profile, 'email-not-confirmed');

      // Resend: said plainly, and sent.
      await resend.click();
      await emailCard.getByText(`Sent: a new confirmation link is on its way to ${email}.`).waitFor();
      await shot(page, profile, 'email-resent');
      if (profile.name === 'desktop') {
        // Three per account in 15 minutes; the fourth is refused and the page says how long to wait.
        for (let i = 0; i < 2; i++) {
          await resend.click();
          await emailCard.getByText(/^Sent: a new confirmation link/).waitFor();
        }
        await resend.click();
        await emailCard.getByRole('alert').getByText(/^Too many attempts in a short time\. Wait (1[0-5]|[1-9]) minutes? and try again\.$/).waitFor();
        assert.equal(await emailCard.getByText(/^Sent:/).count(), 0, 'no success shown with the refusal');
        await shot(page, profile, 'email-rate-limited');
        // The newest link confirms the address; the card then says so, without Resend.
        const confirmMails = await waitForMails(email, /^Confirm your email address$/, 4);
        await page.goto(linkUrl(confirmMails.at(-1)!));
        await page.getByText('Thank you: your email address is confirmed.').waitFor();
        await page.goto('/#/security');
        await emailCard.getByText('Confirmed', { exact: true }).waitFor();
        assert.match(await emailCard.innerText(), /is confirmed: security alerts/);
        assert.equal(await resend.isVisible(), false, 'no Resend once confirmed');
        await shot(page, profile, 'email-confirmed');
      }

      // ── TOTP setup: the whole key is visible, and the otpauth:// link ──
      const mfaCard = page.getByRole('region', { name: 'Two-step verification' });
      await mfaCard.getByRole('button', { name: 'Set up authenticator app' }).click();
      const keyBox = mfaCard.getByLabel('Setup key');
      await keyBox.waitFor();
      const key = await keyBox.inputValue();
      assert.match(key, /^([A-Z2-7]{4} )+[A-Z2-7]{1,4}$/, `grouped in fours: ${key}`);
      const fits = await keyBox.evaluate((el: HTMLTextAreaElement) => ({
        height: el.scrollHeight - el.clientHeight,
        width: el.scrollWidth - el.clientWidth,
        right: el.getBoundingClientRect().right - document.documentElement.clientWidth,
      }));
      assert.ok(fits.height <= 1 && fits.width <= 1 && fits.right <= 0, `the key is cut off: ${JSON.stringify(fits)}`);
      const openApp = mfaCard.getByRole('link', { name: 'Open in authenticator app' });
      const href = (await openApp.getAttribute('href')) ?? '';
      assert.match(href, /^otpauth:\/\/totp\//);
      assert.equal(new URL(href).searchParams.get('secret'), key.replace(/\s/g, ''), 'the link adds the same secret');
      await shot(page, profile, 'mfa-setup');

      const codes = new TotpCodes(key);
      const setupCode = await codes.next();
      await mfaCard.getByLabel('6-digit code').fill(setupCode);
      await mfaCard.getByRole('button', { name: 'Turn on' }).click();
      await mfaCard.getByRole('button', { name: 'I’ve saved them' }).click();
      await page.getByRole('button', { name: 'Log out' }).click();
      await page.getByRole('heading', { level: 1, name: 'Sign in' }).waitFor();

      // ── The code prompt: why, then the code just used ──
      await signIn(page, email);
      await page.getByText('We ask because this browser isn’t one of your trusted devices.').waitFor();
      await shot(page, profile, 'code-prompt');
      await submitCode(page, setupCode);
      await formError(page, '#mfa-form').getByText('This code was just used. Wait for the next one in your app.', { exact: true }).waitFor();
      assert.equal(await page.locator('#mfa-code').getAttribute('aria-invalid'), 'true');
      await shot(page, profile, 'code-prompt-code-used');
      // It cost no attempt: a wrong code now still has the full count left.
      await submitCode(page, setupCode === '000000' ? '111111' : '000000');
      await formError(page, '#mfa-form').getByText(/That code isn’t right\. .* 4 attempts left for this sign-in\./).waitFor();
      await submitCode(page, await codes.next());

      // ── The trust prompt: this kind of device, no warning on a secure origin ──
      await page.getByRole('heading', { level: 1, name: /^Remember this device/ }).waitFor();
      const kind = await page.locator('#trust-icon').getAttribute('data-kind');
      assert.equal(kind, profile.name === 'phone' ? 'mobile' : 'desktop');
      await page.locator('#trust-device-summary').getByRole('img', { name: profile.name === 'phone' ? 'Phone' : 'Computer' }).waitFor();
      await page.waitForTimeout(300); // the key probe is asynchronous
      assert.equal(await page.locator('#trust-weaker').isVisible(), false, 'a secure origin keeps a device key: no warning');
      await shot(page, profile, 'trust-prompt');
      const deviceName = profile.name === 'phone' ? 'My phone' : 'Work laptop';
      await page.locator('#trust-name').fill(deviceName);
      await page.getByRole('button', { name: 'Trust this device' }).click();
      await page.getByRole('heading', { level: 1, name: 'Your devices' }).waitFor();

      // ── "This wasn't me" from the alert: the device named; then used ──
      const [alert] = await waitForMails(email, /^A new device was trusted on your account$/);
      const reportUrl = linkUrl(alert!);
      await page.goto(reportUrl);
      await page.getByRole('heading', { level: 1, name: 'This wasn’t me' }).waitFor();
      const view = page.locator('#view-report');
      await view.getByText(deviceName, { exact: true }).waitFor();
      const text = await view.innerText();
      assert.match(text, profile.name === 'phone' ? /Chrome on Android/ : /Chrome on Linux/);
      assert.match(text, /Approximate location\s+Amsterdam.*Netherlands/);
      assert.match(text, /IP address\s+193\.0\.6\.139/);
      assert.match(text, /Trusted\s+\w{3} \d{1,2}, \d{4}/);
      await view.getByRole('link', { name: 'IP Geolocation by DB-IP' }).waitFor();
      await shot(page, profile, 'report-fresh');
      await view.getByRole('button', { name: 'Yes, revoke that device' }).click();
      await view.getByText('Done: that device is no longer trusted and has been signed out.').waitFor();

      await page.goto(reportUrl);
      await view.getByText(/^This link was already used: that device was revoked on \w{3} \d{1,2}, \d{4}/).waitFor();
      await view.getByText(deviceName, { exact: true }).waitFor();
      assert.equal(await view.getByRole('button').count(), 0, 'a used link offers no button');
      await shot(page, profile, 'report-used');

      if (profile.name === 'desktop') {
        // Expired (7 days cannot pass here): the page's answer to the details saying so.
        await page.route('**/api/v1/security/report/details', async (route) => {
          const real = await route.fetch();
          const json = (await real.json()) as any;
          json.data = { ...json.data, status: 'expired', used_at: null, subject: { ...json.data.subject, ended_at: null } };
          await route.fulfill({ response: real, json });
        });
        await page.goto(reportUrl);
        await view.getByText('This link has expired: “This wasn’t me” links work for 7 days.').waitFor();
        assert.equal(await view.getByRole('button').count(), 0, 'an expired link offers no button');
        await shot(page, profile, 'report-expired');
        await page.unroute('**/api/v1/security/report/details');

        // A sign-in's link (the "two-step verification was turned on" mail names the session that did it, since signed out).
        const [mfaOn] = await waitForMails(email, /^Two-step verification was turned on$/);
        const sessionUrl = linkUrl(mfaOn!);
        await page.goto(sessionUrl);
        await view.getByText('The security email was about this sign-in:').waitFor();
        assert.match(await view.innerText(), /Signed in\s+\w{3} \d{1,2}, \d{4}/);
        await view.getByText(/^That session has already ended \(/).waitFor();
        await shot(page, profile, 'report-session-fresh');
        await view.getByRole('button', { name: 'Yes, sign it out' }).click();
        await view.getByText(/^That session had already ended/).waitFor();
        await page.goto(sessionUrl);
        await view.getByText(/^This link was already used: that session was ended on \w{3} \d{1,2}, \d{4}/).waitFor();
        assert.equal(await view.getByRole('button').count(), 0, 'a used link offers no button');
        await shot(page, profile, 'report-session-used');
        desktop = { email, codes };
      }
    } catch (error) {
      await page.screenshot({ path: join(ARTIFACTS_DIR, `account-FAILED-${profile.name}.png`), fullPage: true }).catch(() => undefined);
      throw error;
    }
  }

  // ── Plain http on a host that is not localhost: no secure context, so no device key and no passkeys ──
  const desktopProfile = PROFILES[0]!;
  const plain = await newPage(desktopProfile, `http://${OTHER_HOST}:${service.port}`);
  try {
    assert.ok(desktop);
    await signIn(plain, desktop.email);
    assert.equal(await plain.evaluate(() => window.isSecureContext), false);
    await submitCode(plain, await desktop.codes.next());
    await plain.getByRole('heading', { level: 1, name: /^Remember this device/ }).waitFor();
    const weaker = plain.locator('#trust-weaker');
    await weaker.waitFor();
    assert.match(await weaker.innerText(), /This connection isn’t secure \(plain http\), so this browser can’t keep a device key or use passkeys here\./);
    await shot(plain, desktopProfile, 'trust-prompt-plain-http');
    // Trusting still works (a cookie alone), as the notice says.
    await plain.getByRole('button', { name: 'Trust this device' }).click();
    await plain.getByRole('heading', { level: 1, name: 'Your devices' }).waitFor();
    await plain.locator('#device-list > li').first().getByText('This device').waitFor();
  } catch (error) {
    await plain.screenshot({ path: join(ARTIFACTS_DIR, 'account-FAILED-plain-http.png'), fullPage: true }).catch(() => undefined);
    throw error;
  }

  assert.deepEqual(axeFindings, [], axeFindings.join('\n'));
  assert.deepEqual(problems, []);
});
