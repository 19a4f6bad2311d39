/**
 * Builds the real app in memory (app.inject, no socket) on a test database,
 * with a manual clock, fresh random keys and a captured log.
 */
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { buildApp, type AppDeps } from '../../src/app/build-app.ts';
import { ManualClock } from '../../src/platform/clock.ts';
import { connectDatabase } from '../../src/store/connect.ts';
import { type Config, type Keys, loadConfig } from '../../src/platform/config.ts';
import { type AsymmetricAlgorithm, generateSigningKeyPem, parseSigningKey } from '../../src/platform/crypto/signing-keys.ts';
import { createPasswordHasher } from '../../src/platform/crypto/passwords.ts';
import { totpCode } from '../../src/features/mfa/totp.ts';
import type { DatabaseKind, TestDatabase } from './databases.ts';

/** Cheaper argon2id for the HTTP suites; the OWASP parameters are tested in test/security. */
export const fastPasswords = createPasswordHasher({ memoryCost: 1024, timeCost: 1, parallelism: 1 }, undefined, 100_000, Number.POSITIVE_INFINITY);
// (An unbounded line here: concurrency tests fire bursts of logins; the bound is tested in test/security/password-queue.test.ts.)

/** Fresh keys; the access-token signing key is of the given algorithm (the default's, ES256, unless said). */
export const randomKeys = (algorithm: AsymmetricAlgorithm = 'ES256'): Keys => ({
  jwtSecret: randomBytes(32),
  jwtSigningKey: parseSigningKey(generateSigningKeyPem(algorithm)),
  jwtPreviousKeys: [],
  fingerprintKey: randomBytes(32),
  dataEncryptionKey: randomBytes(32),
});

/** The keys the env gave (JWT_SIGNING_KEY, JWT_PREVIOUS_KEYS, …) over fresh random ones. */
const keysFor = (config: Config): Keys => {
  const given = Object.fromEntries(Object.entries(config.keys).filter(([, value]) => value !== undefined));
  return { ...randomKeys(config.jwtAlgorithm === 'EdDSA' ? 'EdDSA' : 'ES256'), ...given };
};

export class LogCapture extends Writable {
  readonly chunks: string[] = [];
  override _write(chunk: Buffer, _encoding: string, done: () => void) {
    this.chunks.push(chunk.toString('utf8'));
    done();
  }
  get text(): string {
    return this.chunks.join('');
  }
}

export interface TestApp {
  app: FastifyInstance;
  clock: ManualClock;
  db: TestDatabase;
  keys: Keys;
  logs: LogCapture;
  close(): Promise<void>;
}

export interface TestAppOptions {
  env?: Record<string, string>;
  keys?: Keys;
  clock?: ManualClock;
  db?: TestDatabase;
  deps?: Partial<AppDeps>;
}

export async function createTestApp(kind: DatabaseKind, options: TestAppOptions = {}): Promise<TestApp> {
  const config = loadConfig({ RATE_LIMITS: 'off', COOKIE_SECURE: 'false', LOG_LEVEL: 'info', ...options.env });
  const keys = options.keys ?? keysFor(config);
  const clock = options.clock ?? new ManualClock(Date.now());
  const db = options.db ?? (await kind.create());
  const logs = new LogCapture();
  let app: Awaited<ReturnType<typeof buildApp>>;
  try {
    app = await buildApp({ config, keys, database: db.handle, clock, passwordHasher: fastPasswords, logStream: logs, ...options.deps });
  } catch (error) {
    // A database this helper made is not left open (its pool would keep the test process alive).
    if (!options.db) await db.drop().catch(() => undefined);
    throw error;
  }
  return {
    app,
    clock,
    db,
    keys,
    logs,
    async close() {
      await app.close();
      if (!options.db) await db.drop();
    },
  };
}

// Browsers the tests pretend to be.
export const CHROME_MAC =
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36';
export const CHROME_MAC_UPGRADED =
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/121.0.0.0 Safari/537.36';
export const FIREFOX_WINDOWS = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0';
export const SAFARI_IPHONE =
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1';

export const SIGNALS = {
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
};

/** The request headers of one simulated device. */
export interface Device {
  userAgent: string;
  signals?: Record<string, string | number | boolean>;
  ip?: string;
  deviceToken?: string;
}

export const laptop = (overrides: Partial<Device> = {}): Device => ({ userAgent: CHROME_MAC, signals: SIGNALS, ip: '203.0.113.10', ...overrides });

export function deviceHeaders(device: Device | undefined): Record<string, string> {
  if (!device) return {};
  const headers: Record<string, string> = { 'user-agent': device.userAgent };
  if (device.signals) headers['x-device-fingerprint'] = JSON.stringify(device.signals);
  if (device.deviceToken) headers['x-device-token'] = device.deviceToken;
  return headers;
}

export interface CallOptions {
  token?: string;
  device?: Device;
  headers?: Record<string, string>;
  cookies?: Record<string, string>;
}

/** One JSON call; returns the response and its parsed body. */
export async function call(
  app: FastifyInstance,
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
  url: string,
  body?: unknown,
  options: CallOptions = {},
): Promise<{ res: LightMyRequestResponse; body: any }> {
  const headers: Record<string, string> = { ...deviceHeaders(options.device), ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (body !== undefined) headers['content-type'] ??= 'application/json';
  const res = await app.inject({
    method,
    url,
    headers,
    remoteAddress: options.device?.ip ?? '127.0.0.1',
    ...(options.cookies ? { cookies: options.cookies } : {}),
    ...(body !== undefined ? { payload: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  return { res, body: res.body ? safeJson(res.body) : undefined };
}

const safeJson = (text: string): unknown => {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
};

export const PASSWORD = 'Correct-Horse-9';

let userCounter = 0;
export const uniqueEmail = (label = 'user') => `${label}-${process.pid}-${++userCounter}-${randomBytes(3).toString('hex')}@example.com`;

export interface TestUser {
  email: string;
  password: string;
  userId: string;
  accessToken: string;
  refreshToken: string;
  totpSecret?: string;
}

export async function signupAndLogin(app: FastifyInstance, device?: Device, email = uniqueEmail()): Promise<TestUser> {
  const signup = await call(app, 'POST', '/api/v1/auth/signup', { email, password: PASSWORD });
  if (signup.res.statusCode !== 201) throw new Error(`signup failed: ${signup.res.body}`);
  const login = await call(app, 'POST', '/api/v1/auth/login', { email, password: PASSWORD }, { device });
  if (login.res.statusCode !== 200) throw new Error(`login failed: ${login.res.body}`);
  return { email, password: PASSWORD, userId: signup.body.data.user_id, accessToken: login.body.data.access_token, refreshToken: login.body.data.refresh_token };
}

/**
 * Turns on TOTP for the user. Moves the clock one step forward afterwards so
 * the next code the test computes is a fresh time step (each is accepted once).
 */
export async function enableMfa(t: TestApp, user: TestUser): Promise<{ secret: string; backupCodes: string[] }> {
  const setup = await call(t.app, 'POST', '/api/v1/mfa/totp/setup', {}, { token: user.accessToken });
  if (setup.res.statusCode !== 200) throw new Error(`setup failed: ${setup.res.body}`);
  const secret: string = setup.body.data.secret;
  const verify = await call(t.app, 'POST', '/api/v1/mfa/totp/verify', { code: totpCode(secret, t.clock.now()) }, { token: user.accessToken });
  if (verify.res.statusCode !== 200) throw new Error(`verify failed: ${verify.res.body}`);
  t.clock.advance(30_000);
  user.totpSecret = secret;
  return { secret, backupCodes: verify.body.data.backup_codes };
}

/** A fresh TOTP code: moves the clock to the next 30 s step first. */
export function nextCode(t: TestApp, secret: string): string {
  t.clock.advance(30_000);
  return totpCode(secret, t.clock.now());
}

export async function loginStep(t: TestApp, user: TestUser, device?: Device) {
  return call(t.app, 'POST', '/api/v1/auth/login', { email: user.email, password: user.password }, { device });
}

/** Login → MFA challenge → verify with a TOTP code. Returns the verify response body data. */
export async function loginWithMfa(t: TestApp, user: TestUser, device?: Device) {
  const login = await loginStep(t, user, device);
  if (login.body?.data?.mfa_required !== true) throw new Error(`expected an MFA challenge: ${login.res.body}`);
  const verify = await call(
    t.app,
    'POST',
    '/api/v1/auth/mfa/verify',
    { temporary_token: login.body.data.temporary_token, code: nextCode(t, user.totpSecret!) },
    { device },
  );
  if (verify.res.statusCode !== 200) throw new Error(`mfa verify failed: ${verify.res.body}`);
  return verify.body.data;
}

/** Login with MFA, then activate the device. Returns the device token and device. */
export async function trustDevice(t: TestApp, user: TestUser, device: Device) {
  const verified = await loginWithMfa(t, user, device);
  const activate = await call(
    t.app,
    'POST',
    '/api/v1/devices/activate',
    { activation_token: verified.trusted_device.activation_token },
    { token: verified.access_token, device },
  );
  if (activate.res.statusCode !== 200) throw new Error(`activate failed: ${activate.res.body}`);
  return { deviceToken: activate.body.data.device_token as string, device: activate.body.data.device, accessToken: verified.access_token as string };
}

/** Runs `fn` inside one describe per database kind. */
export { databaseKinds } from './databases.ts';

export interface TwoInstances {
  /** The shared database (instance a's pool). */
  db: TestDatabase;
  a: TestApp;
  b: TestApp;
  close(): Promise<void>;
}

/**
 * Two app instances on one database, each with its own connection pool, sharing
 * the keys and one manual clock as a real deployment shares its configuration.
 */
/** `bDeps`: test seams for instance b only (e.g. a delay injected between two statements). */
export async function twoInstances(kind: DatabaseKind, bDeps: Partial<AppDeps> = {}): Promise<TwoInstances> {
  const db = await kind.create();
  const secondPool = connectDatabase(db.url, { searchPath: db.searchPath, poolSize: 10 });
  const clock = new ManualClock(Date.now());
  const keys = randomKeys();
  let a: TestApp | undefined;
  let b: TestApp;
  try {
    a = await createTestApp(kind, { db, clock, keys });
    b = await createTestApp(kind, { db: { ...db, handle: secondPool }, clock, keys, deps: bDeps });
  } catch (error) {
    // Nothing half-made is left open when the second instance fails to start.
    await a?.close().catch(() => undefined);
    await secondPool.close().catch(() => undefined);
    await db.drop().catch(() => undefined);
    throw error;
  }
  return {
    db,
    a,
    b,
    async close() {
      await Promise.all([a.close(), b.close()]);
      await secondPool.close();
      await db.drop();
    },
  };
}
