/**
 * Shared helpers for the browser end-to-end test (browser.test.ts) and the
 * README screenshot script (screenshot.ts): start the real service as a child
 * process, launch Debian's Chromium through playwright-core (never a
 * downloaded browser), and produce TOTP codes the way an authenticator app
 * would.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as OTPAuth from 'otpauth';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';

export const CHROMIUM_PATH = '/usr/bin/chromium';
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const ARTIFACTS_DIR = join(ROOT, 'artifacts', 'e2e');

export const chromiumInstalled = (): boolean => existsSync(CHROMIUM_PATH);

/** A host name that is not localhost but resolves to the service (Chromium's --host-resolver-rules). */
export const OTHER_HOST = 'app.test';

const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  `--host-resolver-rules=MAP ${OTHER_HOST} 127.0.0.1`,
];

export function launchChromium(extraArgs: string[] = []): Promise<Browser> {
  return chromium.launch({ headless: true, executablePath: CHROMIUM_PATH, args: [...CHROMIUM_ARGS, ...extraArgs] });
}

/**
 * Chromium on a profile directory that outlives the browser (cookies in its
 * SQLite store, IndexedDB, localStorage), as a user's browser restarts.
 */
export function launchPersistentChromium(userDataDir: string, options: { baseURL: string }): Promise<BrowserContext> {
  return chromium.launchPersistentContext(userDataDir, {
    headless: true,
    executablePath: CHROMIUM_PATH,
    args: CHROMIUM_ARGS,
    baseURL: options.baseURL,
    locale: 'en-US',
    viewport: { width: 1280, height: 900 },
  });
}

/**
 * The processes running on a profile directory, read from /proc: the browser
 * process (its command line names the directory and has no `--type=`, which
 * every helper process has) and all of them. Playwright does not expose the
 * process of a persistent context; a test that must kill the browser the way
 * a crash does finds it here. Linux only.
 */
export function profileProcesses(userDataDir: string): { browser: number | undefined; all: number[] } {
  const all: number[] = [];
  let browser: number | undefined;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let args: string[];
    try {
      args = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
    } catch {
      continue; // gone meanwhile
    }
    if (!args.some((a) => a === `--user-data-dir=${userDataDir}`)) continue;
    all.push(Number(entry));
    if (!args.some((a) => a.startsWith('--type='))) browser = Number(entry);
  }
  return { browser, all };
}

/** A port that was free a moment ago (the service binds it right after). */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  server.close();
  await once(server, 'close');
  return port;
}

export interface RunningService {
  baseUrl: string;
  port: number;
  /** The child's recent stdout/stderr, for failure messages. */
  output(): string;
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Start `node --import tsx src/app/main.ts` on a free port with a fresh SQLite
 * database and data directory, and wait until GET /healthz answers 200.
 * The cookie policy is the default one (COOKIE_SECURE=auto) unless extraEnv
 * says otherwise. When `signal` aborts (the test timed out) while it waits,
 * the child is stopped and startService throws: nothing is left running.
 */
export async function startService(
  extraEnv: Record<string, string> | ((port: number) => Record<string, string>) = {},
  signal?: AbortSignal,
): Promise<RunningService> {
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), 'td-e2e-'));
  const extra = typeof extraEnv === 'function' ? extraEnv(port) : extraEnv;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PORT: String(port),
    HOST: '127.0.0.1',
    DATABASE_URL: `sqlite:${join(dataDir, 'e2e.db')}`,
    RATE_LIMITS: 'off',
    NODE_ENV: 'development',
    DATA_DIR: dataDir,
    LOG_LEVEL: 'warn',
    // A function when the variables depend on the port (PUBLIC_URL for passkeys).
    ...extra,
  };
  delete env.NODE_TEST_CONTEXT; // the child is a service, not a test file
  if (!('COOKIE_SECURE' in extra)) delete env.COOKIE_SECURE; // the default, whatever the caller's shell says
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'src/app/main.ts'], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const collect = (chunk: Buffer) => {
    lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
    if (lines.length > 300) lines.splice(0, lines.length - 300);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });

  const baseUrl = `http://127.0.0.1:${port}`;
  const output = () => lines.join('\n');
  const stop = async () => {
    if (!exited && child.exitCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await once(child, 'exit').catch(() => undefined);
      clearTimeout(timer);
    }
    rmSync(dataDir, { recursive: true, force: true });
  };

  const deadline = Date.now() + 60_000;
  for (;;) {
    if (signal?.aborted) {
      await stop();
      throw new Error('The test ended while the service was starting; it was stopped.');
    }
    if (exited) {
      await stop();
      throw new Error(`The service exited before it was healthy. Output:\n${output()}`);
    }
    try {
      const res = await fetch(`${baseUrl}/healthz`, { signal: AbortSignal.timeout(5_000) });
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`The service did not answer GET /healthz within 60 s. Output:\n${output()}`);
    }
    await sleep(200);
  }
  return { baseUrl, port, output, stop };
}

/**
 * TOTP codes like an authenticator app. The server accepts each time step
 * once per user and ±1 step of drift, so when the current step is already
 * used, the next step's code is sent (waiting until it is within the window).
 */
export class TotpCodes {
  private lastStep = Number.NEGATIVE_INFINITY;
  private readonly totp: OTPAuth.TOTP;

  constructor(base32Secret: string) {
    this.totp = new OTPAuth.TOTP({
      secret: OTPAuth.Secret.fromBase32(base32Secret.replace(/[\s-]/g, '').toUpperCase()),
      digits: 6,
      period: 30,
      algorithm: 'SHA1',
    });
  }

  async next(): Promise<string> {
    let step = Math.floor(Date.now() / 30_000);
    if (step <= this.lastStep) {
      step = this.lastStep + 1;
      // A code for step N is accepted from step N-1 on; keep 1 s of margin.
      const earliest = (step - 1) * 30_000 + 1_000;
      if (Date.now() < earliest) await sleep(earliest - Date.now());
    }
    this.lastStep = step;
    return this.totp.generate({ timestamp: step * 30_000 + 15_000 });
  }
}
