/**
 * loadConfig (README "Configuration", production keys in docs/security.md) and resolveKeys (development keys
 * generated once into DATA_DIR/keys.json, mode 0600).
 */
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { calculateJwkThumbprint, type JWK } from 'jose';
import { ConfigError, decodeKey, loadConfig } from '../src/platform/config.ts';
import { resolveKeys } from '../src/platform/keys.ts';
import { generateSigningKeyPem, parseSigningKey } from '../src/platform/crypto/signing-keys.ts';

const hex32 = () => randomBytes(32).toString('hex');
const es256Pem = () => generateSigningKeyPem('ES256');
const productionKeys = () => ({
  JWT_SIGNING_KEY: Buffer.from(es256Pem()).toString('base64'),
  FINGERPRINT_KEY: hex32(),
  DATA_ENCRYPTION_KEY: hex32(),
});

function configError(env: Record<string, string | undefined>): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    return error;
  }
  assert.fail('loadConfig accepted an invalid configuration');
}

/** The variable names a ConfigError mentions, in its problems and in its message. */
function namedVariables(error: ConfigError, candidates: readonly string[]): string[] {
  const named = candidates.filter((name) => error.problems.some((p) => p.includes(name)));
  for (const name of named) assert.ok(error.message.includes(name), `${name} is in the message too`);
  return named.sort();
}

describe('loadConfig', () => {
  test('an empty environment gives the defaults of README "Configuration"', () => {
    const config = loadConfig({});
    assert.equal(config.host, '127.0.0.1');
    assert.equal(config.port, 3000);
    assert.equal(config.databaseUrl, 'sqlite:./data/trusted-devices.db');
    assert.equal(config.redisUrl, undefined);
    assert.equal(config.keys.jwtSecret, undefined);
    assert.equal(config.jwtAlgorithm, 'ES256');
    assert.equal(config.keys.jwtSigningKey, undefined);
    assert.deepEqual(config.keys.jwtPreviousKeys, []);
    assert.equal(config.keys.fingerprintKey, undefined);
    assert.equal(config.keys.dataEncryptionKey, undefined);
    assert.equal(config.accessTokenTtlSeconds, 900);
    assert.equal(config.refreshTokenTtlSeconds, 2_592_000);
    assert.equal(config.activationTokenTtlSeconds, 300);
    assert.equal(config.mfaChallengeTtlSeconds, 300);
    assert.equal(config.deviceTrustTtlDays, 30);
    assert.equal(config.maxTrustedDevices, 10);
    assert.equal(config.passwordHashConcurrency, availableParallelism());
    assert.equal(config.rateLimits, 'on');
    assert.equal(config.trustProxy, undefined);
    assert.equal(config.cookieSecure, 'auto');
    assert.equal(config.corsOrigins, undefined);
    assert.equal(config.logLevel, 'info');
    assert.equal(config.production, false);
    assert.ok(Object.isFrozen(config));
  });

  test('blank values count as unset', () => {
    const config = loadConfig({ PORT: '', LOG_LEVEL: '   ', DATABASE_URL: '' });
    assert.equal(config.port, 3000);
    assert.equal(config.logLevel, 'info');
    assert.equal(config.databaseUrl, 'sqlite:./data/trusted-devices.db');
  });

  test('valid values are read', () => {
    const keys = productionKeys();
    const config = loadConfig({
      NODE_ENV: 'production',
      ...keys,
      HOST: '0.0.0.0',
      PORT: '8080',
      DATABASE_URL: 'postgres://u:p@db:5432/app',
      REDIS_URL: 'redis://cache:6379',
      ACCESS_TOKEN_TTL_SECONDS: '600',
      REFRESH_TOKEN_TTL_SECONDS: '86400',
      ACTIVATION_TOKEN_TTL_SECONDS: '120',
      MFA_CHALLENGE_TTL_SECONDS: '180',
      DEVICE_TRUST_TTL_DAYS: '7',
      MAX_TRUSTED_DEVICES: '3',
      RATE_LIMITS: 'off',
      TRUST_PROXY: '10.0.0.1, 192.168.0.0/16, ::1',
      COOKIE_SECURE: 'auto',
      CORS_ORIGINS: 'https://app.example.com,http://localhost:5173',
      LOG_LEVEL: 'debug',
    });
    assert.equal(config.production, true);
    assert.equal(config.host, '0.0.0.0');
    assert.equal(config.port, 8080);
    assert.equal(config.databaseUrl, 'postgres://u:p@db:5432/app');
    assert.equal(config.redisUrl, 'redis://cache:6379');
    assert.equal(config.accessTokenTtlSeconds, 600);
    assert.equal(config.refreshTokenTtlSeconds, 86_400);
    assert.equal(config.activationTokenTtlSeconds, 120);
    assert.equal(config.mfaChallengeTtlSeconds, 180);
    assert.equal(config.deviceTrustTtlDays, 7);
    assert.equal(config.maxTrustedDevices, 3);
    assert.equal(config.rateLimits, 'off');
    assert.deepEqual(config.trustProxy, ['10.0.0.1', '192.168.0.0/16', '::1']);
    assert.equal(config.cookieSecure, true, 'production is always Secure, even with COOKIE_SECURE=auto');
    assert.deepEqual(config.corsOrigins, ['https://app.example.com', 'http://localhost:5173']);
    assert.equal(config.logLevel, 'debug');
    assert.equal(config.jwtAlgorithm, 'ES256');
    assert.equal(config.keys.jwtSigningKey!.kid, parseSigningKey(keys.JWT_SIGNING_KEY).kid);
    assert.equal(config.keys.jwtSecret, undefined, 'no HMAC secret is needed (nor generated) with an asymmetric key');
    assert.deepEqual(config.keys.fingerprintKey, Buffer.from(keys.FINGERPRINT_KEY, 'hex'));
    assert.deepEqual(config.keys.dataEncryptionKey, Buffer.from(keys.DATA_ENCRYPTION_KEY, 'hex'));
  });

  test('PASSWORD_HASH_CONCURRENCY: the hashing line\'s slots, 1 to 64', () => {
    assert.equal(loadConfig({ PASSWORD_HASH_CONCURRENCY: '1' }).passwordHashConcurrency, 1);
    for (const bad of ['0', '65', 'two']) assert.throws(() => loadConfig({ PASSWORD_HASH_CONCURRENCY: bad }), /PASSWORD_HASH_CONCURRENCY/);
  });

  test('sqlite::memory: and postgresql:// are accepted database URLs', () => {
    assert.equal(loadConfig({ DATABASE_URL: 'sqlite::memory:' }).databaseUrl, 'sqlite::memory:');
    assert.equal(loadConfig({ DATABASE_URL: 'postgresql://db/app' }).databaseUrl, 'postgresql://db/app');
  });

  test('every invalid variable is named, all at once', () => {
    const bad: Record<string, string> = {
      PORT: '70000',
      DATABASE_URL: 'mysql://db/app',
      REDIS_URL: 'http://cache',
      ACCESS_TOKEN_TTL_SECONDS: 'fifteen',
      REFRESH_TOKEN_TTL_SECONDS: '-5',
      ACTIVATION_TOKEN_TTL_SECONDS: '1.5',
      MFA_CHALLENGE_TTL_SECONDS: '0',
      DEVICE_TRUST_TTL_DAYS: '1e3',
      MAX_TRUSTED_DEVICES: '0x10',
      RATE_LIMITS: 'sometimes',
      TRUST_PROXY: 'not-an-ip',
      COOKIE_SECURE: 'maybe',
      CORS_ORIGINS: 'app.example.com',
      LOG_LEVEL: 'verbose',
      JWT_SECRET: 'short',
    };
    const error = configError(bad);
    assert.deepEqual(namedVariables(error, Object.keys(bad)), Object.keys(bad).sort());
    assert.equal(error.problems.length, Object.keys(bad).length, error.message);
    // The message names the bad values so the operator can find them, but never a secret.
    assert.ok(!error.message.includes('"short"'));
  });

  for (const [name, value] of [
    ['PORT', 'abc'],
    ['PORT', '-1'],
    ['ACCESS_TOKEN_TTL_SECONDS', '5'],
    ['DEVICE_TRUST_TTL_DAYS', '366'],
    ['MAX_TRUSTED_DEVICES', '101'],
    ['TRUST_PROXY', '10.0.0.0/33'],
    ['TRUST_PROXY', '10.0.0.1,bogus'],
    ['CORS_ORIGINS', 'https://app.example.com/path'],
    ['DATA_ENCRYPTION_KEY', randomBytes(16).toString('hex')],
    ['DATA_ENCRYPTION_KEY', randomBytes(48).toString('hex')],
  ] as const) {
    test(`${name}=${value.slice(0, 24)} is rejected, naming ${name}`, () => {
      assert.deepEqual(namedVariables(configError({ [name]: value }), [name]), [name]);
    });
  }

  test('production without JWT_SIGNING_KEY, FINGERPRINT_KEY and DATA_ENCRYPTION_KEY names all three (JWT_SECRET is not needed)', () => {
    const error = configError({ NODE_ENV: 'production' });
    const names = ['JWT_SIGNING_KEY', 'FINGERPRINT_KEY', 'DATA_ENCRYPTION_KEY'];
    assert.deepEqual(namedVariables(error, names), [...names].sort());
    assert.equal(error.problems.length, 3);
    assert.ok(!error.problems.some((p) => p.startsWith('JWT_SECRET')), 'JWT_SECRET is not asked for');
    // One missing is still refused, naming only that one.
    const { FINGERPRINT_KEY: _omit, ...two } = productionKeys();
    assert.deepEqual(namedVariables(configError({ NODE_ENV: 'production', ...two }), names), ['FINGERPRINT_KEY']);
  });

  test('production with JWT_ALGORITHM=HS256 needs JWT_SECRET instead of JWT_SIGNING_KEY', () => {
    const { JWT_SIGNING_KEY: _signing, ...rest } = productionKeys();
    const error = configError({ NODE_ENV: 'production', JWT_ALGORITHM: 'HS256', ...rest });
    assert.deepEqual(error.problems, ['JWT_SECRET is required when NODE_ENV=production']);
    const config = loadConfig({ NODE_ENV: 'production', JWT_ALGORITHM: 'hs256', JWT_SECRET: hex32(), ...rest });
    assert.equal(config.jwtAlgorithm, 'HS256');
    assert.equal(config.keys.jwtSecret!.length, 32);
    // Without the explicit choice, a JWT_SECRET alone does not start production.
    assert.deepEqual(namedVariables(configError({ NODE_ENV: 'production', JWT_SECRET: hex32(), ...rest }), ['JWT_SIGNING_KEY']), ['JWT_SIGNING_KEY']);
  });

  test('production problems and other problems are reported together', () => {
    const error = configError({ NODE_ENV: 'production', PORT: 'x', LOG_LEVEL: 'loud' });
    assert.deepEqual(namedVariables(error, ['JWT_SIGNING_KEY', 'FINGERPRINT_KEY', 'DATA_ENCRYPTION_KEY', 'PORT', 'LOG_LEVEL']), [
      'DATA_ENCRYPTION_KEY',
      'FINGERPRINT_KEY',
      'JWT_SIGNING_KEY',
      'LOG_LEVEL',
      'PORT',
    ]);
  });

  test('JWT_SIGNING_KEY is read as PEM, private JWK, or base64 of either; its type decides ES256 or EdDSA', () => {
    const pem = es256Pem();
    const kid = parseSigningKey(pem).kid;
    const jwk = JSON.stringify(createPrivateKey(pem).export({ format: 'jwk' }));
    for (const form of [pem, Buffer.from(pem).toString('base64'), jwk, Buffer.from(jwk).toString('base64url')]) {
      const config = loadConfig({ JWT_SIGNING_KEY: form });
      assert.equal(config.jwtAlgorithm, 'ES256');
      assert.equal(config.keys.jwtSigningKey!.kid, kid, 'the same key has the same kid in every form');
    }
    const ed = loadConfig({ JWT_SIGNING_KEY: generateSigningKeyPem('EdDSA') });
    assert.equal(ed.jwtAlgorithm, 'EdDSA');
    assert.equal(ed.keys.jwtSigningKey!.jwk.crv, 'Ed25519');
    // A JWK's own kid is kept.
    const named = JSON.stringify({ ...JSON.parse(jwk), kid: '2026-11' });
    assert.equal(loadConfig({ JWT_SIGNING_KEY: named }).keys.jwtSigningKey!.kid, '2026-11');
  });

  test("a key's id is its RFC 7638 thumbprint, the same as jose's calculateJwkThumbprint", async () => {
    for (const alg of ['ES256', 'EdDSA'] as const) {
      const key = parseSigningKey(generateSigningKeyPem(alg));
      assert.equal(key.kid, await calculateJwkThumbprint(key.publicKey.export({ format: 'jwk' }) as JWK, 'sha256'));
    }
  });

  test('an unusable JWT_SIGNING_KEY, JWT_PREVIOUS_KEYS or JWT_ALGORITHM is named', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    const publicOnly = createPublicKey(es256Pem()).export({ format: 'pem', type: 'spki' }).toString();
    for (const [env, name] of [
      [{ JWT_SIGNING_KEY: 'not a key' }, 'JWT_SIGNING_KEY'],
      [{ JWT_SIGNING_KEY: rsa }, 'JWT_SIGNING_KEY'],
      [{ JWT_SIGNING_KEY: p384 }, 'JWT_SIGNING_KEY'],
      [{ JWT_SIGNING_KEY: publicOnly }, 'JWT_SIGNING_KEY'],
      [{ JWT_SIGNING_KEY: '{"kty":"EC"' }, 'JWT_SIGNING_KEY'],
      [{ JWT_SIGNING_KEY: generateSigningKeyPem('EdDSA'), JWT_ALGORITHM: 'ES256' }, 'JWT_SIGNING_KEY'],
      [{ JWT_SIGNING_KEY: es256Pem(), JWT_ALGORITHM: 'HS256', JWT_SECRET: hex32() }, 'JWT_SIGNING_KEY'],
      [{ JWT_ALGORITHM: 'RS256' }, 'JWT_ALGORITHM'],
      [{ JWT_ALGORITHM: 'none' }, 'JWT_ALGORITHM'],
      [{ JWT_PREVIOUS_KEYS: 'garbage' }, 'JWT_PREVIOUS_KEYS'],
      [{ JWT_PREVIOUS_KEYS: rsa }, 'JWT_PREVIOUS_KEYS'],
      [{ JWT_PREVIOUS_KEYS: '[{"kty":"EC","crv":"P-256"}]' }, 'JWT_PREVIOUS_KEYS'],
    ] as const) {
      assert.deepEqual(namedVariables(configError(env), [name]), [name], JSON.stringify(env).slice(0, 80));
    }
  });

  test('JWT_PREVIOUS_KEYS takes public or private keys as PEM blocks, a JSON array, a JWK set or base64 items', () => {
    const pems = [es256Pem(), es256Pem(), generateSigningKeyPem('EdDSA')];
    const kids = pems.map((pem) => parseSigningKey(pem).kid);
    const publicPem = (pem: string) => createPublicKey(pem).export({ format: 'pem', type: 'spki' }).toString();
    const publicJwk = (pem: string) => createPublicKey(pem).export({ format: 'jwk' });
    const forms = [
      pems.join('\n'),
      pems.map(publicPem).join(''),
      JSON.stringify(pems.map(publicJwk)),
      JSON.stringify({ keys: pems.map(publicJwk) }),
      JSON.stringify(pems),
      pems.map((pem) => Buffer.from(pem).toString('base64')).join(','),
      pems.map((pem) => Buffer.from(JSON.stringify(publicJwk(pem))).toString('base64')).join(', '),
    ];
    for (const form of forms) {
      const keys = loadConfig({ JWT_PREVIOUS_KEYS: form }).keys.jwtPreviousKeys!;
      assert.deepEqual(keys.map((key) => key.kid), kids, form.slice(0, 60));
      assert.deepEqual(keys.map((key) => key.alg), ['ES256', 'ES256', 'EdDSA']);
    }
  });

  test('a JWT_SECRET under 32 bytes is rejected, in development and in production', () => {
    for (const secret of ['short', 'x'.repeat(31), randomBytes(31).toString('hex'), randomBytes(16).toString('base64')]) {
      assert.deepEqual(namedVariables(configError({ JWT_SECRET: secret }), ['JWT_SECRET']), ['JWT_SECRET'], secret);
      assert.ok(
        namedVariables(configError({ NODE_ENV: 'production', ...productionKeys(), JWT_SECRET: secret }), ['JWT_SECRET']).includes('JWT_SECRET'),
      );
    }
    // 32 bytes in any accepted encoding is enough.
    for (const secret of [hex32(), randomBytes(32).toString('base64'), randomBytes(32).toString('base64url'), randomBytes(48).toString('base64')]) {
      assert.equal(loadConfig({ JWT_SECRET: secret }).keys.jwtSecret!.length >= 32, true, secret);
    }
  });

  test('a pass phrase is never a key (no UTF-8 fallback), whatever its length', () => {
    for (const phrase of ['Tr0ub4dor&3 is my very long secret pass phrase for JWTs!', 'correct horse battery staple correct horse battery staple', 'p'.repeat(40) + '!']) {
      for (const name of ['JWT_SECRET', 'FINGERPRINT_KEY', 'DATA_ENCRYPTION_KEY']) {
        const error = configError({ [name]: phrase });
        assert.deepEqual(namedVariables(error, [name]), [name], `${name}=${phrase}`);
        assert.match(error.message, /hex or base64/);
        assert.ok(!error.message.includes(phrase), 'the value itself is not echoed');
      }
    }
    assert.equal(decodeKey('abc'), undefined, 'odd hex');
    assert.equal(decodeKey(`${randomBytes(32).toString('base64').slice(0, 20)}-_${randomBytes(8).toString('hex')}`), undefined, 'mixed alphabets');
  });

  test('DATABASE_URL=sqlite: with no path, and unknown schemes, are refused', () => {
    for (const url of ['sqlite:', 'sqlite: ', 'mongodb://db/app', 'file:./db.sqlite', 'postgres://', 'postgres:///app']) {
      const error = configError({ DATABASE_URL: url });
      assert.deepEqual(namedVariables(error, ['DATABASE_URL']), ['DATABASE_URL'], url);
    }
    assert.equal(loadConfig({ DATABASE_URL: 'sqlite:./data/x.db' }).databaseUrl, 'sqlite:./data/x.db');
  });

  test('NODE_ENV=production in any case is production (keys required)', () => {
    for (const env of ['Production', 'PRODUCTION', ' production ']) {
      const error = configError({ NODE_ENV: env });
      assert.equal(error.problems.length, 3, env);
      assert.equal(loadConfig({ NODE_ENV: env, ...productionKeys() }).production, true);
    }
  });

  test('decodeKey reads hex and base64 exactly', () => {
    const bytes = randomBytes(32);
    assert.deepEqual(decodeKey(bytes.toString('hex')), bytes);
    assert.deepEqual(decodeKey(bytes.toString('base64')), bytes);
    assert.deepEqual(decodeKey(bytes.toString('base64url')), bytes);
  });

  test('loadConfig is pure: it does not read process.env', () => {
    const saved = process.env.PORT;
    process.env.PORT = 'not-a-port';
    try {
      assert.equal(loadConfig({}).port, 3000);
    } finally {
      if (saved === undefined) delete process.env.PORT;
      else process.env.PORT = saved;
    }
  });
});

describe('resolveKeys', () => {
  const dirs: string[] = [];
  const tempDir = () => {
    const dir = mkdtempSync(join(tmpdir(), 'td-keys-'));
    dirs.push(dir);
    return dir;
  };
  after(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  test('generates the keys into DATA_DIR/keys.json (mode 0600) and reuses them', () => {
    const dataDir = join(tempDir(), 'nested', 'data');
    const config = loadConfig({ DATA_DIR: dataDir });
    const first = resolveKeys(config);
    for (const key of [first.fingerprintKey, first.dataEncryptionKey]) assert.equal(key.length, 32);
    assert.notDeepEqual(first.fingerprintKey, first.dataEncryptionKey);
    assert.equal(first.jwtSigningKey!.alg, 'ES256');
    assert.equal(first.jwtSecret, undefined, 'no HMAC secret in the default (ES256) mode');

    const file = join(dataDir, 'keys.json');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(statSync(dataDir).mode & 0o077, 0, 'the data directory is private');
    const stored = JSON.parse(readFileSync(file, 'utf8'));
    assert.equal(parseSigningKey(stored.jwtSigningKeyES256).kid, first.jwtSigningKey!.kid);
    assert.deepEqual(Buffer.from(stored.fingerprintKey, 'hex'), first.fingerprintKey);
    assert.deepEqual(Buffer.from(stored.dataEncryptionKey, 'hex'), first.dataEncryptionKey);

    const before = readFileSync(file, 'utf8');
    const second = resolveKeys(loadConfig({ DATA_DIR: dataDir }));
    assert.equal(second.jwtSigningKey!.kid, first.jwtSigningKey!.kid, 'the same signing key after a restart');
    assert.deepEqual(second.fingerprintKey, first.fingerprintKey);
    assert.deepEqual(second.dataEncryptionKey, first.dataEncryptionKey);
    assert.equal(readFileSync(file, 'utf8'), before, 'the file is not rewritten');

    // Switching the algorithm in development: a key of the other kind, or an HMAC secret, is added beside.
    const ed = resolveKeys(loadConfig({ DATA_DIR: dataDir, JWT_ALGORITHM: 'EdDSA' }));
    assert.equal(ed.jwtSigningKey!.alg, 'EdDSA');
    const hs = resolveKeys(loadConfig({ DATA_DIR: dataDir, JWT_ALGORITHM: 'HS256' }));
    assert.equal(hs.jwtSecret!.length, 32);
    assert.equal(resolveKeys(loadConfig({ DATA_DIR: dataDir })).jwtSigningKey!.kid, first.jwtSigningKey!.kid);
  });

  test('another data directory gets other keys', () => {
    const a = resolveKeys(loadConfig({ DATA_DIR: tempDir() }));
    const b = resolveKeys(loadConfig({ DATA_DIR: tempDir() }));
    assert.notEqual(a.jwtSigningKey!.kid, b.jwtSigningKey!.kid);
    assert.notDeepEqual(a.fingerprintKey, b.fingerprintKey);
  });

  test('explicit keys win and are not written to disk; missing ones are generated', () => {
    const dataDir = tempDir();
    const pem = es256Pem();
    const keys = resolveKeys(loadConfig({ DATA_DIR: dataDir, JWT_SIGNING_KEY: pem }));
    assert.equal(keys.jwtSigningKey!.kid, parseSigningKey(pem).kid);
    assert.equal(keys.fingerprintKey.length, 32);
    const file = readFileSync(join(dataDir, 'keys.json'), 'utf8');
    assert.ok(!file.includes('jwtSigningKey'), 'no signing key was generated');
    assert.ok(!file.includes(pem.split('\n')[1]!), 'the given key is not written');
  });

  test('with all three keys given nothing is written', () => {
    const dataDir = join(tempDir(), 'unused');
    const env = productionKeys();
    const keys = resolveKeys(loadConfig({ DATA_DIR: dataDir, ...env }));
    assert.deepEqual(keys.dataEncryptionKey, Buffer.from(env.DATA_ENCRYPTION_KEY, 'hex'));
    assert.throws(() => statSync(dataDir), /ENOENT/);
  });

  test('a keys.json left world-readable is made 0600 again', () => {
    const dataDir = tempDir();
    resolveKeys(loadConfig({ DATA_DIR: dataDir }));
    const file = join(dataDir, 'keys.json');
    chmodSync(file, 0o644);
    resolveKeys(loadConfig({ DATA_DIR: dataDir }));
    assert.equal(statSync(file).mode & 0o777, 0o600);
  });
});
