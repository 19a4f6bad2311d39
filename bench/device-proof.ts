/**
 * `npm run bench:device-proof`: what a key-bound trusted login adds (docs/trust-model.md)
 * — the challenge request and the proof check — next to the argon2id verify
 * that dominates every password login.
 *
 *   npm run bench:device-proof                 # 40 logins of each kind
 *   npm run bench:device-proof -- --logins 100 --json
 *
 * In process, no network: buildApp on a temporary SQLite file database with
 * the production password hasher (argon2id, OWASP parameters), requests
 * through app.inject, one at a time (latency, not throughput). Measured:
 *   1. argon2id verify alone;
 *   2. the proof check alone (import the stored JWK + WebCrypto ES256 verify);
 *   3. POST /auth/device-challenge (random challenge, one INSERT);
 *   4. a trusted login of a plain device vs of a key-bound device (the
 *      latter's time = challenge request + login with x-device-proof; the
 *      client's signing is not counted: it runs on the client).
 * Both kinds of login rotate the device token, so their difference is the
 * proof: the challenge round trip, its consuming UPDATE, and the verify.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { webcrypto, randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../src/app/build-app.ts';
import { loadConfig } from '../src/platform/config.ts';
import { connectDatabase } from '../src/store/connect.ts';
import { migrateToLatest } from '../src/store/migrate.ts';
import { parsePublicKey, verifyProof } from '../src/platform/crypto/device-keys.ts';
import { totpCode } from '../src/features/mfa/totp.ts';
import { createPasswordHasher } from '../src/platform/crypto/passwords.ts';

const { values: args } = parseArgs({ options: { logins: { type: 'string', default: '40' }, json: { type: 'boolean', default: false } } });
const LOGINS = Math.max(5, Number(args.logins));
const PASSWORD = 'Bench-Password-1';
const UA = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36';
const { subtle } = webcrypto;

const stats = (samples: number[]) => {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return { n: sorted.length, p50: at(0.5), p90: at(0.9), mean: sorted.reduce((s, x) => s + x, 0) / sorted.length };
};
const time = async (fn: () => Promise<unknown>) => {
  const start = performance.now();
  await fn();
  return performance.now() - start;
};

const dir = mkdtempSync(join(tmpdir(), 'td-bench-proof-'));
const database = connectDatabase(`sqlite:${join(dir, 'bench.db')}`);
let app: FastifyInstance | undefined;
try {
  await migrateToLatest(database.db);
  const passwords = createPasswordHasher();
  const config = loadConfig({ RATE_LIMITS: 'off', COOKIE_SECURE: 'false', LOG_LEVEL: 'warn', DATA_DIR: dir });
  app = await buildApp({ config, keys: { jwtSecret: randomBytes(32), fingerprintKey: randomBytes(32), dataEncryptionKey: randomBytes(32) }, database, passwordHasher: passwords, logStream: { write: () => true } as never });
  const inject = async (method: 'POST' | 'GET', url: string, body?: unknown, headers: Record<string, string> = {}, token?: string) => {
    const res = await app!.inject({
      method,
      url: `/api/v1${url}`,
      headers: { 'user-agent': UA, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
      ...(body !== undefined ? { payload: JSON.stringify(body) } : {}),
    });
    const parsed = JSON.parse(res.body || '{}');
    if (res.statusCode >= 400) throw new Error(`${method} ${url}: ${res.statusCode} ${res.body}`);
    return parsed.data;
  };

  // An account with TOTP, one plain trusted device and one key-bound one.
  const email = `bench-${Date.now()}@example.com`;
  await inject('POST', '/auth/signup', { email, password: PASSWORD });
  const first = await inject('POST', '/auth/login', { email, password: PASSWORD });
  const setup = await inject('POST', '/mfa/totp/setup', {}, {}, first.access_token);
  const { backup_codes: codes } = await inject('POST', '/mfa/totp/verify', { code: totpCode(setup.secret, Date.now()) }, {}, first.access_token);
  const trust = async (publicKey?: unknown) => {
    const challenge = await inject('POST', '/auth/login', { email, password: PASSWORD });
    const verified = await inject('POST', '/auth/mfa/verify', { temporary_token: challenge.temporary_token, backup_code: codes.pop() });
    const activated = await inject('POST', '/devices/activate', { activation_token: verified.trusted_device.activation_token, ...(publicKey ? { public_key: publicKey } : {}) }, {}, verified.access_token);
    return activated.device_token as string;
  };
  const pair = await subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify']);
  const jwk = await subtle.exportKey('jwk', pair.publicKey);
  let plainToken = await trust();
  let boundToken = await trust(jwk);
  const sign = async (challenge: string) => Buffer.from(await subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, pair.privateKey, Buffer.from(challenge))).toString('base64url');

  // 1. argon2id alone.
  const hash = await passwords.hash(PASSWORD);
  const argon: number[] = [];
  for (let i = 0; i < LOGINS; i++) argon.push(await time(() => passwords.verify(hash, PASSWORD)));

  // 2. The proof check alone.
  const stored = (await parsePublicKey(jwk)).stored;
  const sampleChallenge = `tdc_${randomBytes(32).toString('base64url')}`;
  const sampleSignature = Buffer.from(await sign(sampleChallenge), 'base64url');
  const verify: number[] = [];
  for (let i = 0; i < 2000; i++) verify.push(await time(() => verifyProof(stored, sampleChallenge, sampleSignature)));

  // 3. The challenge request.
  const challengeTimes: number[] = [];
  for (let i = 0; i < 500; i++) challengeTimes.push(await time(() => inject('POST', '/auth/device-challenge')));

  // 4. Trusted logins, alternating kinds so drift hits both alike.
  const plain: number[] = [];
  const bound: number[] = [];
  for (let i = 0; i < LOGINS; i++) {
    plain.push(
      await time(async () => {
        const data = await inject('POST', '/auth/login', { email, password: PASSWORD }, { 'x-device-token': plainToken });
        if (!data.mfa_bypassed) throw new Error('plain device not trusted');
        plainToken = data.device_token;
      }),
    );
    let challenge = '';
    const challengeMs = await time(async () => {
      challenge = (await inject('POST', '/auth/device-challenge')).challenge;
    });
    const proof = `${challenge}.${await sign(challenge)}`; // on the client: not counted
    const loginMs = await time(async () => {
      const data = await inject('POST', '/auth/login', { email, password: PASSWORD }, { 'x-device-token': boundToken, 'x-device-proof': proof });
      if (!data.mfa_bypassed) throw new Error('key-bound device not trusted');
      boundToken = data.device_token;
    });
    bound.push(challengeMs + loginMs);
  }

  const result = {
    logins: LOGINS,
    argon2idVerifyMs: stats(argon),
    proofVerifyMs: stats(verify),
    challengeRequestMs: stats(challengeTimes),
    plainTrustedLoginMs: stats(plain),
    keyBoundTrustedLoginMs: stats(bound),
  };
  const added = result.keyBoundTrustedLoginMs.p50 - result.plainTrustedLoginMs.p50;
  if (args.json) {
    process.stdout.write(`${JSON.stringify({ ...result, addedP50Ms: added }, null, 2)}\n`);
  } else {
    const row = (name: string, s: ReturnType<typeof stats>) => `| ${name} | ${s.n} | ${s.p50.toFixed(3)} | ${s.p90.toFixed(3)} | ${s.mean.toFixed(3)} |`;
    console.log('| what | n | p50 ms | p90 ms | mean ms |\n|---|---|---|---|---|');
    console.log(row('argon2id verify (OWASP)', result.argon2idVerifyMs));
    console.log(row('proof check (JWK import + ES256 verify)', result.proofVerifyMs));
    console.log(row('POST /auth/device-challenge', result.challengeRequestMs));
    console.log(row('trusted login, plain device', result.plainTrustedLoginMs));
    console.log(row('trusted login, key-bound (challenge + login)', result.keyBoundTrustedLoginMs));
    console.log(`\nadded by the proof at p50: ${added.toFixed(3)} ms = ${((added / result.argon2idVerifyMs.p50) * 100).toFixed(1)} % of one argon2id verify`);
  }
} finally {
  await app?.close();
  await database.close().catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
}
