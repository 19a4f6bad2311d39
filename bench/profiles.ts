/**
 * What the seeded devices look like, and the one device the load generator
 * pretends to be for the trusted-login and MFA cases. The seeder computes
 * stored components with src/platform/crypto/fingerprint.ts under the server's
 * FINGERPRINT_KEY, so the bench's requests match them exactly.
 */

/** Every seeded user has this password (one argon2id hash, made once per seeding). */
export const BENCH_PASSWORD = 'Bench-Password-1';

/** The IP the bench's requests come from (the server sees the loopback socket address). */
export const BENCH_CLIENT_IP = '127.0.0.1';

export interface DeviceProfile {
  userAgent: string;
  /** The x-device-fingerprint header's signals; undefined for a client that sends none. */
  signals?: Record<string, string | number | boolean>;
}

/** The load generator's own device (a Chrome on macOS with the full set of signals). */
export const BENCH_DEVICE: DeviceProfile = {
  userAgent: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36',
  signals: {
    timezone: 'Europe/Paris',
    language: 'fr-FR,en',
    platform: 'MacIntel',
    screen: '1728x1117',
    color_depth: 30,
    hardware_concurrency: 10,
    device_memory: 8,
    touch_points: 0,
    canvas: 'c0ffee1234',
    webgl: 'ANGLE (Apple, Apple M2, OpenGL 4.1)',
  },
};

/** A realistic mix for the other seeded devices: browsers with signals, a phone, a native client without any. */
export const SEEDED_PROFILES: readonly DeviceProfile[] = [
  BENCH_DEVICE,
  {
    userAgent: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0',
    signals: { timezone: 'America/New_York', language: 'en-US', platform: 'Win32', screen: '1920x1080', color_depth: 24, hardware_concurrency: 8, canvas: '9a1b2c3d4e', webgl: 'ANGLE (NVIDIA GeForce RTX 3060)' },
  },
  {
    userAgent:
      'Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1',
    signals: { timezone: 'Europe/Berlin', language: 'de-DE', platform: 'iPhone', screen: '393x852', touch_points: 5 },
  },
  {
    userAgent: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0',
    signals: { timezone: 'Europe/London', language: 'en-GB', platform: 'Win32', screen: '2560x1440', color_depth: 24, hardware_concurrency: 16, device_memory: 8 },
  },
  {
    userAgent: 'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.144 Mobile Safari/537.36',
    signals: { timezone: 'Asia/Tokyo', language: 'ja-JP', platform: 'Linux armv8l', screen: '412x915', touch_points: 5, device_memory: 8 },
  },
  { userAgent: 'TrustedDevicesApp/2.3.1 (Android 14; Pixel 8) okhttp/4.12.0' },
];

/** Addresses the other seeded devices were "seen from" (documentation ranges). */
export const SEEDED_IPS: readonly string[] = ['203.0.113.10', '198.51.100.23', '192.0.2.77', '203.0.113.200', '2001:db8:85a3::8a2e:370:7334'];

export const fingerprintHeaderOf = (profile: DeviceProfile): string | undefined =>
  profile.signals ? JSON.stringify(profile.signals) : undefined;
