/**
 * The browser helper encodes signals exactly like the web app's
 * public/js/fingerprint.js (so either can be used), within the service's
 * header limits, and what it sends is accepted by the service's parser.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { test } from 'node:test';
import fc from 'fast-check';
// @ts-expect-error: plain JavaScript module of the web app, without types
import { encodeFingerprint as webAppEncode } from '../../../public/js/fingerprint.js';
import { createFingerprinter } from '../../../src/devices/fingerprint.ts';
import { chromiumInstalled, launchChromium } from '../../../test/e2e/helpers.ts';
import { encodeFingerprint, FINGERPRINT_LIMITS } from '../src/browser.ts';

const scalar = fc.oneof(fc.string({ maxLength: 700, unit: 'grapheme' }), fc.double(), fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.integer(), { maxLength: 2 }));
const signals = fc.dictionary(fc.oneof(fc.stringMatching(/^[a-z_]{1,10}$/), fc.string({ maxLength: 70 })), scalar, { maxKeys: 45 });

test('encodeFingerprint equals the web app encoder on any input, stays within the limits, and the service accepts it', () => {
  const fingerprinter = createFingerprinter(randomBytes(32));
  fc.assert(
    fc.property(signals, (input) => {
      const header = encodeFingerprint(input);
      assert.equal(header, webAppEncode(input));
      assert.ok(header.length <= FINGERPRINT_LIMITS.maxBytes);
      assert.match(header, /^[\x20-\x7e]*$/, 'ASCII only: a valid header value');
      const parsed = JSON.parse(header) as Record<string, unknown>;
      assert.ok(Object.keys(parsed).length <= FINGERPRINT_LIMITS.maxKeys);
      // The service's own parser takes it without a 422 (keys are case-insensitive there: the
      // encoders do not fold case, so inputs with 'a' and 'A' are the caller's problem).
      const folded = Object.keys(parsed).map((key) => key.toLowerCase());
      if (new Set(folded).size === folded.length) fingerprinter.compute({ ip: '203.0.113.7', userAgent: 'Mozilla/5.0', clientSignals: header });
    }),
    { numRuns: 300 },
  );
});

test('in Chromium, the helper collects the documented signals, the same as the web app does', { skip: !chromiumInstalled() && 'no /usr/bin/chromium' }, async () => {
  // The TypeScript module bundled for the page (esbuild, as scripts/build.mjs does for the server).
  const bundle = await build({
    entryPoints: [fileURLToPath(new URL('../src/browser.ts', import.meta.url))],
    bundle: true,
    format: 'iife',
    globalName: 'tdClient',
    write: false,
    target: 'es2020',
  });
  const webApp = readFileSync(fileURLToPath(new URL('../../../public/js/fingerprint.js', import.meta.url)), 'utf8').replace(/^export /gm, '');
  const browser = await launchChromium();
  try {
    const page = await browser.newPage({ locale: 'fr-FR', timezoneId: 'Europe/Paris', viewport: { width: 1280, height: 800 } });
    await page.setContent('<!doctype html><title>fingerprint</title>');
    await page.addScriptTag({ content: bundle.outputFiles[0]!.text });
    await page.addScriptTag({ content: `${webApp}\nwindow.webAppFingerprintHeader = fingerprintHeader;` });
    const [signals, header, again, webAppHeader] = await page.evaluate(async () => {
      const w = window as any;
      return [await w.tdClient.collectFingerprint(), await w.tdClient.fingerprintHeader(), await w.tdClient.fingerprintHeader(), await w.webAppFingerprintHeader()];
    });
    for (const key of ['timezone', 'language', 'platform', 'screen', 'color_depth', 'hardware_concurrency', 'touch_points']) assert.ok(key in signals, key);
    assert.equal(signals.timezone, 'Europe/Paris');
    assert.match(String(signals.language), /^fr-FR/);
    assert.match(String(signals.screen), /^\d+x\d+$/);
    if ('canvas' in signals) assert.match(String(signals.canvas), /^[0-9a-f]{32}$/);
    assert.ok(Object.values(signals).every((v) => ['string', 'number', 'boolean'].includes(typeof v)));
    assert.equal(header, again, 'stable within a page');
    assert.equal(header, webAppHeader, 'the same header as the web app computes');
    createFingerprinter(randomBytes(32)).compute({ ip: '203.0.113.7', userAgent: 'Mozilla/5.0', clientSignals: header });
  } finally {
    await browser.close();
  }
});
