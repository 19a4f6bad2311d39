/**
 * Device Bound Session Credentials (docs/sessions.md): a DBSC client written
 * in Node from the W3C webappsec draft drives a live server (listening on
 * 127.0.0.1, plain fetch): the Secure-Session-Registration header of a
 * browser sign-in, the registration JWT (typ dbsc+jwt, ES256, the public
 * jwk in its header, jti = the challenge), the session instructions, the
 * short-lived bound cookie, the refresh (403 + Secure-Session-Challenge, then
 * Secure-Session-Response), Secure-Session-Skipped, and another key's proof.
 * SQLite and PostgreSQL.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { webcrypto } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { createTestApp, databaseKinds, PASSWORD, signupAndLogin, type TestApp } from '../helpers/app.ts';
import { closeQuietly } from '../helpers/teardown.ts';

const { subtle } = webcrypto;
const b64 = (data: ArrayBuffer | Uint8Array | string) => Buffer.from(typeof data === 'string' ? Buffer.from(data) : new Uint8Array(data)).toString('base64url');

/** A DBSC key pair and the proof JWTs the draft describes: ES256 (P-256) or RS256 (RSASSA-PKCS1-v1_5, SHA-256; 2048 bits unless told). */
async function dbscKey(alg: 'ES256' | 'RS256' = 'ES256', modulusLength = 2048) {
  const params = alg === 'ES256' ? { name: 'ECDSA', namedCurve: 'P-256' } : { name: 'RSASSA-PKCS1-v1_5', modulusLength, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' };
  const pair = (await subtle.generateKey(params, false, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const exported = (await subtle.exportKey('jwk', pair.publicKey)) as Record<string, string>;
  const jwk: Record<string, unknown> = alg === 'ES256' ? { kty: exported.kty, crv: exported.crv, x: exported.x, y: exported.y } : { kty: exported.kty, n: exported.n, e: exported.e };
  const signAlg = alg === 'ES256' ? { name: 'ECDSA', hash: 'SHA-256' } : { name: 'RSASSA-PKCS1-v1_5' };
  const sign = async (header: Record<string, unknown>, payload: Record<string, unknown>) => {
    const input = `${b64(JSON.stringify(header))}.${b64(JSON.stringify(payload))}`;
    return `${input}.${b64(await subtle.sign(signAlg, pair.privateKey, Buffer.from(input)))}`;
  };
  return {
    jwk,
    sign,
    registration: (challenge: string, headerJwk: Record<string, unknown> = jwk) => sign({ alg, typ: 'dbsc+jwt', jwk: headerJwk }, { jti: challenge }),
    refresh: (challenge: string) => sign({ alg, typ: 'dbsc+jwt' }, { jti: challenge }),
  };
}
/** An sf-string. */
const sf = (value: string) => `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
/** The value and parameters of a one-item structured-field header. */
function parseItem(header: string | null): { value: string; params: Record<string, string> } {
  assert.ok(header, 'header present');
  const [head, ...rest] = header.split(';');
  const params = Object.fromEntries(rest.map((p) => p.trim().split('=')).map(([k, v]) => [k!, (v ?? '').replace(/^"|"$/g, '')]));
  return { value: head!.trim().replace(/^"|"$/g, ''), params };
}

/** The draft's "identify if a URL is in scope" for an origin-scoped session: the refresh URL never; rules from last to first; otherwise include. */
function inScope(instructions: any, base: string, path: string): 'include' | 'exclude' {
  const url = new URL(path, base);
  if (url.origin !== new URL(instructions.scope.origin).origin) return 'exclude';
  if (url.href === new URL(instructions.refresh_url, base).href) return 'exclude';
  for (const rule of [...(instructions.scope.scope_specification ?? [])].reverse()) {
    const domain: string = rule.domain ?? '*';
    const pattern: string = rule.path ?? '/';
    const hostMatches = domain === '*' || (domain.startsWith('*.') ? url.hostname.endsWith(domain.slice(1)) : url.hostname === domain);
    if (!hostMatches) continue;
    if (url.pathname === pattern || (pattern.endsWith('/') && url.pathname.startsWith(pattern)) || url.pathname.startsWith(`${pattern}/`)) return rule.type;
  }
  return 'include';
}
/** The attributes the draft compares between a credential and a cookie (Domain, Path, Secure, HttpOnly, SameSite), from a cookie-attribute string. */
function comparedAttributes(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text.split(';').map((p) => p.trim()).filter(Boolean)) {
    const [name, value = ''] = part.split('=');
    const key = name!.toLowerCase();
    if (['domain', 'path', 'secure', 'httponly', 'samesite'].includes(key)) out[key] = key === 'samesite' ? value.toLowerCase() : value;
  }
  return out;
}

for (const kind of databaseKinds()) {
  describe(`DBSC from the draft, a Node client against a live server (${kind.name})`, () => {
    let t: TestApp;
    let base = '';
    before(async () => {
      t = await createTestApp(kind);
      await t.app.listen({ host: '127.0.0.1', port: 0 });
      base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
    });
    after(() => closeQuietly('the test app', () => t?.close()));

    /** A browser-like cookie jar over fetch. */
    function browser() {
      const jar = new Map<string, string>();
      return {
        jar,
        async fetch(path: string, init: { method?: string; headers?: Record<string, string>; body?: unknown } = {}) {
          const headers: Record<string, string> = { ...init.headers };
          if (jar.size > 0) headers.cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
          if (init.body !== undefined) headers['content-type'] = 'application/json';
          const res = await fetch(`${base}${path}`, { method: init.method ?? 'POST', headers, body: init.body === undefined ? undefined : JSON.stringify(init.body) });
          for (const line of res.headers.getSetCookie()) {
            const [pair] = line.split(';');
            const [name, value] = pair!.split('=');
            if (/Max-Age=0|Expires=Thu, 01 Jan 1970/i.test(line) || value === '') jar.delete(name!);
            else jar.set(name!, value!);
          }
          const text = await res.text();
          return { status: res.status, headers: res.headers, setCookies: res.headers.getSetCookie(), body: text ? JSON.parse(text) : undefined };
        },
      };
    }

    /** Sign in as a browser in cookie mode and register DBSC from the header, as the draft's user agent would. */
    async function registered(alg: 'ES256' | 'RS256' = 'ES256') {
      const user = await signupAndLogin(t.app);
      const b = browser();
      const key = await dbscKey(alg);
      const login = await b.fetch('/api/v1/auth/login', { body: { email: user.email, password: PASSWORD }, headers: { 'x-refresh-cookie': '1' } });
      assert.equal(login.status, 200);
      const offer = parseItem(login.headers.get('secure-session-registration'));
      assert.equal(offer.value, '(ES256 RS256)', 'both algorithms of the draft are offered');
      assert.equal(offer.params.path, '/api/v1/auth/dbsc/register');
      const reg = await b.fetch(offer.params.path!, { headers: { 'secure-session-response': sf(await key.registration(offer.params.challenge!)) } });
      return { user, b, key, login, reg };
    }

    test('registration: the JWT binds the session; session instructions at the root and in the envelope; a short-lived bound cookie; the session shows binding dbsc', async () => {
      const { b, login, reg } = await registered();
      assert.equal(reg.status, 200, JSON.stringify(reg.body));
      assert.equal(reg.body.success, true);
      assert.equal(reg.body.session_identifier, reg.body.data.session_identifier);
      assert.equal(reg.body.refresh_url, '/api/v1/auth/dbsc/refresh');
      assert.equal(reg.body.continue, true);
      assert.equal(reg.body.credentials.length, 1);
      assert.deepEqual([reg.body.credentials[0].type, reg.body.credentials[0].name], ['cookie', 'td_bound']);
      assert.match(reg.body.credentials[0].attributes, /^Path=\/api\/v1\/auth; HttpOnly; SameSite=Strict(; Secure)?$/);
      assert.equal(reg.body.scope.origin, base);
      // The draft's optional parts: an origin scope narrowed to the one URL that needs the bound cookie; no outside initiators.
      assert.equal(reg.body.scope.include_site, false);
      assert.deepEqual(reg.body.scope.scope_specification, [
        { type: 'exclude', domain: '*', path: '/' },
        { type: 'include', domain: '*', path: '/api/v1/auth/refresh' },
      ]);
      assert.deepEqual(reg.body.allowed_refresh_initiators, []);
      assert.deepEqual(reg.body.data.scope, reg.body.scope);
      assert.deepEqual(reg.body.data.allowed_refresh_initiators, []);
      assert.equal(inScope(reg.body, base, '/api/v1/auth/refresh'), 'include');
      for (const path of ['/api/v1/auth/login', '/api/v1/auth/device-challenge', '/api/v1/auth/refreshed', '/api/v1/auth/dbsc/refresh', '/', '/api/v1/sessions']) {
        assert.equal(inScope(reg.body, base, path), 'exclude', path);
      }
      // The credential's attributes are those of the td_bound Set-Cookie, as the browser compares them (no Domain: host-only).
      const setBound = reg.setCookies.find((line: string) => line.startsWith('td_bound='));
      assert.ok(setBound);
      assert.deepEqual(comparedAttributes(reg.body.credentials[0].attributes), comparedAttributes(setBound.slice(setBound.indexOf(';') + 1)));
      assert.equal(comparedAttributes(reg.body.credentials[0].attributes).domain, undefined);
      assert.ok(b.jar.get('td_bound'));
      const sessions = await b.fetch('/api/v1/sessions', { method: 'GET', headers: { authorization: `Bearer ${login.body.data.access_token}` } });
      const current = sessions.body.data.sessions.find((s: any) => s.is_current);
      assert.equal(current.id, reg.body.session_identifier);
      assert.deepEqual([current.bound, current.binding], [true, 'dbsc']);
      // The challenge of the offer is spent: registering again with it is refused.
      const again = await b.fetch('/api/v1/auth/dbsc/register', { headers: { 'secure-session-response': sf(await (await dbscKey()).registration('tdc_' + 'A'.repeat(43))) } });
      assert.equal(again.status, 400);
      assert.equal(again.body.error.code, 'INVALID_SESSION_RESPONSE');
    });

    test('/auth/refresh needs the fresh bound cookie; the DBSC refresh renews it with a proof; a copied jar without the key is refused once the cookie expires', async () => {
      const { b, key, reg } = await registered();
      const sid: string = reg.body.session_identifier;
      const ok = await b.fetch('/api/v1/auth/refresh', { headers: { 'x-refresh-cookie': '1' } });
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
      assert.equal(ok.body.data.expires_in, 300);
      const copy = browser();
      for (const [k, v] of b.jar) copy.jar.set(k, v);

      t.clock.advance(301_000); // the bound cookie's server-side end
      const stale = await copy.fetch('/api/v1/auth/refresh', { headers: { 'x-refresh-cookie': '1', 'secure-session-skipped': `unreachable;session_identifier=${sf(sid)}, made_up;session_identifier=${sf(sid)}` } });
      assert.equal(stale.status, 401);
      assert.equal(stale.body.error.code, 'SESSION_PROOF_REQUIRED');
      assert.deepEqual(stale.body.error.details, { dbsc: true, skipped: ['unreachable'] });
      // The copy cannot renew the bound cookie: a challenge, and nothing it can sign.
      const copyRefresh = await copy.fetch('/api/v1/auth/dbsc/refresh', { headers: { 'sec-secure-session-id': sf(sid) } });
      assert.equal(copyRefresh.status, 403);

      // The browser: refresh without a proof → 403 with the challenge; signed → 200, new bound cookie.
      const first = await b.fetch('/api/v1/auth/dbsc/refresh', { headers: { 'sec-secure-session-id': sf(sid) } });
      assert.equal(first.status, 403);
      assert.equal(first.body.error.code, 'SESSION_CHALLENGE_REQUIRED');
      const challenge = parseItem(first.headers.get('secure-session-challenge'));
      assert.equal(challenge.params.id, sid);
      const before = b.jar.get('td_bound');
      const second = await b.fetch('/api/v1/auth/dbsc/refresh', { headers: { 'sec-secure-session-id': sf(sid), 'secure-session-response': sf(await key.refresh(challenge.value)) } });
      assert.equal(second.status, 200, JSON.stringify(second.body));
      assert.equal(second.body.session_identifier, sid);
      assert.notEqual(b.jar.get('td_bound'), before);
      const again = await b.fetch('/api/v1/auth/refresh', { headers: { 'x-refresh-cookie': '1' } });
      assert.equal(again.status, 200, JSON.stringify(again.body));
    });

    test('a DBSC refresh signed by another key ends the session (proof_failed); malformed responses are 4xx in the envelope', async () => {
      const { b, reg } = await registered();
      const sid: string = reg.body.session_identifier;
      for (const bad of ['not-sf', sf('a.b.c'), sf('x'.repeat(200)), '"unterminated', sf(`${b64('{"alg":"none","typ":"dbsc+jwt"}')}.${b64('{"jti":"x"}')}.`)]) {
        const res = await b.fetch('/api/v1/auth/dbsc/refresh', { headers: { 'sec-secure-session-id': sf(sid), 'secure-session-response': bad } });
        assert.ok(res.status >= 400 && res.status < 500, `${bad}: ${res.status}`);
        assert.equal(res.body.success, false);
      }
      const first = await b.fetch('/api/v1/auth/dbsc/refresh', { headers: { 'sec-secure-session-id': sf(sid) } });
      const challenge = parseItem(first.headers.get('secure-session-challenge'));
      const thief = await dbscKey();
      const res = await b.fetch('/api/v1/auth/dbsc/refresh', { headers: { 'sec-secure-session-id': sf(sid), 'secure-session-response': sf(await thief.refresh(challenge.value)) } });
      assert.equal(res.status, 401);
      assert.equal(res.body.error.details.cause, 'proof_failed');
      const refresh = await b.fetch('/api/v1/auth/refresh', { headers: { 'x-refresh-cookie': '1' } });
      assert.equal(refresh.status, 401);
      assert.equal(refresh.body.error.details.cause, 'proof_failed');
    });

    test('RS256, the draft\'s second algorithm: an RSA 2048 key registers and refreshes; a proof in another algorithm or by another RSA key ends the session', async () => {
      const { b, key, login, reg } = await registered('RS256');
      assert.equal(reg.status, 200, JSON.stringify(reg.body));
      const sid: string = reg.body.session_identifier;
      const sessions = await b.fetch('/api/v1/sessions', { method: 'GET', headers: { authorization: `Bearer ${login.body.data.access_token}` } });
      assert.deepEqual(
        sessions.body.data.sessions.filter((x: any) => x.is_current).map((x: any) => [x.id, x.bound, x.binding]),
        [[sid, true, 'dbsc']],
      );
      const challengeOf = async () => parseItem((await b.fetch('/api/v1/auth/dbsc/refresh', { headers: { 'sec-secure-session-id': sf(sid) } })).headers.get('secure-session-challenge')).value;
      const renewed = await b.fetch('/api/v1/auth/dbsc/refresh', { headers: { 'sec-secure-session-id': sf(sid), 'secure-session-response': sf(await key.refresh(await challengeOf())) } });
      assert.equal(renewed.status, 200, JSON.stringify(renewed.body));
      assert.equal((await b.fetch('/api/v1/auth/refresh', { headers: { 'x-refresh-cookie': '1' } })).status, 200);
      // Another RSA key: the session ends.
      const thief = await dbscKey('RS256');
      const stolen = await b.fetch('/api/v1/auth/dbsc/refresh', { headers: { 'sec-secure-session-id': sf(sid), 'secure-session-response': sf(await thief.refresh(await challengeOf())) } });
      assert.equal(stolen.status, 401);
      assert.equal(stolen.body.error.details.cause, 'proof_failed');

      // An ES256 proof for an RS256 session (algorithm confusion) is another key's proof too.
      const other = await registered('RS256');
      const otherSid: string = other.reg.body.session_identifier;
      const challenge = parseItem((await other.b.fetch('/api/v1/auth/dbsc/refresh', { headers: { 'sec-secure-session-id': sf(otherSid) } })).headers.get('secure-session-challenge')).value;
      const confused = await other.b.fetch('/api/v1/auth/dbsc/refresh', { headers: { 'sec-secure-session-id': sf(otherSid), 'secure-session-response': sf(await (await dbscKey('ES256')).refresh(challenge)) } });
      assert.equal(confused.status, 401);
      assert.equal(confused.body.error.details.cause, 'proof_failed');
    });

    test('RS256 registration keys are checked: too short, too long, a private member, another exponent, a leading zero, the wrong kty for the alg, signed by another key → 400 INVALID_SESSION_RESPONSE, nothing bound', async () => {
      const user = await signupAndLogin(t.app);
      const b = browser();
      const login = await b.fetch('/api/v1/auth/login', { body: { email: user.email, password: PASSWORD }, headers: { 'x-refresh-cookie': '1' } });
      assert.equal(login.status, 200);
      const rsa = await dbscKey('RS256');
      const ec = await dbscKey('ES256');
      const short = await dbscKey('RS256', 1024);
      const n = Buffer.from(rsa.jwk.n as string, 'base64url');
      const cases: Array<[string, (challenge: string) => Promise<string>, RegExp]> = [
        ['a 1024-bit key (its signature has the wrong size)', (c) => short.registration(c), /not a DBSC proof/],
        ['a 1024-bit modulus in the header', (c) => rsa.registration(c, { ...rsa.jwk, n: b64(n.subarray(0, 128)) }), /2048 to 4096 bits \(it is 1024\)/],
        ['a 4160-bit modulus', (c) => rsa.registration(c, { ...rsa.jwk, n: b64(Buffer.concat([Buffer.from([0xff]), Buffer.alloc(519, 0x55), Buffer.from([0x01])])) }), /2048 to 4096 bits \(it is 4168\)/],
        ['a private member d', (c) => rsa.registration(c, { ...rsa.jwk, d: rsa.jwk.n }), /private RSA member/],
        ['a private member p', (c) => rsa.registration(c, { ...rsa.jwk, p: 'AQAB' }), /private RSA member/],
        ['exponent 3', (c) => rsa.registration(c, { ...rsa.jwk, e: 'Aw' }), /65537/],
        ['a leading zero byte', (c) => rsa.registration(c, { ...rsa.jwk, n: b64(Buffer.concat([Buffer.from([0]), n])) }), /leading zero/],
        ['an even modulus', (c) => rsa.registration(c, { ...rsa.jwk, n: b64(Buffer.concat([n.subarray(0, n.length - 1), Buffer.from([n[n.length - 1]! & 0xfe])])) }), /odd/],
        ['not base64url', (c) => rsa.registration(c, { ...rsa.jwk, n: 'not base64!' }), /modulus/],
        ['alg ES256 in the jwk', (c) => rsa.registration(c, { ...rsa.jwk, alg: 'ES256' }), /RS256/],
        ['an EC jwk under RS256', (c) => rsa.sign({ alg: 'RS256', typ: 'dbsc+jwt', jwk: ec.jwk }, { jti: c }), /kty "RSA"/],
        ['an RSA jwk under ES256', (c) => ec.sign({ alg: 'ES256', typ: 'dbsc+jwt', jwk: rsa.jwk }, { jti: c }), /kty "EC"/],
        ['no jwk', (c) => rsa.sign({ alg: 'RS256', typ: 'dbsc+jwt' }, { jti: c }), /RSA JWK/],
        ['signed by another RSA key', async (c) => (await dbscKey('RS256')).registration(c, rsa.jwk), /not signed by the key it carries/],
      ];
      for (const [what, make, message] of cases) {
        const challenge = (await b.fetch('/api/v1/auth/device-challenge')).body.data.challenge;
        const res = await b.fetch('/api/v1/auth/dbsc/register', { headers: { 'secure-session-response': sf(await make(challenge)) } });
        assert.equal(res.status, 400, `${what}: ${JSON.stringify(res.body)}`);
        assert.equal(res.body.success, false, what);
        assert.equal(res.body.error.code, 'INVALID_SESSION_RESPONSE', what);
        assert.match(res.body.error.message, message, what);
      }
      const sessions = await b.fetch('/api/v1/sessions', { method: 'GET', headers: { authorization: `Bearer ${login.body.data.access_token}` } });
      assert.deepEqual(sessions.body.data.sessions.filter((x: any) => x.is_current).map((x: any) => x.bound), [false], 'nothing was bound');
      // The same session still registers with the good key.
      const challenge = (await b.fetch('/api/v1/auth/device-challenge')).body.data.challenge;
      const good = await b.fetch('/api/v1/auth/dbsc/register', { headers: { 'secure-session-response': sf(await rsa.registration(challenge)) } });
      assert.equal(good.status, 200, JSON.stringify(good.body));
      assert.equal(good.body.continue, true);
    });

    test('a session bound with session_key is not offered DBSC, and keeps its binding if a registration comes anyway', async () => {
      const user = await signupAndLogin(t.app);
      const b = browser();
      const pair = await subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify']);
      const { x, y } = (await subtle.exportKey('jwk', pair.publicKey)) as Record<string, string>;
      const login = await b.fetch('/api/v1/auth/login', { body: { email: user.email, password: PASSWORD, session_key: { kty: 'EC', crv: 'P-256', x, y } }, headers: { 'x-refresh-cookie': '1' } });
      assert.equal(login.status, 200);
      assert.equal(login.headers.get('secure-session-registration'), null);
      const challenge = (await b.fetch('/api/v1/auth/device-challenge')).body.data.challenge;
      const reg = await b.fetch('/api/v1/auth/dbsc/register', { headers: { 'secure-session-response': sf(await (await dbscKey()).registration(challenge)) } });
      assert.equal(reg.status, 200);
      assert.equal(reg.body.continue, false);
    });
  });
}
