/**
 * A crash is not theft (docs/trust-model.md), in a real browser against the real service:
 *
 *   node --import tsx --test test/e2e/crash-resync.test.ts
 *
 * Trust the device in a context (a key in IndexedDB), sign in again without a
 * code (the device token rotates), then put the OLD device cookie back, as a
 * browser killed before it stored the rotated cookie would reopen with it.
 * After the reuse grace, the next sign-in skips the code again: the service
 * sees a retired token with a valid proof of the device's own key, resyncs it
 * (`token_resynced`), and revokes nothing.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { chromiumInstalled, CHROMIUM_PATH, launchChromium, startService, TotpCodes, type RunningService } from './helpers.ts';
import { closeAtEnd } from '../helpers/teardown.ts';

const WAIT = 15_000;
const PASSWORD = 'Correct-Horse-Battery-9';

test('a browser that lost its rotated device cookie signs in without a code, and nothing is revoked', { timeout: 180_000 }, async (t) => {
  if (!chromiumInstalled()) {
    t.skip(`Chromium not installed: browser test NOT run (expected ${CHROMIUM_PATH})`);
    return;
  }
  // A 2-second grace, so the test does not wait 30 s.
  const service: RunningService = closeAtEnd(t, await startService({ DEVICE_TOKEN_REUSE_GRACE_SECONDS: '2' }, t.signal), (s) => s.stop());
  const browser: Browser = closeAtEnd(t, await launchChromium(), (b) => b.close());
  const apiCall = async (method: string, path: string, body?: unknown, token?: string) => {
    const res = await fetch(`${service.baseUrl}/api/v1${path}`, {
      method,
      headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as any };
  };
  const email = `e2e-crash-${Date.now()}@example.com`;
  assert.equal((await apiCall('POST', '/auth/signup', { email, password: PASSWORD })).status, 201);
  const first = await apiCall('POST', '/auth/login', { email, password: PASSWORD });
  const setup = await apiCall('POST', '/mfa/totp/setup', {}, first.body.data.access_token);
  const enabled = await apiCall('POST', '/mfa/totp/verify', { code: await new TotpCodes(setup.body.data.secret).next() }, first.body.data.access_token);
  const backupCodes: string[] = [...enabled.body.data.backup_codes];

  const problems: string[] = [];
  const context = await browser.newContext({ baseURL: service.baseUrl, locale: 'en-US', viewport: { width: 1280, height: 900 } });
  context.setDefaultTimeout(WAIT);
  const open = async (): Promise<Page> => {
    await context.clearCookies({ name: 'td_refresh' }); // a sign-in from scratch, not a restored session
    const page = await context.newPage();
    page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));
    return page;
  };
  const signIn = async (page: Page): Promise<'mfa' | 'devices'> => {
    await page.goto('/#/login');
    const form = page.getByRole('region', { name: 'Sign in' });
    await form.getByLabel('Email').fill(email);
    await form.getByLabel('Password').fill(PASSWORD);
    await form.getByRole('button', { name: 'Sign in' }).click();
    const mfa = page.getByRole('region', { name: 'Two-step verification' });
    const devices = page.getByRole('heading', { level: 1, name: 'Your devices' });
    await Promise.race([mfa.waitFor({ state: 'visible' }), devices.waitFor({ state: 'visible' })]);
    return (await mfa.isVisible()) ? 'mfa' : 'devices';
  };

  const page = await open();
  assert.equal(await signIn(page), 'mfa');
  const mfa = page.getByRole('region', { name: 'Two-step verification' });
  await mfa.getByRole('button', { name: 'Use a backup code instead' }).click();
  await mfa.getByLabel('Backup code').fill(backupCodes.pop()!);
  await mfa.getByRole('button', { name: 'Verify' }).click();
  await page.locator('#trust-yes').click();
  await page.getByRole('heading', { level: 1, name: 'Your devices' }).waitFor({ state: 'visible' });
  const beforeCrash = (await context.cookies()).find((c) => c.name === 'td_device')!;
  assert.ok(beforeCrash);

  // A trusted sign-in rotates the cookie…
  assert.equal(await signIn(await open()), 'devices');
  const rotated = (await context.cookies()).find((c) => c.name === 'td_device')!;
  assert.notEqual(rotated.value, beforeCrash.value);
  // …but the browser "crashed" before storing it: it reopens with the old one.
  await context.addCookies([beforeCrash]);
  await new Promise((resolve) => setTimeout(resolve, 2_500)); // past the grace: without the key this would be reuse
  const reopened = await open();
  assert.equal(await signIn(reopened), 'devices', 'no code after the crash');
  const resynced = (await context.cookies()).find((c) => c.name === 'td_device')!;
  assert.ok(resynced.value !== beforeCrash.value && resynced.value !== rotated.value, 'a fresh device token');
  await reopened.getByText('Bound to a key stored in this browser').first().waitFor({ state: 'visible' });

  const login = await apiCall('POST', '/auth/login', { email, password: PASSWORD });
  const verified = await apiCall('POST', '/auth/mfa/verify', { temporary_token: login.body.data.temporary_token, backup_code: backupCodes.pop() });
  const events: any[] = (await apiCall('GET', '/devices/events?limit=100', undefined, verified.body.data.access_token)).body.data.events;
  const types = events.map((e) => e.type);
  assert.ok(types.includes('token_resynced'), types.join(', '));
  assert.ok(!types.includes('reuse_detected') && !types.includes('revoked'), types.join(', '));
  const devices = (await apiCall('GET', '/devices', undefined, verified.body.data.access_token)).body.data.devices;
  assert.equal(devices.length, 1, 'the device is still trusted');
  assert.deepEqual(problems, []);
});
