/**
 * Bench seeder: fills a database with N users and K active trusted devices
 * each, fast, and writes what a load generator needs to act as those users.
 *
 *   npm run bench:seed -- --database-url sqlite:./data/bench.db --users 200000 \
 *     --devices-per-user 5 --tokens tokens.txt --token-count 10000 [--fixtures fixtures.json]
 *
 * Environment: JWT_SECRET (required: the access tokens are signed with it),
 * FINGERPRINT_KEY and DATA_ENCRYPTION_KEY (needed for the trusted-login and
 * MFA fixtures: stored fingerprint components and encrypted TOTP secrets
 * must be the server's), JWT_ISSUER/JWT_AUDIENCE as for the service.
 *
 * How: the schema is created by the service's own migrations
 * (src/store/migrate.ts); rows go in with prepared statements inside large
 * transactions on SQLite (better-sqlite3 directly), and with one
 * `INSERT … SELECT FROM unnest($1::text[], …)` per table and batch on
 * PostgreSQL. Every user gets the same argon2id hash (OWASP parameters, made
 * once) of BENCH_PASSWORD, so seeding costs no hashing per user.
 *
 * Which users are special (by seeding order, ids are random UUIDs):
 *   - the first `trustedLoginUsers`: TOTP on, and their first device is the
 *     bench's own device (BENCH_DEVICE from 127.0.0.1) with a known device
 *     token: POST /auth/login bypasses MFA for them;
 *   - the next `mfaUsers`: TOTP on with a known secret, 10 known backup codes;
 *   - the next `revokeUsers`: an access token and their device ids, to revoke.
 * Access tokens for the tokens file are for users drawn at random from all.
 */
import { createHash, randomBytes, randomFillSync, randomInt, randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import { systemClock } from '../src/platform/clock.ts';
import { ConfigError, type JwtAlgorithm, type Keys, loadConfig } from '../src/platform/config.ts';
import { connectDatabase } from '../src/store/connect.ts';
import { migrateToLatest } from '../src/store/migrate.ts';
import { createFingerprinter } from '../src/platform/crypto/fingerprint.ts';
import { BACKUP_CODE_COUNT, createBackupCodeHasher, generateBackupCodes } from '../src/features/mfa/backup-codes.ts';
import { accessTokenKeysFor, createAccessTokens } from '../src/platform/crypto/access-tokens.ts';
import { createEncryptor } from '../src/platform/crypto/encryption.ts';
import { createPasswordHasher } from '../src/platform/crypto/passwords.ts';
import { BENCH_CLIENT_IP, BENCH_DEVICE, BENCH_PASSWORD, type DeviceProfile, SEEDED_IPS, SEEDED_PROFILES, fingerprintHeaderOf } from './profiles.ts';

const DAY = 86_400_000;
const HOUR = 3_600_000;
/** Known TOTP secret (base32) of the MFA users; the bench uses their backup codes. */
export const BENCH_TOTP_SECRET = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';

export interface SeedOptions {
  databaseUrl: string;
  users: number;
  devicesPerUser: number;
  /** How many access tokens to return (and write to tokensFile). */
  tokenCount: number;
  tokensFile?: string;
  /** JSON with the trusted-login, MFA and revoke fixtures. */
  fixturesFile?: string;
  trustedLoginUsers?: number;
  mfaUsers?: number;
  revokeUsers?: number;
  keys: Partial<Keys>;
  /** How the service signs access tokens (its JWT_ALGORITHM); the key for it is in keys. */
  jwtAlgorithm: JwtAlgorithm;
  issuer: string;
  audience: string;
  /** Lifetime of the minted access tokens (long enough for a whole bench run). */
  tokenTtlSeconds?: number;
  /** Trust lifetime used for expires_at (the service's DEVICE_TRUST_TTL_DAYS). */
  deviceTrustTtlDays?: number;
  /** Progress on stderr (default true). */
  progress?: boolean;
  /** Label shown in the progress line. */
  label?: string;
}

export interface BenchFixtures {
  password: string;
  userAgent: string;
  fingerprintHeader: string | undefined;
  /** MFA on; the device token makes login skip the second factor. */
  trustedLogins: Array<{ email: string; deviceToken: string }>;
  /** MFA on, no trusted device for the bench's device; each backup code works once. */
  mfaLogins: Array<{ email: string; backupCodes: string[] }>;
  /** Devices to revoke, with an access token of their owner. */
  revokeSets: Array<{ accessToken: string; deviceIds: string[] }>;
}

export interface SeedResult {
  users: number;
  devices: number;
  seconds: number;
  tokens: string[];
  fixtures: BenchFixtures;
}

type Row = unknown[];

const USER_COLUMNS = ['id', 'email', 'password_hash', 'display_name', 'created_at', 'updated_at'] as const;
const DEVICE_COLUMNS = [
  'user_id', 'id', 'status', 'device_token_hash', 'device_name', 'fingerprint', 'components', 'browser', 'os', 'device_type',
  'user_agent', 'ip_address', 'last_ip_address', 'created_at', 'trusted_at', 'last_used_at', 'expires_at', 'revoked_at',
] as const;
const TOTP_COLUMNS = ['user_id', 'secret_encrypted', 'enabled_at', 'last_used_step', 'setup_failures', 'setup_locked_until', 'created_at'] as const;
const BACKUP_COLUMNS = ['id', 'user_id', 'code_hash', 'used_at', 'created_at'] as const;
const SESSION_COLUMNS = [
  'id', 'user_id', 'device_id', 'device_name', 'browser', 'os', 'device_type', 'ip_address', 'user_agent', 'mfa_method',
  'created_at', 'last_active_at', 'expires_at', 'idle_expires_at', 'ended_at', 'end_cause',
] as const;

/** PostgreSQL array types of each column, for unnest(). */
const PG_TYPES: Record<string, string> = {
  created_at: 'bigint', updated_at: 'bigint', trusted_at: 'bigint', last_used_at: 'bigint', expires_at: 'bigint', revoked_at: 'bigint',
  enabled_at: 'bigint', last_used_step: 'bigint', setup_locked_until: 'bigint', used_at: 'bigint', setup_failures: 'integer',
  last_active_at: 'bigint', idle_expires_at: 'bigint', ended_at: 'bigint',
};

interface Batch {
  users: Row[];
  devices: Row[];
  totp: Row[];
  backupCodes: Row[];
  sessions: Row[];
}

interface Sink {
  write(batch: Batch): Promise<void>;
  close(): Promise<void>;
}

function sqliteSink(path: string): Sink {
  const db = new BetterSqlite3(path);
  // Seeding only (a bench database, nobody else has it open): no journal and
  // no fsync while loading, a big page cache for the random index inserts.
  // The service puts it back in WAL mode when it opens it (and so does close()).
  db.pragma('locking_mode = EXCLUSIVE');
  db.pragma('journal_mode = OFF');
  db.pragma('synchronous = OFF');
  db.pragma('cache_size = -524288');
  db.pragma('temp_store = MEMORY');
  const insert = (table: string, columns: readonly string[]) =>
    db.prepare(`insert into ${table} (${columns.join(', ')}) values (${columns.map(() => '?').join(', ')})`);
  const users = insert('users', USER_COLUMNS);
  const devices = insert('trusted_devices', DEVICE_COLUMNS);
  const totp = insert('totp_secrets', TOTP_COLUMNS);
  const backup = insert('backup_codes', BACKUP_COLUMNS);
  const sessions = insert('sessions', SESSION_COLUMNS);
  // Bulk load: the device table's secondary indexes (random keys: token hash,
  // id) are dropped and rebuilt afterwards with their exact definitions, which
  // sorts once instead of inserting 1M random keys one by one.
  const indexes = db
    .prepare(`select name, sql from sqlite_master where type = 'index' and tbl_name = 'trusted_devices' and sql is not null`)
    .all() as Array<{ name: string; sql: string }>;
  for (const index of indexes) db.exec(`drop index ${index.name}`);
  const writeBatch = db.transaction((batch: Batch) => {
    for (const row of batch.users) users.run(row);
    for (const row of batch.devices) devices.run(row);
    for (const row of batch.totp) totp.run(row);
    for (const row of batch.backupCodes) backup.run(row);
    for (const row of batch.sessions) sessions.run(row);
  });
  return {
    async write(batch) {
      writeBatch(batch);
    },
    async close() {
      for (const index of indexes) db.exec(index.sql);
      db.pragma('journal_mode = WAL');
      db.close();
    },
  };
}

async function postgresSink(url: string): Promise<Sink> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const insert = async (table: string, columns: readonly string[], rows: Row[]) => {
    if (rows.length === 0) return;
    const arrays = columns.map((_, i) => rows.map((row) => row[i]));
    const casts = columns.map((column, i) => `$${i + 1}::${PG_TYPES[column] ?? 'text'}[]`);
    await client.query(`insert into ${table} (${columns.join(', ')}) select * from unnest(${casts.join(', ')})`, arrays);
  };
  return {
    async write(batch) {
      await client.query('begin');
      try {
        await insert('users', USER_COLUMNS, batch.users);
        await insert('trusted_devices', DEVICE_COLUMNS, batch.devices);
        await insert('totp_secrets', TOTP_COLUMNS, batch.totp);
        await insert('backup_codes', BACKUP_COLUMNS, batch.backupCodes);
        await insert('sessions', SESSION_COLUMNS, batch.sessions);
        await client.query('commit');
      } catch (error) {
        await client.query('rollback').catch(() => undefined);
        throw error;
      }
    },
    async close() {
      await client.query('analyze users, trusted_devices, totp_secrets, backup_codes, sessions');
      await client.end();
    },
  };
}

function progressReporter(enabled: boolean, label: string, totalUsers: number, totalDevices: number) {
  const started = performance.now();
  let lastDraw = 0;
  const tty = process.stderr.isTTY === true;
  let lastTenth = -1;
  return (users: number, devices: number, done = false) => {
    if (!enabled) return;
    const now = performance.now();
    const seconds = (now - started) / 1000;
    const line = `${label}: users ${users.toLocaleString('en-US')}/${totalUsers.toLocaleString('en-US')}, devices ${devices.toLocaleString('en-US')}/${totalDevices.toLocaleString('en-US')}, ${seconds.toFixed(1)} s, ${Math.round(devices / Math.max(seconds, 0.001)).toLocaleString('en-US')} devices/s`;
    if (tty) {
      if (done || now - lastDraw > 200) {
        process.stderr.write(`\r\x1b[K${line}${done ? '\n' : ''}`);
        lastDraw = now;
      }
    } else {
      const tenth = Math.floor((users / Math.max(totalUsers, 1)) * 10);
      if (done || tenth > lastTenth) {
        process.stderr.write(`${line}\n`);
        lastTenth = tenth;
      }
    }
  };
}

/** Stored values of one seeded device shape (components as the server would compute them). */
interface Shape {
  fingerprint: string;
  components: string;
  browser: string;
  os: string;
  deviceType: string;
  userAgent: string;
  ip: string;
  name: string;
}

function shapesFor(fingerprintKey: Buffer, profiles: readonly DeviceProfile[], ips: readonly string[]): Shape[] {
  const fingerprinter = createFingerprinter(fingerprintKey);
  return profiles.flatMap((profile) =>
    ips.map((ip) => {
      const fp = fingerprinter.compute({ ip, userAgent: profile.userAgent, clientSignals: fingerprintHeaderOf(profile) });
      return {
        fingerprint: fp.fingerprint,
        components: JSON.stringify(fp.components),
        browser: fp.browser,
        os: fp.os,
        deviceType: fp.deviceType,
        userAgent: profile.userAgent,
        ip,
        name: `${fp.browser} on ${fp.os}`,
      };
    }),
  );
}

export async function seed(options: SeedOptions): Promise<SeedResult> {
  const started = performance.now();
  const { users: userCount, devicesPerUser } = options;
  if (!Number.isInteger(userCount) || userCount < 1) throw new Error('--users must be a positive whole number');
  if (!Number.isInteger(devicesPerUser) || devicesPerUser < 0) throw new Error('--devices-per-user must be a whole number');
  const { fingerprintKey, dataEncryptionKey } = options.keys;
  const canTrust = fingerprintKey !== undefined && dataEncryptionKey !== undefined && devicesPerUser > 0;
  const trustedCount = canTrust ? Math.min(options.trustedLoginUsers ?? 0, userCount) : 0;
  const mfaCount = dataEncryptionKey !== undefined ? Math.min(options.mfaUsers ?? 0, userCount - trustedCount) : 0;
  const revokeCount = devicesPerUser > 0 ? Math.min(options.revokeUsers ?? 0, userCount - trustedCount - mfaCount) : 0;

  // Schema: the service's own migrations, through the service's own connection code.
  const handle = connectDatabase(options.databaseUrl);
  try {
    await migrateToLatest(handle.db);
  } finally {
    await handle.close();
  }
  const sink = options.databaseUrl.startsWith('sqlite:')
    ? sqliteSink(options.databaseUrl.slice('sqlite:'.length))
    : await postgresSink(options.databaseUrl);

  const now = systemClock.now();
  const trustTtlMs = (options.deviceTrustTtlDays ?? 30) * DAY;
  const passwordHash = await createPasswordHasher().hash(BENCH_PASSWORD);
  const shapes = shapesFor(fingerprintKey ?? randomBytes(32), SEEDED_PROFILES, SEEDED_IPS);
  const benchShape = shapesFor(fingerprintKey ?? randomBytes(32), [BENCH_DEVICE], [BENCH_CLIENT_IP])[0]!;
  const encryptor = dataEncryptionKey ? createEncryptor(dataEncryptionKey) : undefined;
  const hashBackupCode = dataEncryptionKey ? createBackupCodeHasher(dataEncryptionKey) : undefined;
  const accessTokens = createAccessTokens({
    keys: accessTokenKeysFor(options.jwtAlgorithm, options.keys),
    issuer: options.issuer,
    audience: options.audience,
    ttlSeconds: options.tokenTtlSeconds ?? 4 * 3600,
    clock: systemClock,
  });
  const tag = randomBytes(3).toString('hex');

  const fixtures: BenchFixtures = {
    password: BENCH_PASSWORD,
    userAgent: BENCH_DEVICE.userAgent,
    fingerprintHeader: fingerprintHeaderOf(BENCH_DEVICE),
    trustedLogins: [],
    mfaLogins: [],
    revokeSets: [],
  };
  // Users are written in primary-key order (their ids sorted), so the device
  // table is appended to rather than split at random: what keeps 1M devices
  // well under a minute. Roles go to users picked at random across the key space.
  const userIds: string[] = Array.from({ length: userCount }, () => randomUUID()).sort();
  const sessionIds: string[] = Array.from({ length: userCount }, () => randomUUID());
  const ROLE_TRUSTED = 1, ROLE_MFA = 2, ROLE_REVOKE = 3;
  const roles = new Uint8Array(userCount);
  {
    const order = Array.from({ length: userCount }, (_, i) => i);
    const special = trustedCount + mfaCount + revokeCount;
    for (let k = 0; k < special; k++) {
      const j = k + randomInt(userCount - k);
      [order[k], order[j]] = [order[j]!, order[k]!];
      roles[order[k]!] = k < trustedCount ? ROLE_TRUSTED : k < trustedCount + mfaCount ? ROLE_MFA : ROLE_REVOKE;
    }
  }
  const totalDevices = userCount * devicesPerUser;
  const report = progressReporter(options.progress ?? true, options.label ?? 'seed', userCount, totalDevices);
  const USERS_PER_BATCH = 10_000;
  const random = Buffer.alloc(32 * devicesPerUser * USERS_PER_BATCH);
  let devicesWritten = 0;

  for (let start = 0; start < userCount; start += USERS_PER_BATCH) {
    const end = Math.min(start + USERS_PER_BATCH, userCount);
    randomFillSync(random);
    const batch: Batch = { users: [], devices: [], totp: [], backupCodes: [], sessions: [] };
    for (let i = start; i < end; i++) {
      const userId = userIds[i]!;
      const email = `bench-${tag}-${i}@example.com`;
      const createdAt = now - 60 * DAY + randomInt(30 * DAY);
      batch.users.push([userId, email, passwordHash, null, createdAt, createdAt]);
      // One live session per user (signed in an hour ago from one of the seeded
      // shapes): the bench's access tokens carry its id, so the bearer check
      // reads a real row. last_active_at is old enough that a session's first
      // request in the bench also does the once-a-minute touch, as in production.
      const sessionShape = shapes[i % shapes.length]!;
      const sessionId = sessionIds[i]!;
      batch.sessions.push([
        sessionId, userId, null, sessionShape.name, sessionShape.browser, sessionShape.os, sessionShape.deviceType, sessionShape.ip,
        sessionShape.userAgent, 'totp', now - HOUR, now - HOUR, now - HOUR + 30 * DAY, now - HOUR + 7 * DAY, null, null,
      ]);

      const trusted = roles[i] === ROLE_TRUSTED;
      const mfa = roles[i] === ROLE_MFA;
      const revoke = roles[i] === ROLE_REVOKE;
      if ((trusted || mfa) && encryptor && hashBackupCode) {
        batch.totp.push([userId, encryptor.encrypt(BENCH_TOTP_SECRET, userId), createdAt, null, 0, null, createdAt]);
        if (mfa) {
          const codes = generateBackupCodes(BACKUP_CODE_COUNT);
          for (const code of codes) batch.backupCodes.push([randomUUID(), userId, hashBackupCode(code), null, createdAt]);
          fixtures.mfaLogins.push({ email, backupCodes: codes });
        }
      }

      const deviceIds: string[] = [];
      for (let d = 0; d < devicesPerUser; d++) {
        const offset = ((i - start) * devicesPerUser + d) * 32;
        let tokenHash = random.toString('hex', offset, offset + 32);
        let shape = shapes[(i * 7 + d * 3) % shapes.length]!;
        if (trusted && d === 0) {
          const deviceToken = `tdd_${randomBytes(32).toString('base64url')}`;
          tokenHash = createHash('sha256').update(deviceToken).digest('hex');
          shape = benchShape;
          fixtures.trustedLogins.push({ email, deviceToken });
        }
        const trustedAt = now - randomInt(20 * DAY) - 60_000;
        const lastUsedAt = trustedAt + randomInt(now - trustedAt);
        const deviceId = randomUUID();
        deviceIds.push(deviceId);
        batch.devices.push([
          userId, deviceId, 'active', tokenHash, shape.name, shape.fingerprint, shape.components, shape.browser, shape.os, shape.deviceType,
          shape.userAgent, shape.ip, shape.ip, trustedAt - randomInt(300_000), trustedAt, lastUsedAt, trustedAt + trustTtlMs, null,
        ]);
      }
      if (revoke) fixtures.revokeSets.push({ accessToken: accessTokens.issue({ userId, sessionId, authTime: now, amr: ['pwd'] }), deviceIds });
    }
    await sink.write(batch);
    devicesWritten += batch.devices.length;
    report(end, devicesWritten);
  }
  await sink.close();
  report(userCount, devicesWritten, true);

  const tokens: string[] = [];
  for (let t = 0; t < options.tokenCount; t++) {
    const i = randomInt(userCount);
    tokens.push(accessTokens.issue({ userId: userIds[i]!, sessionId: sessionIds[i]!, authTime: Date.now(), amr: ['pwd'] }));
  }
  if (options.tokensFile) {
    mkdirSync(dirname(options.tokensFile), { recursive: true });
    writeFileSync(options.tokensFile, tokens.length > 0 ? `${tokens.join('\n')}\n` : '');
  }
  if (options.fixturesFile) {
    mkdirSync(dirname(options.fixturesFile), { recursive: true });
    writeFileSync(options.fixturesFile, JSON.stringify(fixtures));
  }
  return { users: userCount, devices: devicesWritten, seconds: (performance.now() - started) / 1000, tokens, fixtures };
}

/** Keys, issuer and audience exactly as the service reads them from the environment. */
export function benchKeysFromEnv(env: NodeJS.ProcessEnv): {
  keys: Partial<Keys>;
  jwtAlgorithm: JwtAlgorithm;
  issuer: string;
  audience: string;
  deviceTrustTtlDays: number;
} {
  const pick = (name: string) => (env[name] !== undefined ? { [name]: env[name] } : {});
  const config = loadConfig({
    ...pick('JWT_SECRET'),
    ...pick('JWT_ALGORITHM'),
    ...pick('JWT_SIGNING_KEY'),
    ...pick('JWT_PREVIOUS_KEYS'),
    ...pick('FINGERPRINT_KEY'),
    ...pick('DATA_ENCRYPTION_KEY'),
    ...pick('JWT_ISSUER'),
    ...pick('JWT_AUDIENCE'),
    ...pick('DEVICE_TRUST_TTL_DAYS'),
  });
  if (config.jwtAlgorithm === 'HS256' ? !config.keys.jwtSecret : !config.keys.jwtSigningKey) {
    throw new ConfigError([`${config.jwtAlgorithm === 'HS256' ? 'JWT_SECRET' : 'JWT_SIGNING_KEY'} is required: the access tokens are signed with it`]);
  }
  return {
    keys: config.keys,
    jwtAlgorithm: config.jwtAlgorithm,
    issuer: config.jwtIssuer,
    audience: config.jwtAudience,
    deviceTrustTtlDays: config.deviceTrustTtlDays,
  };
}

async function cli(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'database-url': { type: 'string', default: process.env.DATABASE_URL ?? 'sqlite:./data/bench.db' },
      users: { type: 'string', default: '200000' },
      'devices-per-user': { type: 'string', default: '5' },
      tokens: { type: 'string' },
      'token-count': { type: 'string', default: '10000' },
      fixtures: { type: 'string' },
      'trusted-login-users': { type: 'string', default: '1000' },
      'mfa-users': { type: 'string', default: '1000' },
      'revoke-users': { type: 'string', default: '1000' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(
      'npm run bench:seed -- [--database-url URL] [--users N] [--devices-per-user K] [--tokens FILE] [--token-count M]\n' +
        '                      [--fixtures FILE] [--trusted-login-users N] [--mfa-users N] [--revoke-users N]\n' +
        'Env: JWT_SIGNING_KEY (or JWT_ALGORITHM=HS256 + JWT_SECRET; required), FINGERPRINT_KEY and DATA_ENCRYPTION_KEY (for the login/MFA fixtures).\n',
    );
    return;
  }
  const int = (name: string, raw: string | undefined): number => {
    const value = Number(raw);
    if (!/^\d+$/.test(raw ?? '') || !Number.isSafeInteger(value)) throw new Error(`--${name} must be a whole number (got "${raw}")`);
    return value;
  };
  const { keys, jwtAlgorithm, issuer, audience, deviceTrustTtlDays } = benchKeysFromEnv(process.env);
  const result = await seed({
    databaseUrl: values['database-url']!,
    users: int('users', values.users),
    devicesPerUser: int('devices-per-user', values['devices-per-user']),
    tokenCount: values.tokens ? int('token-count', values['token-count']) : 0,
    ...(values.tokens ? { tokensFile: values.tokens } : {}),
    ...(values.fixtures ? { fixturesFile: values.fixtures } : {}),
    trustedLoginUsers: int('trusted-login-users', values['trusted-login-users']),
    mfaUsers: int('mfa-users', values['mfa-users']),
    revokeUsers: int('revoke-users', values['revoke-users']),
    keys,
    jwtAlgorithm,
    issuer,
    audience,
    deviceTrustTtlDays,
  });
  process.stderr.write(
    `seeded ${result.users.toLocaleString('en-US')} users and ${result.devices.toLocaleString('en-US')} devices in ${result.seconds.toFixed(1)} s` +
      `${values.tokens ? `; ${result.tokens.length} access tokens in ${values.tokens}` : ''}${values.fixtures ? `; fixtures in ${values.fixtures}` : ''}\n`,
  );
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  cli().catch((error) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
