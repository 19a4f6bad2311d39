/**
 * loadConfig(env) → a frozen, validated configuration (README "Configuration").
 *
 * Pure: it reads only the object it is given. Every bad variable is collected
 * and reported at once (ConfigError lists them all). Keys: in production the
 * three keys must be set explicitly; in development a missing key is left
 * `undefined` here and src/platform/keys.ts generates it once into the data directory.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { isIP } from 'node:net';
import {
  ASYMMETRIC_ALGORITHMS,
  type AsymmetricAlgorithm,
  KeyFormatError,
  parseSigningKey,
  parseVerificationKeys,
  type SigningKey,
  type VerificationKey,
} from './crypto/signing-keys.ts';

export type RateLimitMode = 'on' | 'off';
/** `true`/`false`, or `auto`: Secure on https and loopback hosts (src/platform/http/cookies.ts). */
export type CookieSecure = boolean | 'auto';
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export type JwtAlgorithm = AsymmetricAlgorithm | 'HS256';

export interface Keys {
  /** HS256 signing key for access tokens, ≥ 32 bytes (used only when JWT_ALGORITHM=HS256). */
  jwtSecret?: Buffer;
  /** Asymmetric signing key for access tokens (JWT_SIGNING_KEY; EdDSA/ES256 modes). */
  jwtSigningKey?: SigningKey;
  /** Keys that signed before the current one: still accepted and published (JWT_PREVIOUS_KEYS). */
  jwtPreviousKeys?: VerificationKey[];
  /** HMAC-SHA-256 key for fingerprint components. */
  fingerprintKey: Buffer;
  /** AES-256-GCM key (exactly 32 bytes) for TOTP secrets at rest. */
  dataEncryptionKey: Buffer;
}

export interface Config {
  nodeEnv: string;
  production: boolean;
  host: string;
  port: number;
  databaseUrl: string;
  dataDir: string;
  redisUrl: string | undefined;
  keys: Partial<Keys>;
  accessTokenTtlSeconds: number;
  /** BOUND_ACCESS_TOKEN_TTL_SECONDS: access tokens of sessions bound to a browser key (docs/sessions.md). */
  boundAccessTokenTtlSeconds: number;
  /** How recent a factor the sensitive operations need (docs/step-up.md). */
  stepUpMaxAgeSeconds: number;
  refreshTokenTtlSeconds: number;
  activationTokenTtlSeconds: number;
  mfaChallengeTtlSeconds: number;
  deviceTrustTtlDays: number;
  maxTrustedDevices: number;
  rateLimits: RateLimitMode;
  trustProxy: string[] | undefined;
  /** Always `true` in production. */
  cookieSecure: CookieSecure;
  corsOrigins: string[] | undefined;
  logLevel: LogLevel;
  databasePoolSize: number;
  databaseStatementTimeoutMs: number;
  eventRetentionDays: number;
  /** How often housekeeping runs in the process (seconds; the bench sets it low to force runs under load). */
  housekeepingIntervalSeconds: number;
  /**
   * Password hashes this process runs at once (the hashing line's slots, docs/security.md); the
   * default is the machine's cores. Instances sharing one machine should share its cores: each
   * takes cores ÷ instances, or their hashes (and a known device's) run slower than the line assumes.
   */
  passwordHashConcurrency: number;
  jwtIssuer: string;
  jwtAudience: string;
  /** SMTP and links in mail (docs/email.md): links start with publicUrl. */
  /** SMTP server for mail; unset → .eml files in DATA_DIR/outbox/. */
  smtpUrl: string | undefined;
  mailFrom: string;
  sessionMaxAgeDays: number;
  sessionIdleDays: number;
  /** docs/trust-model.md: how long a rotated-out device token still counts as the current one (parallel tabs). */
  deviceTokenReuseGraceSeconds: number;
  /** Where users reach the service (links in mail; the WebAuthn defaults below derive from it). */
  publicUrl: string;
  /** WebAuthn relying party (docs/passkeys.md): RP ID (a domain), display name, accepted origins. */
  webauthn: { rpId: string; rpName: string; origins: string[] };
  /** How access tokens are signed: ES256 (default), EdDSA, or HS256 when chosen explicitly. */
  jwtAlgorithm: JwtAlgorithm;
  /** Webhooks (docs/admin-and-webhooks.md): both set, or neither. */
  webhook: WebhookConfig | undefined;
  /** docs/security-center.md: another MMDB file for locations; unset → the shipped DB-IP lite city database. */
  geoipMmdbPath: string | undefined;
  /** docs/security-center.md: sign-ins farther apart than this speed allows are impossible travel; 0 turns the check off. */
  impossibleTravelKmh: number;
}

export interface WebhookConfig {
  url: string;
  /** Standard Webhooks form: `whsec_` + base64 of 24 to 64 random bytes. */
  secret: string;
  timeoutSeconds: number;
  maxAttempts: number;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

type Env = Readonly<Record<string, string | undefined>>;

const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function loadConfig(env: Env): Readonly<Config> {
  const problems: string[] = [];
  const read = (name: string): string | undefined => {
    const value = env[name]?.trim();
    return value === '' ? undefined : value;
  };

  const integer = (name: string, fallback: number, min: number, max: number): number => {
    const raw = read(name);
    if (raw === undefined) return fallback;
    const value = Number(raw);
    if (!/^\d+$/.test(raw) || !Number.isSafeInteger(value) || value < min || value > max) {
      problems.push(`${name} must be a whole number from ${min} to ${max} (got "${raw}")`);
      return fallback;
    }
    return value;
  };

  const oneOf = <T extends string>(name: string, fallback: T, allowed: readonly T[]): T => {
    const raw = read(name)?.toLowerCase();
    if (raw === undefined) return fallback;
    if (!(allowed as readonly string[]).includes(raw)) {
      problems.push(`${name} must be one of ${allowed.join(', ')} (got "${raw}")`);
      return fallback;
    }
    return raw as T;
  };

  const boolean = (name: string, fallback: boolean): boolean => {
    const raw = read(name)?.toLowerCase();
    if (raw === undefined) return fallback;
    if (['true', '1', 'yes', 'on'].includes(raw)) return true;
    if (['false', '0', 'no', 'off'].includes(raw)) return false;
    problems.push(`${name} must be true or false (got "${raw}")`);
    return fallback;
  };

  // Any case: NODE_ENV=Production must not quietly run with development keys.
  const nodeEnv = (read('NODE_ENV') ?? 'development').toLowerCase();
  const production = nodeEnv === 'production';

  const key = (name: string, minBytes: number, exactBytes?: number, requiredInProduction = true): Buffer | undefined => {
    const raw = read(name);
    if (raw === undefined) {
      if (production && requiredInProduction) problems.push(`${name} is required when NODE_ENV=production`);
      return undefined;
    }
    const decoded = decodeKey(raw);
    if (decoded === undefined) {
      problems.push(`${name} must be hex or base64 (a random key, not a pass phrase): generate one with \`openssl rand -hex 32\``);
      return undefined;
    }
    if (exactBytes !== undefined && decoded.length !== exactBytes) {
      problems.push(`${name} must encode exactly ${exactBytes} bytes (64 hex characters or base64)`);
      return undefined;
    }
    if (decoded.length < minBytes) {
      problems.push(`${name} must be at least ${minBytes} bytes`);
      return undefined;
    }
    return decoded;
  };

  const cookieSecure = (): CookieSecure => {
    const raw = read('COOKIE_SECURE')?.toLowerCase() ?? 'auto';
    const value = raw === 'auto' ? 'auto' : boolean('COOKIE_SECURE', true);
    if (!production) return value;
    if (value === false) problems.push('COOKIE_SECURE=false is not allowed when NODE_ENV=production (the cookies carry device and refresh tokens)');
    return true;
  };

  const databaseUrl = read('DATABASE_URL') ?? 'sqlite:./data/trusted-devices.db';
  const databaseProblem = checkDatabaseUrl(databaseUrl);
  if (databaseProblem) problems.push(`DATABASE_URL ${databaseProblem}`);

  const redisUrl = read('REDIS_URL');
  if (redisUrl !== undefined && !/^rediss?:\/\//.test(redisUrl)) {
    problems.push('REDIS_URL must start with redis:// or rediss://');
  }

  const list = (name: string): string[] | undefined => {
    const raw = read(name);
    if (raw === undefined) return undefined;
    return raw.split(',').map((item) => item.trim()).filter((item) => item !== '');
  };

  const trustProxy = list('TRUST_PROXY');
  for (const entry of trustProxy ?? []) {
    const [address, bits] = entry.split('/');
    const family = isIP(address ?? '');
    const bitsOk = bits === undefined || (/^\d+$/.test(bits) && Number(bits) <= (family === 6 ? 128 : 32));
    if (family === 0 || !bitsOk) problems.push(`TRUST_PROXY entry "${entry}" is not an IP address or CIDR`);
  }

  const corsOrigins = list('CORS_ORIGINS');
  for (const origin of corsOrigins ?? []) {
    if (!/^https?:\/\/[^/\s]+$/.test(origin)) problems.push(`CORS_ORIGINS entry "${origin}" must be an origin like https://app.example.com`);
  }

  const publicUrl = (read('PUBLIC_URL') ?? 'http://localhost:3000').replace(/\/+$/, '');
  let publicOrigin: URL | undefined;
  try {
    publicOrigin = new URL(publicUrl);
    if (!/^https?:$/.test(publicOrigin.protocol)) throw new Error('scheme');
  } catch {
    problems.push(`PUBLIC_URL must be an http(s) URL like https://auth.example.com (got "${publicUrl}")`);
  }
  const webauthnOrigins = list('WEBAUTHN_ORIGINS') ?? (publicOrigin ? [publicOrigin.origin] : []);
  for (const origin of webauthnOrigins) {
    if (!/^https?:\/\/[^/\s]+$/.test(origin)) problems.push(`WEBAUTHN_ORIGINS entry "${origin}" must be an origin like https://app.example.com`);
  }
  const webauthnRpId = (read('WEBAUTHN_RP_ID') ?? publicOrigin?.hostname ?? 'localhost').toLowerCase();
  if (!/^[a-z0-9.-]+$/.test(webauthnRpId)) problems.push(`WEBAUTHN_RP_ID must be a domain name like example.com (got "${webauthnRpId}")`);
  if (publicOrigin && !/^https?:\/\/[^/\s?#]+(\/[^\s?#]*)?$/.test(publicUrl)) problems.push('PUBLIC_URL must be an http(s) URL without query or fragment');
  const smtpUrl = read('SMTP_URL');
  if (smtpUrl !== undefined && !/^smtps?:\/\/[^\s]+$/.test(smtpUrl)) problems.push('SMTP_URL must start with smtp:// or smtps://');
  const mailFrom = read('MAIL_FROM') ?? 'Trusted Devices <no-reply@localhost>';
  if (!/^([^<>\r\n]*<[^\s@<>]+@[^\s@<>]+>|[^\s@<>]+@[^\s@<>]+)$/.test(mailFrom)) problems.push('MAIL_FROM must be an address, optionally with a name: Name <address@example.com>');
  const jwt = jwtKeys(read, production, problems);

  const config: Config = {
    nodeEnv,
    production,
    host: read('HOST') ?? '127.0.0.1',
    port: integer('PORT', 3000, 0, 65535),
    databaseUrl,
    dataDir: read('DATA_DIR') ?? './data',
    redisUrl,
    keys: {
      jwtSecret: key('JWT_SECRET', 32, undefined, jwt.algorithm === 'HS256'),
      jwtSigningKey: jwt.signingKey,
      jwtPreviousKeys: jwt.previousKeys,
      fingerprintKey: key('FINGERPRINT_KEY', 32),
      dataEncryptionKey: key('DATA_ENCRYPTION_KEY', 32, 32),
    },
    accessTokenTtlSeconds: integer('ACCESS_TOKEN_TTL_SECONDS', 900, 30, 86_400),
    boundAccessTokenTtlSeconds: integer('BOUND_ACCESS_TOKEN_TTL_SECONDS', 300, 10, 86_400),
    stepUpMaxAgeSeconds: integer('STEP_UP_MAX_AGE_SECONDS', 600, 30, 86_400),
    refreshTokenTtlSeconds: integer('REFRESH_TOKEN_TTL_SECONDS', 2_592_000, 60, 31_536_000),
    activationTokenTtlSeconds: integer('ACTIVATION_TOKEN_TTL_SECONDS', 300, 30, 3600),
    mfaChallengeTtlSeconds: integer('MFA_CHALLENGE_TTL_SECONDS', 300, 30, 3600),
    deviceTrustTtlDays: integer('DEVICE_TRUST_TTL_DAYS', 30, 1, 365),
    maxTrustedDevices: integer('MAX_TRUSTED_DEVICES', 10, 1, 100),
    rateLimits: oneOf<RateLimitMode>('RATE_LIMITS', 'on', ['on', 'off']),
    trustProxy,
    cookieSecure: cookieSecure(),
    corsOrigins,
    logLevel: oneOf<LogLevel>('LOG_LEVEL', 'info', LOG_LEVELS),
    databasePoolSize: integer('DATABASE_POOL_SIZE', 10, 1, 200),
    databaseStatementTimeoutMs: integer('DATABASE_STATEMENT_TIMEOUT_MS', 5000, 100, 600_000),
    eventRetentionDays: integer('EVENT_RETENTION_DAYS', 90, 1, 3650),
    housekeepingIntervalSeconds: integer('HOUSEKEEPING_INTERVAL_SECONDS', 300, 1, 86_400),
    passwordHashConcurrency: integer('PASSWORD_HASH_CONCURRENCY', availableParallelism(), 1, 64),
    jwtIssuer: read('JWT_ISSUER') ?? 'trusted-devices',
    jwtAudience: read('JWT_AUDIENCE') ?? 'trusted-devices-api',
    publicUrl,
    smtpUrl,
    mailFrom,
    sessionMaxAgeDays: integer('SESSION_MAX_AGE_DAYS', 30, 1, 365),
    sessionIdleDays: integer('SESSION_IDLE_DAYS', 7, 1, 365),
    deviceTokenReuseGraceSeconds: integer('DEVICE_TOKEN_REUSE_GRACE_SECONDS', 30, 0, 600),
    webhook: undefined,
    webauthn: { rpId: webauthnRpId, rpName: read('WEBAUTHN_RP_NAME') ?? 'Trusted Devices', origins: webauthnOrigins },
    jwtAlgorithm: jwt.algorithm,
    geoipMmdbPath: read('GEOIP_MMDB_PATH'),
    impossibleTravelKmh: integer('IMPOSSIBLE_TRAVEL_KMH', 1000, 0, 100_000),
  };
  if (config.geoipMmdbPath !== undefined && !existsSync(config.geoipMmdbPath)) problems.push(`GEOIP_MMDB_PATH names no file ("${config.geoipMmdbPath}")`);

  const webhookUrl = read('WEBHOOK_URL');
  const webhookSecret = read('WEBHOOK_SECRET');
  const webhookTimeout = integer('WEBHOOK_TIMEOUT_SECONDS', 10, 1, 60);
  const webhookAttempts = integer('WEBHOOK_MAX_ATTEMPTS', 16, 1, 50);
  if ((webhookUrl === undefined) !== (webhookSecret === undefined)) problems.push('WEBHOOK_URL and WEBHOOK_SECRET go together: set both or neither');
  if (webhookUrl !== undefined && !isHttpUrl(webhookUrl)) problems.push('WEBHOOK_URL must be an http:// or https:// URL');
  if (webhookSecret !== undefined && !isWebhookSecret(webhookSecret)) {
    problems.push('WEBHOOK_SECRET must be whsec_ followed by the base64 of 24 to 64 random bytes (e.g. whsec_$(openssl rand -base64 32))');
  }
  config.webhook =
    webhookUrl !== undefined && webhookSecret !== undefined
      ? { url: webhookUrl, secret: webhookSecret, timeoutSeconds: webhookTimeout, maxAttempts: webhookAttempts }
      : undefined;

  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(config);
}

/**
 * Keys are hex (an even number of hex digits) or base64/base64url in its
 * canonical form (what encoding the bytes again gives back, padding aside).
 * Anything else is not a key: undefined. There is no UTF-8 fallback: a pass
 * phrase has far less entropy than its length suggests.
 */
export function decodeKey(raw: string): Buffer | undefined {
  if (/^[0-9a-fA-F]+$/.test(raw)) return raw.length % 2 === 0 ? Buffer.from(raw, 'hex') : undefined;
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(raw) || (/[+/]/.test(raw) && /[_-]/.test(raw))) return undefined;
  const bytes = Buffer.from(raw, 'base64');
  const unpadded = raw.replace(/=+$/, '');
  const again = /[_-]/.test(raw) ? bytes.toString('base64url') : bytes.toString('base64').replace(/=+$/, '');
  return again === unpadded ? bytes : undefined;
}

/** undefined when DATABASE_URL names a database this service can open; otherwise what is wrong. */
function checkDatabaseUrl(url: string): string | undefined {
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length);
    // `sqlite:` alone used to open an in-memory database: every restart would lose all data.
    if (path.trim() === '') return 'sqlite: needs a file path (or :memory: explicitly), e.g. sqlite:./data/trusted-devices.db';
    return undefined;
  }
  if (/^postgres(ql)?:\/\//.test(url)) {
    try {
      if (new URL(url).hostname === '') return 'must name a PostgreSQL host, e.g. postgres://user@db.example.com/app';
      return undefined;
    } catch {
      return 'is not a valid postgres:// URL';
    }
  }
  return 'must start with sqlite:, postgres:// or postgresql://';
}

function isHttpUrl(raw: string): boolean {
  try {
    const url = new URL(raw);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.username === '' && url.password === '';
  } catch {
    return false;
  }
}

/** The Standard Webhooks secret form: whsec_ + standard base64 of 24 to 64 bytes. */
export function isWebhookSecret(raw: string): boolean {
  const match = /^whsec_([A-Za-z0-9+/]+={0,2})$/.exec(raw);
  if (!match || match[1]!.length % 4 !== 0) return false;
  const bytes = Buffer.from(match[1]!, 'base64').length;
  return bytes >= 24 && bytes <= 64;
}

/**
 * JWT_ALGORITHM, JWT_SIGNING_KEY, JWT_PREVIOUS_KEYS (docs/integration.md). ES256 by
 * default (docs/performance.md: it verifies faster than EdDSA here); a given
 * signing key decides between ES256 and EdDSA by its type. HS256 only when
 * JWT_ALGORITHM=HS256 says so. In production an asymmetric mode needs
 * JWT_SIGNING_KEY; in development a missing one is generated by src/platform/keys.ts.
 */
function jwtKeys(
  read: (name: string) => string | undefined,
  production: boolean,
  problems: string[],
): { algorithm: JwtAlgorithm; signingKey?: SigningKey; previousKeys: VerificationKey[] } {
  const allowed: readonly JwtAlgorithm[] = [...ASYMMETRIC_ALGORITHMS, 'HS256'];
  const rawAlgorithm = read('JWT_ALGORITHM');
  let chosen: JwtAlgorithm | undefined;
  if (rawAlgorithm !== undefined) {
    chosen = allowed.find((name) => name.toLowerCase() === rawAlgorithm.toLowerCase());
    if (chosen === undefined) problems.push(`JWT_ALGORITHM must be one of ${allowed.join(', ')} (got "${rawAlgorithm}")`);
  }

  let signingKey: SigningKey | undefined;
  const rawSigningKey = read('JWT_SIGNING_KEY');
  if (rawSigningKey !== undefined) {
    try {
      signingKey = parseSigningKey(rawSigningKey);
    } catch (error) {
      problems.push(`JWT_SIGNING_KEY: ${error instanceof KeyFormatError ? error.message : 'not a usable key'}`);
    }
  }

  let previousKeys: VerificationKey[] = [];
  const rawPrevious = read('JWT_PREVIOUS_KEYS');
  if (rawPrevious !== undefined) {
    try {
      previousKeys = parseVerificationKeys(rawPrevious);
    } catch (error) {
      problems.push(`JWT_PREVIOUS_KEYS: ${error instanceof KeyFormatError ? error.message : 'not usable keys'}`);
    }
  }

  const algorithm: JwtAlgorithm = chosen ?? signingKey?.alg ?? 'ES256';
  if (algorithm === 'HS256') {
    if (signingKey) problems.push('JWT_SIGNING_KEY is set but JWT_ALGORITHM=HS256: unset one of them');
    return { algorithm, previousKeys };
  }
  if (signingKey && signingKey.alg !== algorithm) {
    problems.push(`JWT_SIGNING_KEY is a ${signingKey.alg} key but JWT_ALGORITHM=${algorithm}`);
  }
  if (!signingKey && rawSigningKey === undefined && production) {
    problems.push('JWT_SIGNING_KEY is required when NODE_ENV=production (or choose JWT_ALGORITHM=HS256 with JWT_SECRET)');
  }
  return { algorithm, ...(signingKey ? { signingKey } : {}), previousKeys };
}
