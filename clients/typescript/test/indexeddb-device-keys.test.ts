/**
 * The IndexedDB device-key store in real Chromium (Debian's /usr/bin/chromium
 * through playwright-core), against a live server:
 * - a key pair saved through the store survives a page reload, is still
 *   non-extractable and still signs (verified in Node with the public JWK
 *   sent at activation); it sits where the web app always kept its keys;
 * - a key stored the way the web app stored it before this store existed is
 *   read back (existing users keep their keys);
 * - the client's default in a browser: trust this device, reload, a new
 *   client object logs in without MFA (its proof);
 * - IndexedDB that refuses to open (some private modes): the device is
 *   trusted without a key instead of being bound to a key it cannot keep.
 *
 * The test page is served by Playwright at the service's own origin
 * (127.0.0.1: a secure context, so WebCrypto is there; same origin, so the
 * device cookie works), with the client bundled by esbuild; the API calls
 * go to the real service.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import type { Browser, Page } from 'playwright-core';
import { createTestApp, databaseKinds, enableMfa, PASSWORD, SIGNALS, signupAndLogin, type TestApp } from '../../../test/helpers/app.ts';
import { chromiumInstalled, launchChromium } from '../../../test/e2e/helpers.ts';
import { closeQuietly } from '../../../test/helpers/teardown.ts';
import { encodeFingerprint } from '../src/browser.ts';
import { indexedDbAvailable } from '../src/indexeddb-device-keys.ts';

const skip = !chromiumInstalled() && 'no /usr/bin/chromium';
const PAGE = '/__client-test';

test('Node has no IndexedDB: the client keeps device keys in memory there', () => {
  assert.equal(indexedDbAvailable(), false);
});

describe('IndexedDB device-key store in Chromium', { skip, timeout: 180_000 }, () => {
  let t: TestApp;
  let baseUrl: string;
  let browser: Browser;
  let bundle: string;
  before(async () => {
    t = await createTestApp(databaseKinds()[0]!);
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    baseUrl = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
    // The client as a page would bundle it: the flows (index.ts) and the browser helper.
    const built = await build({
      stdin: { contents: "export * from './index.ts'; export * from './browser.ts';", resolveDir: fileURLToPath(new URL('../src/', import.meta.url)), loader: 'ts' },
      bundle: true,
      format: 'iife',
      globalName: 'td',
      write: false,
      target: 'es2022',
    });
    bundle = built.outputFiles[0]!.text;
    browser = await launchChromium();
  });
  after(() => closeQuietly('Chromium', () => browser?.close()));
  after(() => closeQuietly('the test app', () => t?.close()));

  /** A page at the service's origin running the bundled client (serves the page and script itself; everything else reaches the service). */
  async function clientPage(init?: () => void): Promise<{ page: Page; problems: string[] }> {
    const context = await browser.newContext();
    if (init) await context.addInitScript(init);
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    await page.route(`${baseUrl}${PAGE}`, (route) => route.fulfill({ contentType: 'text/html', body: `<!doctype html><title>client</title><script src="${PAGE}.js"></script>` }));
    await page.route(`${baseUrl}${PAGE}.js`, (route) => route.fulfill({ contentType: 'text/javascript', body: bundle }));
    await page.goto(`${baseUrl}${PAGE}`);
    return { page, problems };
  }

  test('a key pair saved through the store survives a reload, still non-extractable, and still signs', async () => {
    const { page, problems } = await clientPage();
    const publicJwk = await page.evaluate(async () => {
      const td = (window as any).td;
      const { pair, publicJwk } = await td.createDeviceKey();
      await td.indexedDbDeviceKeyStore().set(td.deviceKeyAccount(' Ann@Example.com '), pair);
      return publicJwk;
    });

    await page.reload();
    const after = await page.evaluate(async () => {
      const td = (window as any).td;
      const store = td.indexedDbDeviceKeyStore();
      const pair = await store.get('ann@example.com');
      const exported = await crypto.subtle.exportKey('jwk', pair.privateKey).then(
        () => 'exported',
        (error: Error) => error.name,
      );
      // The record as the web app has always laid it out: database, object store, record key.
      const raw = await new Promise<string[]>((resolve, reject) => {
        const open = indexedDB.open('trusted-devices');
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          const keys = open.result.transaction('device-keys').objectStore('device-keys').getAllKeys();
          keys.onsuccess = () => (resolve(keys.result as string[]), open.result.close());
        };
      });
      return {
        extractable: pair.privateKey.extractable,
        type: pair.privateKey.type,
        usages: pair.privateKey.usages,
        exported,
        proof: await td.signChallenge(pair, 'tdc_reload-check'),
        accounts: await store.accounts(),
        missing: (await store.get('someone-else@example.com')) ?? null,
        raw,
      };
    });
    assert.equal(after.type, 'private');
    assert.equal(after.extractable, false, 'still non-extractable after the structured clone and the reload');
    assert.deepEqual(after.usages, ['sign']);
    assert.equal(after.exported, 'InvalidAccessError', 'the browser refuses to export it');
    assert.deepEqual(after.accounts, ['ann@example.com']);
    assert.equal(after.missing, null);
    assert.deepEqual(after.raw, ['key:ann@example.com']);

    // The same key as before the reload: its signature verifies under the public JWK made then.
    const [challenge, signature] = after.proof.split('.') as [string, string];
    const publicKey = await crypto.subtle.importKey('jwk', publicJwk, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['verify']);
    assert.ok(await crypto.subtle.verify({ name: 'ECDSA', hash: 'SHA-256' }, publicKey, Buffer.from(signature, 'base64url'), new TextEncoder().encode(challenge)));
    assert.deepEqual(problems, []);
    await page.context().close();
  });

  test('a key the web app stored before this store existed is read back', async () => {
    const { page, problems } = await clientPage();
    const read = await page.evaluate(async () => {
      // What the web app's public/js/device-key.js did at "Trust this device" (its openStore, and its keyId inlined:
      // a named function here would not survive tsx's transform into the page).
      const pair = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify']);
      await new Promise<void>((resolve, reject) => {
        const request = indexedDB.open('trusted-devices', 1);
        request.onupgradeneeded = () => request.result.createObjectStore('device-keys');
        request.onerror = () => reject(request.error);
        request.onsuccess = () => {
          const db = request.result;
          const tx = db.transaction('device-keys', 'readwrite');
          tx.objectStore('device-keys').put(pair, `key:${String(' Bob@Example.com').trim().toLowerCase()}`);
          tx.oncomplete = () => (db.close(), resolve());
          tx.onerror = () => reject(tx.error);
        };
      });
      const td = (window as any).td;
      const stored = await td.indexedDbDeviceKeyStore().get(td.deviceKeyAccount('bob@example.com '));
      const data = new TextEncoder().encode('tdc_x');
      const signature = await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, stored.privateKey, data);
      return { extractable: stored.privateKey.extractable, verifies: await crypto.subtle.verify({ name: 'ECDSA', hash: 'SHA-256' }, pair.publicKey, signature, data) };
    });
    assert.deepEqual(read, { extractable: false, verifies: true });
    assert.deepEqual(problems, []);
    await page.context().close();
  });

  test('the client keeps keys in IndexedDB by default: after a reload a new client object logs in without MFA', async () => {
    const user = await signupAndLogin(t.app);
    const { backupCodes } = await enableMfa(t, user);
    const { page, problems } = await clientPage();
    const options = { baseUrl, fingerprint: encodeFingerprint(SIGNALS) };
    const trusted = await page.evaluate(
      async ({ options, email, password, backupCode }) => {
        const auth = (window as any).td.createTrustedDevicesClient(options);
        const step = await auth.login({ email, password });
        const { pendingDevice } = await auth.verifyMfa(step, { backupCode });
        const device = await auth.trustThisDevice(pendingDevice);
        return { step: step.kind, keyBound: device.key_bound };
      },
      { options, email: user.email, password: PASSWORD, backupCode: backupCodes[0]! },
    );
    assert.deepEqual(trusted, { step: 'mfa_required', keyBound: true });

    await page.reload();
    const again = await page.evaluate(
      async ({ options, email, password }) => {
        const auth = (window as any).td.createTrustedDevicesClient(options);
        const result = await auth.login({ email, password });
        const events = (await auth.devices.events()).events.map((e: { type: string }) => e.type);
        return { kind: result.kind, mfaBypassed: result.mfaBypassed, events };
      },
      { options, email: user.email, password: PASSWORD },
    );
    assert.equal(again.kind, 'session');
    assert.equal(again.mfaBypassed, true, 'the key survived the reload and proved the device');
    assert.ok(again.events.includes('trust_used') && !again.events.includes('proof_failed'), again.events.join(','));
    assert.deepEqual(problems, []);
    await page.context().close();
  });

  test('IndexedDB that refuses to open (a private mode): the device is trusted without a key', async () => {
    const user = await signupAndLogin(t.app);
    const { backupCodes } = await enableMfa(t, user);
    const { page, problems } = await clientPage(() => {
      indexedDB.open = () => {
        throw new DOMException('The user denied permission to access the database.', 'InvalidStateError');
      };
    });
    const options = { baseUrl, fingerprint: encodeFingerprint(SIGNALS) };
    const result = await page.evaluate(
      async ({ options, email, password, backupCode }) => {
        const auth = (window as any).td.createTrustedDevicesClient(options);
        const { pendingDevice } = await auth.verifyMfa(await auth.login({ email, password }), { backupCode });
        const device = await auth.trustThisDevice(pendingDevice);
        const again = await auth.login({ email, password });
        return { keyBound: device.key_bound, kind: again.kind, mfaBypassed: again.mfaBypassed };
      },
      { options, email: user.email, password: PASSWORD, backupCode: backupCodes[0]! },
    );
    assert.deepEqual(result, { keyBound: false, kind: 'session', mfaBypassed: true }, 'plain trust, no key it could not keep');
    assert.deepEqual(problems, []);
    await page.context().close();
  });
});
