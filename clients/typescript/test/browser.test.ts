/**
 * The browser helper encodes signals exactly like the web app's
 * public/js/fingerprint.js (so either can be used), within the service's
 * header limits, and what it sends is accepted by the service's parser.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import fc from 'fast-check';
// @ts-expect-error: plain JavaScript module of the web app, without types
import { encodeFingerprint as webAppEncode } from '../../../public/js/fingerprint.js';
import { createFingerprinter } from '../../../src/devices/fingerprint.ts';
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
