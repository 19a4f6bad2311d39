/**
 * Passkeys and security keys (docs/passkeys.md), what is checked and what removing a credential ends, with a
 * software authenticator that makes real attestation and assertion objects
 * (test/helpers/webauthn.ts): the verifier is @simplewebauthn/server, unmocked.
 */
import { createHistory } from '../../src/store/history.ts';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import {
  call,
  createTestApp,
  databaseKinds,
  type Device,
  enableMfa,
  FIREFOX_WINDOWS,
  laptop,
  loginStep,
  loginWithMfa,
  nextCode,
  signupAndLogin,
  type TestApp,
  type TestUser,
} from '../helpers/app.ts';
import { pruneExpired } from '../../src/app/housekeeping.ts';
import { createWebauthnRepository } from '../../src/store/webauthn.repository.ts';
import { makeDeviceKey, proofHeader } from '../helpers/device-keys.ts';
import { type AssertOverrides, type RegisterOverrides, SoftAuthenticator } from '../helpers/webauthn.ts';

const API = '/api/v1';
const MINUTE = 60_000;
const phone = (): Device => ({ userAgent: FIREFOX_WINDOWS, signals: { timezone: 'UTC', platform: 'Win32' }, ip: '198.51.100.7' });

for (const kind of databaseKinds()) {
  describe(`webauthn (${kind.name})`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(kind);
    });
    after(() => t.close());

    const listCredentials = async (user: TestUser) => (await call(t.app, 'GET', `${API}/mfa/webauthn/credentials`, undefined, { token: user.accessToken })).body.data.credentials;
    const listDevices = async (user: TestUser) => (await call(t.app, 'GET', `${API}/devices`, undefined, { token: user.accessToken })).body.data.devices;
    const status = async (user: TestUser) => (await call(t.app, 'GET', `${API}/mfa/status`, undefined, { token: user.accessToken })).body.data;
    const eventTypes = async (user: TestUser) =>
      (await call(t.app, 'GET', `${API}/devices/events?limit=100`, undefined, { token: user.accessToken })).body.data.events.map((e: any) => e.type);

    /** The first key registered for each user: the one its sessions step up with (docs/step-up.md). */
    const firstKeyOf = new Map<string, SoftAuthenticator>();
    async function stepUpWithKey(user: TestUser) {
      const key = firstKeyOf.get(user.userId);
      assert.ok(key, 'a key to step up with');
      const options = await call(t.app, 'POST', `${API}/auth/step-up/webauthn/options`, {}, { token: user.accessToken });
      assert.equal(options.res.statusCode, 200, options.res.body);
      const res = await call(t.app, 'POST', `${API}/auth/step-up`, { webauthn: key.assert(options.body.data.options) }, { token: user.accessToken });
      assert.equal(res.res.statusCode, 200, res.res.body);
      user.accessToken = res.body.data.access_token;
    }
    /**
     * A sensitive operation (adding or removing a key once the account has a
     * second factor): when the gate asks for a step-up, the test steps up
     * with the user's first key and retries — the setup a person would go through.
     */
    async function sensitive(user: TestUser, request: () => ReturnType<typeof call>) {
      const first = await request();
      if (first.body?.error?.code !== 'STEP_UP_REQUIRED') return first;
      await stepUpWithKey(user);
      return request();
    }

    async function registrationOptions(user: TestUser) {
      const res = await sensitive(user, () => call(t.app, 'POST', `${API}/mfa/webauthn/register/options`, {}, { token: user.accessToken }));
      assert.equal(res.res.statusCode, 200, res.res.body);
      return res.body.data.options;
    }

    /** Registers a credential of `authenticator` for the user; returns the API's credential and the soft one. */
    async function register(user: TestUser, authenticator = new SoftAuthenticator(), overrides: RegisterOverrides = {}, name?: string) {
      const options = await registrationOptions(user);
      const { response, credential } = authenticator.register(options, overrides);
      const res = await sensitive(user, () => call(t.app, 'POST', `${API}/mfa/webauthn/register/verify`, { response, ...(name ? { name } : {}) }, { token: user.accessToken }));
      assert.equal(res.res.statusCode, 200, res.res.body);
      if (!firstKeyOf.has(user.userId)) firstKeyOf.set(user.userId, authenticator);
      return { api: res.body.data.credential, soft: credential, authenticator };
    }
    const removeCredential = (user: TestUser, id: string) =>
      sensitive(user, () => call(t.app, 'DELETE', `${API}/mfa/webauthn/credentials/${id}`, undefined, { token: user.accessToken }));

    /** Login with the password from `device`; returns the temporary token. */
    async function challenge(user: TestUser, device: Device = laptop()): Promise<string> {
      const login = await loginStep(t, user, device);
      assert.equal(login.body.data.mfa_required, true, login.res.body);
      return login.body.data.temporary_token;
    }

    const assertionOptions = async (temporaryToken: string, device: Device = laptop()) => {
      const res = await call(t.app, 'POST', `${API}/auth/mfa/webauthn/options`, { temporary_token: temporaryToken }, { device });
      assert.equal(res.res.statusCode, 200, res.res.body);
      return res.body.data.options;
    };
    const verifyWith = (temporaryToken: string, webauthn: unknown, device: Device = laptop()) =>
      call(t.app, 'POST', `${API}/auth/mfa/verify`, { temporary_token: temporaryToken, webauthn }, { device });

    /** Login → options → assertion → verify; returns the verify response. */
    async function secondFactor(user: TestUser, authenticator: SoftAuthenticator, overrides: AssertOverrides = {}, device: Device = laptop()) {
      const token = await challenge(user, device);
      const options = await assertionOptions(token, device);
      return verifyWith(token, authenticator.assert(options, overrides), device);
    }

    const passkeyOptions = async (device: Device = laptop()) => {
      const res = await call(t.app, 'POST', `${API}/auth/passkey/options`, {}, { device });
      assert.equal(res.res.statusCode, 200, res.res.body);
      return res.body.data as { options: any; attempt_token: string; expires_in: number };
    };
    const passkeyVerify = (attemptToken: string, response: unknown, device: Device = laptop()) =>
      call(t.app, 'POST', `${API}/auth/passkey/verify`, { attempt_token: attemptToken, response }, { device });
    async function passkeySignIn(authenticator: SoftAuthenticator, overrides: AssertOverrides = {}, device: Device = laptop()) {
      const { options, attempt_token } = await passkeyOptions(device);
      return passkeyVerify(attempt_token, authenticator.assert(options, overrides), device);
    }

    async function activate(accessToken: string, activationToken: string, device: Device = laptop()) {
      const res = await call(t.app, 'POST', `${API}/devices/activate`, { activation_token: activationToken }, { token: accessToken, device });
      assert.equal(res.res.statusCode, 200, res.res.body);
      return { device: res.body.data.device, deviceToken: res.body.data.device_token as string };
    }

    const refused = (res: { res: { statusCode: number; body: string }; body: any }, code = 'WEBAUTHN_VERIFICATION_FAILED') => {
      assert.equal(res.res.statusCode, code === 'INVALID_TOKEN' ? 401 : 400, res.res.body);
      assert.equal(res.body.error.code, code);
      assert.equal(res.body.data, undefined, 'no tokens');
    };

    describe('registration', () => {
      test('registers a credential; MFA is then on with methods ["webauthn"] and login asks for it', async () => {
        const user = await signupAndLogin(t.app);
        const options = await registrationOptions(user);
        assert.equal(options.rp.id, 'localhost');
        assert.equal(options.rp.name, 'Trusted Devices');
        assert.equal(options.user.name, user.email);
        assert.equal(Buffer.from(options.user.id, 'base64url').toString(), user.userId, 'the user handle is the user id, not the email');
        assert.equal(options.attestation, 'none');
        assert.equal(Buffer.from(options.challenge, 'base64url').length, 32);

        const { api, soft } = await register(user, new SoftAuthenticator(), {}, 'YubiKey 5');
        assert.equal(api.name, 'YubiKey 5');
        assert.equal(api.discoverable, true);
        assert.equal(api.device_type, 'single_device');
        assert.equal(api.last_used_at, null);
        assert.deepEqual((await listCredentials(user)).map((c: any) => c.id), [api.id]);
        assert.deepEqual(await status(user), { mfa_enabled: true, methods: ['webauthn'], backup_codes_remaining: 0 });
        const me = await call(t.app, 'GET', `${API}/auth/me`, undefined, { token: user.accessToken });
        assert.equal(me.body.data.mfa_enabled, true);
        const login = await loginStep(t, user, laptop());
        assert.deepEqual(login.body.data.methods, ['webauthn']);
        assert.ok((await eventTypes(user)).includes('webauthn_registered'));

        const again = await registrationOptions(user);
        assert.deepEqual(again.excludeCredentials.map((c: any) => c.id), [soft.id], 'the browser is told not to register the same key twice');
      });

      test('refused: replayed, another user\'s or expired challenge, wrong origin, wrong RP ID, wrong type; nothing registered', async () => {
        const user = await signupAndLogin(t.app);
        const other = await signupAndLogin(t.app);
        const auth = new SoftAuthenticator();
        const verify = (response: unknown, who = user) => call(t.app, 'POST', `${API}/mfa/webauthn/register/verify`, { response }, { token: who.accessToken });

        const cases: Array<[string, RegisterOverrides]> = [
          ['wrong origin', { origin: 'https://evil.example' }],
          ['wrong RP ID', { rpId: 'evil.example' }],
          ['wrong type', { type: 'webauthn.get' }],
        ];
        for (const [label, overrides] of cases) {
          const res = await verify(auth.register(await registrationOptions(user), overrides).response);
          assert.equal(res.res.statusCode, 400, `${label}: ${res.res.body}`);
          assert.equal(res.body.error.code, 'WEBAUTHN_VERIFICATION_FAILED');
        }

        // Another user's challenge: refused for this user, and still usable by its owner.
        const othersOptions = await registrationOptions(other);
        const foreign = await verify(auth.register(othersOptions).response, user);
        assert.equal(foreign.res.statusCode, 400);
        // A challenge never issued.
        const invented = await verify(auth.register({ ...(await registrationOptions(user)), challenge: Buffer.alloc(32, 7).toString('base64url') }).response);
        assert.equal(invented.res.statusCode, 400);
        const owners = await verify(new SoftAuthenticator().register(othersOptions).response, other);
        assert.equal(owners.res.statusCode, 200, 'the foreign attempt did not consume the owner\'s challenge');

        // Expired: 5 minutes.
        const stale = await registrationOptions(user);
        t.clock.advance(5 * MINUTE + 1);
        assert.equal((await verify(auth.register(stale).response)).res.statusCode, 400);
        assert.deepEqual(await listCredentials(user), []);

        // Replayed: the first use registers, the second is refused.
        const good = auth.register(await registrationOptions(user)).response;
        assert.equal((await verify(good)).res.statusCode, 200);
        // MFA is on now: the replay gets past the step-up gate first (with the key just registered), then meets the spent challenge.
        firstKeyOf.set(user.userId, auth);
        const replay = await sensitive(user, () => verify(good));
        assert.equal(replay.res.statusCode, 400, replay.res.body);
        assert.equal((await listCredentials(user)).length, 1);
      });

      test('the first credential turns MFA on: the "MFA turned on" row ends the other sessions; a second one does not', async () => {
        const user = await signupAndLogin(t.app);
        const other = await call(t.app, 'POST', `${API}/auth/login`, { email: user.email, password: user.password }, { device: phone() });
        const otherToken = other.body.data.access_token;
        const me = (token: string) => call(t.app, 'GET', `${API}/auth/me`, undefined, { token });
        await register(user);
        assert.equal((await me(otherToken)).res.statusCode, 401, 'the other session ended');
        assert.equal((await me(user.accessToken)).res.statusCode, 200, 'the session that registered it stays');

        const third = await passkeySignIn((await register(user)).authenticator);
        assert.equal(third.res.statusCode, 200);
        await register(user);
        assert.equal((await me(third.body.data.access_token)).res.statusCode, 200, 'adding a key to an MFA account ends nothing');
      });

      test('one credential id cannot be registered twice, not even by another user (409)', async () => {
        const user = await signupAndLogin(t.app);
        const other = await signupAndLogin(t.app);
        const { soft } = await register(user);
        const copy = new SoftAuthenticator().register(await registrationOptions(other), { credentialId: soft.id });
        const res = await call(t.app, 'POST', `${API}/mfa/webauthn/register/verify`, { response: copy.response }, { token: other.accessToken });
        assert.equal(res.res.statusCode, 409, res.res.body);
        assert.equal(res.body.error.code, 'WEBAUTHN_CREDENTIAL_EXISTS');
        assert.deepEqual(await listCredentials(other), []);
      });

      test('challenges are stored only as SHA-256 and pruned by housekeeping once expired', async () => {
        const user = await signupAndLogin(t.app);
        const options = await registrationOptions(user);
        const rows = () => t.db.handle.db.selectFrom('webauthn_challenges').selectAll().where('user_id', '=', user.userId).execute();
        const [row] = await rows();
        assert.ok(row);
        assert.ok(!JSON.stringify(row).includes(options.challenge), 'the challenge itself is not stored');
        assert.equal(row.challenge_hash, createHash('sha256').update(options.challenge).digest('hex'));
        await pruneExpired(t.db.handle, { eventRetentionDays: 90 }, t.clock);
        assert.equal((await rows()).length, 1, 'an unexpired challenge is kept');
        const result = await pruneExpired(t.db.handle, { eventRetentionDays: 90 }, { now: () => t.clock.now() + 5 * MINUTE });
        assert.ok(result.webauthnChallenges >= 1);
        assert.equal((await rows()).length, 0);
      });

      test('management needs a session; another user\'s credential is 404 for rename and remove', async () => {
        const user = await signupAndLogin(t.app);
        const other = await signupAndLogin(t.app);
        const { api } = await register(user);
        assert.equal((await call(t.app, 'GET', `${API}/mfa/webauthn/credentials`)).res.statusCode, 401);
        assert.equal((await call(t.app, 'POST', `${API}/mfa/webauthn/register/options`, {})).res.statusCode, 401);

        const rename = await call(t.app, 'PATCH', `${API}/mfa/webauthn/credentials/${api.id}`, { name: 'mine now' }, { token: other.accessToken });
        assert.equal(rename.res.statusCode, 404);
        assert.equal(rename.body.error.code, 'WEBAUTHN_CREDENTIAL_NOT_FOUND');
        const remove = await call(t.app, 'DELETE', `${API}/mfa/webauthn/credentials/${api.id}`, undefined, { token: other.accessToken });
        assert.equal(remove.res.statusCode, 404);
        assert.equal((await listCredentials(user)).length, 1);

        const mine = await call(t.app, 'PATCH', `${API}/mfa/webauthn/credentials/${api.id}`, { name: 'Work key' }, { token: user.accessToken });
        assert.equal(mine.res.statusCode, 200);
        assert.equal(mine.body.data.credential.name, 'Work key');
        assert.equal((await listCredentials(user))[0].name, 'Work key');
      });
    });

    describe('as the second factor', () => {
      test('login → options → assertion: a session and a pending device granted by that credential; counter stored', async () => {
        const user = await signupAndLogin(t.app);
        await enableMfa(t, user);
        const { api, authenticator } = await register(user);

        const token = await challenge(user);
        const login = await loginStep(t, user, laptop());
        assert.deepEqual(login.body.data.methods, ['totp', 'backup_code', 'webauthn']);
        const options = await assertionOptions(token);
        assert.equal(options.rpId, 'localhost');
        assert.deepEqual(options.allowCredentials.map((c: any) => c.id), [authenticator.credentials[0]!.id]);
        const verified = await verifyWith(token, authenticator.assert(options));
        assert.equal(verified.res.statusCode, 200, verified.res.body);
        assert.ok(verified.body.data.access_token);
        const pending = verified.body.data.trusted_device;
        assert.equal(pending.is_active, false);

        const sessionsList = await call(t.app, 'GET', `${API}/sessions`, undefined, { token: verified.body.data.access_token });
        assert.equal(sessionsList.body.data.sessions.find((x: any) => x.is_current).mfa_method, 'webauthn');
        const { device } = await activate(verified.body.data.access_token, pending.activation_token);
        assert.equal(device.granted_by, 'webauthn');
        assert.equal(device.granted_by_credential_id, api.id);
        const stored = (await listCredentials(user))[0];
        assert.equal(stored.last_used_at, new Date(t.clock.now()).toISOString());
        const row = await t.db.handle.db.selectFrom('webauthn_credentials').select('counter').where('id', '=', api.id).executeTakeFirstOrThrow();
        assert.equal(Number(row.counter), 1);
      });

      test('replayed or foreign challenge, wrong origin or RP ID, decreased counter, another user\'s credential → refused, nothing trusted', async () => {
        const user = await signupAndLogin(t.app);
        const other = await signupAndLogin(t.app);
        const { authenticator } = await register(user);
        const { authenticator: othersAuthenticator, soft: othersCredential } = await register(other);

        // A good answer first (counter → 1), kept for the replay.
        const firstToken = await challenge(user);
        const firstOptions = await assertionOptions(firstToken);
        const firstAnswer = authenticator.assert(firstOptions);
        assert.equal((await verifyWith(firstToken, firstAnswer)).res.statusCode, 200);

        // Replayed: the same answer with a new login.
        refused(await verifyWith(await challenge(user), firstAnswer));

        // Foreign challenge: options issued to another login of the same user.
        const tokenA = await challenge(user);
        const tokenB = await challenge(user);
        const optionsB = await assertionOptions(tokenB);
        refused(await verifyWith(tokenA, authenticator.assert(optionsB)));
        // …and the other user's challenge.
        const othersOptions = await assertionOptions(await challenge(other));
        refused(await verifyWith(await challenge(user), authenticator.assert({ ...othersOptions, allowCredentials: [] }, { credential: authenticator.credentials[0] })));

        refused(await secondFactor(user, authenticator, { origin: 'https://evil.example' }));
        refused(await secondFactor(user, authenticator, { rpId: 'evil.example' }));
        refused(await secondFactor(user, authenticator, { type: 'webauthn.create' }));

        // Another user's credential, over this user's challenge.
        refused(await secondFactor(user, othersAuthenticator, { credential: othersCredential }));

        // Counter: the stored one is 1; 1 again (not growing) and 0 (decreased) are refused and recorded.
        const before = (await eventTypes(user)).filter((type: string) => type === 'webauthn_counter_error').length;
        refused(await secondFactor(user, authenticator, { counter: 1 }));
        refused(await secondFactor(user, authenticator, { counter: 0 }));
        const after = (await eventTypes(user)).filter((type: string) => type === 'webauthn_counter_error').length;
        assert.equal(after - before, 2);

        // Nothing trusted: no device, and the refused answers opened no session.
        assert.deepEqual(await listDevices(user), []);
        // The authenticator still works with a growing counter.
        const ok = await secondFactor(user, authenticator, { counter: 5 });
        assert.equal(ok.res.statusCode, 200, ok.res.body);
      });

      test('a refused answer counts like a wrong code: 5 burn the temporary token', async () => {
        const user = await signupAndLogin(t.app);
        const { authenticator } = await register(user);
        const token = await challenge(user);
        for (let i = 1; i <= 5; i++) {
          const res = await verifyWith(token, authenticator.assert(await assertionOptions(token), { origin: 'https://evil.example' }));
          if (i < 5) {
            assert.equal(res.body.error.code, 'WEBAUTHN_VERIFICATION_FAILED');
            assert.equal(res.body.error.details.attempts_remaining, 5 - i);
          } else {
            assert.equal(res.res.statusCode, 429);
          }
        }
        // The right answer now fails: the token is out of attempts.
        const optionsRes = await call(t.app, 'POST', `${API}/auth/mfa/webauthn/options`, { temporary_token: token }, { device: laptop() });
        const late = optionsRes.res.statusCode === 200 ? await verifyWith(token, authenticator.assert(optionsRes.body.data.options)) : optionsRes;
        assert.notEqual(late.res.statusCode, 200);
      });

      test('the counter moves forward in one conditional UPDATE: the same or a lower value never wins twice', async () => {
        const user = await signupAndLogin(t.app);
        const { api } = await register(user);
        const repository = createWebauthnRepository(t.db.handle.db, createHistory({ webhooks: false }));
        const now = t.clock.now();
        assert.equal(await repository.advanceCounter(api.id, 7, now), true);
        assert.equal(await repository.advanceCounter(api.id, 7, now), false, 'the same value again (a concurrent twin) loses');
        assert.equal(await repository.advanceCounter(api.id, 3, now), false);
        assert.equal(await repository.advanceCounter(api.id, 0, now), false, 'back to 0 is a decrease');
        assert.equal(await repository.advanceCounter(api.id, 8, now), true);
      });

      test('concurrent answers carrying the same counter: at most one is accepted', async () => {
        const user = await signupAndLogin(t.app);
        const { authenticator } = await register(user);
        const tokens = await Promise.all([1, 2, 3, 4].map(() => challenge(user)));
        const answers = await Promise.all(tokens.map(async (token) => authenticator.assert(await assertionOptions(token), { counter: 9 })));
        const results = await Promise.all(tokens.map((token, i) => verifyWith(token, answers[i])));
        assert.equal(results.filter((r) => r.res.statusCode === 200).length, 1, results.map((r) => r.res.statusCode).join(','));
      });

      test('authenticators without a counter (always 0) are accepted each time', async () => {
        const user = await signupAndLogin(t.app);
        const { authenticator } = await register(user);
        for (let i = 0; i < 2; i++) {
          const res = await secondFactor(user, authenticator, { counter: 0 });
          assert.equal(res.res.statusCode, 200, res.res.body);
        }
      });

      test('options need a valid temporary token from the same device; a user without credentials gets 400', async () => {
        const user = await signupAndLogin(t.app);
        await enableMfa(t, user);
        const token = await challenge(user);
        const noKey = await call(t.app, 'POST', `${API}/auth/mfa/webauthn/options`, { temporary_token: token }, { device: laptop() });
        assert.equal(noKey.body.error.code, 'WEBAUTHN_NOT_REGISTERED');
        const elsewhere = await call(t.app, 'POST', `${API}/auth/mfa/webauthn/options`, { temporary_token: token }, { device: phone() });
        assert.equal(elsewhere.res.statusCode, 401);
        const bogus = await call(t.app, 'POST', `${API}/auth/mfa/webauthn/options`, { temporary_token: 'tdm_nope' }, { device: laptop() });
        assert.equal(bogus.res.statusCode, 401);
      });
    });

    describe('passwordless sign-in', () => {
      test('a browser that asks for it (x-refresh-cookie: 1) gets the refresh token as the HttpOnly td_refresh cookie, not in the body', async () => {
        const user = await signupAndLogin(t.app);
        const { authenticator } = await register(user);
        const { options, attempt_token } = await passkeyOptions();
        const res = await call(t.app, 'POST', `${API}/auth/passkey/verify`, { attempt_token, response: authenticator.assert(options) }, { device: laptop(), headers: { 'x-refresh-cookie': '1' } });
        assert.equal(res.res.statusCode, 200, res.res.body);
        assert.equal(res.body.data.refresh_token, undefined);
        const cookie = ([] as string[]).concat((res.res.headers['set-cookie'] as string | string[]) ?? []).find((c) => c.startsWith('td_refresh='));
        assert.ok(cookie, 'td_refresh is set');
        assert.match(cookie, /HttpOnly/);
        assert.match(cookie, /Path=\/api\/v1\/auth/);
        const token = cookie.slice('td_refresh='.length, cookie.indexOf(';'));
        const refreshed = await call(t.app, 'POST', `${API}/auth/refresh`, {}, { cookies: { td_refresh: token }, headers: { 'x-refresh-cookie': '1' } });
        assert.equal(refreshed.res.statusCode, 200, refreshed.res.body);
      });

      test('a passkey signs in (mfa_method webauthn), the device is then trusted, and the next sign-in uses that trust', async () => {
        const user = await signupAndLogin(t.app);
        const { api, authenticator } = await register(user);

        const { options, attempt_token, expires_in } = await passkeyOptions();
        assert.equal(options.userVerification, 'required');
        assert.deepEqual(options.allowCredentials ?? [], []);
        assert.equal(expires_in, 300);
        assert.match(attempt_token, /^tdp_/);
        const first = await passkeyVerify(attempt_token, authenticator.assert(options));
        assert.equal(first.res.statusCode, 200, first.res.body);
        assert.equal(first.body.data.user_id, user.userId);
        assert.equal(first.body.data.mfa_method, 'webauthn');
        assert.equal(first.body.data.trusted_device_id, null);
        const listed = await call(t.app, 'GET', `${API}/sessions`, undefined, { token: first.body.data.access_token });
        assert.equal(listed.res.statusCode, 200, listed.res.body);
        assert.equal(listed.body.data.sessions.find((x: any) => x.is_current).mfa_method, 'webauthn');
        const { device, deviceToken } = await activate(first.body.data.access_token, first.body.data.trusted_device.activation_token);
        assert.equal(device.granted_by, 'webauthn');
        assert.equal(device.granted_by_credential_id, api.id);

        const trustedLaptop = laptop({ deviceToken });
        const second = await passkeySignIn(authenticator, {}, trustedLaptop);
        assert.equal(second.res.statusCode, 200, second.res.body);
        assert.equal(second.body.data.trusted_device, null);
        assert.equal(second.body.data.trusted_device_id, device.id);
        // The trust was used, so the device token rotated (docs/trust-model.md): the answer and the cookie carry the new one.
        assert.match(second.body.data.device_token, /^tdd_/);
        assert.notEqual(second.body.data.device_token, deviceToken);
        assert.match(String(second.res.headers['set-cookie']), new RegExp(`^td_device=${second.body.data.device_token};`));
        // And the password alone, on that device, bypasses MFA like any trusted device.
        const login = await loginStep(t, user, trustedLaptop);
        assert.equal(login.body.data.mfa_bypassed, true);
      });

      test('docs/trust-model.md: on a key-bound device the passkey sign-in needs the device proof to use the trust', async () => {
        const user = await signupAndLogin(t.app);
        const { authenticator } = await register(user);
        const first = await passkeySignIn(authenticator);
        const key = await makeDeviceKey();
        const activated = await call(t.app, 'POST', `${API}/devices/activate`, { activation_token: first.body.data.trusted_device.activation_token, public_key: key.publicJwk }, { token: first.body.data.access_token, device: laptop() });
        assert.equal(activated.body.data.device.key_bound, true);
        const device = laptop({ deviceToken: activated.body.data.device_token });
        const withProof = async (proof?: string) => {
          const { options, attempt_token } = await passkeyOptions(device);
          return call(t.app, 'POST', `${API}/auth/passkey/verify`, { attempt_token, response: authenticator.assert(options) }, { device, headers: proof ? { 'x-device-proof': proof } : {} });
        };
        const proved = await withProof(await proofHeader(t.app, key));
        assert.equal(proved.body.data.trusted_device_id, activated.body.data.device.id, proved.res.body);
        assert.match(proved.body.data.device_token, /^tdd_/);
        device.deviceToken = proved.body.data.device_token;
        const unproved = await withProof();
        assert.equal(unproved.res.statusCode, 200);
        assert.equal(unproved.body.data.trusted_device_id, null, 'no proof: the trust is not used');
        assert.notEqual(unproved.body.data.trusted_device, null, 'a pending device is offered instead');
        assert.equal(unproved.body.data.device_token, undefined);
      });

      test('refused: no user verification, no user handle, reused or foreign attempt, another device, wrong origin or RP ID', async () => {
        const user = await signupAndLogin(t.app);
        const { authenticator } = await register(user);
        const securityKey = new SoftAuthenticator();
        await register(user, securityKey, { rk: false });

        refused(await passkeySignIn(authenticator, { uv: false }));
        refused(await passkeySignIn(authenticator, { userHandle: null }));
        refused(await passkeySignIn(authenticator, { userHandle: Buffer.from('someone-else').toString('base64url') }));
        refused(await passkeySignIn(authenticator, { origin: 'https://evil.example' }));
        refused(await passkeySignIn(authenticator, { rpId: 'evil.example' }));
        refused(await passkeySignIn(securityKey, { credential: securityKey.credentials[0] }));

        // Foreign attempt: the answer to attempt B presented with attempt A.
        const a = await passkeyOptions();
        const b = await passkeyOptions();
        refused(await passkeyVerify(a.attempt_token, authenticator.assert(b.options)));
        // A is spent now (single use, even when refused).
        refused(await passkeyVerify(a.attempt_token, authenticator.assert(a.options)), 'INVALID_TOKEN');

        // Another device than the one that asked for the attempt.
        const c = await passkeyOptions(laptop());
        refused(await passkeyVerify(c.attempt_token, authenticator.assert(c.options), phone()), 'INVALID_TOKEN');

        // Expired.
        const d = await passkeyOptions();
        t.clock.advance(5 * MINUTE + 1);
        refused(await passkeyVerify(d.attempt_token, authenticator.assert(d.options)), 'INVALID_TOKEN');

        // A good one is accepted once; replaying it is refused.
        const e = await passkeyOptions();
        const answer = authenticator.assert(e.options);
        assert.equal((await passkeyVerify(e.attempt_token, answer)).res.statusCode, 200);
        refused(await passkeyVerify(e.attempt_token, answer), 'INVALID_TOKEN');
        const f = await passkeyOptions();
        refused(await passkeyVerify(f.attempt_token, answer));
        assert.deepEqual(await listDevices(user), []);
      });
    });

    describe('factor provenance (removing a credential revokes the trust it granted)', () => {
      test('each device remembers its factor; removing a credential revokes only the trust it granted', async () => {
        const user = await signupAndLogin(t.app);
        const { backupCodes } = await enableMfa(t, user);
        const keyA = await register(user, new SoftAuthenticator(), {}, 'A');
        const keyB = await register(user, new SoftAuthenticator(), {}, 'B');
        const deviceOf = (n: number): Device => laptop({ ip: `203.0.113.${n}`, signals: { timezone: `Etc/GMT+${n}`, platform: 'MacIntel' } });

        const byTotp = await loginWithMfa(t, user, deviceOf(1));
        const totpDevice = (await activate(byTotp.access_token, byTotp.trusted_device.activation_token, deviceOf(1))).device;
        const byBackup = await call(t.app, 'POST', `${API}/auth/mfa/verify`, { temporary_token: await challenge(user, deviceOf(2)), backup_code: backupCodes[0] }, { device: deviceOf(2) });
        const backupDevice = (await activate(byBackup.body.data.access_token, byBackup.body.data.trusted_device.activation_token, deviceOf(2))).device;
        const byA = await secondFactor(user, keyA.authenticator, {}, deviceOf(3));
        const aDevice = (await activate(byA.body.data.access_token, byA.body.data.trusted_device.activation_token, deviceOf(3))).device;
        const byB = await passkeySignIn(keyB.authenticator, {}, deviceOf(4));
        const bDevice = (await activate(byB.body.data.access_token, byB.body.data.trusted_device.activation_token, deviceOf(4))).device;
        // A pending activation granted by A, not yet used.
        const pendingByA = await secondFactor(user, keyA.authenticator, {}, deviceOf(5));

        const grants = Object.fromEntries((await listDevices(user)).map((d: any) => [d.id, [d.granted_by, d.granted_by_credential_id]]));
        assert.deepEqual(grants, {
          [totpDevice.id]: ['totp', null],
          [backupDevice.id]: ['backup_code', null],
          [aDevice.id]: ['webauthn', keyA.api.id],
          [bDevice.id]: ['webauthn', keyB.api.id],
        });

        const removed = await removeCredential(user, keyA.api.id);
        assert.equal(removed.res.statusCode, 200, removed.res.body);
        assert.deepEqual(removed.body.data, { removed: true, devices_revoked: 1, sessions_ended: 0, mfa_enabled: true });
        assert.deepEqual((await listDevices(user)).map((d: any) => d.id).sort(), [totpDevice.id, backupDevice.id, bDevice.id].sort());
        // Revoking A's device is the "revoke one device" row: the session opened on it ended too.
        assert.equal((await call(t.app, 'GET', `${API}/auth/me`, undefined, { token: byA.body.data.access_token })).res.statusCode, 401);
        assert.equal((await call(t.app, 'GET', `${API}/auth/me`, undefined, { token: byB.body.data.access_token })).res.statusCode, 200);
        // Its pending activation is ended too (410), and its trust no longer bypasses MFA.
        const late = await call(t.app, 'POST', `${API}/devices/activate`, { activation_token: pendingByA.body.data.trusted_device.activation_token }, { token: pendingByA.body.data.access_token, device: deviceOf(5) });
        assert.equal(late.res.statusCode, 410, late.res.body);
        assert.ok((await eventTypes(user)).includes('webauthn_removed'));
        // The removed credential no longer signs in.
        refused(await passkeySignIn(keyA.authenticator, { credential: keyA.soft }));
      });

      test('removing the last second factor runs the "MFA turned off" row: every device revoked, MFA off', async () => {
        const user = await signupAndLogin(t.app);
        const keyA = await register(user);
        const keyB = await register(user);
        const byA = await passkeySignIn(keyA.authenticator, { credential: keyA.soft }, laptop());
        const aDevice = (await activate(byA.body.data.access_token, byA.body.data.trusted_device.activation_token)).device;
        const byB = await passkeySignIn(keyB.authenticator, { credential: keyB.soft }, phone());
        const bDevice = (await activate(byB.body.data.access_token, byB.body.data.trusted_device.activation_token, phone())).device;
        // A trust whose factor was not recorded (granted before migration 005): only the MFA-off row reaches it.
        await t.db.handle.db.updateTable('trusted_devices').set({ granted_by: null, granted_by_credential_id: null }).where('id', '=', bDevice.id).execute();

        const first = await removeCredential(user, keyA.api.id);
        assert.deepEqual(first.body.data, { removed: true, devices_revoked: 1, sessions_ended: 0, mfa_enabled: true });
        assert.deepEqual((await listDevices(user)).map((d: any) => d.id), [bDevice.id]);
        assert.equal(aDevice.granted_by_credential_id, keyA.api.id);

        const last = await removeCredential(user, keyB.api.id);
        assert.equal(last.res.statusCode, 200, last.res.body);
        assert.deepEqual({ ...last.body.data, sessions_ended: undefined }, { removed: true, devices_revoked: 1, sessions_ended: undefined, mfa_enabled: false });
        assert.ok(last.body.data.sessions_ended >= 1, 'the "MFA turned off" row ends the other sessions');
        assert.deepEqual(await listDevices(user), []);
        assert.equal((await call(t.app, 'GET', `${API}/auth/me`, undefined, { token: byB.body.data.access_token })).res.statusCode, 401, 'the passkey session on B ended');
        assert.equal((await call(t.app, 'GET', `${API}/auth/me`, undefined, { token: user.accessToken })).res.statusCode, 200, 'the session that removed it stays');
        assert.deepEqual(await status(user), { mfa_enabled: false, methods: [], backup_codes_remaining: 0 });
        const login = await loginStep(t, user, laptop());
        assert.equal(login.body.data.mfa_required, undefined, 'no second factor left to ask for');
        assert.equal(login.body.data.mfa_bypassed, false);
      });

      test('with TOTP still on, removing the last credential keeps MFA on; turning TOTP off keeps it on while a key remains', async () => {
        const user = await signupAndLogin(t.app);
        const { secret } = await enableMfa(t, user);
        const key = await register(user);
        const removed = await removeCredential(user, key.api.id);
        assert.deepEqual(removed.body.data, { removed: true, devices_revoked: 0, sessions_ended: 0, mfa_enabled: true });
        assert.deepEqual((await status(user)).methods, ['totp', 'backup_code']);

        await register(user);
        const off = await sensitive(user, () => call(t.app, 'POST', `${API}/mfa/deactivate`, { code: nextCode(t, secret) }, { token: user.accessToken }));
        assert.equal(off.res.statusCode, 200, off.res.body);
        assert.equal(off.body.data.mfa_enabled, true);
        assert.deepEqual(await status(user), { mfa_enabled: true, methods: ['webauthn'], backup_codes_remaining: 0 });
      });
    });
  });
}
