/**
 * docs/security.md, storage at rest: after a full flow, the database holds no raw token,
 * password, TOTP secret, backup code or client signal; passwords are
 * argon2id (OWASP parameters), the TOTP secret is AES-256-GCM under the
 * data key only, and token columns are the SHA-256 of the token.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { runAdminCommand } from '../../src/app/admin-cli.ts';
import type { Database } from '../../src/store/schema.ts';
import { totpCode } from '../../src/features/mfa/totp.ts';
import { createEncryptor } from '../../src/platform/crypto/encryption.ts';
import { createPasswordHasher, OWASP_ARGON2ID } from '../../src/platform/crypto/passwords.ts';
import { makeDeviceKey } from '../helpers/device-keys.ts';
import { SoftAuthenticator } from '../helpers/webauthn.ts';
import { call, CHROME_MAC, createTestApp, databaseKinds, type Device, FIREFOX_WINDOWS, nextCode, type TestApp, uniqueEmail } from '../helpers/app.ts';

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const HEX64 = /^[0-9a-f]{64}$/;

const TABLES: ReadonlyArray<keyof Database> = [
  'users',
  'refresh_tokens',
  'totp_secrets',
  'backup_codes',
  'mfa_challenges',
  'mfa_lockouts',
  'activation_tokens',
  'trusted_devices',
  'device_events',
  // Account email: the outbox holds template facts only; email tokens are hashes (test/account/email.test.ts checks them after sending).
  'mail_outbox',
  'email_tokens',
  'sessions',
  'device_challenges',
  'retired_device_tokens',
  'admin_keys',
  'webhook_outbox',
  'ssf_outbox',
  'ssf_streams',
  // Which users a stream no longer covers: ids only.
  'ssf_removed_subjects',
  'webauthn_credentials',
  'webauthn_challenges',
];

// Webhooks on (no sender runs): the outbox holds a copy of every event, and is checked like the rest.
const WEBHOOK_SECRET = `whsec_${randomBytes(32).toString('base64')}`;

for (const kind of databaseKinds()) {
  describe(`data at rest (${kind.name})`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(kind, { env: { WEBHOOK_URL: 'http://127.0.0.1:9/hooks', WEBHOOK_SECRET } });
    });
    after(() => t.close());

    test('after a full flow no table holds a raw secret, and token columns are SHA-256 of the tokens', async () => {
      const db = t.db.handle.db;
      const tag = () => randomBytes(5).toString('hex');
      const signals = { timezone: `Zone/${tag()}`, language: `xx-${tag()}`, platform: `Plat${tag()}`, screen: `${tag()}x1`, canvas: `cv${tag()}`, webgl: `GL ${tag()}` };
      const device: Device = { userAgent: CHROME_MAC, signals, ip: '203.0.113.20' };
      const otherDevice: Device = { userAgent: FIREFOX_WINDOWS, signals: { ...signals, canvas: `cv${tag()}` }, ip: '198.51.100.3' };

      const email = uniqueEmail('rest');
      const password = `Rest-${tag()}-Pw9`;
      const newPassword = `Rest-${tag()}-New8`;
      const tokens = { refresh: [] as string[], temporary: [] as string[], activation: [] as string[], device: [] as string[], access: [] as string[], admin: [] as string[], passkeyAttempt: [] as string[], challenge: [] as string[] };
      const webauthnChallenges: string[] = [];

      const signup = await call(t.app, 'POST', '/api/v1/auth/signup', { email, password, display_name: 'Rest' });
      const userId: string = signup.body.data.user_id;
      const login = await call(t.app, 'POST', '/api/v1/auth/login', { email, password }, { device });
      tokens.access.push(login.body.data.access_token);
      tokens.refresh.push(login.body.data.refresh_token);
      const access = login.body.data.access_token;

      const setup = await call(t.app, 'POST', '/api/v1/mfa/totp/setup', {}, { token: access });
      const secret: string = setup.body.data.secret;
      const verifySetup = await call(t.app, 'POST', '/api/v1/mfa/totp/verify', { code: totpCode(secret, t.clock.now()) }, { token: access });
      assert.equal(verifySetup.res.statusCode, 200);
      const backupCodes: string[] = verifySetup.body.data.backup_codes;

      const mfaLogin = async (dev: Device, factor: Record<string, string> | (() => Record<string, string>)) => {
        const challenge = await call(t.app, 'POST', '/api/v1/auth/login', { email, password }, { device: dev });
        assert.equal(challenge.body.data.mfa_required, true, challenge.res.body);
        tokens.temporary.push(challenge.body.data.temporary_token);
        const body = { temporary_token: challenge.body.data.temporary_token, ...(typeof factor === 'function' ? factor() : factor) };
        const verified = await call(t.app, 'POST', '/api/v1/auth/mfa/verify', body, { device: dev });
        assert.equal(verified.res.statusCode, 200, verified.res.body);
        tokens.access.push(verified.body.data.access_token);
        tokens.refresh.push(verified.body.data.refresh_token);
        tokens.activation.push(verified.body.data.trusted_device.activation_token);
        return verified.body.data;
      };

      // Trust one device, skip another (backup code), refresh, then change the password.
      const first = await mfaLogin(device, () => ({ code: nextCode(t, secret) }));
      // Key-bound (docs/trust-model.md): a challenge, a proof, and a rotation that retires the first device token.
      const key = await makeDeviceKey();
      const activate = await call(t.app, 'POST', '/api/v1/devices/activate', { activation_token: first.trusted_device.activation_token, public_key: key.publicJwk }, { token: first.access_token, device });
      assert.equal(activate.res.statusCode, 200, activate.res.body);
      const deviceToken: string = activate.body.data.device_token;
      tokens.device.push(deviceToken);
      const proofChallenge: string = (await call(t.app, 'POST', '/api/v1/auth/device-challenge')).body.data.challenge;
      tokens.challenge.push(proofChallenge);
      const bypass = await call(t.app, 'POST', '/api/v1/auth/login', { email, password }, { device: { ...device, deviceToken }, headers: { 'x-device-proof': `${proofChallenge}.${await key.sign(proofChallenge)}` } });
      assert.equal(bypass.body.data.mfa_bypassed, true, bypass.res.body);
      tokens.refresh.push(bypass.body.data.refresh_token);
      const rotatedToken: string = bypass.body.data.device_token;
      tokens.device.push(rotatedToken);

      const second = await mfaLogin(otherDevice, { backup_code: backupCodes[0]! });
      const skip = await call(t.app, 'POST', '/api/v1/devices/skip', { activation_token: second.trusted_device.activation_token }, { token: second.access_token, device: otherDevice });
      assert.equal(skip.res.statusCode, 200, skip.res.body);
      // A failed challenge and a pending (never used) activation token are stored too.
      const failed = await call(t.app, 'POST', '/api/v1/auth/login', { email, password }, { device: otherDevice });
      tokens.temporary.push(failed.body.data.temporary_token);
      await call(t.app, 'POST', '/api/v1/auth/mfa/verify', { temporary_token: failed.body.data.temporary_token, backup_code: 'aaaaa-aaaaa' }, { device: otherDevice });
      await mfaLogin(otherDevice, { backup_code: backupCodes[1]! });

      // A passkey: registered, then a passwordless sign-in (challenges and the attempt token are stored hashed).
      const authenticator = new SoftAuthenticator();
      const regOptions = await call(t.app, 'POST', '/api/v1/mfa/webauthn/register/options', {}, { token: first.access_token });
      webauthnChallenges.push(regOptions.body.data.options.challenge);
      const registered = await call(t.app, 'POST', '/api/v1/mfa/webauthn/register/verify', { response: authenticator.register(regOptions.body.data.options).response }, { token: first.access_token });
      assert.equal(registered.res.statusCode, 200, registered.res.body);
      const attempt = await call(t.app, 'POST', '/api/v1/auth/passkey/options', {}, { device: otherDevice });
      webauthnChallenges.push(attempt.body.data.options.challenge);
      tokens.passkeyAttempt.push(attempt.body.data.attempt_token);
      const passkey = await call(t.app, 'POST', '/api/v1/auth/passkey/verify', { attempt_token: attempt.body.data.attempt_token, response: authenticator.assert(attempt.body.data.options) }, { device: otherDevice });
      assert.equal(passkey.res.statusCode, 200, passkey.res.body);
      tokens.access.push(passkey.body.data.access_token);
      tokens.refresh.push(passkey.body.data.refresh_token);
      tokens.activation.push(passkey.body.data.trusted_device.activation_token);

      const refreshed = await call(t.app, 'POST', '/api/v1/auth/refresh', { refresh_token: first.refresh_token });
      assert.equal(refreshed.res.statusCode, 200);
      tokens.refresh.push(refreshed.body.data.refresh_token);
      const change = await call(t.app, 'POST', '/api/v1/auth/password/change', { current_password: password, new_password: newPassword }, { token: first.access_token, device });
      assert.equal(change.res.statusCode, 200);

      // An admin key, used once (docs/admin-and-webhooks.md).
      const created: string[] = [];
      await runAdminCommand(['create-key', '--name', `rest-${tag()}`, '--scopes', 'users:read'], db, { out: (l) => created.push(l), err: () => undefined }, t.clock);
      tokens.admin.push(created[0]!);
      const found = await call(t.app, 'GET', `/api/v1/admin/users?email=${encodeURIComponent(email)}`, undefined, { token: created[0]! });
      assert.equal(found.res.statusCode, 200);

      // Every table of the database, not only the ones this test knows about.
      const actual =
        t.db.handle.dialect === 'sqlite'
          ? (await sql<{ name: string }>`select name from sqlite_master where type = 'table' and name not like 'sqlite_%' and name not like 'kysely_%'`.execute(db)).rows.map((r) => r.name)
          : (await sql<{ name: string }>`select table_name as name from information_schema.tables where table_schema = current_schema() and table_name not like 'kysely_%'`.execute(db)).rows.map((r) => r.name);
      assert.deepEqual([...actual].sort(), [...TABLES].sort(), 'the test reads every table');

      const dump: Record<string, Array<Record<string, unknown>>> = {};
      for (const table of TABLES) dump[table] = (await db.selectFrom(table).selectAll().execute()) as Array<Record<string, unknown>>;
      const text = JSON.stringify(dump);
      for (const table of ['users', 'refresh_tokens', 'totp_secrets', 'backup_codes', 'mfa_challenges', 'activation_tokens', 'trusted_devices', 'device_events', 'sessions', 'admin_keys', 'webhook_outbox', 'webauthn_credentials', 'webauthn_challenges', 'device_challenges', 'retired_device_tokens']) {
        assert.ok(dump[table]!.length > 0, `${table} has rows to check`);
      }

      const forbidden: Array<[string, string]> = [
        ['password', password],
        ['new password', newPassword],
        ['TOTP secret', secret],
        ['webhook secret', WEBHOOK_SECRET.slice('whsec_'.length)],
        ['TOTP secret (lower case)', secret.toLowerCase()],
        ['fingerprint header', JSON.stringify(signals)],
        ...backupCodes.flatMap((c, i): Array<[string, string]> => [
          [`backup code ${i}`, c],
          [`backup code ${i} (no dash)`, c.replace('-', '')],
          [`backup code ${i} (SHA-256)`, sha256(c)],
          [`backup code ${i} (SHA-256, no dash)`, sha256(c.replace('-', ''))],
        ]),
        ...Object.entries(signals).flatMap(([name, value]): Array<[string, string]> => [
          [`signal ${name}`, value],
          [`signal ${name} (SHA-256)`, sha256(value)],
        ]),
        ...Object.entries(tokens).flatMap(([kindOf, list]) => list.map((token, i): [string, string] => [`${kindOf} token ${i}`, token])),
        ...Object.entries(tokens).flatMap(([kindOf, list]) => list.map((token, i): [string, string] => [`${kindOf} token ${i} (without prefix)`, token.slice(4)])),
        ...webauthnChallenges.map((c, i): [string, string] => [`WebAuthn challenge ${i}`, c]),
      ];
      for (const [what, value] of forbidden) assert.ok(!text.includes(value), `${what} is stored in the database`);

      // Passwords: argon2id.
      const [user] = dump.users!.filter((u) => u.id === userId);
      assert.match(String(user!.password_hash), /^\$argon2id\$v=19\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/);
      for (const u of dump.users!) assert.match(String(u.password_hash), /^\$argon2id\$/);

      // TOTP secret: AES-256-GCM, bound to the data key and to the user.
      const [totp] = dump.totp_secrets!.filter((r) => r.user_id === userId);
      const sealed = String(totp!.secret_encrypted);
      assert.match(sealed, /^v1\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]+$/, '96-bit nonce, 128-bit tag');
      assert.equal(createEncryptor(t.keys.dataEncryptionKey).decrypt(sealed, userId), secret);
      assert.throws(() => createEncryptor(randomBytes(32)).decrypt(sealed, userId), 'another key does not decrypt');
      assert.throws(() => createEncryptor(t.keys.jwtSecret!).decrypt(sealed, userId), 'the JWT key does not decrypt');
      assert.throws(() => createEncryptor(t.keys.dataEncryptionKey).decrypt(sealed, randomBytes(8).toString('hex')), "another user's row does not decrypt");
      const flipped = `${sealed.slice(0, -2)}${sealed.at(-2) === 'A' ? 'B' : 'A'}${sealed.at(-1)}`;
      assert.throws(() => createEncryptor(t.keys.dataEncryptionKey).decrypt(flipped, userId), 'a tampered ciphertext is refused');
      const again = createEncryptor(t.keys.dataEncryptionKey).encrypt(secret, userId);
      assert.notEqual(again, sealed, 'a fresh nonce each time');

      // Token columns: 64-hex SHA-256 of the tokens handed out.
      const column = (table: string, name: string) => dump[table]!.map((r) => String(r[name]));
      for (const [table, name] of [['refresh_tokens', 'token_hash'], ['mfa_challenges', 'token_hash'], ['activation_tokens', 'token_hash'], ['trusted_devices', 'device_token_hash'], ['backup_codes', 'code_hash']] as const) {
        for (const value of column(table, name)) assert.match(value, HEX64, `${table}.${name}`);
      }
      const refreshHashes = new Set(column('refresh_tokens', 'token_hash'));
      for (const token of tokens.refresh) assert.ok(refreshHashes.has(sha256(token)), 'refresh token stored as its SHA-256');
      const challengeHashes = new Set(column('mfa_challenges', 'token_hash'));
      for (const token of tokens.temporary) assert.ok(challengeHashes.has(sha256(token)), 'temporary token stored as its SHA-256');
      const activationHashes = new Set(column('activation_tokens', 'token_hash'));
      for (const token of tokens.activation) assert.ok(activationHashes.has(sha256(token)), 'activation token stored as its SHA-256');
      assert.deepEqual(column('trusted_devices', 'device_token_hash'), [sha256(rotatedToken)]);
      assert.deepEqual(column('retired_device_tokens', 'token_hash'), [sha256(deviceToken)]);
      assert.deepEqual(column('device_challenges', 'challenge_hash'), [sha256(proofChallenge)]);
      // The device key: its public half only, normalised.
      const storedKey = JSON.parse(String(dump.trusted_devices![0]!.public_key_jwk));
      assert.deepEqual(Object.keys(storedKey).sort(), ['crv', 'kty', 'x', 'y']);
      assert.deepEqual(column('admin_keys', 'key_hash'), [sha256(tokens.admin[0]!)]);
      // WebAuthn: challenges and the passwordless attempt token as their SHA-256.
      assert.deepEqual(new Set(column('webauthn_challenges', 'challenge_hash')), new Set(webauthnChallenges.map(sha256)));
      assert.deepEqual(dump.webauthn_challenges!.map((r) => r.attempt_hash).filter((h) => h !== null), tokens.passkeyAttempt.map(sha256));

      // Backup codes: stored keyed (not a plain SHA-256, so a database copy alone cannot be brute-forced).
      assert.equal(dump.backup_codes!.filter((r) => r.user_id === userId).length, 10);

      // Fingerprints: keyed HMACs, never a plain hash of the inputs.
      for (const table of ['activation_tokens', 'trusted_devices']) {
        for (const row of dump[table]!) {
          assert.match(String(row.fingerprint), HEX64);
          const components = JSON.parse(String(row.components)) as Record<string, string>;
          assert.ok(Object.keys(components).length >= 3);
          for (const value of Object.values(components)) assert.match(value, HEX64);
        }
      }
      for (const challenge of dump.mfa_challenges!) assert.match(String(challenge.fingerprint), HEX64);
    });
  });
}

describe('password hashing parameters', () => {
  test('createPasswordHasher() defaults to argon2id with the OWASP parameters m=19456, t=2, p=1', async () => {
    const hasher = createPasswordHasher();
    assert.deepEqual(hasher.options, { memoryCost: 19_456, timeCost: 2, parallelism: 1 });
    assert.deepEqual(OWASP_ARGON2ID, { memoryCost: 19_456, timeCost: 2, parallelism: 1 });
    const password = `Owasp-${randomBytes(4).toString('hex')}-1`;
    const hashed = await hasher.hash(password);
    assert.match(hashed, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/, '16-byte salt, 32-byte hash');
    assert.ok(!hashed.includes(password));
    assert.notEqual(await hasher.hash(password), hashed, 'salted');
    assert.equal(await hasher.verify(hashed, password), true);
    assert.equal(await hasher.verify(hashed, `${password}x`), false);
    assert.equal(await hasher.verify('not a hash', password), false);
    assert.equal(await hasher.verifyDummy(password), false);
  });
});
