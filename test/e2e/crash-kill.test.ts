/**
 * A crash is not theft (docs/trust-model.md), with a real crash: Debian's
 * Chromium on a persistent profile is killed with SIGKILL right after a
 * trusted sign-in's answer arrived, and the profile is reopened.
 *
 *   node --import tsx --test test/e2e/crash-kill.test.ts
 *
 * Where the crash falls: between the service's answer and the browser's
 * reading of it. The browser's sign-in request is held (page.route), the
 * test sends that same request to the service itself (the page's headers,
 * its device proof and the profile's cookies), so the service rotates the
 * token and answers with the new td_device, and then the browser is killed
 * with SIGKILL before it ever sees that answer. An earlier version killed the
 * browser a millisecond after the answer reached it, trusting Chromium to
 * write cookies to its store (Default/Cookies) only in batches; on a fresh
 * clone in CI it once had the rotated cookie on disk 0.9 ms after the
 * answer, so that crash point is not reproducible. The test still does not
 * take the loss for granted: it compares the profile's stored td_device row
 * before and after (the encrypted value is deterministic for one value, so
 * equal bytes mean the same token), checks that the reopened browser holds
 * the OLD token, and fails with a message saying the crash was not
 * reproduced otherwise. (CRASH_KILL_DELAY_MS > 0 keeps the old crash point,
 * delayed, to check that message.)
 *
 * Then: the reopened profile signs in without a code (a retired token with
 * its own key's proof), a `token_resynced` event exists, nothing is revoked,
 * and no "its key was copied" alert is mailed (SMTP captured in this process).
 * Skipped without /usr/bin/chromium.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import type { BrowserContext, Page } from 'playwright-core';
import { TestSmtpServer } from '../helpers/mail.ts';
import { closeAtEnd } from '../helpers/teardown.ts';
import { chromiumInstalled, CHROMIUM_PATH, launchPersistentChromium, profileProcesses, startService, TotpCodes, type RunningService } from './helpers.ts';

const WAIT = 15_000;
const PASSWORD = 'Correct-Horse-Battery-9';
const GRACE_SECONDS = 2;
const REUSE_ALERT = 'A trusted device was revoked: its key was copied';
/** Only to check this test: CRASH_KILL_DELAY_MS=35000 kills after Chromium's cookie flush, and the test must say the crash was not reproduced. */
const KILL_DELAY_MS = Number(process.env.CRASH_KILL_DELAY_MS ?? 0);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The td_device row of the profile's cookie store, as on disk (read-only; the browser is not running). */
function storedDeviceCookie(userDataDir: string): { value: string; lastUpdate: string } | undefined {
  const file = join(userDataDir, 'Default', 'Cookies');
  if (!existsSync(file)) return undefined;
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const row = db.prepare("SELECT hex(encrypted_value) AS enc, value, CAST(last_update_utc AS TEXT) AS lu FROM cookies WHERE name = 'td_device'").get() as
      | { enc: string; value: string; lu: string }
      | undefined;
    return row && { value: row.value || row.enc, lastUpdate: row.lu };
  } finally {
    db.close();
  }
}

test('Chromium killed right after a trusted sign-in: the reopened profile signs in without a code, resynced, no alarm', { timeout: 240_000 }, async (t) => {
  if (!chromiumInstalled()) {
    t.skip(`Chromium not installed: browser test NOT run (expected ${CHROMIUM_PATH})`);
    return;
  }
  const smtp = closeAtEnd(t, await new TestSmtpServer().start(), (s) => s.stop());
  const service: RunningService = closeAtEnd(
    t,
    await startService({ DEVICE_TOKEN_REUSE_GRACE_SECONDS: String(GRACE_SECONDS), SMTP_URL: smtp.url }, t.signal),
    (s) => s.stop(),
  );
  // The profile goes last: a browser still open on it (a failed run) is closed first, or it would write into the removed directory.
  const contexts: BrowserContext[] = [];
  const profile = closeAtEnd(t, mkdtempSync(join(tmpdir(), 'td-e2e-profile-')), async (dir) => {
    for (const context of contexts) await context.close().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });
  const api = async (method: string, path: string, body?: unknown, token?: string) => {
    const res = await fetch(`${service.baseUrl}/api/v1${path}`, {
      method,
      headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (res.status === 204 ? null : await res.json()) as any };
  };
  const email = `e2e-kill-${Date.now()}@example.com`;
  assert.equal((await api('POST', '/auth/signup', { email, password: PASSWORD })).status, 201);
  const first = await api('POST', '/auth/login', { email, password: PASSWORD });
  const setup = await api('POST', '/mfa/totp/setup', {}, first.body.data.access_token);
  const enabled = await api('POST', '/mfa/totp/verify', { code: await new TotpCodes(setup.body.data.secret).next() }, first.body.data.access_token);
  const backupCodes: string[] = [...enabled.body.data.backup_codes];
  const eventTypes = async (): Promise<string[]> => {
    const login = await api('POST', '/auth/login', { email, password: PASSWORD });
    const verified = await api('POST', '/auth/mfa/verify', { temporary_token: login.body.data.temporary_token, backup_code: backupCodes.pop() });
    const events: any[] = (await api('GET', '/devices/events?limit=100', undefined, verified.body.data.access_token)).body.data.events;
    return events.map((e) => e.type);
  };

  const problems: string[] = [];
  const launch = async (): Promise<{ context: BrowserContext; page: Page }> => {
    const context = await launchPersistentChromium(profile, { baseURL: service.baseUrl });
    contexts.push(context);
    closeAtEnd(t, context, (c) => c.close());
    context.setDefaultTimeout(WAIT);
    const page = context.pages()[0] ?? (await context.newPage());
    page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));
    return { context, page };
  };
  const submitSignIn = async (page: Page) => {
    await page.goto('/#/login');
    const form = page.getByRole('region', { name: 'Sign in' });
    await form.getByLabel('Email').fill(email);
    await form.getByLabel('Password').fill(PASSWORD);
    await form.getByRole('button', { name: 'Sign in' }).click();
  };
  const outcome = async (page: Page): Promise<'mfa' | 'devices'> => {
    const mfa = page.getByRole('region', { name: 'Two-step verification' });
    const devices = page.getByRole('heading', { level: 1, name: 'Your devices' });
    await Promise.race([mfa.waitFor({ state: 'visible' }), devices.waitFor({ state: 'visible' })]);
    return (await mfa.isVisible()) ? 'mfa' : 'devices';
  };
  const deviceCookie = async (context: BrowserContext) => (await context.cookies()).find((c) => c.name === 'td_device');

  // 1. Trust this browser (a second factor, "Remember this device"), sign out, and close cleanly: the profile stores td_device and the device key.
  {
    const { context, page } = await launch();
    await submitSignIn(page);
    assert.equal(await outcome(page), 'mfa');
    const mfa = page.getByRole('region', { name: 'Two-step verification' });
    await mfa.getByRole('button', { name: 'Use a backup code instead' }).click();
    await mfa.getByLabel('Backup code').fill(backupCodes.pop()!);
    await mfa.getByRole('button', { name: 'Verify' }).click();
    await page.locator('#trust-yes').click();
    await page.getByRole('heading', { level: 1, name: 'Your devices' }).waitFor({ state: 'visible' });
    await page.locator('#logout-button').click();
    await page.getByRole('region', { name: 'Sign in' }).waitFor({ state: 'visible' });
    await context.close();
  }
  const storedBefore = storedDeviceCookie(profile);
  assert.ok(storedBefore, 'a clean close wrote td_device to the profile');

  // 2. A fresh browser on the profile: a trusted sign-in, killed as soon as its answer arrives.
  let oldToken: string;
  let killedAfterMs = Number.NaN;
  let crashedAt = 0;
  {
    const { context, page } = await launch();
    oldToken = (await deviceCookie(context))!.value;
    assert.ok(oldToken, 'the profile reopened with its device cookie');
    const { browser: pid, all } = profileProcesses(profile);
    assert.ok(pid !== undefined, `the browser process on ${profile} was not found`);
    await page.goto('/#/login');
    const userAgent = await page.evaluate(() => navigator.userAgent);
    let seenAt = 0;
    let rotatedInAnswer = false;
    const killNow = () => {
      process.kill(pid, 'SIGKILL');
      killedAfterMs = performance.now() - seenAt;
      crashedAt = Date.now();
    };
    if (KILL_DELAY_MS === 0) {
      await page.route('**/api/v1/auth/login', async (route) => {
        const request = route.request();
        if (seenAt !== 0 || request.method() !== 'POST') return route.continue();
        const headers: Record<string, string> = { ...request.headers(), 'user-agent': userAgent };
        for (const name of ['host', 'content-length', 'connection', 'keep-alive', 'transfer-encoding', 'cookie']) delete headers[name];
        headers.cookie = (await context.cookies(request.url())).map((c) => `${c.name}=${c.value}`).join('; ');
        // The browser's own sign-in (its device proof, its cookies) reaches the service; its answer never reaches the browser.
        const answer = await fetch(request.url(), { method: 'POST', headers, body: request.postData() ?? undefined });
        rotatedInAnswer = answer.status === 200 && answer.headers.getSetCookie().some((c) => c.startsWith('td_device=') && !c.startsWith('td_device=;'));
        seenAt = performance.now();
        killNow();
      });
    }
    page.on('response', (response) => {
      if (KILL_DELAY_MS === 0) return;
      if (seenAt !== 0 || response.request().method() !== 'POST' || !response.url().endsWith('/api/v1/auth/login')) return;
      // At this point the service has rotated the token and the browser has the answer's Set-Cookie; nothing awaited before the kill.
      seenAt = performance.now();
      setTimeout(killNow, KILL_DELAY_MS);
    });
    const form = page.getByRole('region', { name: 'Sign in' });
    await form.getByLabel('Email').fill(email);
    await form.getByLabel('Password').fill(PASSWORD);
    await form
      .getByRole('button', { name: 'Sign in' })
      .click()
      .catch(() => undefined); // the browser may die before the click's own round trip returns
    for (let i = 0; i < 100 + KILL_DELAY_MS / 50 && crashedAt === 0; i++) await sleep(50);
    assert.ok(crashedAt > 0, 'the sign-in answer arrived and the browser was killed');
    if (KILL_DELAY_MS === 0) assert.ok(rotatedInAnswer, 'the service answered the held sign-in with a rotated td_device');
    // Every process of that browser ends with it (children notice their parent's pipe closing); stragglers are ours, by pid.
    for (let i = 0; i < 100 && all.some((p) => profileProcesses(profile).all.includes(p)); i++) await sleep(100);
    for (const p of profileProcesses(profile).all) {
      if (all.includes(p)) process.kill(p, 'SIGKILL');
    }
    await context.close().catch(() => undefined);
  }
  t.diagnostic(`browser killed ${killedAfterMs.toFixed(2)} ms after the service's answer to its sign-in reached the test`);
  const typesAfterCrash = await eventTypes();
  assert.ok(typesAfterCrash.filter((x) => x === 'trust_used').length >= 1, `the service rotated the token at the killed sign-in: ${typesAfterCrash.join(', ')}`);

  // 3. What the crash left on disk: the old token, or the test says the crash was not reproduced.
  const storedAfter = storedDeviceCookie(profile);
  assert.ok(storedAfter, 'td_device is still in the profile');
  assert.deepEqual(
    storedAfter,
    storedBefore,
    'CRASH NOT REPRODUCED: Chromium wrote the rotated td_device to its cookie store before the kill, so this run does not exercise the resync',
  );

  // 4. Reopen the profile, past the reuse grace (without the key this would be a copy).
  const wait = crashedAt + GRACE_SECONDS * 1000 + 500 - Date.now();
  if (wait > 0) await sleep(wait);
  {
    const { context, page } = await launch();
    const reopened = await deviceCookie(context);
    assert.equal(reopened?.value, oldToken, 'CRASH NOT REPRODUCED: the reopened browser does not hold the pre-rotation device token');
    assert.equal((await context.cookies()).find((c) => c.name === 'td_refresh'), undefined, 'the killed sign-in’s refresh cookie was lost too');
    await submitSignIn(page);
    assert.equal(await outcome(page), 'devices', 'no code after the crash');
    const resynced = await deviceCookie(context);
    assert.ok(resynced && resynced.value !== oldToken, 'a fresh device token');
    await page.getByText('Bound to a key stored in this browser').first().waitFor({ state: 'visible' });
    await context.close();
  }

  const types = await eventTypes();
  assert.ok(types.includes('token_resynced'), types.join(', '));
  assert.ok(!types.includes('reuse_detected') && !types.includes('revoked'), types.join(', '));
  const signedIn = await api('POST', '/auth/login', { email, password: PASSWORD });
  const verified = await api('POST', '/auth/mfa/verify', { temporary_token: signedIn.body.data.temporary_token, backup_code: backupCodes.pop() });
  const devices = (await api('GET', '/devices', undefined, verified.body.data.access_token)).body.data.devices;
  assert.equal(devices.length, 1, 'the device is still trusted');

  // No alarm mail. A reset mail requested now is a marker: the outbox sends in order, so an alert queued at the sign-in would have come first.
  assert.equal((await api('POST', '/auth/password/forgot', { email })).status < 300, true);
  for (let i = 0; i < 150 && !smtp.to(email).some((m) => /reset your password/i.test(m.subject)); i++) await sleep(100);
  await sleep(1_000); // sent in parallel batches: an earlier alert could land just after the marker
  const subjects = smtp.to(email).map((m) => m.subject);
  assert.ok(subjects.some((s) => /reset your password/i.test(s)), `the marker mail arrived: ${subjects.join(' | ')}`);
  assert.ok(!subjects.includes(REUSE_ALERT), `no "key was copied" alert: ${subjects.join(' | ')}`);
  assert.deepEqual(problems, []);
});
