/**
 * Browser end-to-end test of the account-email pages against the real
 * service, with mail delivered over SMTP to a server in this process:
 *
 *   node --import tsx --test test/e2e/email.test.ts
 *
 * A device is trusted through the API; the "new device trusted" alert
 * arrives; its "This wasn't me" link is opened in Chromium, confirmed, and
 * the device is revoked. Then "Forgot your password?" is used in the page,
 * the reset mail arrives, its link is opened, a new password is chosen, and
 * the new password signs in (with MFA still asked). Skipped without
 * /usr/bin/chromium.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Browser } from 'playwright-core';
import { TestSmtpServer, linkUrl, type CapturedMail } from '../helpers/mail.ts';
import { ARTIFACTS_DIR, chromiumInstalled, CHROMIUM_PATH, launchChromium, startService, TotpCodes, type RunningService } from './helpers.ts';
import { closeAtEnd } from '../helpers/teardown.ts';

const PASSWORD = 'Correct-Horse-Battery-9';
const NEW_PASSWORD = 'Even-Better-Staple-7';
const UA = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** Links are built from PUBLIC_URL; the service runs on a port chosen by startService, so the test opens them there. */
const PUBLIC_URL = 'https://auth.example.test';

test('web app: "This wasn\'t me" and password reset from captured mail, in a real browser', { timeout: 180_000 }, async (t) => {
  if (!chromiumInstalled()) {
    t.skip(`Chromium not installed: browser test NOT run (expected ${CHROMIUM_PATH})`);
    return;
  }
  mkdirSync(ARTIFACTS_DIR, { recursive: true });
  const smtp = closeAtEnd(t, await new TestSmtpServer().start(), (s) => s.stop());
  const service: RunningService = closeAtEnd(t, await startService({ PUBLIC_URL, SMTP_URL: smtp.url }, t.signal), (s) => s.stop());
  const open = (url: string) => {
    assert.ok(url.startsWith(`${PUBLIC_URL}/`), url);
    return service.baseUrl + url.slice(PUBLIC_URL.length);
  };

  const api = async (method: string, path: string, body?: unknown, token?: string, headers: Record<string, string> = {}) => {
    const res = await fetch(`${service.baseUrl}/api/v1${path}`, {
      method,
      headers: { 'user-agent': UA, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    return { status: res.status, body: (res.status === 204 ? null : await res.json()) as any };
  };
  const waitForMail = async (to: string, subject: RegExp): Promise<CapturedMail> => {
    for (let i = 0; i < 150; i++) {
      const mail = smtp.to(to).filter((m) => subject.test(m.subject)).at(-1);
      if (mail) return mail;
      await sleep(100);
    }
    throw new Error(`no mail ${subject} to ${to}; service output:\n${service.output()}`);
  };

  // An account with TOTP and one trusted device, through the API.
  const email = `e2e-mail-${Date.now()}@example.com`;
  assert.equal((await api('POST', '/auth/signup', { email, password: PASSWORD })).status, 201);
  let login = await api('POST', '/auth/login', { email, password: PASSWORD });
  const setup = await api('POST', '/mfa/totp/setup', {}, login.body.data.access_token);
  const codes = new TotpCodes(setup.body.data.secret);
  assert.equal((await api('POST', '/mfa/totp/verify', { code: await codes.next() }, login.body.data.access_token)).status, 200);
  login = await api('POST', '/auth/login', { email, password: PASSWORD });
  const verified = await api('POST', '/auth/mfa/verify', { temporary_token: login.body.data.temporary_token, code: await codes.next() });
  const activated = await api('POST', '/devices/activate', { activation_token: verified.body.data.trusted_device.activation_token, device_name: 'Work laptop' }, verified.body.data.access_token);
  assert.equal(activated.status, 200);
  const deviceToken: string = activated.body.data.device_token;

  const browser: Browser = closeAtEnd(t, await launchChromium(), (b) => b.close());
  const context = await browser.newContext({ locale: 'en-US' });
  context.setDefaultTimeout(15_000);
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(error.message));

  // "This wasn't me", from the alert.
  const alert = await waitForMail(email, /new device was trusted/);
  assert.match(alert.text, /Device: Work laptop/);
  const reportUrl = linkUrl(alert);
  assert.ok(reportUrl.startsWith(`${PUBLIC_URL}/security/report?token=`));
  await page.goto(open(reportUrl));
  await page.getByRole('heading', { name: 'This wasn’t me' }).waitFor();
  assert.ok(!page.url().includes('token='), 'the token left the address bar');
  assert.equal((await api('GET', '/devices', undefined, verified.body.data.access_token)).body.data.total_count, 1, 'opening the page revoked nothing');
  await page.screenshot({ path: join(ARTIFACTS_DIR, 'email-01-report.png'), fullPage: true });
  await page.getByRole('button', { name: 'Yes, revoke that device' }).click();
  await page.getByText('that device is no longer trusted').waitFor();
  await page.screenshot({ path: join(ARTIFACTS_DIR, 'email-02-reported.png'), fullPage: true });
  const afterReport = await api('POST', '/auth/login', { email, password: PASSWORD }, undefined, { 'x-device-token': deviceToken });
  assert.equal(afterReport.body.data.mfa_required, true, 'the reported device no longer bypasses MFA');

  // Forgot password → reset link → new password.
  await page.goto(`${service.baseUrl}/#/login`);
  await page.getByRole('link', { name: 'Forgot your password?' }).click();
  await page.locator('#forgot-email').fill(email);
  await page.getByRole('button', { name: 'Send reset link' }).click();
  await page.getByText('a link to reset its password is on its way').waitFor();
  const reset = await waitForMail(email, /^Reset your password$/);
  await page.goto(open(linkUrl(reset)));
  await page.getByRole('heading', { name: 'Choose a new password' }).waitFor();
  assert.ok(!page.url().includes('token='));
  await page.locator('#reset-new').fill(NEW_PASSWORD);
  await page.locator('#reset-confirm').fill(NEW_PASSWORD);
  await page.getByRole('button', { name: 'Set new password' }).click();
  await page.getByText('Your password was changed').waitFor();
  await page.screenshot({ path: join(ARTIFACTS_DIR, 'email-03-reset.png'), fullPage: true });

  assert.equal((await api('POST', '/auth/login', { email, password: PASSWORD })).status, 401);
  const fresh = await api('POST', '/auth/login', { email, password: NEW_PASSWORD });
  assert.equal(fresh.status, 200);
  assert.equal(fresh.body.data.mfa_required, true, 'a reset never skips the second factor');
  // Opening the used link again says so.
  await page.goto(open(linkUrl(reset)));
  await page.locator('#reset-new').fill('Yet-Another-Pass-5');
  await page.locator('#reset-confirm').fill('Yet-Another-Pass-5');
  await page.getByRole('button', { name: 'Set new password' }).click();
  await page.getByText('This link has already been used.').waitFor();
  assert.deepEqual(problems, []);
});
