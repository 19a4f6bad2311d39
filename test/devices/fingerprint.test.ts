import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { AppError } from '../../src/platform/errors.ts';
import {
  COMPONENT_WEIGHTS,
  FINGERPRINT_HEADER_MAX_BYTES,
  SIMILARITY_THRESHOLD,
  createFingerprinter,
  describeDevice,
  ipNetworkPrefix,
  parseClientSignals,
  similarity,
  type FingerprintInput,
} from '../../src/platform/crypto/fingerprint.ts';

const UA = {
  chromeMac120:
    'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36',
  chromeMac121:
    'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/121.0.6167.85 Safari/537.36',
  chromeWin120:
    'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36',
  chromeLinux:
    'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36',
  firefoxWin: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0',
  firefoxMac: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14.2; rv:121.0) Gecko/20100101 Firefox/121.0',
  safariMac:
    'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Safari/605.1.15',
  edgeWin:
    'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91',
  iphone:
    'Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1',
  ipad: 'Mozilla/5.0 (iPad; CPU OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1',
  android:
    'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.144 Mobile Safari/537.36',
  googlebot: 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)',
} as const;

const SIGNALS = {
  timezone: 'Europe/Berlin',
  language: 'de-DE',
  platform: 'MacIntel',
  screen: '2560x1440',
  color_depth: 30,
  hardware_concurrency: 10,
  device_memory: 8,
  touch_points: 0,
  canvas: 'c0ffee-canvas-rendering-hash-7d1f',
  webgl: 'ANGLE (Apple, Apple M1 Pro, OpenGL 4.1)',
  cookies_enabled: true,
};

const KEY = Buffer.alloc(32, 7);
const OTHER_KEY = Buffer.alloc(32, 9);
const fp = createFingerprinter(KEY);

function input(overrides: Partial<FingerprintInput> = {}): FingerprintInput {
  return { ip: '203.0.113.45', userAgent: UA.chromeMac120, clientSignals: JSON.stringify(SIGNALS), ...overrides };
}

function assertInvalid(fn: () => unknown, messagePart?: RegExp): AppError {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof AppError, `expected AppError, got ${String(caught)}`);
  assert.equal(caught.code, 'INVALID_FINGERPRINT');
  assert.equal(caught.status, 422);
  assert.ok(Array.isArray(caught.details) && caught.details.length > 0, 'details lists the problems');
  if (messagePart) assert.match(JSON.stringify(caught.details), messagePart);
  return caught;
}

describe('describeDevice (User-Agent parsing)', () => {
  const cases: Array<[string, string, string, string]> = [
    [UA.chromeMac120, 'Chrome', 'macOS', 'desktop'],
    [UA.chromeWin120, 'Chrome', 'Windows', 'desktop'],
    [UA.chromeLinux, 'Chrome', 'Linux', 'desktop'],
    [UA.firefoxWin, 'Firefox', 'Windows', 'desktop'],
    [UA.firefoxMac, 'Firefox', 'macOS', 'desktop'],
    [UA.safariMac, 'Safari', 'macOS', 'desktop'],
    [UA.edgeWin, 'Microsoft Edge', 'Windows', 'desktop'],
    [UA.iphone, 'Safari', 'iOS', 'mobile'],
    [UA.ipad, 'Safari', 'iOS', 'tablet'],
    [UA.android, 'Chrome', 'Android', 'mobile'],
    [UA.googlebot, 'Googlebot', 'Unknown', 'bot'],
  ];
  for (const [ua, browser, os, deviceType] of cases) {
    it(`${browser} on ${os} (${deviceType}): ${ua.slice(0, 50)}…`, () => {
      assert.deepEqual(describeDevice(ua), { browser, os, deviceType });
    });
  }

  it('missing, empty or unrecognisable User-Agent → Unknown, no throw', () => {
    const unknown = { browser: 'Unknown', os: 'Unknown', deviceType: 'unknown' };
    assert.deepEqual(describeDevice(undefined), unknown);
    assert.deepEqual(describeDevice(''), unknown);
    assert.deepEqual(describeDevice('   '), unknown);
    assert.deepEqual(describeDevice('curl/8.4.0'), unknown);
  });

  it('the browser version is not part of the description', () => {
    assert.deepEqual(describeDevice(UA.chromeMac120), describeDevice(UA.chromeMac121));
  });

  it('returns a fresh object each time (the cache cannot be mutated by callers)', () => {
    const a = describeDevice(UA.firefoxWin);
    a.browser = 'Tampered';
    assert.equal(describeDevice(UA.firefoxWin).browser, 'Firefox');
  });

  it('a huge User-Agent is parsed quickly', () => {
    const started = performance.now();
    describeDevice('Mozilla/5.0 ('.repeat(1200));
    assert.ok(performance.now() - started < 200);
  });
});

describe('parseClientSignals (x-device-fingerprint header)', () => {
  it('undefined, empty or blank → {}', () => {
    assert.deepEqual(parseClientSignals(undefined), {});
    assert.deepEqual(parseClientSignals(''), {});
    assert.deepEqual(parseClientSignals('  '), {});
    assert.deepEqual(parseClientSignals('{}'), {});
  });

  it('accepts strings, numbers and booleans; lower-cases keys', () => {
    assert.deepEqual(parseClientSignals('{"Timezone":"UTC","screen.width":1920,"touch":false,"a-b_c":1.5}'), {
      timezone: 'UTC',
      'screen.width': 1920,
      touch: false,
      'a-b_c': 1.5,
    });
  });

  it('accepts exactly the limits', () => {
    const manyKeys = Object.fromEntries(Array.from({ length: 32 }, (_, i) => [`k${i}`, i]));
    assert.equal(Object.keys(parseClientSignals(JSON.stringify(manyKeys))).length, 32);
    assert.ok(parseClientSignals(JSON.stringify({ ['k'.repeat(64)]: 1 })));
    assert.ok(parseClientSignals(JSON.stringify({ canvas: 'x'.repeat(512) })));
    const exact = `{"a":"${'x'.repeat(FINGERPRINT_HEADER_MAX_BYTES - 8)}"}`;
    assert.equal(Buffer.byteLength(exact), FINGERPRINT_HEADER_MAX_BYTES);
    // 4 KiB but the value is too long: rejected for the value, not for the size
    assertInvalid(() => parseClientSignals(exact), /x-device-fingerprint\.a/);
  });

  it('not JSON → 422', () => void assertInvalid(() => parseClientSignals('timezone=UTC')));
  it('truncated JSON → 422', () => void assertInvalid(() => parseClientSignals('{"timezone":')));
  it('JSON array → 422', () => void assertInvalid(() => parseClientSignals('["UTC"]')));
  it('JSON string → 422', () => void assertInvalid(() => parseClientSignals('"UTC"')));
  it('JSON number → 422', () => void assertInvalid(() => parseClientSignals('42')));
  it('JSON null → 422', () => void assertInvalid(() => parseClientSignals('null')));
  it('nested object value → 422 naming the key', () =>
    void assertInvalid(() => parseClientSignals('{"screen":{"w":1920}}'), /x-device-fingerprint\.screen/));
  it('array value → 422', () => void assertInvalid(() => parseClientSignals('{"langs":["en","de"]}')));
  it('null value → 422', () => void assertInvalid(() => parseClientSignals('{"canvas":null}')));

  it('more than 4 KiB → 422 (checked before parsing)', () => {
    const big = JSON.stringify({ a: 'x'.repeat(FINGERPRINT_HEADER_MAX_BYTES) });
    assertInvalid(() => parseClientSignals(big), /4096 bytes/);
    // also for a body that would not even parse
    assertInvalid(() => parseClientSignals('{'.repeat(FINGERPRINT_HEADER_MAX_BYTES + 1)), /4096 bytes/);
    // multi-byte characters count in bytes
    assertInvalid(() => parseClientSignals(JSON.stringify({ a: 'é'.repeat(2100) })), /4096 bytes/);
  });

  it('too many keys → 422', () => {
    const manyKeys = Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, i]));
    assertInvalid(() => parseClientSignals(JSON.stringify(manyKeys)), /at most 32 keys/);
  });

  it('key too long → 422', () => void assertInvalid(() => parseClientSignals(JSON.stringify({ ['k'.repeat(65)]: 1 }))));

  it('weird keys → 422, and the key text is not echoed', () => {
    for (const key of ['', 'has space', 'semi;colon', 'ünï', 'a/b', '<script>', 'new\nline']) {
      const error = assertInvalid(() => parseClientSignals(JSON.stringify({ [key]: 1 })));
      if (key.length > 2) assert.ok(!JSON.stringify(error.details).includes(key), `key ${key} echoed`);
    }
  });

  it('keys may start with _ . - (as the browser collector allows); __proto__ cannot pollute', () => {
    const out = parseClientSignals('{"_a":1,".b":2,"-c":3,"__proto__":"x","constructor":"y"}');
    assert.deepEqual(Object.keys(out), ['_a', '.b', '-c', '__proto__', 'constructor']);
    assert.equal(Object.getPrototypeOf(out), Object.prototype);
    assert.equal(Object.getOwnPropertyDescriptor(out, '__proto__')?.value, 'x');
    assert.equal(({} as Record<string, unknown>).x, undefined);
    const components = fp.compute(input({ clientSignals: '{"__proto__":"x"}' })).components;
    assert.match(components['signal.__proto__'] ?? '', /^[0-9a-f]{64}$/);
  });

  it('string value too long → 422, value not echoed', () => {
    const value = 'secretcanvas'.repeat(50);
    const error = assertInvalid(() => parseClientSignals(JSON.stringify({ canvas: value })), /x-device-fingerprint\.canvas/);
    assert.ok(!JSON.stringify(error.details).includes('secretcanvas'));
    assert.ok(!error.message.includes('secretcanvas'));
  });

  it('duplicate keys after lower-casing → 422', () =>
    void assertInvalid(() => parseClientSignals('{"timezone":"UTC","TimeZone":"UTC"}'), /more than once/));

  it('lists every bad key at once', () => {
    const error = assertInvalid(() => parseClientSignals('{"a":{},"b":[],"c":"ok"}'));
    assert.equal((error.details as unknown[]).length, 2);
  });
});

describe('ipNetworkPrefix', () => {
  const cases: Array<[string, string]> = [
    ['203.0.113.45', '203.0.113.0/24'],
    ['203.0.113.200', '203.0.113.0/24'],
    ['10.0.0.1', '10.0.0.0/24'],
    ['127.0.0.1', '127.0.0.0/24'],
    [' 192.168.1.7 ', '192.168.1.0/24'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1::/48'],
    ['2001:0DB8:0001:ffff::1', '2001:db8:1::/48'],
    ['2001:db8::1', '2001:db8::/48'],
    ['2001:db8:0:1::1', '2001:db8::/48'],
    ['0:0:1::5', '0:0:1::/48'],
    ['::1', '::/48'],
    ['::', '::/48'],
    ['fe80::1%eth0', 'fe80::/48'],
    ['[2001:db8:abcd::1]', '2001:db8:abcd::/48'],
    ['::ffff:203.0.113.45', '203.0.113.0/24'],
    ['::FFFF:198.51.100.9', '198.51.100.0/24'],
    ['::ffff:cb00:712d', '203.0.113.0/24'],
    ['0:0:0:0:0:ffff:203.0.113.45', '203.0.113.0/24'],
    ['64:ff9b::203.0.113.45', '64:ff9b::/48'],
    ['', 'unknown'],
    ['unknown', 'unknown'],
    ['256.1.1.1', 'unknown'],
    ['1.2.3', 'unknown'],
    ['1::2::3', 'unknown'],
    ['2001:db8:::1', 'unknown'],
    ['::ffff:999.1.1.1', 'unknown'],
  ];
  for (const [ip, expected] of cases) {
    it(`${JSON.stringify(ip)} → ${expected}`, () => assert.equal(ipNetworkPrefix(ip), expected));
  }

  it('IPv4 and its mapped IPv6 form give the same ip_prefix component', () => {
    const a = fp.compute(input({ ip: '203.0.113.45' }));
    const b = fp.compute(input({ ip: '::ffff:203.0.113.99' }));
    assert.equal(a.components.ip_prefix, b.components.ip_prefix);
  });
});

describe('createFingerprinter.compute', () => {
  it('rejects a short key', () => {
    assert.throws(() => createFingerprinter(Buffer.alloc(16)), /at least 32 bytes/);
  });

  it('returns display fields, the IP as given and hex hashes', () => {
    const out = fp.compute(input());
    assert.equal(out.browser, 'Chrome');
    assert.equal(out.os, 'macOS');
    assert.equal(out.deviceType, 'desktop');
    assert.equal(out.ipAddress, '203.0.113.45');
    assert.match(out.fingerprint, /^[0-9a-f]{64}$/);
    for (const value of Object.values(out.components)) assert.match(value, /^[0-9a-f]{64}$/);
    assert.deepEqual(Object.keys(out.components).sort(), [
      'browser',
      'device_type',
      'ip_prefix',
      'os',
      ...Object.keys(SIGNALS).map((k) => `signal.${k}`),
    ].sort());
  });

  it('components follow the documented HMAC construction', () => {
    const out = fp.compute(input());
    const h = (text: string) => createHmac('sha256', KEY).update(text).digest('hex');
    assert.equal(out.components.browser, h('browser\u0000chrome'));
    assert.equal(out.components.os, h('os\u0000macos'));
    assert.equal(out.components.device_type, h('device_type\u0000desktop'));
    assert.equal(out.components['signal.timezone'], h('signal.timezone\u0000Europe/Berlin'));
    assert.equal(out.components['signal.hardware_concurrency'], h('signal.hardware_concurrency\u000010'));
    assert.equal(out.components['signal.cookies_enabled'], h('signal.cookies_enabled\u0000true'));
    assert.equal(out.components.ip_prefix, h('ip_prefix\u0000203.0.113.0/24'));
  });

  it('is deterministic', () => {
    assert.deepEqual(fp.compute(input()), fp.compute(input()));
    assert.deepEqual(fp.compute(input()), createFingerprinter(Buffer.from(KEY)).compute(input()));
  });

  it('does not depend on the order of the signals, nor on key case, nor on 8 vs "8"', () => {
    const reversed = JSON.stringify(Object.fromEntries(Object.entries(SIGNALS).reverse()));
    assert.equal(fp.compute(input({ clientSignals: reversed })).fingerprint, fp.compute(input()).fingerprint);
    const a = fp.compute(input({ clientSignals: '{"TimeZone":"UTC","cores":8}' }));
    const b = fp.compute(input({ clientSignals: '{"timezone":" UTC ","cores":"8"}' }));
    assert.equal(a.fingerprint, b.fingerprint);
  });

  it('a different key gives different hashes everywhere', () => {
    const a = fp.compute(input());
    const b = createFingerprinter(OTHER_KEY).compute(input());
    assert.notEqual(a.fingerprint, b.fingerprint);
    for (const name of Object.keys(a.components)) assert.notEqual(a.components[name], b.components[name], name);
  });

  it('a plain (unkeyed) SHA-256 of the inputs matches no component or fingerprint', () => {
    const out = fp.compute(input());
    const outputs = new Set([out.fingerprint, ...Object.values(out.components)]);
    const sha = (text: string) => createHash('sha256').update(text).digest('hex');
    const guesses: string[] = [UA.chromeMac120, 'Chrome', 'chrome', 'macOS', 'macos', 'desktop', '203.0.113.45', '203.0.113.0/24'];
    guesses.push(JSON.stringify(SIGNALS), 'browser\u0000chrome', 'os\u0000macos', 'device_type\u0000desktop', 'ip_prefix\u0000203.0.113.0/24');
    for (const [k, v] of Object.entries(SIGNALS)) guesses.push(String(v), `${k}\u0000${v}`, `signal.${k}\u0000${v}`);
    for (const guess of guesses) assert.ok(!outputs.has(sha(guess)), `sha256(${guess}) matched`);
  });

  it('a browser upgrade (Chrome 120 → 121) keeps every component and the fingerprint', () => {
    const before = fp.compute(input({ userAgent: UA.chromeMac120 }));
    const after = fp.compute(input({ userAgent: UA.chromeMac121 }));
    assert.equal(after.fingerprint, before.fingerprint);
    assert.deepEqual(after.components, before.components);
    assert.deepEqual(similarity(before.components, after.components), { score: 1, matches: true, differing: [] });
  });

  it('the fingerprint does not include the IP', () => {
    const a = fp.compute(input({ ip: '203.0.113.45' }));
    const b = fp.compute(input({ ip: '198.51.100.7' }));
    assert.equal(a.fingerprint, b.fingerprint);
    assert.notEqual(a.components.ip_prefix, b.components.ip_prefix);
    assert.equal(b.ipAddress, '198.51.100.7');
  });

  it('the fingerprint changes with browser family, OS, device type or any signal', () => {
    const base = fp.compute(input()).fingerprint;
    assert.notEqual(fp.compute(input({ userAgent: UA.firefoxMac })).fingerprint, base);
    assert.notEqual(fp.compute(input({ userAgent: UA.chromeWin120 })).fingerprint, base);
    assert.notEqual(fp.compute(input({ clientSignals: JSON.stringify({ ...SIGNALS, language: 'en-US' }) })).fingerprint, base);
    assert.notEqual(fp.compute(input({ clientSignals: JSON.stringify({ ...SIGNALS, extra: 1 }) })).fingerprint, base);
    assert.notEqual(fp.compute(input({ clientSignals: undefined })).fingerprint, base);
    const iphone = fp.compute(input({ userAgent: UA.iphone }));
    const ipad = fp.compute(input({ userAgent: UA.ipad }));
    assert.notEqual(iphone.components.device_type, ipad.components.device_type);
  });

  it('an unparseable IP leaves ip_prefix out', () => {
    const out = fp.compute(input({ ip: 'not-an-ip' }));
    assert.equal(out.components.ip_prefix, undefined);
    assert.equal(out.ipAddress, 'not-an-ip');
  });

  it('an invalid header makes compute throw INVALID_FINGERPRINT', () => {
    assertInvalid(() => fp.compute(input({ clientSignals: '[1,2]' })));
  });

  it('raw signal values and the raw User-Agent never appear in the output', () => {
    const secretSignals = {
      timezone: 'Pacific/Chatham',
      canvas: 'RAW-CANVAS-DATA-0123456789',
      webgl: 'RAW WEBGL RENDERER STRING',
      screen: '3440x1440',
      language: 'tlh-KLINGON',
      device_memory: 31337,
    };
    const out = fp.compute(input({ clientSignals: JSON.stringify(secretSignals) }));
    const json = JSON.stringify(out);
    for (const value of Object.values(secretSignals)) assert.ok(!json.includes(String(value)), `${value} leaked`);
    assert.ok(!json.includes('Mozilla'));
    assert.ok(!json.includes('120.0'));
    assert.ok(!json.includes('203.0.113.0/24'), 'the prefix is hashed too');
  });
});

describe('similarity', () => {
  const base = fp.compute(input());

  it('weights and threshold are sane', () => {
    assert.ok(SIMILARITY_THRESHOLD > 0.5 && SIMILARITY_THRESHOLD < 1);
    assert.ok(COMPONENT_WEIGHTS.ip_prefix! < COMPONENT_WEIGHTS['signal.canvas']!);
  });

  it('same inputs → score 1, matches', () => {
    assert.deepEqual(similarity(base.components, fp.compute(input()).components), { score: 1, matches: true, differing: [] });
  });

  it('only an IP change → still matches, but below 1, and says ip_prefix', () => {
    const moved = fp.compute(input({ ip: '198.51.100.7' }));
    const result = similarity(base.components, moved.components);
    assert.ok(result.score < 1);
    assert.ok(result.score >= SIMILARITY_THRESHOLD);
    assert.equal(result.matches, true);
    assert.deepEqual(result.differing, ['ip_prefix']);
  });

  it('only an IP change with no client signals at all → still matches', () => {
    const a = fp.compute(input({ clientSignals: undefined, ip: '203.0.113.45' }));
    const b = fp.compute(input({ clientSignals: undefined, ip: '2001:db8::1' }));
    const result = similarity(a.components, b.components);
    assert.ok(result.score < 1 && result.score >= SIMILARITY_THRESHOLD, String(result.score));
    assert.equal(result.matches, true);
  });

  it('an IPv4 → IPv6 switch is also only an ip_prefix difference', () => {
    const v6 = fp.compute(input({ ip: '2001:db8:1::99' }));
    assert.deepEqual(similarity(base.components, v6.components).differing, ['ip_prefix']);
  });

  it('a client that never sends x-device-fingerprint matches itself when the UA is the same', () => {
    const a = fp.compute(input({ clientSignals: undefined }));
    const b = fp.compute(input({ clientSignals: '' }));
    assert.deepEqual(similarity(a.components, b.components), { score: 1, matches: true, differing: [] });
  });

  it('different browser family → score 0, no match', () => {
    for (const ua of [UA.firefoxMac, UA.safariMac]) {
      const result = similarity(base.components, fp.compute(input({ userAgent: ua })).components);
      assert.equal(result.score, 0);
      assert.equal(result.matches, false);
      assert.ok(result.differing.includes('browser'));
      assert.ok(!result.differing.includes('os'));
    }
  });

  it('different OS → score 0, no match', () => {
    const result = similarity(base.components, fp.compute(input({ userAgent: UA.chromeWin120 })).components);
    assert.equal(result.score, 0);
    assert.equal(result.matches, false);
    assert.deepEqual(result.differing, ['os']);
  });

  it('Chrome → Edge on the same OS (Edge UA contains "Chrome/") is a browser change', () => {
    const win = fp.compute(input({ userAgent: UA.chromeWin120 }));
    const edge = fp.compute(input({ userAgent: UA.edgeWin }));
    assert.equal(similarity(win.components, edge.components).score, 0);
  });

  it('missing browser or os component on either side → score 0', () => {
    const { browser: _b, ...noBrowser } = base.components;
    const { os: _o, ...noOs } = base.components;
    assert.equal(similarity(noBrowser, base.components).score, 0);
    assert.equal(similarity(base.components, noOs).score, 0);
    assert.equal(similarity({}, {}).matches, false);
  });

  it('changing several heavy signals (canvas, webgl, screen, timezone) → no match, all named', () => {
    const changed = {
      ...SIGNALS,
      canvas: 'another-canvas',
      webgl: 'NVIDIA GeForce RTX 4090',
      screen: '1920x1080',
      timezone: 'America/New_York',
    };
    const result = similarity(base.components, fp.compute(input({ clientSignals: JSON.stringify(changed) })).components);
    assert.equal(result.matches, false);
    assert.ok(result.score < SIMILARITY_THRESHOLD && result.score > 0);
    assert.deepEqual(result.differing, ['signal.canvas', 'signal.screen', 'signal.timezone', 'signal.webgl']);
  });

  describe('ordinary changes of the same browser keep trust; another machine does not', () => {
    // What the browser helper sends (clients/typescript/src/browser.ts, also the web app's: no screen size; canvas split in geometry + text).
    const BROWSER = {
      timezone: 'Europe/Paris',
      language: 'en-US,en',
      platform: 'Linux x86_64',
      color_depth: 24,
      hardware_concurrency: 8,
      device_memory: 8,
      touch_points: 0,
      canvas: 'geometry-hash',
      canvas_text: 'text-hash-at-ratio-1',
      webgl: 'ANGLE (Google, Vulkan 1.3.0 (SwiftShader Device))',
    };
    const at = (signals: Record<string, unknown>, overrides: Partial<FingerprintInput> = {}) =>
      fp.compute(input({ userAgent: UA.chromeLinux, clientSignals: JSON.stringify(signals), ...overrides })).components;
    const recorded = at(BROWSER);
    const score = (current: Record<string, string>) => similarity(recorded, current);

    it('200% zoom or a move to a 2x monitor (text canvas changes) + an old client still sending screen size', () => {
      const result = score(at({ ...BROWSER, canvas_text: 'text-hash-at-ratio-2', screen: '640x400' }));
      assert.equal(result.matches, true, String(result.score));
      assert.deepEqual(result.differing, ['signal.canvas_text', 'signal.screen']);
    });

    it('another monitor with another colour depth, on another network', () => {
      const result = score(at({ ...BROWSER, canvas_text: 'x', color_depth: 30 }, { ip: '198.51.100.7' }));
      assert.equal(result.matches, true, String(result.score));
    });

    it('a browser update that changes both canvas drawings, on another network', () => {
      const result = score(at({ ...BROWSER, canvas: 'new-geometry', canvas_text: 'new-text' }, { userAgent: UA.chromeLinux.replace('120.0.0.0', '131.0.0.0'), ip: '198.51.100.7' }));
      assert.equal(result.matches, true, String(result.score));
    });

    it('travel: another time zone and network', () => {
      assert.equal(score(at({ ...BROWSER, timezone: 'America/New_York' }, { ip: '198.51.100.7' })).matches, true);
    });

    it('screen size alone never counts', () => {
      assert.equal(COMPONENT_WEIGHTS['signal.screen'], 0);
      const a = fp.compute(input({ clientSignals: JSON.stringify({ ...BROWSER, screen: '1280x800' }) })).components;
      const b = fp.compute(input({ clientSignals: JSON.stringify({ ...BROWSER, screen: '640x400' }) })).components;
      assert.equal(similarity(a, b).score, 1);
    });

    it('the same browser on another machine (GPU, cores, memory, fonts differ) → no match', () => {
      const other = { ...BROWSER, webgl: 'ANGLE (NVIDIA, NVIDIA GeForce RTX 3060)', hardware_concurrency: 16, device_memory: 4, canvas_text: 'other-fonts' };
      const result = score(at(other));
      assert.equal(result.matches, false, String(result.score));
    });

    it('even with only the GPU and core count different → no match', () => {
      assert.equal(score(at({ ...BROWSER, webgl: 'Mesa Intel(R) UHD Graphics 620', hardware_concurrency: 4 })).matches, false);
    });
  });

  it('one changed light signal still matches and is named', () => {
    const changed = { ...SIGNALS, hardware_concurrency: 12 };
    const result = similarity(base.components, fp.compute(input({ clientSignals: JSON.stringify(changed) })).components);
    assert.equal(result.matches, true);
    assert.ok(result.score < 1);
    assert.deepEqual(result.differing, ['signal.hardware_concurrency']);
  });

  it('signals recorded at activation but absent now → differing, no match (one side only counts)', () => {
    const bare = fp.compute(input({ clientSignals: undefined }));
    const result = similarity(base.components, bare.components);
    assert.equal(result.matches, false);
    assert.deepEqual(result.differing, Object.keys(SIGNALS).map((k) => `signal.${k}`).sort());
    // and symmetric
    assert.equal(similarity(bare.components, base.components).score, result.score);
  });

  it('a component missing on both sides does not count', () => {
    const { 'signal.canvas': _c, ...withoutCanvas } = base.components;
    assert.deepEqual(similarity(withoutCanvas, withoutCanvas), { score: 1, matches: true, differing: [] });
  });

  it('differing lists names only, never hashes or values', () => {
    const other = fp.compute(input({ userAgent: UA.iphone, ip: '198.51.100.1', clientSignals: '{"canvas":"zzz"}' }));
    const result = similarity(base.components, other.components);
    for (const name of result.differing) {
      assert.match(name, /^(browser|os|device_type|ip_prefix|signal\.[a-z0-9_.-]+)$/);
    }
    const json = JSON.stringify(result);
    for (const hash of [...Object.values(base.components), ...Object.values(other.components)]) {
      assert.ok(!json.includes(hash));
    }
    assert.ok(!json.includes('zzz'));
  });

  it('score is rounded and within [0, 1]', () => {
    const changed = fp.compute(input({ ip: '198.51.100.7', clientSignals: JSON.stringify({ ...SIGNALS, canvas: 'x' }) }));
    const { score } = similarity(base.components, changed.components);
    assert.ok(score > 0 && score < 1);
    assert.equal(score, Math.round(score * 10_000) / 10_000);
  });

  it('is symmetric', () => {
    const other = fp.compute(input({ ip: '198.51.100.7', clientSignals: JSON.stringify({ ...SIGNALS, canvas: 'x', extra: 1 }) }));
    assert.deepEqual(similarity(base.components, other.components), similarity(other.components, base.components));
  });

  it('inherited object properties are not treated as components', () => {
    const current = { ...base.components };
    const recorded = Object.assign(Object.create({ 'signal.extra': 'x' }) as Record<string, string>, base.components);
    assert.deepEqual(similarity(recorded, current), { score: 1, matches: true, differing: [] });
  });
});
