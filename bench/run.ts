/**
 * `npm run bench`: speed and memory of the hot paths, with a reference in the same run.
 *
 *   npm run bench                                   # 200,000 users (1,000,000 devices), 10 s per case
 *   npm run bench -- --users 20000 --duration 5     # quick
 *   npm run bench -- --json                         # one JSON object on stdout
 *   npm run bench -- --database-url postgres://127.0.0.1/test   # also PostgreSQL (in a scratch schema)
 *   npm run bench -- --cpu-prof ./artifacts/prof    # the real server writes a .cpuprofile per start
 *
 * What it does: seeds temporary SQLite databases (10,000 devices and
 * users × devices-per-user devices) with bench/seed.ts, builds the service
 * once the way `npm start` does (`node scripts/build.mjs`: an esbuild bundle
 * of src/app/main.ts, packages external), starts it as a child process
 * (`node dist/server/main.mjs`, NODE_ENV=production, RATE_LIMITS=off, fresh
 * random keys, LOG_LEVEL=warn, a free port), and drives
 * it with autocannon at 32 connections from this process. With taskset and
 * two cores, the server runs on core 0 and this process on core 1. The same
 * load also goes to bench/reference-server.mjs: bare Fastify (constant JSON)
 * and the yardstick of issue 11 (jose HS256, no cache, one prepared SELECT).
 * Every request goes to 127.0.0.1; every loop is bounded by a duration, a
 * count or a deadline. Latencies are recorded per response (high-resolution,
 * not autocannon's 1 ms histogram buckets); RSS is read from /proc.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon, { type AutocannonRequest } from 'autocannon';
import pg from 'pg';
import { createPasswordHasher, OWASP_ARGON2ID, QUEUE_PER_SLOT } from '../src/platform/crypto/passwords.ts';
import { generateSigningKeyPem, parseSigningKey } from '../src/platform/crypto/signing-keys.ts';
import { BENCH_PASSWORD } from './profiles.ts';
import { type BenchFixtures, seed, type SeedResult } from './seed.ts';

// ---------------------------------------------------------------------------
// Options

const { values: args } = parseArgs({
  options: {
    users: { type: 'string', default: '200000' },
    'devices-per-user': { type: 'string', default: '5' },
    'small-devices': { type: 'string', default: '10000' },
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '32' },
    'database-url': { type: 'string' },
    'cpu-prof': { type: 'string' },
    json: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    'list-only': { type: 'boolean', default: false },
    'jwt-algorithm': { type: 'string', default: 'HS256' },
    'housekeeping-interval': { type: 'string', default: '3' },
    help: { type: 'boolean', default: false },
  },
});

if (args.help) {
  process.stdout.write(
    'npm run bench -- [--users 200000] [--devices-per-user 5] [--small-devices 10000] [--duration 10] [--connections 32]\n' +
      '                 [--database-url postgres://…] [--cpu-prof DIR] [--json] [--keep] [--list-only] [--housekeeping-interval 3]\n',
  );
  process.exit(0);
}

const whole = (name: string, raw: string | undefined, min: number, max: number): number => {
  const value = Number(raw);
  if (!/^\d+$/.test(raw ?? '') || value < min || value > max) {
    process.stderr.write(`--${name} must be a whole number from ${min} to ${max} (got "${raw}")\n`);
    process.exit(2);
  }
  return value;
};

const USERS = whole('users', args.users, 100, 5_000_000);
const DEVICES_PER_USER = whole('devices-per-user', args['devices-per-user'], 1, 10);
const SMALL_DEVICES = whole('small-devices', args['small-devices'], DEVICES_PER_USER, 1_000_000);
const DURATION = whole('duration', args.duration, 1, 600);
const CONNECTIONS = whole('connections', args.connections, 1, 1024);
/**
 * Connections for the flows that hash a password (trusted login, MFA login).
 * The service runs one hash per core and lets at most QUEUE_PER_SLOT more wait,
 * and fewer when the line ahead would take over a second; beyond that it
 * sheds with 503 SERVER_BUSY at once (src/platform/crypto/passwords.ts). With the
 * server on one core and the flow's other requests competing for it, 32
 * connections (or even 8) measure the shedding, not the hash-bound rate these
 * cases are about; half the line never sheds.
 */
const HASHING_CONNECTIONS = Math.min(CONNECTIONS, QUEUE_PER_SLOT / 2);
const WARMUP_SECONDS = Math.min(3, Math.max(1, Math.floor(DURATION / 3)));
/** The service's housekeeping runs this often (s), so that it runs during every measured window. */
const HOUSEKEEPING_INTERVAL = whole('housekeeping-interval', args['housekeeping-interval'], 1, 86_400);
/** Distinct access tokens (of random users, each with its user's live session) the list cases rotate through. */
const TOKEN_COUNT = 20_000;
const PG_URL = args['database-url'];
if (PG_URL !== undefined && !/^postgres(ql)?:\/\//.test(PG_URL)) {
  process.stderr.write('--database-url must be a postgres:// URL (SQLite always runs)\n');
  process.exit(2);
}
/** HS256 by default: issue 11's reference is defined with an HS256 token; ES256 (the service's default) on request. */
const JWT_ALGORITHM = args['jwt-algorithm'] === 'ES256' ? 'ES256' : 'HS256';
if (args['jwt-algorithm'] !== JWT_ALGORITHM) {
  process.stderr.write('--jwt-algorithm must be HS256 or ES256\n');
  process.exit(2);
}
const CPU_PROF_DIR = args['cpu-prof'] ? resolve(args['cpu-prof']) : undefined;
const JSON_OUTPUT = args.json;
const ROOT = resolve(import.meta.dirname, '..');
/** What `npm start` runs: the bundle scripts/build.mjs writes (built once per bench run, in main()). */
const SERVICE_SCRIPT = 'dist/server/main.mjs';
/** The Node flags `npm start` runs the bundle with (package.json "start"), so the bench measures the same process. */
const START_NODE_FLAGS: readonly string[] = (() => {
  const start = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } }).scripts.start;
  const flags = /\bnode((?:\s+--\S+)*)\s+dist\/server\/main\.mjs/.exec(start);
  if (!flags) throw new Error(`package.json "start" does not run ${SERVICE_SCRIPT} with node: ${start}`);
  return flags[1]!.trim().split(/\s+/).filter(Boolean);
})();

const log = (line: string) => process.stderr.write(`${line}\n`);

// ---------------------------------------------------------------------------
// Machine and pinning

function cpuModel(): string {
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('model name'));
    return line?.split(':')[1]?.trim() ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

const CORES = availableParallelism();
const HAS_TASKSET = spawnSync('taskset', ['--version'], { stdio: 'ignore' }).status === 0;
const PIN = HAS_TASKSET && CORES >= 2;
const SERVER_CORE = '0';
const LOADGEN_CORE = '1';
if (PIN) {
  // -a: every thread of this process (libuv pool, V8 workers), and those it starts later.
  const pinned = spawnSync('taskset', ['-a', '-p', '-c', LOADGEN_CORE, String(process.pid)], { stdio: 'ignore' });
  if (pinned.status !== 0) log('warning: could not pin the load generator; running unpinned');
}

// ---------------------------------------------------------------------------
// Processes

async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolvePort(address.port) : reject(new Error('no port'))));
    });
  });
}

interface Server {
  name: string;
  /** Serves /metrics (the service; not the references). */
  metrics: boolean;
  port: number;
  pid: number;
  child: ChildProcess;
  stderr: string[];
  stop(): Promise<void>;
}

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

/**
 * Builds the service as `npm start` does (scripts/build.mjs → dist/server/main.mjs),
 * so the bench measures the production process: plain Node on the bundle, no tsx loader.
 */
function buildService(): void {
  const started = performance.now();
  const result = spawnSync(process.execPath, ['scripts/build.mjs'], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'], timeout: 120_000 });
  if (result.status !== 0) throw new Error(`node scripts/build.mjs failed (${result.error?.message ?? `exit ${result.status ?? result.signal}`})`);
  log(`built ${SERVICE_SCRIPT} in ${((performance.now() - started) / 1000).toFixed(1)} s (node scripts/build.mjs, as npm start)`);
}

async function startServer(name: string, script: string, env: Record<string, string>, pin = PIN): Promise<Server> {
  const port = await freePort();
  // The service runs as in production (the bundle, plain Node), the references (plain .mjs) too.
  const nodeArgs = script.endsWith('.ts') ? ['--import', 'tsx'] : script === SERVICE_SCRIPT ? [...START_NODE_FLAGS] : [];
  if (CPU_PROF_DIR && script === SERVICE_SCRIPT) {
    mkdirSync(CPU_PROF_DIR, { recursive: true });
    nodeArgs.push('--cpu-prof', '--cpu-prof-dir', CPU_PROF_DIR); // node flags before the script
  }
  const command = pin ? 'taskset' : process.execPath;
  const commandArgs = pin ? ['-c', SERVER_CORE, process.execPath, ...nodeArgs, script] : [...nodeArgs, script];
  const child = spawn(command, commandArgs, {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? '/tmp',
      // Passed through for experiments (e.g. UV_THREADPOOL_SIZE=1: one argon2 hash at a time).
      ...(process.env.UV_THREADPOOL_SIZE ? { UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE } : {}),
      ...env,
      PORT: String(port),
      HOST: '127.0.0.1',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.add(child);
  const stderr: string[] = [];
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    if (stderr.length < 200) stderr.push(chunk);
  });
  const exited = new Promise<void>((done) => child.once('exit', () => done()));

  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${name} exited at start (${child.exitCode}):\n${stderr.join('')}`);
    try {
      const res = await fetch(`http://127.0.0.1:${port}/healthz`);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${name} did not start within 60 s:\n${stderr.join('')}`);
    }
    await sleep(100);
  }
  return {
    name,
    metrics: script === SERVICE_SCRIPT,
    port,
    pid: child.pid!,
    child,
    stderr,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(timer);
      }
      children.delete(child);
    },
  };
}

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

/** kB fields of /proc/<pid>/status (VmRSS, VmHWM); undefined once the process is gone. */
function procStatus(pid: number): { rssKb: number; hwmKb: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const field = (name: string) => Number(/\d+/.exec(text.split('\n').find((l) => l.startsWith(`${name}:`)) ?? '')?.[0] ?? 0);
    return { rssKb: field('VmRSS'), hwmKb: field('VmHWM') };
  } catch {
    return undefined;
  }
}

/**
 * The PostgreSQL backends serving one server process: its TCP connections to
 * the database port (from /proc/<pid>/fd and /proc/net/tcp*), matched to
 * pg_stat_activity.client_port. Only PostgreSQL on this machine can be measured.
 */
async function postgresBackendPids(serverPid: number, databaseUrl: string): Promise<number[]> {
  const url = new URL(databaseUrl);
  if (!['127.0.0.1', 'localhost', '::1'].includes(url.hostname)) return [];
  const pgPort = Number(url.port || 5432);
  const inodes = new Set<string>();
  try {
    for (const fd of readdirSync(`/proc/${serverPid}/fd`)) {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSafe(`/proc/${serverPid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    }
  } catch {
    return [];
  }
  const ports: number[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10) continue;
      const local = Number.parseInt(f[1]!.split(':')[1]!, 16);
      const remote = Number.parseInt(f[2]!.split(':')[1]!, 16);
      if (remote === pgPort && inodes.has(f[9]!)) ports.push(local);
    }
  }
  if (ports.length === 0) return [];
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ pid: number }>('select pid from pg_stat_activity where client_port = any($1::int[])', [ports]);
    return rows.map((r) => r.pid);
  } finally {
    await client.end();
  }
}

function readlinkSafe(path: string): string {
  try {
    return readlinkSync(path);
  } catch {
    return '';
  }
}

const cpuOf = (pids: number[]) => pids.reduce((sum, pid) => sum + (processCpuSeconds(pid) ?? 0), 0);

// ---------------------------------------------------------------------------
// Load

export interface CaseResult {
  case: string;
  target: string;
  /** The load generator that drove the case. */
  tool: 'wrk' | 'autocannon';
  requests: number;
  requestsPerSecond: number;
  /** For multi-request flows: whole flows per second. */
  flowsPerSecond?: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  /** Server CPU time per completed request (user + system, from /proc), µs. */
  serverCpuUsPerRequest: number;
  /** Share of the case the server process was on a CPU, %. */
  serverBusyPercent: number;
  /** Share of the server's core used by processes other than the server, % (another workload on the machine skews a run). */
  otherLoadOnServerCorePercent: number | null;
  /** Process peak RSS so far (VmHWM) at the end of the case, MB. */
  peakRssMb: number;
  /** Highest VmRSS sampled during the case, MB. */
  caseMaxRssMb: number;
  /** PostgreSQL mode: CPU time of the server's PostgreSQL backends per request (µs), and their share of server + backends CPU (%). */
  postgresCpuUsPerRequest?: number;
  postgresCpuSharePercent?: number;
  /**
   * Longest event-loop delay inside the server during the case, ms: prom-client's
   * nodejs_eventloop_lag_max_seconds (perf_hooks.monitorEventLoopDelay, reset at
   * each scrape), scraped from /metrics right before and right after the load.
   */
  eventLoopMaxMs?: number;
  notes?: string;
}

const MAX_SAMPLES = 5_000_000;
const TICKS_PER_SECOND = 100; // USER_HZ on Linux

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index]!;
}

/** utime + stime of a process, in seconds. */
function processCpuSeconds(pid: number): number | undefined {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

/** Busy seconds of one CPU (everything but idle and iowait), from /proc/stat. */
function coreBusySeconds(core: string): number | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n').find((l) => l.startsWith(`cpu${core} `));
    if (!line) return undefined;
    const [user, nice, system, _idle, _iowait, irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number) as number[];
    return (user! + nice! + system! + irq! + softirq! + steal!) / TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

interface LoadOutcome {
  tool: 'wrk' | 'autocannon';
  completed: number;
  errors: number;
  seconds: number;
  p50Ms: number;
  p99Ms: number;
  notes?: string;
}

/** The server's event-loop delay maximum since the last scrape (ms), from its /metrics; undefined for the references. */
async function eventLoopMaxMs(server: Server): Promise<number | undefined> {
  if (!server.metrics) return undefined;
  try {
    const text = await (await fetch(`http://127.0.0.1:${server.port}/metrics`)).text();
    const value = /^nodejs_eventloop_lag_max_seconds (\S+)$/m.exec(text)?.[1];
    return value === undefined ? undefined : round(Number(value) * 1000, 1);
  } catch {
    return undefined;
  }
}

/** Runs one load and measures the server around it: RSS, CPU time, what else ran on its core, event-loop delay. */
async function measure(caseName: string, server: Server, run: () => Promise<LoadOutcome>, flowLength?: number): Promise<CaseResult> {
  await eventLoopMaxMs(server); // resets the server's histogram
  let maxRssKb = 0;
  const sampler = setInterval(() => {
    const status = procStatus(server.pid);
    if (status) maxRssKb = Math.max(maxRssKb, status.rssKb);
  }, 100);
  const cpuBefore = processCpuSeconds(server.pid) ?? 0;
  const coreBefore = PIN ? coreBusySeconds(SERVER_CORE) : undefined;
  const wallBefore = performance.now();
  let outcome: LoadOutcome;
  try {
    outcome = await run();
  } finally {
    clearInterval(sampler);
  }
  const wall = (performance.now() - wallBefore) / 1000;
  const cpu = (processCpuSeconds(server.pid) ?? cpuBefore) - cpuBefore;
  const loopMax = await eventLoopMaxMs(server);
  const coreAfter = PIN ? coreBusySeconds(SERVER_CORE) : undefined;
  const status = procStatus(server.pid);
  if (status) maxRssKb = Math.max(maxRssKb, status.rssKb);
  const other = coreBefore !== undefined && coreAfter !== undefined ? Math.max(0, (coreAfter - coreBefore - cpu) / wall) * 100 : null;
  return {
    case: caseName,
    target: server.name,
    tool: outcome.tool,
    requests: outcome.completed,
    requestsPerSecond: round(outcome.completed / outcome.seconds, 0),
    ...(flowLength ? { flowsPerSecond: round(outcome.completed / flowLength / outcome.seconds, 1) } : {}),
    p50Ms: round(outcome.p50Ms, 2),
    p99Ms: round(outcome.p99Ms, 2),
    errors: outcome.errors,
    serverCpuUsPerRequest: outcome.completed > 0 ? round((cpu * 1e6) / outcome.completed, 0) : Number.NaN,
    serverBusyPercent: round((cpu / wall) * 100, 0),
    otherLoadOnServerCorePercent: other === null ? null : round(other, 0),
    peakRssMb: round((status?.hwmKb ?? 0) / 1024, 1),
    caseMaxRssMb: round(maxRssKb / 1024, 1),
    ...(loopMax !== undefined ? { eventLoopMaxMs: loopMax } : {}),
    ...(outcome.notes ? { notes: outcome.notes } : {}),
  };
}

interface AutocannonLoad {
  requests: AutocannonRequest[];
  /** CONNECTIONS unless given. */
  connections?: number;
  duration?: number;
  /** Stop after this many requests instead of after the duration. */
  amount?: number;
  /** Checks a flow's result beyond its status code; each counts as an error. */
  extraErrors?: () => number;
  notes?: () => string | undefined;
  /** Lets a fixture pool stop the run early when it runs out. */
  onInstance?: (stop: () => void) => void;
}

/** autocannon in this process; latencies recorded per 2xx response at full resolution. */
async function autocannonLoad(server: Server, options: AutocannonLoad): Promise<LoadOutcome> {
  const latencies = new Float64Array(MAX_SAMPLES);
  let samples = 0;
  let seen = 0;
  const instance = autocannon({
    url: `http://127.0.0.1:${server.port}`,
    connections: options.connections ?? CONNECTIONS,
    duration: options.duration ?? DURATION,
    ...(options.amount !== undefined ? { amount: options.amount } : {}),
    timeout: 30,
    requests: options.requests,
  });
  options.onInstance?.(() => instance.stop());
  instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
    if (statusCode < 200 || statusCode >= 300) return;
    seen += 1;
    if (samples < MAX_SAMPLES) latencies[samples++] = responseTime;
    else {
      const j = Math.floor(Math.random() * seen); // reservoir sampling past the buffer
      if (j < MAX_SAMPLES) latencies[j] = responseTime;
    }
  });
  const result = await instance;
  const sorted = latencies.slice(0, samples).sort();
  const notes = options.notes?.();
  return {
    tool: 'autocannon',
    completed: result['2xx'] + result.non2xx,
    errors: result.errors + result.non2xx + (options.extraErrors?.() ?? 0),
    seconds: result.duration,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    ...(notes ? { notes } : {}),
  };
}

const HAS_WRK = process.env.BENCH_LOAD_GENERATOR !== 'autocannon' && spawnSync('wrk', ['--version'], { stdio: 'ignore' }).error === undefined;

/** wrk (when installed) for the high-rate GET cases: one thread, a different token per request (bench/wrk-list.lua). */
async function wrkLoad(server: Server, tokensFile: string, duration: number, connections = CONNECTIONS): Promise<LoadOutcome> {
  const child = spawn(
    'wrk',
    ['-t1', `-c${connections}`, `-d${duration}s`, '--timeout', '30s', '-s', join(ROOT, 'bench/wrk-list.lua'), `http://127.0.0.1:${server.port}`, '--', tokensFile],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const timer = setTimeout(() => child.kill('SIGKILL'), (duration + 60) * 1000);
  const code = await new Promise<number | null>((done) => child.once('exit', (c) => done(c)));
  clearTimeout(timer);
  children.delete(child);
  const line = stdout.split('\n').find((l) => l.startsWith('{"requests"'));
  if (code !== 0 || !line) throw new Error(`wrk failed (${code}): ${stderr || stdout}`);
  const r = JSON.parse(line) as Record<string, number>;
  return {
    tool: 'wrk',
    completed: r.requests!,
    errors: r.connect! + r.read! + r.write! + r.status! + r.timeout!,
    seconds: r.durationUs! / 1e6,
    p50Ms: r.p50Us! / 1000,
    p99Ms: r.p99Us! / 1000,
  };
}

/**
 * The list load split over several instances at once (half the connections each, one
 * generator per instance): requests add up; p50/p99 are the worst instance's (an upper bound).
 */
async function listLoadAcross(servers: Server[], tokens: { list: string[]; file: string }, duration = DURATION): Promise<LoadOutcome> {
  const per = Math.max(1, Math.floor(CONNECTIONS / servers.length));
  const outcomes = await Promise.all(
    servers.map((server) =>
      HAS_WRK ? wrkLoad(server, tokens.file, duration, per) : autocannonLoad(server, { requests: listRequests(tokens.list), duration, connections: per }),
    ),
  );
  return {
    tool: outcomes[0]!.tool,
    completed: outcomes.reduce((sum, o) => sum + o.completed, 0),
    errors: outcomes.reduce((sum, o) => sum + o.errors, 0),
    seconds: Math.max(...outcomes.map((o) => o.seconds)),
    p50Ms: Math.max(...outcomes.map((o) => o.p50Ms)),
    p99Ms: Math.max(...outcomes.map((o) => o.p99Ms)),
    notes: `${servers.length} instances, ${per} connections each; p50/p99 of the slower instance; per instance ${outcomes.map((o) => Math.round(o.completed / o.seconds)).join(' + ')} req/s`,
  };
}

/** The GET /api/v1/devices load: wrk when installed, autocannon otherwise. */
function listLoad(server: Server, tokens: { list: string[]; file: string }, duration = DURATION): Promise<LoadOutcome> {
  return HAS_WRK ? wrkLoad(server, tokens.file, duration) : autocannonLoad(server, { requests: listRequests(tokens.list), duration });
}

const round = (value: number, digits: number) => (Number.isFinite(value) ? Number(value.toFixed(digits)) : value);

/** GET /api/v1/devices, a different user's token on every request. */
function listRequests(tokens: string[]): AutocannonRequest[] {
  let next = 0;
  return [
    {
      method: 'GET',
      path: '/api/v1/devices',
      setupRequest: (request) => {
        const token = tokens[next]!;
        next = (next + 1) % tokens.length;
        request.headers = { ...request.headers, authorization: `Bearer ${token}` };
        return request;
      },
    },
  ];
}

const jsonOf = (body: string): any => {
  try {
    return JSON.parse(body);
  } catch {
    return undefined;
  }
};

function deviceHeaders(fixtures: BenchFixtures): Record<string, string> {
  return {
    'content-type': 'application/json',
    'user-agent': fixtures.userAgent,
    ...(fixtures.fingerprintHeader ? { 'x-device-fingerprint': fixtures.fingerprintHeader } : {}),
  };
}

/** POST /auth/login with the device token of a trusted device: password + trust check, MFA bypassed. */
function trustedLoginCase(fixtures: BenchFixtures) {
  let next = 0;
  let notBypassed = 0;
  const headers = deviceHeaders(fixtures);
  const requests: AutocannonRequest[] = [
    {
      method: 'POST',
      path: '/api/v1/auth/login',
      setupRequest: (request, context) => {
        const user = fixtures.trustedLogins[next]!;
        next = (next + 1) % fixtures.trustedLogins.length;
        context.user = user;
        request.headers = { ...headers, 'x-device-token': user.deviceToken };
        request.body = JSON.stringify({ email: user.email, password: fixtures.password });
        return request;
      },
      onResponse: (status, body, context) => {
        const data = status === 200 ? jsonOf(body)?.data : undefined;
        if (status === 200 && data?.mfa_bypassed !== true) notBypassed += 1;
        // Each bypass rotates the device token (docs/trust-model.md): the next login with this user sends the new one.
        if (typeof data?.device_token === 'string') (context.user as { deviceToken: string }).deviceToken = data.device_token;
      },
    },
  ];
  return { requests, connections: HASHING_CONNECTIONS, extraErrors: () => notBypassed };
}

/** login (MFA required) → verify with a backup code → activate the device: one flow, three requests. */
function mfaActivateCase(fixtures: BenchFixtures) {
  const pairs: Array<{ email: string; code: string }> = [];
  const width = Math.max(...fixtures.mfaLogins.map((u) => u.backupCodes.length));
  for (let c = 0; c < width; c++) for (const user of fixtures.mfaLogins) if (user.backupCodes[c]) pairs.push({ email: user.email, code: user.backupCodes[c]! });
  let next = 0;
  let broken = 0;
  let stop: (() => void) | undefined;
  const headers = deviceHeaders(fixtures);
  const requests: AutocannonRequest[] = [
    {
      method: 'POST',
      path: '/api/v1/auth/login',
      setupRequest: (request, context) => {
        if (next >= pairs.length - HASHING_CONNECTIONS) stop?.();
        const pair = pairs[next % pairs.length]!;
        next += 1;
        context.code = pair.code;
        request.headers = headers;
        request.body = JSON.stringify({ email: pair.email, password: fixtures.password });
        return request;
      },
      onResponse: (status, body, context) => {
        const token = status === 200 ? jsonOf(body)?.data?.temporary_token : undefined;
        context.temporaryToken = token;
        if (status === 200 && typeof token !== 'string') broken += 1;
      },
    },
    {
      method: 'POST',
      path: '/api/v1/auth/mfa/verify',
      setupRequest: (request, context) => {
        if (typeof context.temporaryToken !== 'string') return null; // the flow broke: start over
        request.headers = headers;
        request.body = JSON.stringify({ temporary_token: context.temporaryToken, backup_code: context.code });
        return request;
      },
      onResponse: (status, body, context) => {
        const data = status === 200 ? jsonOf(body)?.data : undefined;
        context.accessToken = data?.access_token;
        context.activationToken = data?.trusted_device?.activation_token;
        if (status === 200 && typeof context.activationToken !== 'string') broken += 1;
      },
    },
    {
      method: 'POST',
      path: '/api/v1/devices/activate',
      setupRequest: (request, context) => {
        if (typeof context.activationToken !== 'string') return null;
        request.headers = { ...headers, authorization: `Bearer ${context.accessToken as string}` };
        request.body = JSON.stringify({ activation_token: context.activationToken });
        return request;
      },
    },
  ];
  return {
    requests,
    connections: HASHING_CONNECTIONS,
    extraErrors: () => broken,
    onInstance: (s: () => void) => (stop = s),
    notes: () => (next >= pairs.length - HASHING_CONNECTIONS ? `stopped early: all ${pairs.length} seeded backup codes used` : undefined),
  };
}

/** DELETE /api/v1/devices/{id} then GET /api/v1/devices as the same user: one flow, two requests. */
function revokeListCase(fixtures: BenchFixtures) {
  const pairs: Array<{ token: string; id: string }> = [];
  for (const set of fixtures.revokeSets) for (const id of set.deviceIds) pairs.push({ token: set.accessToken, id });
  // Spread each user's devices apart, so two connections rarely revoke for one user at once.
  const width = Math.max(1, ...fixtures.revokeSets.map((s) => s.deviceIds.length));
  const order = Array.from({ length: pairs.length }, (_, i) => (i % fixtures.revokeSets.length) * width + Math.floor(i / fixtures.revokeSets.length));
  let next = 0;
  let stop: (() => void) | undefined;
  const requests: AutocannonRequest[] = [
    {
      method: 'DELETE',
      path: '/api/v1/devices',
      setupRequest: (request, context) => {
        if (next >= pairs.length - CONNECTIONS) stop?.();
        const pair = pairs[order[next % pairs.length]!]!;
        next += 1;
        context.token = pair.token;
        request.path = `/api/v1/devices/${pair.id}`;
        request.headers = { authorization: `Bearer ${pair.token}` };
        return request;
      },
    },
    {
      method: 'GET',
      path: '/api/v1/devices',
      setupRequest: (request, context) => {
        request.headers = { authorization: `Bearer ${context.token as string}` };
        return request;
      },
    },
  ];
  return {
    requests,
    onInstance: (s: () => void) => (stop = s),
    notes: () => (next >= pairs.length - CONNECTIONS ? `stopped early: all ${pairs.length} seeded devices revoked` : undefined),
  };
}

// ---------------------------------------------------------------------------
// Password hash alone

async function hashRate(seconds: number): Promise<{ verifiesPerSecond: number; msPerVerify: number }> {
  const hasher = createPasswordHasher();
  const hashed = await hasher.hash(BENCH_PASSWORD);
  const threads = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
  const deadline = performance.now() + seconds * 1000;
  let count = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: threads }, async () => {
      while (performance.now() < deadline) {
        if (!(await hasher.verify(hashed, BENCH_PASSWORD))) throw new Error('argon2 verify failed');
        count += 1;
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  return { verifiesPerSecond: round(count / elapsed, 1), msPerVerify: round((elapsed * 1000) / count, 1) };
}

// ---------------------------------------------------------------------------
// Main

/** Issue 27's floor (bench/reference-server.mjs REFERENCE=floor). */
const FLOOR = 'reference: floor (jose CryptoKey + 1 SELECT + schema)';

interface Target {
  name: string;
  goal: string;
  measured: string;
  met: boolean;
}

async function main(): Promise<void> {
  const started = performance.now();
  // --jwt-algorithm: HS256 (default; issue 11's reference verifies an HS256 token) or
  // ES256 (the service's default, as a deployment would run it). The jose reference
  // verifies the same tokens with the same algorithm.
  const signingKeyPem = generateSigningKeyPem('ES256');
  const jwtSecretHex = randomBytes(32).toString('hex');
  const jwtEnv: Record<string, string> =
    JWT_ALGORITHM === 'HS256'
      ? { JWT_ALGORITHM: 'HS256', JWT_SECRET: jwtSecretHex }
      : { JWT_SIGNING_KEY: Buffer.from(signingKeyPem).toString('base64') };
  const keys = {
    ...jwtEnv,
    FINGERPRINT_KEY: randomBytes(32).toString('hex'),
    DATA_ENCRYPTION_KEY: randomBytes(32).toString('hex'),
  };
  const keyBuffers = {
    ...(JWT_ALGORITHM === 'HS256' ? { jwtSecret: Buffer.from(jwtSecretHex, 'hex') } : { jwtSigningKey: parseSigningKey(signingKeyPem) }),
    fingerprintKey: Buffer.from(keys.FINGERPRINT_KEY, 'hex'),
    dataEncryptionKey: Buffer.from(keys.DATA_ENCRYPTION_KEY, 'hex'),
  };
  const referenceJwtEnv: Record<string, string> =
    JWT_ALGORITHM === 'HS256'
      ? { JWT_SECRET: jwtSecretHex }
      : { JWT_PUBLIC_KEY: parseSigningKey(signingKeyPem).publicKey.export({ format: 'pem', type: 'spki' }).toString() };
  const serviceEnv = (databaseUrl: string): Record<string, string> => ({
    NODE_ENV: 'production',
    RATE_LIMITS: 'off',
    LOG_LEVEL: 'warn',
    // Forces housekeeping to run during every measured window (its first run is 5 s after start).
    HOUSEKEEPING_INTERVAL_SECONDS: String(HOUSEKEEPING_INTERVAL),
    DATABASE_URL: databaseUrl,
    ...keys,
  });
  const dir = mkdtempSync(join(tmpdir(), 'td-bench-'));
  const cases: CaseResult[] = [];
  const servers: Server[] = [];
  let pgCleanup: (() => Promise<void>) | undefined;
  const report = (result: CaseResult) => {
    cases.push(result);
    log(
      `  ${result.case} [${result.target}]: ${result.requestsPerSecond} req/s${result.flowsPerSecond !== undefined ? ` (${result.flowsPerSecond} flows/s)` : ''}, ` +
        `p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms, errors ${result.errors}, server ${result.serverCpuUsPerRequest} µs CPU/request (busy ${result.serverBusyPercent}%` +
        `${result.otherLoadOnServerCorePercent !== null ? `, others on its core ${result.otherLoadOnServerCorePercent}%` : ''}), peak RSS ${result.peakRssMb} MB${result.notes ? ` (${result.notes})` : ''}`,
    );
  };

  try {
    log(`machine: ${CORES} cores, ${cpuModel()}, Node ${process.version}; ${PIN ? `server on core ${SERVER_CORE}, load generator on core ${LOADGEN_CORE}` : 'no pinning (taskset missing or one core)'}`);
    buildService();

    log('argon2id verify rate (one core, the libuv pool of 4 threads)…');
    const hash = await hashRate(Math.min(5, Math.max(2, DURATION / 2)));
    log(`  ${hash.verifiesPerSecond} verifies/s, ${hash.msPerVerify} ms each`);

    const specialUsers = (users: number) => ({
      trustedLoginUsers: Math.min(2000, Math.floor(users / 4)),
      mfaUsers: Math.min(2000, Math.floor(users / 4)),
      revokeUsers: Math.min(30_000, Math.floor(users / 4)),
    });
    type Seeded = SeedResult & { tokensFile: string };
    const seedInto = async (label: string, databaseUrl: string, users: number): Promise<Seeded> => {
      const tokensFile = join(dir, `tokens-${label.replace(/\W+/g, '-')}.txt`);
      const result = await seed({
        label,
        databaseUrl,
        users,
        devicesPerUser: DEVICES_PER_USER,
        // The same number of distinct tokens for every size (users repeat on the small
        // database): the JWT cache then behaves alike, and the scale comparison varies only the data.
        tokenCount: TOKEN_COUNT,
        tokensFile,
        ...specialUsers(users),
        keys: keyBuffers,
        jwtAlgorithm: JWT_ALGORITHM,
        issuer: 'trusted-devices',
        audience: 'trusted-devices-api',
        progress: true,
      });
      return { ...result, tokensFile };
    };
    const tokensOf = (seeded: Seeded) => ({ list: seeded.tokens, file: seeded.tokensFile });

    const smallUsers = Math.max(1, Math.floor(SMALL_DEVICES / DEVICES_PER_USER));
    const smallUrl = `sqlite:${join(dir, 'small.db')}`;
    const bigUrl = `sqlite:${join(dir, 'big.db')}`;
    const small = await seedInto('seed small', smallUrl, smallUsers);
    const big = await seedInto('seed large', bigUrl, USERS);
    log(`seeded ${small.devices} devices in ${small.seconds.toFixed(1)} s and ${big.devices} devices in ${big.seconds.toFixed(1)} s`);

    // Warm-up: one request per token (so every session has had its once-a-minute
    // `last_active_at` touch, as in a steady state where a client calls more than once
    // a minute; the touch's own cost is measured separately, docs/performance.md),
    // then a short run of the measured load.
    const warm = async (server: Server, seeded: Seeded) => {
      await autocannonLoad(server, { requests: listRequests(seeded.tokens), amount: seeded.tokens.length });
      await listLoad(server, tokensOf(seeded), WARMUP_SECONDS);
    };
    const listCase = (server: Server, seeded: Seeded) => measure('GET /api/v1/devices', server, () => listLoad(server, tokensOf(seeded)));
    log(`load generator: ${HAS_WRK ? 'wrk (GET cases) and autocannon (login/MFA/revoke flows)' : 'autocannon'}, ${CONNECTIONS} connections (${HASHING_CONNECTIONS} for the flows that hash a password)`);

    // References, with the same requests (rotating bearer tokens) on the same path:
    // bare Fastify (constant JSON), and issue 11's yardstick (jose HS256, no cache,
    // one prepared better-sqlite3 SELECT by user_id, JSON) on the large database,
    // run right before the service's large case so both see the same machine.
    const runReference = async (name: string, env: Record<string, string>, seeded: Seeded) => {
      log(`${name}…`);
      const server = await startServer(name, 'bench/reference-server.mjs', env);
      servers.push(server);
      await warm(server, seeded);
      report(await listCase(server, seeded));
      await server.stop();
    };
    await runReference('reference: bare Fastify', { REFERENCE: 'bare' }, big);

    log(`service on SQLite, ${small.devices.toLocaleString('en-US')} devices…`);
    const smallServer = await startServer(`sqlite ${small.devices.toLocaleString('en-US')} devices`, SERVICE_SCRIPT, serviceEnv(smallUrl));
    servers.push(smallServer);
    await warm(smallServer, small);
    report(await listCase(smallServer, small));
    await smallServer.stop();

    const idleLoops: Array<{ target: string; seconds: number; eventLoopMaxMs: number | undefined }> = [];
    const runService = async (name: string, databaseUrl: string, seeded: Seeded) => {
      log(`service on ${name}…`);
      const server = await startServer(name, SERVICE_SCRIPT, serviceEnv(databaseUrl));
      servers.push(server);
      await warm(server, seeded);
      const backends = databaseUrl.startsWith('postgres') ? await postgresBackendPids(server.pid, databaseUrl).catch(() => []) : [];
      const pgCpuBefore = cpuOf(backends);
      const serverCpuBefore = processCpuSeconds(server.pid) ?? 0;
      const list = await listCase(server, seeded);
      if (backends.length > 0) {
        const pgCpu = cpuOf(backends) - pgCpuBefore;
        const serverCpu = (processCpuSeconds(server.pid) ?? serverCpuBefore) - serverCpuBefore;
        list.postgresCpuUsPerRequest = list.requests > 0 ? round((pgCpu * 1e6) / list.requests, 0) : Number.NaN;
        list.postgresCpuSharePercent = round((pgCpu / Math.max(pgCpu + serverCpu, 1e-9)) * 100, 0);
        list.notes = `${list.notes ? `${list.notes}; ` : ''}PostgreSQL backends (${backends.length}): ${list.postgresCpuUsPerRequest} µs CPU/request, ${list.postgresCpuSharePercent}% of service + PostgreSQL CPU`;
      }
      report(list);
      // Background work alone: no load, housekeeping runs at least once in the window
      // (skipped when housekeeping is set to run rarely, e.g. to measure the hot path alone).
      if (HOUSEKEEPING_INTERVAL <= 60) {
        await eventLoopMaxMs(server);
        const idleSeconds = HOUSEKEEPING_INTERVAL + 2;
        await sleep(idleSeconds * 1000);
        const idle = { target: name, seconds: idleSeconds, eventLoopMaxMs: await eventLoopMaxMs(server) };
        idleLoops.push(idle);
        log(`  idle ${idleSeconds} s with housekeeping every ${HOUSEKEEPING_INTERVAL} s: max event-loop delay ${idle.eventLoopMaxMs} ms`);
      }
      if (!args['list-only']) {
        report(await measure('login on a trusted device', server, () => autocannonLoad(server, trustedLoginCase(seeded.fixtures))));
        report(await measure('MFA verify + activate', server, () => autocannonLoad(server, mfaActivateCase(seeded.fixtures)), 3));
        report(await measure('revoke + list', server, () => autocannonLoad(server, revokeListCase(seeded.fixtures)), 2));
      }
      await server.stop();
    };
    const bigPath = join(dir, 'big.db');
    await runReference('reference: jose + 1 SELECT', { REFERENCE: 'jose', DATABASE_PATH: bigPath, ...referenceJwtEnv }, big);
    await runReference(FLOOR, { REFERENCE: 'floor', DATABASE_PATH: bigPath, ...referenceJwtEnv }, big);
    const bigName = `sqlite ${big.devices.toLocaleString('en-US')} devices${big.devices === small.devices ? ' (large)' : ''}`;
    await runService(bigName, bigUrl, big);

    let pgName: string | undefined;
    let pgPairName: string | undefined;
    if (PG_URL !== undefined) {
      const schema = `bench_${randomBytes(4).toString('hex')}`;
      const admin = new pg.Client({ connectionString: PG_URL });
      await admin.connect();
      await admin.query(`create schema ${schema}`);
      await admin.end();
      pgCleanup = async () => {
        const cleanup = new pg.Client({ connectionString: PG_URL });
        await cleanup.connect();
        await cleanup.query(`drop schema if exists ${schema} cascade`);
        await cleanup.end();
      };
      const url = new URL(PG_URL);
      url.searchParams.set('options', `-c search_path=${schema}`);
      const pgSeeded = await seedInto('seed postgres', url.toString(), USERS);
      pgName = `postgres ${pgSeeded.devices.toLocaleString('en-US')} devices`;
      await runService(pgName, url.toString(), pgSeeded);
      // Two instances against the one PostgreSQL (unpinned: two servers, PostgreSQL and the load share the machine).
      log('service on PostgreSQL, two instances…');
      pgPairName = `postgres ${pgSeeded.devices.toLocaleString('en-US')} devices, 2 instances`;
      const pair = [
        await startServer(`${pgPairName} #1`, SERVICE_SCRIPT, serviceEnv(url.toString()), false),
        await startServer(`${pgPairName} #2`, SERVICE_SCRIPT, serviceEnv(url.toString()), false),
      ];
      servers.push(...pair);
      for (const server of pair) await autocannonLoad(server, { requests: listRequests(pgSeeded.tokens), amount: pgSeeded.tokens.length });
      const backends = (await Promise.all(pair.map((server) => postgresBackendPids(server.pid, url.toString()).catch(() => [])))).flat();
      const pgCpuBefore = cpuOf(backends);
      const serversCpuBefore = pair.reduce((sum, server) => sum + (processCpuSeconds(server.pid) ?? 0), 0);
      const result = await measure('GET /api/v1/devices', { ...pair[0]!, name: pgPairName }, () => listLoadAcross(pair, tokensOf(pgSeeded)));
      const pgCpu = cpuOf(backends) - pgCpuBefore;
      const serversCpu = pair.reduce((sum, server) => sum + (processCpuSeconds(server.pid) ?? 0), 0) - serversCpuBefore;
      result.serverCpuUsPerRequest = result.requests > 0 ? round((serversCpu * 1e6) / result.requests, 0) : Number.NaN;
      result.postgresCpuUsPerRequest = result.requests > 0 ? round((pgCpu * 1e6) / result.requests, 0) : Number.NaN;
      result.postgresCpuSharePercent = round((pgCpu / Math.max(pgCpu + serversCpu, 1e-9)) * 100, 0);
      result.notes = `${result.notes ?? ''}; servers' CPU summed; PostgreSQL backends (${backends.length}): ${result.postgresCpuUsPerRequest} µs CPU/request, ${result.postgresCpuSharePercent}% of services + PostgreSQL CPU`;
      report(result);
      for (const server of pair) await server.stop();
    }

    // -----------------------------------------------------------------------
    // Summary
    const find = (name: string, target: string) => cases.find((c) => c.case === name && c.target === target);
    const ref = find('GET /api/v1/devices', 'reference: jose + 1 SELECT')!;
    const bare = find('GET /api/v1/devices', 'reference: bare Fastify')!;
    const floor = find('GET /api/v1/devices', FLOOR)!;
    const smallList = find('GET /api/v1/devices', smallServer.name)!;
    const bigList = find('GET /api/v1/devices', bigName)!;
    const login = find('login on a trusted device', bigName);
    const listingRss = Math.max(...cases.filter((c) => c.case === 'GET /api/v1/devices' && !c.target.startsWith('reference')).map((c) => c.peakRssMb));
    const bigIdle = idleLoops.find((l) => l.target === bigName);
    const ratios = {
      listVsReference: round(bigList.requestsPerSecond / ref.requestsPerSecond, 3),
      listVsBare: round(bigList.requestsPerSecond / bare.requestsPerSecond, 3),
      listVsFloor: round(bigList.requestsPerSecond / floor.requestsPerSecond, 3),
      p99VsFloor: round(bigList.p99Ms / floor.p99Ms, 3),
      p99VsReference: round(bigList.p99Ms / ref.p99Ms, 3),
      p50LargeVsSmall: round(bigList.p50Ms / smallList.p50Ms, 3),
      p99LargeVsSmall: round(bigList.p99Ms / smallList.p99Ms, 3),
      ...(login
        ? {
            loginVsHash: round(login.requestsPerSecond / hash.verifiesPerSecond, 3),
            // The same comparison in CPU time (one verify's CPU / one login's server CPU):
            // unaffected by how much of each core other processes took during either measurement.
            loginCpuVsHash: round((hash.msPerVerify * 1000) / login.serverCpuUsPerRequest, 3),
          }
        : {}),
    };
    const loopMax = Math.max(bigList.eventLoopMaxMs ?? Number.NaN, bigIdle?.eventLoopMaxMs ?? Number.NaN);
    const targets: Target[] = [
      {
        name: `GET /api/v1/devices at ${big.devices.toLocaleString('en-US')} devices vs the floor (${JWT_ALGORITHM}: CryptoKey once, 1 SELECT, response schema)`,
        goal: '≥ 1.0×, 0 errors',
        measured: `${bigList.requestsPerSecond} / ${floor.requestsPerSecond} req/s = ${ratios.listVsFloor}×, ${bigList.errors} errors`,
        met: ratios.listVsFloor >= 1.0 && bigList.errors === 0,
      },
      {
        name: "p99 vs the floor's p99 (housekeeping running)",
        goal: '≤ 2×',
        measured: `${bigList.p99Ms} / ${floor.p99Ms} ms = ${ratios.p99VsFloor}×`,
        met: ratios.p99VsFloor <= 2,
      },
      {
        name: `GET /api/v1/devices at ${big.devices.toLocaleString('en-US')} devices vs the reference (jose + 1 SELECT)`,
        goal: '≥ 1.2×, 0 errors',
        measured: `${bigList.requestsPerSecond} / ${ref.requestsPerSecond} req/s = ${ratios.listVsReference}×, ${bigList.errors} errors`,
        met: ratios.listVsReference >= 1.2 && bigList.errors === 0,
      },
      {
        name: 'p99 vs the reference\'s p99 (housekeeping running)',
        goal: '≤ 2×',
        measured: `${bigList.p99Ms} / ${ref.p99Ms} ms = ${ratios.p99VsReference}×`,
        met: ratios.p99VsReference <= 2,
      },
      {
        name: 'max event-loop delay (list case under load; idle with housekeeping)',
        goal: '≤ 20 ms',
        measured: `${bigList.eventLoopMaxMs ?? '?'} ms; ${bigIdle?.eventLoopMaxMs ?? '?'} ms`,
        met: loopMax <= 20,
      },
      { name: 'server peak RSS while listing', goal: '≤ 150 MB', measured: `${listingRss} MB`, met: listingRss <= 150 },
      ...(login && ratios.loginVsHash !== undefined
        ? [{
            name: 'trusted login bound by the hash',
            goal: 'login/s ≥ 0.9 × argon2id verifies/s (per CPU time: one verify\'s CPU ≥ 0.9 × one login\'s)',
            measured:
              `${login.requestsPerSecond} / ${hash.verifiesPerSecond} = ${ratios.loginVsHash}; ` +
              `per CPU ${hash.msPerVerify * 1000} / ${login.serverCpuUsPerRequest} µs = ${ratios.loginCpuVsHash}`,
            met: ratios.loginVsHash >= 0.9 || (ratios.loginCpuVsHash ?? 0) >= 0.9,
          }]
        : []),
    ];
    if (pgName !== undefined) {
      const pgList = find('GET /api/v1/devices', pgName)!;
      targets.push({
        name: 'PostgreSQL list (measured and reported)',
        goal: '0 errors',
        measured: `${pgList.requestsPerSecond} req/s, p50 ${pgList.p50Ms} ms, p99 ${pgList.p99Ms} ms, ${pgList.errors} errors`,
        met: pgList.errors === 0,
      });
    }
    if (pgPairName !== undefined) {
      const pair = find('GET /api/v1/devices', pgPairName)!;
      targets.push({
        name: 'PostgreSQL, two instances (measured and reported)',
        goal: '0 errors',
        measured: `${pair.requestsPerSecond} req/s, p50 ${pair.p50Ms} ms, p99 ${pair.p99Ms} ms, PostgreSQL ${pair.postgresCpuSharePercent}% of the CPU, ${pair.errors} errors`,
        met: pair.errors === 0,
      });
    }
    const output = {
      command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(),
      machine: { cores: CORES, cpu: cpuModel(), node: process.version, pinned: PIN },
      settings: { jwtAlgorithm: JWT_ALGORITHM, users: USERS, devicesPerUser: DEVICES_PER_USER, smallDevices: small.devices, largeDevices: big.devices, duration: DURATION, connections: CONNECTIONS, warmupSeconds: WARMUP_SECONDS },
      seeding: { smallSeconds: round(small.seconds, 1), largeSeconds: round(big.seconds, 1) },
      argon2id: { ...OWASP_ARGON2ID, memoryCostKiB: OWASP_ARGON2ID.memoryCost, ...hash },
      cases,
      idleEventLoop: idleLoops,
      scale: {
        smallDevices: small.devices,
        largeDevices: big.devices,
        p50SmallMs: smallList.p50Ms,
        p50LargeMs: bigList.p50Ms,
        p99SmallMs: smallList.p99Ms,
        p99LargeMs: bigList.p99Ms,
        p50Ratio: ratios.p50LargeVsSmall,
        p99Ratio: ratios.p99LargeVsSmall,
      },
      ratios,
      targets,
      seconds: round((performance.now() - started) / 1000, 1),
    };
    if (JSON_OUTPUT) {
      process.stdout.write(`${JSON.stringify(output, null, 2)}\n`);
    } else {
      printTables(output);
    }
  } finally {
    for (const server of servers) await server.stop().catch(() => undefined);
    if (pgCleanup) await pgCleanup().catch((error) => log(`could not drop the PostgreSQL bench schema: ${String(error)}`));
    if (args.keep) log(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

function printTables(output: {
  machine: { cores: number; cpu: string; node: string; pinned: boolean };
  settings: { duration: number; connections: number };
  argon2id: { memoryCost: number; timeCost: number; parallelism: number; verifiesPerSecond: number; msPerVerify: number };
  cases: CaseResult[];
  idleEventLoop: Array<{ target: string; seconds: number; eventLoopMaxMs: number | undefined }>;
  scale: Record<string, number>;
  ratios: Record<string, number>;
  targets: Target[];
  seconds: number;
}): void {
  const out: string[] = [];
  out.push(`Machine: ${output.machine.cores} cores, ${output.machine.cpu}, Node ${output.machine.node}${output.machine.pinned ? ' (server on core 0, load generator on core 1)' : ' (unpinned)'}`);
  out.push(`Load: ${output.settings.connections} connections, ${output.settings.duration} s per case; wrk for the GET cases when installed, autocannon for the flows (column "tool")`);
  out.push('');
  out.push('| case | target | tool | req/s | flows/s | p50 ms | p99 ms | errors | server CPU µs/req | req per server CPU-s | server busy % | others on server core % | peak RSS MB | max event-loop delay ms |');
  out.push('|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const c of output.cases) {
    out.push(
      `| ${c.case} | ${c.target} | ${c.tool} | ${c.requestsPerSecond} | ${c.flowsPerSecond ?? ''} | ${c.p50Ms} | ${c.p99Ms} | ${c.errors} | ${c.serverCpuUsPerRequest} | ` +
        `${Number.isFinite(c.serverCpuUsPerRequest) ? Math.round(1e6 / c.serverCpuUsPerRequest) : ''} | ${c.serverBusyPercent} | ${c.otherLoadOnServerCorePercent ?? ''} | ` +
        `${c.target.startsWith('reference') ? c.caseMaxRssMb : c.peakRssMb} | ${c.eventLoopMaxMs ?? ''} |${c.notes ? ` ${c.notes}` : ''}`,
    );
  }
  out.push('');
  const a = output.argon2id;
  out.push(`argon2id m=${a.memoryCost} KiB, t=${a.timeCost}, p=${a.parallelism}: ${a.verifiesPerSecond} verifies/s on one core (${a.msPerVerify} ms each)`);
  for (const idle of output.idleEventLoop) out.push(`Idle ${idle.seconds} s with housekeeping running [${idle.target}]: max event-loop delay ${idle.eventLoopMaxMs ?? '?'} ms`);
  const r = output.ratios;
  out.push(
    `Ratios: list / floor ${r.listVsFloor}×, list p99 / floor p99 ${r.p99VsFloor}×, list / reference (jose + 1 SELECT) ${r.listVsReference}×, list p99 / reference p99 ${r.p99VsReference}×, list / bare Fastify ${r.listVsBare}×, ` +
      `p50 large/small ${r.p50LargeVsSmall}, p99 large/small ${r.p99LargeVsSmall}` +
      `${r.loginVsHash !== undefined ? `, trusted login/hash ${r.loginVsHash} (per CPU ${r.loginCpuVsHash})` : ''}`,
  );
  out.push('');
  out.push('| target | goal | measured | met |');
  out.push('|---|---|---|---|');
  for (const t of output.targets) out.push(`| ${t.name} | ${t.goal} | ${t.measured} | ${t.met ? 'yes' : 'NO'} |`);
  out.push('');
  out.push(`Total ${output.seconds} s`);
  process.stdout.write(`${out.join('\n')}\n`);
}

main().catch((error) => {
  log(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exitCode = 1;
});

