/**
 * Step-up in Chromium (docs/step-up.md): on a session where a trusted device
 * stood in for the second factor, turning two-step verification off asks
 * for a code inline, under the form; a wrong code is said there; the right
 * one steps up and the action is retried and succeeds. Screenshots of the
 * prompt go to artifacts/e2e/.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Locator, Page } from 'playwright-core';
import { ARTIFACTS_DIR, CHROMIUM_PATH, chromiumInstalled, launchChromium, startService, TotpCodes } from './helpers.ts';
import { closeAtEnd } from '../helpers/teardown.ts';

const WAIT = 15_000;
const PASSWORD = 'Correct-Horse-Battery-9';

test('turning two-step verification off on a trusted device asks for a code inline, and succeeds after it', { timeout: 180_000 }, async (t) => {
  if (!chromiumInstalled()) {
    t.skip(`Chromium not installed: browser test NOT run (expected ${CHROMIUM_PATH})`);
    return;
  }
  mkdirSync(ARTIFACTS_DIR, { recursive: true });
  const service = closeAtEnd(t, await startService({}, t.signal), (s) => s.stop());
  const browser = closeAtEnd(t, await launchChromium(), (b) => b.close());
  const context = await browser.newContext({ baseURL: service.baseUrl, locale: 'en-US', viewport: { width: 1280, height: 900 } });
  context.setDefaultTimeout(WAIT);
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) problems.push(`console: ${msg.text()}`);
  });

  const visible = (locator: Locator) => locator.waitFor({ state: 'visible' });
  const heading = (name: string | RegExp) => page.getByRole('heading', { level: 1, name });
  const view = (name: string | RegExp) => page.getByRole('region', { name });
  const shot = (name: string) => page.screenshot({ path: join(ARTIFACTS_DIR, `step-up-${name}.png`), fullPage: true });
  const email = `step-up-${Date.now()}@example.com`;

  const logIn = async (p: Page) => {
    await p.goto('/#/login');
    const form = view('Sign in');
    await form.getByLabel('Email').fill(email);
    await form.getByLabel('Password').fill(PASSWORD);
    await form.getByRole('button', { name: 'Sign in' }).click();
  };

  // Sign up, turn on TOTP (keep a backup code), sign in again with it and trust this browser.
  await page.goto('/#/signup');
  const signup = view('Create your account');
  await signup.getByLabel('Email').fill(email);
  await signup.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await signup.getByRole('button', { name: 'Create account' }).click();
  const mfaCard = page.getByRole('region', { name: 'Two-step verification' });
  await mfaCard.getByRole('button', { name: 'Set up authenticator app' }).click();
  await visible(mfaCard.getByRole('img', { name: /QR code/ }));
  const totp = new TotpCodes(await mfaCard.getByLabel('Setup key').inputValue());
  await mfaCard.getByLabel('6-digit code').fill(await totp.next());
  await mfaCard.getByRole('button', { name: 'Turn on' }).click();
  const codes = mfaCard.getByRole('list', { name: 'Backup codes' }).getByRole('listitem');
  await visible(codes.first()).catch(async (error) => {
    await shot('failed-setup');
    throw new Error(`${error}\n${await page.locator('[role=alert]').allInnerTexts()}\n${service.output()}`);
  });
  const backupCode = (await codes.first().innerText()).trim();
  await mfaCard.getByRole('button', { name: /saved them/ }).click();
  await page.getByRole('button', { name: 'Log out' }).click();
  await visible(heading('Sign in'));
  await logIn(page);
  const mfa = view('Two-step verification');
  await mfa.getByRole('button', { name: 'Use a backup code instead' }).click();
  await mfa.getByLabel('Backup code').fill(backupCode);
  await mfa.getByRole('button', { name: 'Verify' }).click();
  await visible(heading(/Remember this device/));
  await page.getByRole('button', { name: 'Trust this device' }).click();
  await visible(heading('Your devices'));
  await page.getByRole('button', { name: 'Log out' }).click();
  await visible(heading('Sign in'));

  // Signed in on the trusted device: no code asked, so the session has no second factor performed.
  await logIn(page);
  await visible(heading('Your devices'));

  await page.getByRole('link', { name: 'Security' }).click();
  const card = page.getByRole('region', { name: 'Two-step verification' });
  await visible(card.getByText('On', { exact: true }));
  await card.getByText('Turn off two-step verification').click();
  await card.getByLabel('Your password').fill(PASSWORD);
  await card.getByRole('button', { name: 'Turn off' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Turn off' }).click();

  // The step-up prompt, inline under the form.
  const prompt = card.getByRole('form', { name: 'Confirm it’s you' });
  await visible(prompt);
  const codeInput = prompt.getByLabel('Code from your authenticator app');
  assert.equal(await codeInput.evaluate((el) => el === document.activeElement), true, 'the code field has the focus');
  await shot('prompt');
  assert.equal(await card.getByText('On', { exact: true }).count(), 1, 'nothing happened yet');

  // A wrong code is said in the prompt, which stays.
  await codeInput.fill('000000');
  await prompt.getByRole('button', { name: 'Confirm' }).click();
  await visible(prompt.getByRole('alert').getByText(/code isn’t right/));
  await shot('wrong-code');

  await codeInput.fill(await totp.next());
  await prompt.getByRole('button', { name: 'Confirm' }).click();
  await visible(page.getByText(/Two-step verification is off/).first());
  await prompt.waitFor({ state: 'detached' });
  await visible(card.getByText('Off', { exact: true }));
  await shot('done');

  // The history says so.
  await page.getByRole('link', { name: 'Your devices' }).click();
  await visible(page.getByRole('list', { name: 'Device history' }).getByText(/Confirmed it’s you/).first());
  assert.deepEqual(problems, []);
  await context.close();
});
