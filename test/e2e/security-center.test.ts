/**
 * The security center in a real browser (docs/security-center.md): the code
 * prompt says why a code is asked (a new browser; then, from the other side
 * of the world minutes later, an unusual location even on the trusted
 * device), and "Your devices" lists this device first with its approximate
 * location and the DB-IP attribution. The service runs behind TRUST_PROXY
 * 127.0.0.1 and the browser context sends X-Forwarded-For, so its requests
 * come from public addresses of the shipped database (193.0.6.139 Amsterdam,
 * 200.160.2.3 São Paulo). axe-core: no violation of any impact; screenshots
 * at 1280x800 and 390x844 in artifacts/e2e/.
 *
 *   node --import tsx --test test/e2e/security-center.test.ts
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { ARTIFACTS_DIR, chromiumInstalled, CHROMIUM_PATH, launchChromium, startService, TotpCodes, type RunningService } from './helpers.ts';
import { closeAtEnd } from '../helpers/teardown.ts';

const PASSWORD = 'Correct-Horse-Battery-9';
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

test('security center: the reason on the code prompt, this device first with its location', { timeout: 180_000 }, async (t) => {
  if (!chromiumInstalled()) {
    t.skip(`Chromium not installed: browser test NOT run (expected ${CHROMIUM_PATH})`);
    return;
  }
  mkdirSync(ARTIFACTS_DIR, { recursive: true });
  const service: RunningService = closeAtEnd(t, await startService({ TRUST_PROXY: '127.0.0.1' }, t.signal), (s) => s.stop());
  const browser: Browser = closeAtEnd(t, await launchChromium(), (b) => b.close());

  // The account, with TOTP on, made through the API.
  const email = `center-${Date.now()}@example.com`;
  const api = async (path: string, body: unknown, token?: string) => {
    const res = await fetch(`${service.baseUrl}/api/v1${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-forwarded-for': '193.0.6.139', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
    });
    const json = (await res.json()) as any;
    assert.ok(res.ok, JSON.stringify(json));
    return json.data;
  };
  await api('/auth/signup', { email, password: PASSWORD });
  const first = await api('/auth/login', { email, password: PASSWORD });
  const setup = await api('/mfa/totp/setup', {}, first.access_token);
  const codes = new TotpCodes(setup.secret);
  await api('/mfa/totp/verify', { code: await codes.next() }, first.access_token);

  const axeFindings: string[] = [];
  const axeCheck = async (page: Page, state: string) => {
    if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(AXE_SOURCE);
    await page.waitForTimeout(250);
    const violations = await page.evaluate(async () => {
      const result = await (window as any).axe.run(document, { resultTypes: ['violations'] });
      return (result.violations as any[]).map((v) => `${v.id} [${v.impact}] ${v.help}: ${v.nodes.map((n: any) => n.target.join(' ')).slice(0, 4).join(', ')}`);
    });
    for (const v of violations) axeFindings.push(`${state}: ${v}`);
  };
  const shot = async (page: Page, name: string) => {
    const size = page.viewportSize()!;
    await page.screenshot({ path: join(ARTIFACTS_DIR, `center-${name}.png`), fullPage: true });
    await axeCheck(page, name);
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: join(ARTIFACTS_DIR, `center-${name}-390.png`), fullPage: true });
    await axeCheck(page, `${name} (390 px)`);
    await page.setViewportSize(size);
  };

  const context = await browser.newContext({ baseURL: service.baseUrl, locale: 'en-US', timezoneId: 'Europe/Amsterdam', viewport: { width: 1280, height: 800 }, extraHTTPHeaders: { 'x-forwarded-for': '193.0.6.139' } });
  context.setDefaultTimeout(15_000);
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(error.message));

  const signIn = async () => {
    await page.goto('/#/login');
    await page.locator('#login-email').fill(email);
    await page.locator('#login-password').fill(PASSWORD);
    await page.locator('#login-form button[type=submit]').click();
    await page.getByRole('heading', { level: 1, name: 'Two-step verification' }).waitFor();
  };
  const enterCode = async () => {
    await page.locator('#mfa-code').fill(await codes.next());
    await page.locator('#mfa-form button[type=submit]').click();
  };

  // 1. A new browser: the prompt says so.
  await signIn();
  await assert.doesNotReject(page.getByText('this browser isn’t one of your trusted devices').waitFor());
  await shot(page, 'code-prompt-new-device');
  await enterCode();
  await page.getByRole('button', { name: 'Trust this device' }).click();
  await page.getByRole('heading', { level: 1, name: 'Your devices' }).waitFor();

  // 2. "Your devices": this device first, with its location and the attribution.
  const firstCard = page.locator('#device-list > li').first();
  await firstCard.getByText('This device').waitFor();
  assert.match(await firstCard.innerText(), /Amsterdam.*North Holland, Netherlands/);
  assert.match(await firstCard.innerText(), /Bound to a key stored in this browser|Not bound to a key/);
  const firstSession = page.locator('#session-groups .session-row').first();
  assert.match(await firstSession.innerText(), /This session/);
  assert.match(await firstSession.innerText(), /Netherlands/);
  await page.getByRole('link', { name: 'IP Geolocation by DB-IP' }).waitFor();
  await shot(page, 'devices-with-location');

  // 3. Minutes later from São Paulo on the same, trusted browser: the code is asked, and the prompt says why.
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.getByRole('heading', { level: 1, name: 'Sign in' }).waitFor();
  await context.setExtraHTTPHeaders({ 'x-forwarded-for': '200.160.2.3' });
  await signIn();
  await page.getByText('comes from far away from your previous one').waitFor();
  await shot(page, 'code-prompt-unusual-location');
  await enterCode();
  await page.getByRole('heading', { level: 1, name: 'Your devices' }).waitFor().catch(async (error: unknown) => {
    await page.screenshot({ path: join(ARTIFACTS_DIR, 'center-failure.png'), fullPage: true });
    throw error;
  });
  await page.locator('#event-list').getByText(/unusual location/).first().waitFor();
  await page.locator('#event-list').getByText(/Brazil/).first().waitFor();
  await shot(page, 'history-unusual-location');

  assert.deepEqual(axeFindings, [], axeFindings.join('\n'));
  assert.deepEqual(problems, []);
  await context.close();
});
