/**
 * Device-bound trust in a real browser (docs/trust-model.md: a copied cookie is not enough), against
 * the real service, with Debian's Chromium through playwright-core.
 *
 *   node --import tsx --test test/e2e/device-key.test.ts
 *
 * Trust the device in context A (the web app makes a non-extractable key and
 * keeps it in IndexedDB through the TypeScript client's key store); copy A's cookies into a fresh context B with the
 * same user agent and viewport → the second factor is asked, and A's device
 * history shows `proof_failed`; A still signs in without a code; after A's
 * IndexedDB is cleared, A is asked for a code too. A context without
 * IndexedDB falls back to a plain trusted device. The account is set up
 * through the API and the browser answers MFA with backup codes, so no step
 * waits for a new TOTP time step.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { chromiumInstalled, CHROMIUM_PATH, launchChromium, startService, TotpCodes, type RunningService } from './helpers.ts';
import { closeAtEnd } from '../helpers/teardown.ts';

const WAIT = 15_000;
const PASSWORD = 'Correct-Horse-Battery-9';

test('a copied device cookie does not skip MFA without the browser key', { timeout: 180_000 }, async (t) => {
  if (!chromiumInstalled()) {
    const message = `Chromium not installed: browser test NOT run (expected ${CHROMIUM_PATH})`;
    console.log(message);
    t.skip(message);
    return;
  }
  const service: RunningService = closeAtEnd(t, await startService({}, t.signal), (s) => s.stop());
  const browser: Browser = closeAtEnd(t, await launchChromium(), (b) => b.close());

  const apiCall = async (method: string, path: string, body?: unknown, token?: string) => {
    const res = await fetch(`${service.baseUrl}/api/v1${path}`, {
      method,
      headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as any };
  };

  // The account: sign-up, TOTP on, backup codes (API).
  const email = `e2e-key-${Date.now()}@example.com`;
  assert.equal((await apiCall('POST', '/auth/signup', { email, password: PASSWORD })).status, 201);
  const first = await apiCall('POST', '/auth/login', { email, password: PASSWORD });
  const setup = await apiCall('POST', '/mfa/totp/setup', {}, first.body.data.access_token);
  const totp = new TotpCodes(setup.body.data.secret);
  const enabled = await apiCall('POST', '/mfa/totp/verify', { code: await totp.next() }, first.body.data.access_token);
  assert.equal(enabled.status, 200, JSON.stringify(enabled.body));
  const backupCodes: string[] = [...enabled.body.data.backup_codes];

  /** The device's history, read through a fresh API session (MFA with a backup code). */
  const history = async () => {
    const login = await apiCall('POST', '/auth/login', { email, password: PASSWORD });
    const verified = await apiCall('POST', '/auth/mfa/verify', { temporary_token: login.body.data.temporary_token, backup_code: backupCodes.pop() });
    assert.equal(verified.status, 200, JSON.stringify(verified.body));
    const events = await apiCall('GET', '/devices/events?limit=100', undefined, verified.body.data.access_token);
    const devices = await apiCall('GET', '/devices', undefined, verified.body.data.access_token);
    return { events: events.body.data.events as any[], devices: devices.body.data.devices as any[] };
  };

  const problems: string[] = [];
  let userAgent = '';
  const viewport = { width: 1280, height: 900 };
  const newContext = async (): Promise<[BrowserContext, Page]> => {
    const context = await browser.newContext({ baseURL: service.baseUrl, locale: 'en-US', timezoneId: 'Europe/Paris', viewport, ...(userAgent ? { userAgent } : {}) });
    context.setDefaultTimeout(WAIT);
    const page = await context.newPage();
    page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));
    return [context, page];
  };
  const region = (page: Page, name: string) => page.getByRole('region', { name });
  const signIn = async (page: Page) => {
    await page.goto('/#/login');
    const form = region(page, 'Sign in');
    await form.waitFor({ state: 'visible' });
    await form.getByLabel('Email').fill(email);
    await form.getByLabel('Password').fill(PASSWORD);
    await form.getByRole('button', { name: 'Sign in' }).click();
  };
  /** After "Sign in": which view the app went to. */
  const outcome = async (page: Page): Promise<'mfa' | 'devices'> => {
    const mfa = region(page, 'Two-step verification');
    const devices = page.getByRole('heading', { level: 1, name: 'Your devices' });
    await Promise.race([mfa.waitFor({ state: 'visible' }), devices.waitFor({ state: 'visible' })]);
    return (await mfa.isVisible()) ? 'mfa' : 'devices';
  };
  const freshTab = async (context: BrowserContext) => {
    // A new tab shares the cookies and IndexedDB. The web app would sign it in from the refresh
    // cookie (one sign-in for every tab): drop that cookie so this tab signs in afresh.
    await context.clearCookies({ name: 'td_refresh' });
    const page = await context.newPage();
    page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));
    return page;
  };

  // Context A: sign in, answer MFA, trust this device.
  const [contextA, pageA] = await newContext();
  userAgent = await pageA.evaluate(() => navigator.userAgent);
  await signIn(pageA);
  assert.equal(await outcome(pageA), 'mfa');
  const mfa = region(pageA, 'Two-step verification');
  await mfa.getByRole('button', { name: 'Use a backup code instead' }).click();
  await mfa.getByLabel('Backup code').fill(backupCodes.pop()!);
  await mfa.getByRole('button', { name: 'Verify' }).click();
  await pageA.locator('#trust-yes').click();
  await pageA.getByRole('heading', { level: 1, name: 'Your devices' }).waitFor({ state: 'visible' });
  await pageA.getByText('Bound to a key stored in this browser').first().waitFor({ state: 'visible' });
  const stored = await pageA.evaluate(
    () =>
      new Promise<{ keys: IDBValidKey[]; extractable: boolean | null }>((resolve, reject) => {
        const open = indexedDB.open('trusted-devices');
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          const store = open.result.transaction('device-keys').objectStore('device-keys');
          const keys = store.getAllKeys();
          const all = store.getAll();
          all.onsuccess = () => {
            const pairs = all.result as CryptoKeyPair[];
            resolve({ keys: keys.result, extractable: pairs[0]?.privateKey.extractable ?? null });
            open.result.close();
          };
        };
      }),
  );
  // Where the web app has always kept it (database, store, `key:<email>`): keys stored by earlier versions stay usable.
  assert.deepEqual(stored, { keys: [`key:${email}`], extractable: false }, 'one key pair, under the account, private key not extractable');
  const afterTrust = await history();
  assert.equal(afterTrust.devices.length, 1);
  assert.equal(afterTrust.devices[0].key_bound, true);
  const deviceId: string = afterTrust.devices[0].id;

  // Context B: a fresh profile with A's cookies, the same user agent and viewport.
  const cookies = await contextA.cookies();
  assert.ok(cookies.some((c) => c.name === 'td_device'), 'A holds the device cookie');
  const [contextB, pageB] = await newContext();
  await contextB.addCookies(cookies);
  await signIn(pageB);
  assert.equal(await outcome(pageB), 'mfa', 'the copied cookie alone must not skip the second factor');
  const afterCopy = await history();
  assert.ok(
    afterCopy.events.some((e) => e.type === 'proof_failed' && e.device_id === deviceId),
    `proof_failed in A's history: ${afterCopy.events.map((e) => e.type).join(', ')}`,
  );
  assert.equal(afterCopy.devices.find((d) => d.id === deviceId)?.key_bound, true, 'A is still trusted');

  // A still signs in without a code (its key signs the challenge; its token rotates).
  // A new page reads the key back from IndexedDB (the client's store, through the generated module), as after a reload.
  const tabA = await freshTab(contextA);
  const loginA = tabA.waitForRequest((request) => request.url().endsWith('/api/v1/auth/login'));
  await signIn(tabA);
  assert.equal(await outcome(tabA), 'devices', 'the real browser still skips the code');
  assert.match((await loginA).headers()['x-device-proof'] ?? '', /^tdc_[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{86}$/, 'with the proof');
  const rotated = (await contextA.cookies()).find((c) => c.name === 'td_device')?.value;
  assert.ok(rotated && rotated !== cookies.find((c) => c.name === 'td_device')?.value, 'the device cookie was rotated');

  // Clear A's IndexedDB: no key, so a code is asked.
  const tabA2 = await freshTab(contextA);
  await tabA2.goto('/#/login');
  await tabA2.evaluate(
    () =>
      new Promise<void>((resolve, reject) => {
        const request = indexedDB.deleteDatabase('trusted-devices');
        request.onsuccess = () => resolve();
        request.onerror = () => reject(request.error);
      }),
  );
  await signIn(tabA2);
  assert.equal(await outcome(tabA2), 'mfa', 'without its key the browser is asked for a code');

  // Fallback: a browser without IndexedDB trusts the plain way, and says so.
  const [contextC, pageC] = await newContext();
  await contextC.addInitScript(() => {
    Object.defineProperty(window, 'indexedDB', { value: undefined, configurable: true });
  });
  await signIn(pageC);
  assert.equal(await outcome(pageC), 'mfa');
  const mfaC = region(pageC, 'Two-step verification');
  await mfaC.getByRole('button', { name: 'Use a backup code instead' }).click();
  await mfaC.getByLabel('Backup code').fill(backupCodes.pop()!);
  await mfaC.getByRole('button', { name: 'Verify' }).click();
  await pageC.locator('#trust-yes').click();
  await pageC.getByRole('heading', { level: 1, name: 'Your devices' }).waitFor({ state: 'visible' });
  await pageC.getByText('Not bound to a key (a copied cookie could be used)').first().waitFor({ state: 'visible' });
  const afterPlain = await history();
  assert.equal(afterPlain.devices.filter((d) => d.key_bound === false).length, 1, 'one plain device');
  const tabC = await freshTab(contextC);
  await signIn(tabC);
  assert.equal(await outcome(tabC), 'devices', 'a plain trusted device still skips the code');

  assert.deepEqual(problems, []);
});
