/**
 * `npm run bench:login-flood`: login floods against the production bundle
 * (NODE_ENV=production, OWASP argon2id, RATE_LIMITS=on, TRUST_PROXY so each
 * flood request can claim its address), measuring what the real people get
 * meanwhile (docs/security.md, "Login floods"). Three floods of
 * FLOOD_SECONDS (default 20) with FLOOD_CONNECTIONS (default 64) parallel
 * wrong logins, distinct emails:
 *
 *   1. from one IP (the per-IP ceiling's case);
 *   2. from 64 addresses, round robin (the many-address flood: the fair
 *      hashing line's case);
 *   3. from a new address for every request (no per-address rule can tell
 *      the flood from a newcomer).
 *
 * Meanwhile:
 * - the owner signs in from a trusted device (MFA on, a device token,
 *   `x-device-fingerprint`), one login after another with a 200 ms pause:
 *   success = 200 with the second factor skipped; p50/p95 of every answer,
 *   against the same measured idle;
 * - every second someone signs in (right password, no device) from an
 *   address never seen before, up to 3 tries, following Retry-After (at most
 *   1 s): how many got in at the 1st, 2nd, 3rd try, or not at all.
 *
 * Prints the flood's rate and the share of 401/429/503, those figures, and
 * the server's RSS. BENCH_DATABASE_URL (postgres://…, a database is created
 * and dropped), BENCH_REDIS_URL and BENCH_INSTANCES=2 run the same against
 * PostgreSQL with Redis-shared limits and two instances (each gets its own
 * flood connections; the people alternate between them). SCENARIOS=2,1
 * chooses and orders the floods. A benchmark, not a test: the machine's
 * load decides the numbers.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { totpCode } from '../src/features/mfa/totp.ts';

const FLOOD_SECONDS = Number(process.env.FLOOD_SECONDS ?? 20);
const CONNECTIONS = Number(process.env.FLOOD_CONNECTIONS ?? 64);
const INSTANCES = Number(process.env.BENCH_INSTANCES ?? 1);
const DATABASE_URL = process.env.BENCH_DATABASE_URL;
const REDIS_URL = process.env.BENCH_REDIS_URL;
/** The flood generators' niceness (0: not niced): see bench/login-flood-worker.ts. */
const NICE = Number(process.env.FLOOD_NICE ?? 19);
const BASE_PORT = 3000 + Math.floor(Math.random() * 2000) + 2000;
const bases = Array.from({ length: INSTANCES }, (_, i) => `http://127.0.0.1:${BASE_PORT + i}`);
const PASSWORD = 'Correct-Horse-9';
const OWNER_UA = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36';
const OWNER_SIGNALS = JSON.stringify({ timezone: 'Europe/Paris', language: 'fr-FR,en', platform: 'MacIntel', screen: '1728x1117', color_depth: 30, hardware_concurrency: 10 });
const OWNER_IP = '203.0.113.77';

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
};
const rssMb = (pid: number) => {
  try {
    const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
    return Math.round(Number(line?.split(/\s+/)[1] ?? 0) / 1024);
  } catch {
    return NaN;
  }
};
const pct = (n: number, total: number) => `${total === 0 ? 0 : ((100 * n) / total).toFixed(1)}%`;

let turn = 0;
async function post(path: string, body: unknown, ip: string, headers: Record<string, string> = {}) {
  const base = bases[turn++ % bases.length]!;
  const started = performance.now();
  const res = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-forwarded-for': ip, 'user-agent': 'bench', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, ms: performance.now() - started, body: text ? JSON.parse(text) : undefined, retryAfter: Number(res.headers.get('retry-after') ?? 0) };
}

/** The owner: MFA on (TOTP), a trusted device; returns a login that rotates and keeps the device token. */
async function makeOwner() {
  const email = `owner-${randomBytes(4).toString('hex')}@example.com`;
  const device = { 'user-agent': OWNER_UA, 'x-device-fingerprint': OWNER_SIGNALS };
  if ((await post('/api/v1/auth/signup', { email, password: PASSWORD }, '203.0.113.1')).status !== 201) throw new Error('owner signup');
  const first = await post('/api/v1/auth/login', { email, password: PASSWORD }, OWNER_IP, device);
  const bearer = { authorization: `Bearer ${first.body.data.access_token}` };
  const setup = await post('/api/v1/mfa/totp/setup', {}, OWNER_IP, bearer);
  const enabled = await post('/api/v1/mfa/totp/verify', { code: totpCode(setup.body.data.secret, Date.now()) }, OWNER_IP, bearer);
  if (enabled.status !== 200) throw new Error(`totp verify: ${JSON.stringify(enabled.body)}`);
  const challenge = await post('/api/v1/auth/login', { email, password: PASSWORD }, OWNER_IP, device);
  const verified = await post('/api/v1/auth/mfa/verify', { temporary_token: challenge.body.data.temporary_token, backup_code: enabled.body.data.backup_codes[0] }, OWNER_IP, device);
  if (verified.status !== 200) throw new Error(`mfa verify: ${JSON.stringify(verified.body)}`);
  const activated = await post('/api/v1/devices/activate', { activation_token: verified.body.data.trusted_device.activation_token }, OWNER_IP, { ...device, authorization: `Bearer ${verified.body.data.access_token}` });
  if (activated.status !== 200) throw new Error(`activate: ${JSON.stringify(activated.body)}`);
  let token: string = activated.body.data.device_token;
  return async () => {
    const res = await post('/api/v1/auth/login', { email, password: PASSWORD }, OWNER_IP, { ...device, 'x-device-token': token });
    if (res.status === 200 && res.body.data.device_token) token = res.body.data.device_token;
    return { ...res, ok: res.status === 200 && res.body.data.mfa_bypassed === true };
  };
}

let newcomers = 0;
/** Someone from an address never seen before: up to 3 tries; the try that got in (1..3), or 0. */
async function newcomer(email: string): Promise<number> {
  const n = ++newcomers;
  const ip = `192.0.${(n >> 8) & 255}.${n & 255}`;
  for (let attempt = 1; attempt <= 3; attempt++) {
    const res = await post('/api/v1/auth/login', { email, password: PASSWORD }, ip);
    if (res.status === 200) return attempt;
    await sleep(Math.min(1, res.retryAfter || 1) * 1000);
  }
  return 0;
}

/** One flood generator per instance, each a niced child process (bench/login-flood-worker.ts). */
function startFlood(base: string, pattern: string, offset: number): Promise<{ total: number; statuses: Record<string, number> }> {
  const args = [process.execPath, '--import', 'tsx', 'bench/login-flood-worker.ts', base, String(CONNECTIONS), String(FLOOD_SECONDS), pattern, String(offset)];
  const child = NICE > 0 ? spawn('nice', ['-n', String(NICE), ...args]) : spawn(args[0]!, args.slice(1));
  let out = '';
  child.stdout!.on('data', (chunk) => (out += chunk));
  child.stderr!.on('data', (chunk) => process.stderr.write(chunk));
  return new Promise((resolve, reject) =>
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop()!)) : reject(new Error(`flood worker exited ${code}`)))),
  );
}

async function scenario(name: string, pids: number[], pattern: string, ownerLogin: () => Promise<{ ok: boolean; ms: number; status: number }>, newcomerEmail: string, idleP95: number) {
  const floods = bases.map((base, i) => startFlood(base, pattern, i * 10_000_000));
  const owner: Array<{ ok: boolean; ms: number; status: number }> = [];
  const arrivals: number[] = [];
  const rss: number[] = [];
  const until = performance.now() + FLOOD_SECONDS * 1000 - 1500;
  await sleep(1000); // let the flood get going first
  const ownerLoop = (async () => {
    while (performance.now() < until) {
      owner.push(await ownerLogin());
      rss.push(Math.max(...pids.map(rssMb)));
      await sleep(200);
    }
  })();
  const newcomerLoop = (async () => {
    const pending: Array<Promise<void>> = [];
    while (performance.now() < until - 2000) {
      pending.push(newcomer(newcomerEmail).then((got) => void arrivals.push(got)));
      await sleep(1000);
    }
    await Promise.all(pending);
  })();
  await Promise.all([ownerLoop, newcomerLoop]);
  const results = await Promise.all(floods);
  const total = results.reduce((sum, r) => sum + r.total, 0);
  const statuses = new Map<number, number>();
  for (const r of results) for (const [status, count] of Object.entries(r.statuses)) statuses.set(Number(status), (statuses.get(Number(status)) ?? 0) + count);
  const counted = [...statuses.values()].reduce((a, b) => a + b, 0);
  const ownerMs = owner.map((o) => o.ms);
  const ownerOk = owner.filter((o) => o.ok).length;
  const ownerStatuses: Record<number, number> = {};
  for (const o of owner) ownerStatuses[o.status] = (ownerStatuses[o.status] ?? 0) + 1;
  const gotIn = [1, 2, 3].map((k) => arrivals.filter((a) => a === k).length);
  console.log(`\n${name}`);
  console.log(`  flood: ${total} requests (${Math.round(total / FLOOD_SECONDS)}/s); 401 ${pct(statuses.get(401) ?? 0, counted)}, 429 ${pct(statuses.get(429) ?? 0, counted)}, 503 ${pct(statuses.get(503) ?? 0, counted)} ${JSON.stringify(Object.fromEntries(statuses))}`);
  console.log(`  owner on a trusted device: ${ownerOk}/${owner.length} signed in (${pct(ownerOk, owner.length)}), statuses ${JSON.stringify(ownerStatuses)}; p50 ${percentile(ownerMs, 50).toFixed(0)} ms, p95 ${percentile(ownerMs, 95).toFixed(0)} ms (${(percentile(ownerMs, 95) / idleP95).toFixed(1)}× the idle p95), max ${Math.max(...ownerMs).toFixed(0)} ms`);
  console.log(`  untrusted new addresses: ${arrivals.length} arrivals; in at try 1: ${gotIn[0]}, try 2: ${gotIn[1]}, try 3: ${gotIn[2]}; not in after 3: ${arrivals.filter((a) => a === 0).length} (${pct(gotIn[0]! + gotIn[1]! + gotIn[2]!, arrivals.length)} within 3 tries)`);
  console.log(`  server RSS during the flood: ${Math.min(...rss)}–${Math.max(...rss)} MB`);
}

async function waitHealthy(base: string) {
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${base}/healthz`)).ok) return;
    } catch {
      if (i > 600) throw new Error('the server did not start');
    }
    await sleep(100);
  }
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'td-flood-'));
  let databaseUrl = `sqlite:${join(dir, 'db.sqlite')}`;
  let dropDatabase = async () => undefined;
  if (DATABASE_URL) {
    const name = `td_flood_${randomBytes(4).toString('hex')}`;
    const admin = new pg.Client({ connectionString: DATABASE_URL });
    await admin.connect();
    await admin.query(`create database ${name}`);
    await admin.end();
    const url = new URL(DATABASE_URL);
    url.pathname = `/${name}`;
    databaseUrl = url.toString();
    dropDatabase = async () => {
      const again = new pg.Client({ connectionString: DATABASE_URL });
      await again.connect();
      await again.query(`drop database if exists ${name} with (force)`);
      await again.end();
    };
  }
  execFileSync(process.execPath, ['scripts/build.mjs'], { stdio: 'inherit' });
  const env = {
    ...process.env,
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    DATABASE_URL: databaseUrl,
    DATA_DIR: dir,
    RATE_LIMITS: 'on',
    TRUST_PROXY: '127.0.0.1',
    LOG_LEVEL: 'error',
    JWT_ALGORITHM: 'HS256',
    JWT_SECRET: randomBytes(32).toString('hex'),
    FINGERPRINT_KEY: randomBytes(32).toString('hex'),
    DATA_ENCRYPTION_KEY: randomBytes(32).toString('hex'),
    ...(REDIS_URL ? { REDIS_URL } : {}),
    // Instances on one machine share its cores (README: PASSWORD_HASH_CONCURRENCY).
    PASSWORD_HASH_CONCURRENCY: String(Math.max(1, Math.floor(availableParallelism() / INSTANCES))),
  };
  const servers: ChildProcess[] = [];
  try {
    // One after the other: the first migrates.
    for (let i = 0; i < INSTANCES; i++) {
      servers.push(spawn(process.execPath, ['dist/server/main.mjs'], { env: { ...env, PORT: String(BASE_PORT + i) }, stdio: ['ignore', 'inherit', 'inherit'] }));
      await waitHealthy(bases[i]!);
    }
    const pids = servers.map((s) => s.pid!);
    console.log(
      `machine: ${availableParallelism()} cores, ${cpus()[0]?.model ?? '?'}, Node ${process.version}, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}; ` +
        `${DATABASE_URL ? 'PostgreSQL' : 'SQLite'}${REDIS_URL ? ' + Redis' : ''}, ${INSTANCES} instance(s); ${CONNECTIONS} flood connections per instance, ${FLOOD_SECONDS} s per flood`,
    );
    const ownerLogin = await makeOwner();
    const newcomerEmail = `newcomer-${randomBytes(4).toString('hex')}@example.com`;
    if ((await post('/api/v1/auth/signup', { email: newcomerEmail, password: PASSWORD }, '203.0.113.2')).status !== 201) throw new Error('newcomer signup');
    const idle: number[] = [];
    for (let i = 0; i < 20; i++) {
      const res = await ownerLogin();
      if (!res.ok) throw new Error(`idle trusted login: ${res.status}`);
      idle.push(res.ms);
    }
    const idleP95 = percentile(idle, 95);
    console.log(`idle: trusted-device login p50 ${percentile(idle, 50).toFixed(0)} ms, p95 ${idleP95.toFixed(0)} ms; RSS ${pids.map(rssMb).join(' + ')} MB`);

    const scenarios: Record<string, () => Promise<void>> = {
      1: () => scenario('1. one IP floods logins with distinct emails', pids, 'one', ownerLogin, newcomerEmail, idleP95),
      2: () => scenario('2. 64 addresses flood logins (round robin), distinct emails', pids, 'rotate64', ownerLogin, newcomerEmail, idleP95),
      3: () => scenario('3. every flood request from a new address', pids, 'unique', ownerLogin, newcomerEmail, idleP95),
    };
    // SCENARIOS=2,1 runs those, in that order.
    for (const key of (process.env.SCENARIOS ?? '1,2,3').split(',')) await scenarios[key.trim()]?.();
  } finally {
    for (const server of servers) server.kill('SIGTERM');
    await sleep(1000);
    await dropDatabase().catch((error) => console.error('drop database:', error));
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
