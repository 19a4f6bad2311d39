/**
 * The browser helper encodes any signals within the service's header limits,
 * what it sends is accepted by the service's parser, and in Chromium it
 * collects the documented signals. (The web app runs this same code, compiled
 * into public/js/vendor/trusted-devices-browser.js; test/drift.test.ts keeps
 * that file current, so there is no second encoder to compare with.)
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { test } from 'node:test';
import fc from 'fast-check';
import { createFingerprinter } from '../../../src/platform/crypto/fingerprint.ts';
import { chromiumInstalled, launchChromium } from '../../../test/e2e/helpers.ts';
import { closeAtEnd } from '../../../test/helpers/teardown.ts';
import { encodeFingerprint, FINGERPRINT_LIMITS } from '../src/browser.ts';

const scalar = fc.oneof(fc.string({ maxLength: 700, unit: 'grapheme' }), fc.double(), fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.integer(), { maxLength: 2 }));
const signals = fc.dictionary(fc.oneof(fc.stringMatching(/^[a-z_]{1,10}$/), fc.string({ maxLength: 70 })), scalar, { maxKeys: 45 });

test('encodeFingerprint stays within the limits on any input, and the service accepts it', () => {
  const fingerprinter = createFingerprinter(randomBytes(32));
  fc.assert(
    fc.property(signals, (input) => {
      const header = encodeFingerprint(input);
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

test('in Chromium, the helper collects the documented signals, stably within a page', { skip: !chromiumInstalled() && 'no /usr/bin/chromium', timeout: 120_000 }, async (t) => {
  // The TypeScript module bundled for the page (esbuild, as scripts/build.mjs does for the server).
  const bundle = await build({
    entryPoints: [fileURLToPath(new URL('../src/browser.ts', import.meta.url))],
    bundle: true,
    format: 'iife',
    globalName: 'tdClient',
    write: false,
    target: 'es2020',
  });
  const browser = closeAtEnd(t, await launchChromium(), (b) => b.close());
  {
    const page = await browser.newPage({ locale: 'fr-FR', timezoneId: 'Europe/Paris', viewport: { width: 1280, height: 800 } });
    await page.setContent('<!doctype html><title>fingerprint</title>');
    await page.addScriptTag({ content: bundle.outputFiles[0]!.text });
    const [signals, header, again] = await page.evaluate(async () => {
      const w = window as any;
      return [await w.tdClient.collectFingerprint(), await w.tdClient.fingerprintHeader(), await w.tdClient.fingerprintHeader()];
    });
    for (const key of ['timezone', 'language', 'platform', 'color_depth', 'hardware_concurrency', 'touch_points']) assert.ok(key in signals, key);
    assert.ok(!('screen' in signals), 'no screen size (it changes with zoom and monitors)');
    assert.equal(signals.timezone, 'Europe/Paris');
    assert.match(String(signals.language), /^fr-FR/);
    if ('canvas' in signals) assert.match(String(signals.canvas), /^[0-9a-f]{32}$/);
    if ('canvas_text' in signals) assert.match(String(signals.canvas_text), /^[0-9a-f]{32}$/);
    assert.ok(Object.values(signals).every((v) => ['string', 'number', 'boolean'].includes(typeof v)));
    assert.equal(header, again, 'stable within a page');
    assert.deepEqual(JSON.parse(header), signals, 'the header carries exactly the collected signals');
    createFingerprinter(randomBytes(32)).compute({ ip: '203.0.113.7', userAgent: 'Mozilla/5.0', clientSignals: header });
  }
});
