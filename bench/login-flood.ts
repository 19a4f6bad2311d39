/**
 * `npm run bench:login-flood`: a login flood against the production bundle
 * (NODE_ENV=production, OWASP argon2id, RATE_LIMITS=on), measuring how a
 * legitimate login from another address fares meanwhile, and the server's
 * resident memory. Two floods of FLOOD_SECONDS (default 20) each:
 *
 *   1. one IP, distinct emails, wrong passwords (the per-IP ceiling's case);
 *   2. a new IP for every request (no per-IP limit applies: the bounded
 *      hashing queue's case).
 *
 * Meanwhile one client signs in with the right password every 200 ms from
 * its own address. Prints statuses, latencies (p50/p95/max) and RSS; the
 * numbers go into docs/security.md. A benchmark, not a test: the machine's
 * load decides the numbers.
 */
import { spawn, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import autocannon from 'autocannon';

const FLOOD_SECONDS = Number(process.env.FLOOD_SECONDS ?? 20);
const CONNECTIONS = Number(process.env.FLOOD_CONNECTIONS ?? 64);
const PORT = 3000 + Math.floor(Math.random() * 2000) + 2000;
const BASE = `http://127.0.0.1:${PORT}`;
const PASSWORD = 'Correct-Horse-9';

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
};
const rssMb = (pid: number) => {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
  return Math.round(Number(line?.split(/\s+/)[1] ?? 0) / 1024);
};

async function post(path: string, body: unknown, ip: string) {
  const started = performance.now();
  const res = await fetch(`${BASE}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-forwarded-for': ip, 'user-agent': 'bench' }, body: JSON.stringify(body) });
  await res.arrayBuffer();
  return { status: res.status, ms: performance.now() - started };
}

async function scenario(name: string, pid: number, floodIp: () => string, email: string) {
  let n = 0;
  const statuses = new Map<number, number>();
  const flood = autocannon({
    url: BASE,
    connections: CONNECTIONS,
    duration: FLOOD_SECONDS,
    requests: [
      {
        method: 'POST',
        path: '/api/v1/auth/login',
        setupRequest: (request) => ({
          ...request,
          headers: { 'content-type': 'application/json', 'x-forwarded-for': floodIp(), 'user-agent': 'flood' },
          body: JSON.stringify({ email: `flood-${n++}@example.com`, password: 'Wrong-Password-1' }),
        }),
        onResponse: (status) => statuses.set(status, (statuses.get(status) ?? 0) + 1),
      },
    ],
  });
  const legit: Array<{ status: number; ms: number }> = [];
  const rss: number[] = [];
  const until = performance.now() + FLOOD_SECONDS * 1000 - 500;
  await sleep(500); // let the flood get going first
  while (performance.now() < until) {
    legit.push(await post('/api/v1/auth/login', { email, password: PASSWORD }, '203.0.113.77'));
    rss.push(rssMb(pid));
    await sleep(200);
  }
  const result = await flood;
  const ok = legit.filter((l) => l.status === 200).map((l) => l.ms);
  const all = legit.map((l) => l.ms);
  const legitStatuses = new Map<number, number>();
  for (const l of legit) legitStatuses.set(l.status, (legitStatuses.get(l.status) ?? 0) + 1);
  console.log(`\n${name}`);
  console.log(`  flood: ${result.requests.total} requests (${Math.round(result.requests.average)}/s), statuses ${JSON.stringify(Object.fromEntries(statuses))}`);
  console.log(`  legitimate logins: ${legit.length}, statuses ${JSON.stringify(Object.fromEntries(legitStatuses))}`);
  console.log(`  legitimate latency (all answers): p50 ${percentile(all, 50).toFixed(1)} ms, p95 ${percentile(all, 95).toFixed(1)} ms, max ${Math.max(...all).toFixed(1)} ms`);
  if (ok.length > 0) console.log(`  legitimate latency (200 only): p50 ${percentile(ok, 50).toFixed(1)} ms, p95 ${percentile(ok, 95).toFixed(1)} ms`);
  console.log(`  server RSS during the flood: ${Math.min(...rss)}–${Math.max(...rss)} MB (end ${rss.at(-1)} MB)`);
  return { p95: percentile(all, 95), rssMax: Math.max(...rss) };
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'td-flood-'));
  execFileSync(process.execPath, ['scripts/build.mjs'], { stdio: 'inherit' });
  const server = spawn(process.execPath, ['dist/server/main.mjs'], {
    env: {
      ...process.env,
      NODE_ENV: 'production',
      PORT: String(PORT),
      HOST: '127.0.0.1',
      DATABASE_URL: `sqlite:${join(dir, 'db.sqlite')}`,
      DATA_DIR: dir,
      RATE_LIMITS: 'on',
      TRUST_PROXY: '127.0.0.1',
      LOG_LEVEL: 'error',
      JWT_SECRET: randomBytes(32).toString('hex'),
      FINGERPRINT_KEY: randomBytes(32).toString('hex'),
      DATA_ENCRYPTION_KEY: randomBytes(32).toString('hex'),
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  try {
    for (let i = 0; ; i++) {
      try {
        if ((await fetch(`${BASE}/healthz`)).ok) break;
      } catch {
        if (i > 100) throw new Error('the server did not start');
      }
      await sleep(100);
    }
    console.log(`machine: ${availableParallelism()} cores, ${cpus()[0]?.model ?? '?'}, Node ${process.version}; ${CONNECTIONS} flood connections, ${FLOOD_SECONDS} s per flood`);
    const email = `legit-${randomBytes(4).toString('hex')}@example.com`;
    const signup = await post('/api/v1/auth/signup', { email, password: PASSWORD }, '203.0.113.77');
    if (signup.status !== 201) throw new Error(`signup: ${signup.status}`);
    const idle: number[] = [];
    for (let i = 0; i < 10; i++) idle.push((await post('/api/v1/auth/login', { email, password: PASSWORD }, '203.0.113.77')).ms);
    console.log(`idle: legitimate login p50 ${percentile(idle, 50).toFixed(1)} ms; RSS ${rssMb(server.pid!)} MB`);

    await scenario('1. one IP floods logins with distinct emails', server.pid!, () => '198.51.100.1', email);
    let ip = 0;
    await scenario('2. every flood request from a new IP (no per-IP limit applies)', server.pid!, () => `10.${(ip >> 16) & 255}.${(ip >> 8) & 255}.${ip++ & 255}`, email);
  } finally {
    server.kill('SIGTERM');
    await sleep(500);
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
