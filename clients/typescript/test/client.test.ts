/**
 * The client against a live server: the real app listening on 127.0.0.1, port
 * 0, reached over HTTP with fetch (no inject). Login with and without MFA,
 * trust / not now, MFA bypass on the trusted device, list, revoke, refresh on
 * an expired access token, the error type, and the device proof (docs/trust-model.md):
 * a key-bound device bypasses MFA with its proof, a copied device token
 * without the key (or with another key) does not. The web app's side:
 * cookie-refresh mode (the refresh token only ever in the td_refresh
 * cookie, one refresh for concurrent 401s, a failed refresh ends the
 * session) and the untyped request(). Runs on every storage of
 * the matrix, like the service's own suites.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { totpCode } from '../../../src/features/mfa/totp.ts';
import { closeQuietly } from '../../../test/helpers/teardown.ts';
import { CHROME_MAC, createTestApp, databaseKinds, enableMfa, PASSWORD, SIGNALS, signupAndLogin, type TestApp, type TestUser } from '../../../test/helpers/app.ts';
import { encodeFingerprint } from '../src/browser.ts';
import { createDeviceKey, type DeviceKeyPair } from '../src/device-key.ts';
import { createTrustedDevicesClient, type DeviceKeyStore, memoryDeviceKeyStore, memoryTokenStore, type MfaStep, StepUpRequiredError, TrustedDevicesError } from '../src/index.ts';

for (const kind of databaseKinds()) {
  describe(`TypeScript client against a live server (${kind.name})`, () => {
    let t: TestApp;
    let baseUrl: string;
    before(async () => {
      t = await createTestApp(kind);
      await t.app.listen({ host: '127.0.0.1', port: 0 });
      baseUrl = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
    });
    after(() => closeQuietly('the test app', () => t?.close()));

    /** A client as one laptop's app would hold it: its own token store, UA and signals. */
    const laptopClient = (extra: { tokens?: ReturnType<typeof memoryTokenStore>; deviceKeys?: DeviceKeyStore | false; fetch?: typeof fetch } = {}) =>
      createTrustedDevicesClient({ baseUrl, fingerprint: encodeFingerprint(SIGNALS), headers: { 'user-agent': CHROME_MAC }, ...extra });
    /** A fetch that records the path and x-device-proof of every request, then sends it. */
    const recordingFetch = () => {
      const requests: Array<{ path: string; proof: string | null }> = [];
      const wrapped = (async (input: RequestInfo | URL, init?: RequestInit) => {
        const request = new Request(input, init);
        requests.push({ path: new URL(request.url).pathname, proof: request.headers.get('x-device-proof') });
        return fetch(request);
      }) as typeof fetch;
      return { fetch: wrapped, requests };
    };
    const code = (user: TestUser) => {
      t.clock.advance(30_000);
      return totpCode(user.totpSecret!, t.clock.now());
    };
    const mfaUser = async () => {
      const user = await signupAndLogin(t.app);
      await enableMfa(t, user);
      return user;
    };

    test('login without MFA returns a session; the tokens are kept and used', async () => {
      const user = await signupAndLogin(t.app);
      const client = laptopClient();
      const result = await client.login({ email: user.email, password: PASSWORD });
      assert.equal(result.kind, 'session');
      assert.ok(result.kind === 'session' && result.session.user_id === user.userId && !result.mfaBypassed);
      assert.equal((await client.me()).email, user.email);
      assert.ok(await client.tokens.get('refresh_token'));
    });

    test('login with MFA → verify → trust this device → the next login bypasses MFA → list → revoke → MFA again', async () => {
      const user = await mfaUser();
      const client = laptopClient();
      const step = (await client.login({ email: user.email, password: PASSWORD })) as MfaStep;
      assert.equal(step.kind, 'mfa_required');
      assert.ok(step.methods.includes('totp'));
      assert.equal(await client.tokens.get('access_token'), undefined, 'no token before the second factor');

      const verified = await client.verifyMfa(step, { code: code(user) });
      assert.equal(verified.session.user_id, user.userId);
      assert.ok(verified.pendingDevice, 'a device to trust is offered');
      const device = await client.trustThisDevice(verified.pendingDevice, 'Work laptop');
      assert.equal(device.device_name, 'Work laptop');
      assert.equal(device.is_active, true);
      assert.ok(await client.tokens.get('device_token'), 'outside a browser the device token is kept in the store');

      const again = await client.login({ email: user.email, password: PASSWORD });
      assert.equal(again.kind, 'session');
      assert.ok(again.kind === 'session' && again.mfaBypassed, 'MFA bypassed on the trusted device');

      const listed = await client.devices.list();
      assert.deepEqual(listed.map((d) => [d.id, d.is_current]), [[device.id, true]]);
      await client.devices.revoke(device.id);
      // Revoking the device signs it out (its sessions end): the client learns it and forgets the tokens.
      await assert.rejects(client.devices.list(), (error: unknown) => error instanceof TrustedDevicesError && error.status === 401);
      assert.equal(await client.tokens.get('refresh_token'), undefined);
      const afterRevoke = await client.login({ email: user.email, password: PASSWORD });
      assert.equal(afterRevoke.kind, 'mfa_required', 'a revoked device asks for MFA again');
      await client.verifyMfa(afterRevoke as MfaStep, { code: code(user) });
      assert.deepEqual(await client.devices.list(), [], 'no trusted device left');

      // Another laptop (its own store: no device token) is not trusted by the first one's trust.
      const other = await laptopClient().login({ email: user.email, password: PASSWORD });
      assert.equal(other.kind, 'mfa_required');
    });

    test('not now: the device is not remembered; a backup code works as the second factor', async () => {
      const user = await mfaUser();
      const { backupCodes } = await enableMfaCodes(user);
      const client = laptopClient();
      const step = (await client.login({ email: user.email, password: PASSWORD })) as MfaStep;
      const verified = await client.verifyMfa(step, { backupCode: backupCodes[0]! });
      await client.notNow(verified.pendingDevice!);
      assert.equal(await client.tokens.get('device_token'), undefined);
      assert.deepEqual(await client.devices.list(), []);
      assert.equal((await client.login({ email: user.email, password: PASSWORD })).kind, 'mfa_required');
      // The skipped activation token cannot trust the device afterwards.
      await assert.rejects(client.trustThisDevice(verified.pendingDevice!), (error: unknown) => error instanceof TrustedDevicesError && error.status === 409 && error.code === 'ACTIVATION_TOKEN_USED');
    });

    test('an expired access token is refreshed once and the call retried; refresh() rotates the refresh token', async () => {
      const user = await signupAndLogin(t.app);
      const tokens = memoryTokenStore();
      const client = createTrustedDevicesClient({ baseUrl, tokens, headers: { 'user-agent': CHROME_MAC } });
      await client.login({ email: user.email, password: PASSWORD });
      const firstAccess = await tokens.get('access_token');
      const firstRefresh = await tokens.get('refresh_token');
      t.clock.advance(16 * 60_000); // past the 15-minute access-token lifetime
      assert.equal((await client.me()).user_id, user.userId);
      assert.notEqual(await tokens.get('access_token'), firstAccess);
      assert.notEqual(await tokens.get('refresh_token'), firstRefresh);
      // Two callers at once share one refresh (a second one would present a rotated token).
      const [a, b] = await Promise.all([client.refresh(), client.refresh()]);
      assert.equal(a.refresh_token, b.refresh_token);
      assert.equal((await client.me()).user_id, user.userId);
    });

    test('session keys: the client binds every sign-in and refreshes with a proof; its refresh token copied into a client without the key is refused', async () => {
      const user = await signupAndLogin(t.app);
      const tokens = memoryTokenStore();
      const client = createTrustedDevicesClient({ baseUrl, tokens, headers: { 'user-agent': CHROME_MAC } });
      const result = await client.login({ email: user.email, password: PASSWORD });
      assert.equal(result.kind, 'session');
      if (result.kind === 'session') assert.equal(result.session.expires_in, 300, 'a bound session’s access token');
      const [current] = (await client.request('GET', '/sessions')).sessions.filter((s: any) => s.is_current);
      assert.equal(current.bound, true);
      assert.equal(current.binding, 'webcrypto');
      t.clock.advance(301_000);
      assert.equal((await client.me()).user_id, user.userId, 'refreshed with a proof of its key');
      const copied = await tokens.get('refresh_token');
      const thief = createTrustedDevicesClient({ baseUrl, tokens: memoryTokenStore({ refresh_token: copied! }), headers: { 'user-agent': CHROME_MAC } });
      await assert.rejects(thief.refresh(), (error: unknown) => error instanceof TrustedDevicesError && error.code === 'SESSION_PROOF_REQUIRED');
      // The real client still refreshes (nothing was rotated or ended by the refused copy).
      await client.refresh();
      const unbound = createTrustedDevicesClient({ baseUrl, sessionKeys: false, headers: { 'user-agent': CHROME_MAC } });
      const plain = await unbound.login({ email: user.email, password: PASSWORD });
      if (plain.kind === 'session') assert.equal(plain.session.expires_in, 900, 'sessionKeys: false → unbound');
    });

    test('errors arrive as TrustedDevicesError with the envelope code; logout forgets the tokens', async () => {
      const user = await signupAndLogin(t.app);
      const client = laptopClient();
      await assert.rejects(client.login({ email: user.email, password: 'Wrong-Password-1' }), (error: unknown) => {
        assert.ok(error instanceof TrustedDevicesError);
        assert.equal(error.status, 401);
        assert.equal(error.code, 'INVALID_CREDENTIALS');
        assert.ok(error.requestId);
        return true;
      });
      await client.login({ email: user.email, password: PASSWORD });
      await client.logout();
      assert.equal(await client.tokens.get('access_token'), undefined);
      await assert.rejects(client.me(), (error: unknown) => error instanceof TrustedDevicesError && error.status === 401);
      // The typed layer underneath: paths, bodies and answers are checked by the compiler.
      const health = await client.api.GET('/healthz');
      assert.equal(health.data?.data.status, 'ok');
      // @ts-expect-error: not a path of the document
      void (() => client.api.GET('/api/v1/no-such-route'));
    });

    test('step-up: STEP_UP_REQUIRED arrives as StepUpRequiredError with maxAge (no refresh); stepUp() keeps the new token and the retry passes', async () => {
      const user = await mfaUser();
      const client = laptopClient();
      const step = await client.login({ email: user.email, password: PASSWORD });
      assert.equal(step.kind, 'mfa_required');
      await client.verifyMfa(step as MfaStep, { code: code(user) });
      t.clock.advance(601_000);
      // The client binds its session to a key, so its access tokens live 5 minutes: an ordinary call
      // refreshes the expired one first. From then on, a step-up 401 must not refresh again.
      await client.request('GET', '/devices');
      const refreshToken = await client.tokens.get('refresh_token');
      const revokeAll = () => client.request('DELETE', '/devices');
      for (const attempt of [() => client.devices.revokeAll(), revokeAll]) {
        await assert.rejects(attempt(), (error: unknown) => {
          assert.ok(error instanceof StepUpRequiredError, String(error));
          assert.ok(error instanceof TrustedDevicesError);
          assert.equal(error.status, 401);
          assert.equal(error.code, 'STEP_UP_REQUIRED');
          assert.equal(error.maxAge, 600);
          assert.deepEqual(error.methods, ['totp', 'backup_code']);
          assert.equal(error.acrValues, 'urn:trusted-devices:acr:multi-factor');
          return true;
        });
      }
      assert.equal(await client.tokens.get('refresh_token'), refreshToken, 'a step-up 401 is not a dead session: nothing was refreshed');
      const before = await client.tokens.get('access_token');
      const result = await client.stepUp({ code: code(user) });
      assert.notEqual(await client.tokens.get('access_token'), before);
      assert.equal(await client.tokens.get('access_token'), result.access_token);
      assert.deepEqual(result.amr, ['pwd', 'otp', 'mfa']);
      assert.equal(await client.devices.revokeAll(), 0);
    });

    test('device proof: trusting binds a non-extractable key; the next login fetches a challenge, signs it and bypasses MFA', async () => {
      const user = await mfaUser();
      const held: DeviceKeyPair[] = [];
      const memory = memoryDeviceKeyStore();
      const keys: DeviceKeyStore = { get: (account) => memory.get(account), set: (account, pair) => (held.push(pair), memory.set(account, pair)) };
      const recorder = recordingFetch();
      const client = laptopClient({ deviceKeys: keys, fetch: recorder.fetch });

      const step = (await client.login({ email: user.email, password: PASSWORD })) as MfaStep;
      assert.equal(step.kind, 'mfa_required');
      assert.ok(!recorder.requests.some((r) => r.path.endsWith('/device-challenge')), 'no key held yet: no challenge asked for');
      const { pendingDevice } = await client.verifyMfa(step, { code: code(user) });
      const device = await client.trustThisDevice(pendingDevice!);
      assert.equal(device.key_bound, true, 'the public key went with the activation');
      assert.equal(held.length, 1, 'the key pair is kept once the service accepted it');
      assert.equal(held[0]!.privateKey.extractable, false, 'the private key cannot be read out');
      assert.equal(await memory.get(user.email), held[0], 'kept under the account (the lower-cased email)');

      recorder.requests.length = 0;
      const again = await client.login({ email: ` ${user.email.toUpperCase()} `, password: PASSWORD });
      assert.ok(again.kind === 'session' && again.mfaBypassed, 'the key-bound device skips MFA with its proof');
      assert.deepEqual(recorder.requests.map((r) => r.path), ['/api/v1/auth/device-challenge', '/api/v1/auth/login'], 'one challenge, then the login');
      assert.match(recorder.requests[1]!.proof ?? '', /^tdc_[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{86}$/, 'x-device-proof: <challenge>.<64-byte P1363 signature>');
      assert.equal((await client.devices.list())[0]!.key_bound, true);
      const types = (await client.devices.events()).events.map((e) => e.type);
      assert.ok(types.includes('trust_used') && !types.includes('proof_failed'), types.join(','));
    });

    test('device proof: a copied device token without the key, or with another key, does not bypass MFA', async () => {
      const user = await mfaUser();
      const owner = laptopClient();
      const { pendingDevice } = await owner.verifyMfa((await owner.login({ email: user.email, password: PASSWORD })) as MfaStep, { code: code(user) });
      assert.equal((await owner.trustThisDevice(pendingDevice!)).key_bound, true);
      const copied = await owner.tokens.get('device_token');
      assert.ok(copied);

      // The same user agent and signals and the current device token: only the key is missing.
      const withoutKey = await laptopClient({ tokens: memoryTokenStore({ device_token: copied }) }).login({ email: user.email, password: PASSWORD });
      assert.equal(withoutKey.kind, 'mfa_required', 'no proof: MFA');

      const otherKeys = memoryDeviceKeyStore();
      await otherKeys.set(user.email, (await createDeviceKey()).pair);
      const recorder = recordingFetch();
      const wrongKey = await laptopClient({ tokens: memoryTokenStore({ device_token: copied }), deviceKeys: otherKeys, fetch: recorder.fetch }).login({ email: user.email, password: PASSWORD });
      assert.ok(recorder.requests.some((r) => r.proof), 'a proof was sent, signed by the wrong key');
      assert.equal(wrongKey.kind, 'mfa_required', 'a proof by another key: MFA');

      // Failed proofs neither revoke nor rotate the device: its holder still signs in without a code.
      const owners = await owner.login({ email: user.email, password: PASSWORD });
      assert.ok(owners.kind === 'session' && owners.mfaBypassed, 'the device with its key still skips MFA');
      const failures = (await owner.devices.events()).events.filter((e) => e.type === 'proof_failed');
      assert.equal(failures.length, 2, 'each copy attempt is recorded as proof_failed');
    });

    test('deviceKeys: false trusts the device with its token alone (no key, no challenge)', async () => {
      const user = await mfaUser();
      const recorder = recordingFetch();
      const client = laptopClient({ deviceKeys: false, fetch: recorder.fetch });
      const { pendingDevice } = await client.verifyMfa((await client.login({ email: user.email, password: PASSWORD })) as MfaStep, { code: code(user) });
      assert.equal((await client.trustThisDevice(pendingDevice!)).key_bound, false);
      const again = await client.login({ email: user.email, password: PASSWORD });
      assert.ok(again.kind === 'session' && again.mfaBypassed);
      assert.ok(!recorder.requests.some((r) => r.path.endsWith('/device-challenge') || r.proof));
    });

    /** A fetch with a cookie jar, as a browser on the service's origin keeps the td_refresh cookie; it records every request. */
    const cookieJarFetch = () => {
      const cookies = new Map<string, string>();
      const requests: Array<{ path: string; headers: Headers; body: string }> = [];
      const wrapped = (async (input: RequestInfo | URL, init?: RequestInit) => {
        const request = new Request(input, init);
        requests.push({ path: new URL(request.url).pathname, headers: new Headers(request.headers), body: await request.clone().text() });
        const headers = new Headers(request.headers);
        if (cookies.size > 0) headers.set('cookie', [...cookies].map(([k, v]) => `${k}=${v}`).join('; '));
        const response = await fetch(new Request(request, { headers }));
        for (const line of response.headers.getSetCookie()) {
          const [pair = '', ...attributes] = line.split(';');
          const [name = '', value = ''] = pair.split('=');
          const gone = value === '' || attributes.some((a) => /^\s*max-age=0\s*$/i.test(a) || /^\s*expires=thu, 01 jan 1970/i.test(a));
          if (gone) cookies.delete(name.trim());
          else cookies.set(name.trim(), value);
        }
        return response;
      }) as typeof fetch;
      return { fetch: wrapped, cookies, requests };
    };

    test('cookie-refresh mode: the refresh token stays in the td_refresh cookie; a 401 refreshes through it once and retries; a failed refresh ends the session', async () => {
      const user = await signupAndLogin(t.app);
      const jar = cookieJarFetch();
      const tokens = memoryTokenStore();
      let expired = 0;
      const client = createTrustedDevicesClient({
        baseUrl,
        tokens,
        refreshCookie: true,
        fetch: jar.fetch,
        fingerprint: encodeFingerprint(SIGNALS),
        headers: { 'user-agent': CHROME_MAC },
        deviceKeys: false,
        onSessionExpired: () => void (expired += 1),
      });
      const result = await client.login({ email: user.email, password: PASSWORD });
      assert.ok(result.kind === 'session');
      assert.equal(result.session.refresh_token, undefined, 'the answer carries no refresh token');
      assert.equal(await tokens.get('refresh_token'), undefined);
      const firstCookie = jar.cookies.get('td_refresh');
      assert.ok(firstCookie, 'the refresh token is the td_refresh cookie');
      const login = jar.requests.find((r) => r.path === '/api/v1/auth/login')!;
      assert.equal(login.headers.get('x-refresh-cookie'), '1');
      assert.ok(login.headers.get('x-device-fingerprint'));

      const firstAccess = await tokens.get('access_token');
      t.clock.advance(16 * 60_000); // past the 15-minute access-token lifetime
      // Two calls at once meet the expired token: one refresh through the cookie, both retried.
      const [me, list] = await Promise.all([client.request('GET', '/auth/me'), client.request<{ devices: unknown[] }>('GET', '/devices')]);
      assert.equal(me.user_id, user.userId);
      assert.ok(Array.isArray(list.devices));
      const refreshes = jar.requests.filter((r) => r.path === '/api/v1/auth/refresh');
      assert.equal(refreshes.length, 1, 'concurrent 401s share one refresh');
      assert.equal(refreshes[0]!.headers.get('x-refresh-cookie'), '1');
      assert.equal(refreshes[0]!.body, '', 'no token in the body: the cookie carries it');
      assert.notEqual(await tokens.get('access_token'), firstAccess);
      assert.notEqual(jar.cookies.get('td_refresh'), firstCookie, 'the cookie rotated');
      assert.ok(jar.requests.find((r) => r.path === '/api/v1/devices')!.headers.get('x-device-fingerprint'), '/devices calls carry the fingerprint');
      assert.equal(expired, 0);

      // The session ends elsewhere (here: the cookie is no longer valid): the refresh fails, the tokens are forgotten, the app is told once.
      jar.cookies.set('td_refresh', 'not-a-refresh-token');
      t.clock.advance(16 * 60_000);
      await assert.rejects(client.request('GET', '/auth/me'), (error: unknown) => error instanceof TrustedDevicesError && error.status === 401 && error.code === 'UNAUTHORIZED');
      assert.equal(expired, 1);
      assert.equal(await tokens.get('access_token'), undefined);
    });

    test('request(): envelope data (null for 204), error fields for the web app, NETWORK_ERROR when the server cannot be reached', async () => {
      const user = await signupAndLogin(t.app);
      const client = laptopClient();
      await client.login({ email: user.email, password: PASSWORD });
      const policy = await client.request('GET', '/auth/password-policy', { auth: false });
      assert.equal(typeof policy, 'object');
      await assert.rejects(client.request('POST', '/auth/signup', { body: { email: 'not-an-email', password: 'x' }, auth: false }), (error: unknown) => {
        assert.ok(error instanceof TrustedDevicesError);
        assert.equal(error.status, 422);
        assert.equal(error.code, 'VALIDATION_ERROR');
        assert.ok(Array.isArray(error.details), 'details: the field problems');
        return true;
      });
      const ended = await client.request<{ revoked_count?: number }>('DELETE', '/sessions?except_current=true');
      assert.ok(ended && typeof ended === 'object', 'the query string goes with the path');
      assert.equal(await client.request('POST', '/auth/logout'), null, '204: null');
      const closed = createTrustedDevicesClient({ baseUrl: 'http://127.0.0.1:9', deviceKeys: false });
      await assert.rejects(closed.request('GET', '/auth/password-policy', { auth: false }), (error: unknown) => error instanceof TrustedDevicesError && error.status === 0 && error.code === 'NETWORK_ERROR');
    });

    async function enableMfaCodes(user: TestUser): Promise<{ backupCodes: string[] }> {
      // enableMfa already ran in mfaUser(); regenerate to learn a set of backup codes.
      const res = await t.app.inject({
        method: 'POST',
        url: '/api/v1/mfa/backup-codes/regenerate',
        headers: { authorization: `Bearer ${user.accessToken}`, 'content-type': 'application/json' },
        payload: JSON.stringify({ code: code(user) }),
      });
      assert.equal(res.statusCode, 200, res.body);
      return { backupCodes: res.json().data.backup_codes };
    }
  });
}
