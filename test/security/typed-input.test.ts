/**
 * Issue 10 and docs/security.md: input is taken as typed. A JSON value of the
 * wrong type is 422, never coerced; only the query string is coerced, and
 * then checked again (no Infinity reaching SQL). Lone surrogates and
 * blank names are refused before anything is stored. The TOTP enrolment
 * race and the pinned GCM tag length live here too: both are "a value that
 * must not be taken as something else".
 */
import { createHistory } from '../../src/store/history.ts';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { createDevicesRepository } from '../../src/store/devices.repository.ts';
import { SYSTEM } from '../../src/store/history.ts';
import { createMfaRepository } from '../../src/store/mfa.repository.ts';
import { createRevocation } from '../../src/domain/ledger.ts';
import { createSessionsRepository } from '../../src/store/sessions.repository.ts';
import { createMfaService } from '../../src/features/mfa/mfa.service.ts';
import { totpCode } from '../../src/features/mfa/totp.ts';
import { createEncryptor } from '../../src/platform/crypto/encryption.ts';
import { call, createTestApp, databaseKinds, laptop, loginWithMfa, enableMfa, PASSWORD, signupAndLogin, type TestApp, uniqueEmail } from '../helpers/app.ts';

const assertValidation = (response: { res: { statusCode: number }; body: any }, field?: string) => {
  assert.equal(response.res.statusCode, 422, JSON.stringify(response.body));
  assert.equal(response.body.error.code, 'VALIDATION_ERROR');
  if (field) assert.ok(response.body.error.details.some((d: { field: string }) => d.field === field), JSON.stringify(response.body.error.details));
};

for (const kind of databaseKinds()) {
  describe(`typed input (${kind.name})`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(kind);
    });
    after(() => t.close());

    test('a TOTP code sent as a JSON number is 422 and does not turn MFA on', async () => {
      const user = await signupAndLogin(t.app, laptop());
      const setup = await call(t.app, 'POST', '/api/v1/mfa/totp/setup', {}, { token: user.accessToken });
      // A code without a leading zero, so that its number is exactly its digits.
      let code = totpCode(setup.body.data.secret, t.clock.now());
      while (code.startsWith('0')) {
        t.clock.advance(30_000);
        code = totpCode(setup.body.data.secret, t.clock.now());
      }
      assertValidation(await call(t.app, 'POST', '/api/v1/mfa/totp/verify', { code: Number(code) }, { token: user.accessToken }), 'code');
      const status = await call(t.app, 'GET', '/api/v1/mfa/status', undefined, { token: user.accessToken });
      assert.equal(status.body.data.mfa_enabled, false);
      // The same code as a string still works: the refusal was about the type.
      assert.equal((await call(t.app, 'POST', '/api/v1/mfa/totp/verify', { code }, { token: user.accessToken })).res.statusCode, 200);
    });

    test('an array, number or boolean where a string is required is 422 (login, signup)', async () => {
      const user = await signupAndLogin(t.app, laptop());
      assertValidation(await call(t.app, 'POST', '/api/v1/auth/login', { email: [user.email], password: PASSWORD }), 'email');
      assertValidation(await call(t.app, 'POST', '/api/v1/auth/login', { email: user.email, password: [PASSWORD] }), 'password');
      assertValidation(await call(t.app, 'POST', '/api/v1/auth/login', { email: user.email, password: true }), 'password');
      assertValidation(await call(t.app, 'POST', '/api/v1/auth/signup', { email: uniqueEmail(), password: PASSWORD, display_name: 12345 }), 'display_name');
      assertValidation(await call(t.app, 'POST', '/api/v1/auth/refresh', { refresh_token: { $ne: null } }), 'refresh_token');
    });

    test('query strings are still coerced, and a huge or infinite number is 422, not 500', async () => {
      const user = await signupAndLogin(t.app, laptop());
      const events = (limit: string) => call(t.app, 'GET', `/api/v1/devices/events?limit=${encodeURIComponent(limit)}`, undefined, { token: user.accessToken });
      assert.equal((await events('5')).res.statusCode, 200);
      for (const limit of ['Infinity', '-Infinity', '1e400', '101', '0', '2.5', 'abc']) assertValidation(await events(limit), 'limit');
    });

    test('a lone surrogate in the authenticator label is 422, and no pending secret is stored', async () => {
      const user = await signupAndLogin(t.app, laptop());
      const response = await call(t.app, 'POST', '/api/v1/mfa/totp/setup', '{"device_name":"\\ud800"}', { token: user.accessToken });
      assertValidation(response, 'device_name');
      const row = await t.db.handle.db.selectFrom('totp_secrets').select('user_id').where('user_id', '=', user.userId).executeTakeFirst();
      assert.equal(row, undefined);
      // An emoji (a well-formed surrogate pair) is text.
      assert.equal((await call(t.app, 'POST', '/api/v1/mfa/totp/setup', { device_name: 'Phone 📱' }, { token: user.accessToken })).res.statusCode, 200);
    });

    test('blank device names are refused everywhere a name is given', async () => {
      const user = await signupAndLogin(t.app, laptop());
      assertValidation(await call(t.app, 'POST', '/api/v1/mfa/totp/setup', { device_name: ' \t ' }, { token: user.accessToken }), 'device_name');
      await enableMfa(t, user);
      const verified = await loginWithMfa(t, user, laptop());
      const token = verified.access_token;
      const activationToken = verified.trusted_device.activation_token;
      for (const name of ['   ', '\u3000', ' \u00a0 ']) {
        assertValidation(await call(t.app, 'POST', '/api/v1/devices/activate', { activation_token: activationToken, device_name: name }, { token, device: laptop() }), 'device_name');
      }
      const activated = await call(t.app, 'POST', '/api/v1/devices/activate', { activation_token: activationToken, device_name: ' Work laptop ' }, { token, device: laptop() });
      assert.equal(activated.res.statusCode, 200);
      const id = activated.body.data.device.id;
      assertValidation(await call(t.app, 'PATCH', `/api/v1/devices/${id}`, { device_name: '    ' }, { token }), 'device_name');
      assertValidation(await call(t.app, 'PATCH', `/api/v1/devices/${id}`, { device_name: 'x\ud800' }, { token }), 'device_name');
    });

    test('TOTP enrolment race: a setup started again between the check and the enable does not get enabled', async () => {
      const user = await signupAndLogin(t.app, laptop());
      const key = randomBytes(32);
      const encryptor = createEncryptor(key);
      const real = createMfaRepository(t.db.handle.db);
      let secondSecret = '';
      // The second setup lands after the code of the first secret was checked, before the enable.
      const repository = {
        ...real,
        acceptTotpStep: async (userId: string, step: number) => {
          const accepted = await real.acceptTotpStep(userId, step);
          secondSecret = (await service.setup(userId, user.email, undefined)).secret;
          return accepted;
        },
      };
      const db = t.db.handle.db;
      const revocation = createRevocation({ db, history: createHistory({ webhooks: false }), devices: createDevicesRepository(db, createHistory({ webhooks: false })), sessions: createSessionsRepository(db), mfa: real, clock: t.clock });
      const service = createMfaService({ repository, revocation, encryptor, dataEncryptionKey: key, clock: t.clock });
      const first = await createMfaService({ repository: real, revocation, encryptor, dataEncryptionKey: key, clock: t.clock }).setup(user.userId, user.email, undefined);
      await assert.rejects(service.confirmSetup(user.userId, totpCode(first.secret, t.clock.now()), SYSTEM), (error: any) => error.code === 'NO_PENDING_SETUP');
      assert.notEqual(secondSecret, '');
      const row = await real.findTotp(user.userId);
      assert.equal(row?.enabled_at, null, 'the unconfirmed secret is not enabled');
      assert.equal(encryptor.decrypt(row!.secret_encrypted, user.userId), secondSecret);
    });
  });
}

describe('AES-256-GCM at rest', () => {
  test('a truncated authentication tag is refused (the tag length is pinned to 16 bytes)', () => {
    const encryptor = createEncryptor(randomBytes(32));
    const sealed = encryptor.encrypt('JBSWY3DPEHPK3PXP', 'user-1');
    assert.equal(encryptor.decrypt(sealed, 'user-1'), 'JBSWY3DPEHPK3PXP');
    const [version, nonce, tag, ciphertext] = sealed.split('.');
    const short = Buffer.from(tag!, 'base64url').subarray(0, 4).toString('base64url');
    assert.throws(() => encryptor.decrypt([version, nonce, short, ciphertext].join('.'), 'user-1'));
  });
});
