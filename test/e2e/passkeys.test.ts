/**
 * Passkeys in a real browser (docs/passkeys.md): Debian's Chromium with the DevTools
 * virtual authenticator (CDP WebAuthn domain: a CTAP2 "internal" platform
 * authenticator with resident keys and user verification), against the real
 * service. WebAuthn needs a secure context and a domain as RP ID, so the page
 * is opened at http://localhost:PORT with PUBLIC_URL saying the same.
 *
 *   node --import tsx --test test/e2e/passkeys.test.ts
 *
 * Flow: sign up → add a passkey on the security page → log out → password,
 * then the passkey at the second step → "Not now" → log out → sign in with the
 * passkey alone → "Trust this device" → log out → password only: no second
 * factor on the trusted device → log out → passkey sign-in on the trusted
 * device: no prompt.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Browser, Locator, Page } from 'playwright-core';
import { ARTIFACTS_DIR, chromiumInstalled, CHROMIUM_PATH, launchChromium, type RunningService, startService } from './helpers.ts';
import { closeAtEnd } from '../helpers/teardown.ts';

const WAIT = 15_000;
const PASSWORD = 'Correct-Horse-Battery-9';

test('passkeys: register, second step, passwordless sign-in, trust, then no factor at all', { timeout: 180_000 }, async (t) => {
  if (!chromiumInstalled()) {
    const message = `Chromium not installed: passkey browser test NOT run (expected ${CHROMIUM_PATH})`;
    console.log(message);
    t.skip(message);
    return;
  }
  mkdirSync(ARTIFACTS_DIR, { recursive: true });
  const service: RunningService = closeAtEnd(t, await startService((port) => ({ PUBLIC_URL: `http://localhost:${port}` }), t.signal), (s) => s.stop());
  const baseURL = service.baseUrl.replace('127.0.0.1', 'localhost');
  const browser: Browser = closeAtEnd(t, await launchChromium(), (b) => b.close());
  const context = await browser.newContext({ baseURL, locale: 'en-US', viewport: { width: 1280, height: 900 } });
  context.setDefaultTimeout(WAIT);
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) problems.push(`console: ${msg.text()}`);
  });

  // The virtual authenticator: a platform authenticator that holds passkeys and verifies the user.
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable', { enableUI: false });
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
  });

  const heading = (name: string | RegExp) => page.getByRole('heading', { level: 1, name });
  const visible = (locator: Locator) => locator.waitFor({ state: 'visible' });
  const flashText = () => page.getByRole('status').first();
  const shot = (name: string) => page.screenshot({ path: join(ARTIFACTS_DIR, `passkeys-${name}.png`), fullPage: true });
  const email = `passkey-${Date.now()}@example.com`;

  const logOut = async () => {
    await page.getByRole('button', { name: 'Log out' }).click();
    await visible(heading('Sign in'));
  };
  const passwordStep = async () => {
    await page.goto('/#/login');
    const form = page.getByRole('region', { name: 'Sign in' });
    await visible(form);
    await form.getByLabel('Email').fill(email);
    await form.getByLabel('Password').fill(PASSWORD);
    await form.getByRole('button', { name: 'Sign in', exact: true }).click();
  };
  const passkeySignIn = async () => {
    await page.goto('/#/login');
    await page.getByRole('button', { name: 'Use a passkey', exact: true }).click();
  };
  const deviceCards = () => page.getByRole('list', { name: 'Devices that skip the code' }).getByRole('listitem');

  try {
    // Sign up and add a passkey.
    await page.goto('/#/signup');
    const signup = page.getByRole('region', { name: 'Create your account' });
    await visible(signup);
    await signup.getByLabel('Email').fill(email);
    await signup.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await signup.getByRole('button', { name: 'Create account' }).click();
    await visible(heading('Security'));
    const card = page.getByRole('region', { name: 'Passkeys and security keys' });
    await visible(card);
    await card.getByLabel(/Name/).fill('This laptop');
    await card.getByRole('button', { name: 'Add a passkey or security key' }).click();
    await visible(card.getByText('This laptop', { exact: true }));
    await visible(page.getByRole('region', { name: 'Two-step verification' }).getByText('On', { exact: true }));
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    assert.equal(credentials.length, 1);
    assert.equal(credentials[0]!.isResidentCredential, true, 'a discoverable credential (passkey)');
    assert.equal(credentials[0]!.rpId, 'localhost');
    await shot('added');

    // Password, then the passkey at the second step (the only factor this account has), then "Not now".
    await logOut();
    await passwordStep();
    const mfa = page.getByRole('region', { name: 'Two-step verification' });
    await visible(mfa);
    assert.equal(await mfa.getByLabel('Authentication code').isVisible(), false, 'no code field: this account has no authenticator app');
    await shot('second-step');
    await mfa.getByRole('button', { name: 'Use a passkey or security key' }).click();
    await visible(heading(/Remember this device/));
    await page.getByRole('button', { name: 'Not now' }).click();
    await visible(heading('Your devices'));
    assert.equal(await deviceCards().count(), 0);

    // Passwordless: the passkey alone, then trust this device.
    await logOut();
    await passkeySignIn();
    await visible(heading(/Remember this device/));
    await shot('trust-prompt');
    await page.getByRole('button', { name: 'Trust this device' }).click();
    await visible(heading('Your devices'));
    await visible(deviceCards().first());
    assert.equal(await deviceCards().count(), 1);

    // On the trusted device the password alone is enough: no second factor.
    await logOut();
    await passwordStep();
    await visible(heading('Your devices'));
    assert.match(await flashText().innerText(), /trusted/i);

    // And a passkey sign-in there asks nothing more either.
    await logOut();
    await passkeySignIn();
    await visible(heading('Your devices'));
    assert.match(await flashText().innerText(), /trusted device/i);
    await shot('trusted');

    const { credentials: after } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    assert.ok(after[0]!.signCount >= 3, `the authenticator signed each time (signCount ${after[0]!.signCount})`);
    assert.deepEqual(problems, []);
  } catch (error) {
    await page.screenshot({ path: join(ARTIFACTS_DIR, 'passkeys-FAILED.png'), fullPage: true }).catch(() => undefined);
    const messages = await page.locator('[role=alert]:not(:empty), [role=status]:not(:empty)').allInnerTexts().catch(() => []);
    if (error instanceof Error) error.message += `\npage: ${page.url()}\nmessages: ${JSON.stringify(messages)}\nproblems: ${JSON.stringify(problems)}\nservice:\n${service.output().split('\n').slice(-30).join('\n')}`;
    throw error;
  }
});
