/**
 * `npm run bench:session-refresh`: what a bound session's refresh costs
 * (docs/sessions.md, "Bound sessions") next to an unbound one.
 *
 *   npm run bench:session-refresh                    # 500 refreshes of each kind
 *   npm run bench:session-refresh -- --refreshes 2000 --json
 *
 * In process, no network: buildApp on a temporary SQLite file, a fast
 * password hasher (sign-ins are not measured), requests through app.inject
 * one at a time (latency, not throughput), alternating the two kinds:
 *   - unbound: POST /auth/refresh with the refresh token;
 *   - bound: POST /auth/device-challenge, then POST /auth/refresh with
 *     x-session-proof (the client's signature is made between the two and
 *     is not counted: it runs on the client). Measured both as the refresh
 *     request alone and as challenge + refresh (what a client waits for).
 * The bound refresh adds the challenge INSERT, its consuming UPDATE, the
 * refresh-token/session read before the transaction, and the ES256 verify.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { randomBytes, webcrypto } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../src/app/build-app.ts';
import { loadConfig } from '../src/platform/config.ts';
import { connectDatabase } from '../src/store/connect.ts';
import { migrateToLatest } from '../src/store/migrate.ts';
import { createPasswordHasher } from '../src/platform/crypto/passwords.ts';

const { values: args } = parseArgs({ options: { refreshes: { type: 'string', default: '500' }, json: { type: 'boolean', default: false } } });
const N = Math.max(10, Number(args.refreshes));
const PASSWORD = 'Bench-Password-1';
const { subtle } = webcrypto;

const stats = (samples: number[]) => {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return { n: sorted.length, p50: at(0.5), p90: at(0.9), p99: at(0.99), mean: sorted.reduce((s, x) => s + x, 0) / sorted.length };
};

const dir = mkdtempSync(join(tmpdir(), 'td-bench-refresh-'));
const database = connectDatabase(`sqlite:${join(dir, 'bench.db')}`);
let app: FastifyInstance | undefined;
try {
  await migrateToLatest(database.db);
  const config = loadConfig({ RATE_LIMITS: 'off', COOKIE_SECURE: 'false', LOG_LEVEL: 'warn', DATA_DIR: dir, JWT_ALGORITHM: 'HS256' });
  const passwordHasher = createPasswordHasher({ memoryCost: 1024, timeCost: 1, parallelism: 1 }, undefined, 100_000, Number.POSITIVE_INFINITY);
  app = await buildApp({ config, keys: { jwtSecret: randomBytes(32), fingerprintKey: randomBytes(32), dataEncryptionKey: randomBytes(32) }, database, passwordHasher, logStream: { write: () => true } as never });
  const post = async (url: string, body: unknown, headers: Record<string, string> = {}) => {
    const res = await app!.inject({ method: 'POST', url: `/api/v1${url}`, headers: { 'content-type': 'application/json', ...headers }, payload: JSON.stringify(body ?? {}) });
    if (res.statusCode >= 400) throw new Error(`POST ${url}: ${res.statusCode} ${res.body}`);
    return JSON.parse(res.body).data;
  };
  const email = `bench-${Date.now()}@example.com`;
  await post('/auth/signup', { email, password: PASSWORD });
  const pair = await subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify']);
  const { x, y } = (await subtle.exportKey('jwk', pair.publicKey)) as { x: string; y: string };
  let unbound: string = (await post('/auth/login', { email, password: PASSWORD })).refresh_token;
  let bound: string = (await post('/auth/login', { email, password: PASSWORD, session_key: { kty: 'EC', crv: 'P-256', x, y } })).refresh_token;

  const plain: number[] = [];
  const refreshOnly: number[] = [];
  const withChallenge: number[] = [];
  for (let i = 0; i < N; i++) {
    let start = performance.now();
    unbound = (await post('/auth/refresh', { refresh_token: unbound })).refresh_token;
    plain.push(performance.now() - start);

    start = performance.now();
    const { challenge } = await post('/auth/device-challenge', {});
    const challengeMs = performance.now() - start;
    const signature = Buffer.from(await subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, pair.privateKey, Buffer.from(challenge))).toString('base64url');
    start = performance.now();
    bound = (await post('/auth/refresh', { refresh_token: bound }, { 'x-session-proof': `${challenge}.${signature}` })).refresh_token;
    const refreshMs = performance.now() - start;
    refreshOnly.push(refreshMs);
    withChallenge.push(challengeMs + refreshMs);
  }
  const result = {
    refreshes: N,
    unbound_refresh: stats(plain),
    bound_refresh_request: stats(refreshOnly),
    bound_challenge_plus_refresh: stats(withChallenge),
  };
  if (args.json) console.log(JSON.stringify(result, null, 2));
  else {
    console.log(`${N} refreshes of each kind (ms)`);
    for (const [name, s] of Object.entries(result)) {
      if (typeof s === 'number') continue;
      console.log(`${name.padEnd(30)} p50 ${s.p50.toFixed(3)}  p90 ${s.p90.toFixed(3)}  p99 ${s.p99.toFixed(3)}  mean ${s.mean.toFixed(3)}`);
    }
  }
} finally {
  await app?.close();
  await database.close();
  rmSync(dir, { recursive: true, force: true });
}
