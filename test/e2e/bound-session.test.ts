/**
 * Bound sessions in a real browser (docs/sessions.md, "Bound sessions"), against the real
 * service, with Debian's Chromium through playwright-core:
 *
 *   node --import tsx --test test/e2e/bound-session.test.ts
 *
 * The service runs with BOUND_ACCESS_TOKEN_TTL_SECONDS=10. Context A signs in
 * through the web app (which binds the session to a non-extractable key in
 * IndexedDB). Its cookies, localStorage and sessionStorage are copied into:
 * - a fresh context B (no key): once the copied access token expires, B is
 *   asked to sign in; A keeps refreshing silently (reload, a second tab);
 * - a context C that holds its own session key (it signed in before, as
 *   another account): its refresh signs with the wrong key, so the session
 *   ends (`session_proof_failed` event) and A, at its next refresh, is told
 *   "Signed out after a suspected copy of this browser's cookie".
 * Screenshots of A's signed-out page and of the sessions list go to artifacts/e2e/.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { ARTIFACTS_DIR, chromiumInstalled, CHROMIUM_PATH, launchChromium, startService, type RunningService } from './helpers.ts';
import { closeAtEnd } from '../helpers/teardown.ts';

const WAIT = 20_000;
const PASSWORD = 'Correct-Horse-Battery-9';
const TTL = 10;

test('a copied session (cookies + storage) is asked to sign in once its short access token expires; the real browser is not', { timeout: 240_000 }, async (t) => {
  if (!chromiumInstalled()) {
    const message = `Chromium not installed: browser test NOT run (expected ${CHROMIUM_PATH})`;
    t.skip(message);
    return;
  }
  const service: RunningService = closeAtEnd(t, await startService({ BOUND_ACCESS_TOKEN_TTL_SECONDS: String(TTL) }, t.signal), (s) => s.stop());
  const browser: Browser = closeAtEnd(t, await launchChromium(), (b) => b.close());
  const apiCall = async (method: string, path: string, body?: unknown, token?: string) => {
    const res = await fetch(`${service.baseUrl}/api/v1${path}`, {
      method,
      headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as any };
  };
  const email = `e2e-bound-${Date.now()}@example.com`;
  const thiefEmail = `e2e-thief-${Date.now()}@example.com`;
  for (const address of [email, thiefEmail]) assert.equal((await apiCall('POST', '/auth/signup', { email: address, password: PASSWORD })).status, 201);

  const problems: string[] = [];
  const viewport = { width: 1280, height: 900 };
  const newContext = async (): Promise<[BrowserContext, Page]> => {
    const context = await browser.newContext({ baseURL: service.baseUrl, locale: 'en-US', timezoneId: 'Europe/Paris', viewport });
    context.setDefaultTimeout(WAIT);
    const page = await context.newPage();
    page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));
    return [context, page];
  };
  const devicesHeading = (page: Page) => page.getByRole('heading', { level: 1, name: 'Your devices' });
  const signInHeading = (page: Page) => page.getByRole('region', { name: 'Sign in' });
  const signIn = async (page: Page, address: string) => {
    await page.goto('/#/login');
    const form = signInHeading(page);
    await form.waitFor({ state: 'visible' });
    await form.getByLabel('Email').fill(address);
    await form.getByLabel('Password').fill(PASSWORD);
    await form.getByRole('button', { name: 'Sign in' }).click();
    await devicesHeading(page).waitFor({ state: 'visible' });
  };
  /** Cookies and both storages of a page, as an infostealer would take them. */
  const steal = async (context: BrowserContext, page: Page) => ({
    cookies: await context.cookies(),
    local: await page.evaluate(() => Object.fromEntries(Object.entries(localStorage))),
    session: await page.evaluate(() => Object.fromEntries(Object.entries(sessionStorage))),
  });
  const plant = async (context: BrowserContext, page: Page, loot: Awaited<ReturnType<typeof steal>>) => {
    await context.clearCookies();
    await context.addCookies(loot.cookies);
    await page.evaluate(
      ([local, session]) => {
        localStorage.clear();
        sessionStorage.clear();
        for (const [k, v] of Object.entries(local)) localStorage.setItem(k, v);
        for (const [k, v] of Object.entries(session)) sessionStorage.setItem(k, v);
      },
      [loot.local, loot.session] as const,
    );
  };
  /** Waits past the access token's life, then makes the page call the API (the devices page reloads its list). */
  const afterExpiry = async (page: Page) => {
    await page.waitForTimeout((TTL + 2) * 1000);
    await page.reload();
  };
  const sessionBound = async (page: Page) =>
    page.evaluate(
      () =>
        new Promise<{ extractable: boolean | null }>((resolve, reject) => {
          const open = indexedDB.open('trusted-devices');
          open.onerror = () => reject(open.error);
          open.onsuccess = () => {
            const get = open.result.transaction('device-keys').objectStore('device-keys').get('session:current');
            get.onsuccess = () => {
              resolve({ extractable: (get.result as CryptoKeyPair | undefined)?.privateKey.extractable ?? null });
              open.result.close();
            };
          };
        }),
    );

  // A: the real browser.
  const [contextA, pageA] = await newContext();
  const refreshesA: string[] = [];
  pageA.on('response', async (r) => {
    if (r.url().includes('/auth/')) refreshesA.push(`${r.url().split('/api/v1')[1]} ${r.status()} ${(await r.text().catch(() => '')).slice(0, 200)}`);
  });
  await signIn(pageA, email);
  assert.deepEqual(await sessionBound(pageA), { extractable: false }, 'a non-extractable session key in IndexedDB');
  await pageA.getByText('bound to its browser’s key').first().waitFor({ state: 'visible' });
  await pageA.screenshot({ path: join(ARTIFACTS_DIR, 'bound-session-list.png'), fullPage: true });
  const loot = await steal(contextA, pageA);
  assert.ok(loot.cookies.some((c) => c.name === 'td_refresh'), 'A holds the refresh cookie');

  // B: a fresh profile with the loot and no key.
  const [contextB, pageB] = await newContext();
  await pageB.goto('/#/login');
  await plant(contextB, pageB, loot);
  await pageB.goto('/#/devices');
  await pageB.reload();
  await devicesHeading(pageB).waitFor({ state: 'visible' }); // the copied access token still works, for at most TTL seconds
  await afterExpiry(pageB);
  await signInHeading(pageB).waitFor({ state: 'visible' });
  // A, after the same wait: refreshed silently (a reload, and a second tab from the cookie).
  await afterExpiry(pageA);
  await devicesHeading(pageA).waitFor({ state: 'visible' });
  const tabA = await contextA.newPage();
  tabA.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));
  await tabA.goto('/#/devices');
  await devicesHeading(tabA).waitFor({ state: 'visible' });
  assert.equal(await signInHeading(pageA).isVisible(), false, 'the real browser is not asked to sign in');

  // C: a thief's profile that holds a session key of its own.
  const [contextC, pageC] = await newContext();
  await signIn(pageC, thiefEmail);
  const lootNow = await steal(contextA, tabA);
  await plant(contextC, pageC, lootNow);
  await pageC.goto('/#/devices');
  await afterExpiry(pageC);
  await signInHeading(pageC).waitFor({ state: 'visible' });
  // The session ended everywhere: A is told why at its next refresh.
  await afterExpiry(pageA);
  try {
    await pageA.getByText('Signed out after a suspected copy of this browser’s cookie.').waitFor({ state: 'visible' });
  } catch (error) {
    await pageA.screenshot({ path: join(ARTIFACTS_DIR, 'bound-session-failure.png'), fullPage: true });
    const probe = await apiCall('POST', '/auth/login', { email, password: PASSWORD });
    const seen = await apiCall('GET', '/devices/events?limit=100', undefined, probe.body.data.access_token);
    throw new Error(`A shows: ${await pageA.locator('#flash').innerText()} | events: ${seen.body.data.events.map((e: any) => `${e.type}/${e.cause}`).join(', ')} | C: ${await pageC.locator('#flash').innerText()} | A's auth calls: ${refreshesA.slice(-4).join(' ;; ')}`, { cause: error });
  }
  await pageA.screenshot({ path: join(ARTIFACTS_DIR, 'bound-session-signed-out.png'), fullPage: true });
  const other = await apiCall('POST', '/auth/login', { email, password: PASSWORD });
  const events = await apiCall('GET', '/devices/events?limit=100', undefined, other.body.data.access_token);
  assert.ok(events.body.data.events.some((e: any) => e.type === 'session_proof_failed'), `session_proof_failed: ${events.body.data.events.map((e: any) => e.type).join(', ')}`);
  assert.deepEqual(problems, []);
});
