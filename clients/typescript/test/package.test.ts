/**
 * The client as an outsider gets it (clients/typescript/README.md): built
 * with its own tsconfigs (ES modules, and the CommonJS twin in dist/cjs),
 * `npm pack`ed, installed from the tarball into a fresh project, compiled
 * there with `tsc --strict` under NodeNext and under Bundler resolution (with
 * `lib: ["ES2022"]`, no DOM, and `exactOptionalPropertyTypes`: the consumer's
 * settings must not break it), run on this Node against a live server —
 * imported as an ES module and `require()`d from CommonJS — and imported in
 * Chromium.
 *
 * The install is offline: openapi-fetch (the one runtime dependency) and its
 * types package are copied from this repository's node_modules into the fresh
 * project first, so npm finds them satisfied and fetches nothing.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { extname, join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { createTestApp, databaseKinds, type TestApp } from '../../../test/helpers/app.ts';

const CLIENT = resolve(fileURLToPath(import.meta.url), '../..');
const ROOT = resolve(CLIENT, '../..');
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc');
const [sqlite] = databaseKinds();
const execFileAsync = promisify(execFile);

const CONSUMER = `
import { createTrustedDevicesClient, isApiError, memoryTokenStore, OPERATIONS, type ApiError, type DataOf } from '@trusted-devices/client';

const baseUrl = process.argv[2]!;
const client = createTrustedDevicesClient({ baseUrl, tokens: memoryTokenStore(), deviceKeys: false });
const email = \`consumer-\${Date.now()}@example.com\`;
const created = await client.account.signup({ email, password: 'Correct-Horse-7' });
const step = await client.login({ email, password: 'Correct-Horse-7' });
if (step.kind !== 'session') throw new Error('expected a session');
const me: DataOf<'getCurrentUser'> = await client.call('getCurrentUser');
const sessions = await client.sessions.list();
const setup = await client.totp.setup();
let code = '';
try {
  await client.account.signup({ email, password: 'Correct-Horse-7' });
} catch (error) {
  if (isApiError(error, 'signup')) {
    // A discriminated union: narrowing on code narrows the error.
    const narrowed: ApiError<'EMAIL_TAKEN'> | undefined = error.code === 'EMAIL_TAKEN' ? error : undefined;
    code = \`\${narrowed?.code} \${error.status} \${typeof error.requestId}\`;
  }
}
// A stale access token: the middleware refreshes once and retries.
await client.tokens.set('access_token', 'not-a-token');
const again = await client.call('getCurrentUser');
console.log(JSON.stringify({ created: created.email, me: me.email, sessions: sessions.total_count, secret: setup.secret.length > 0, code, again: again.user_id === me.user_id, operations: Object.keys(OPERATIONS).length }));
`;

/** The same client from CommonJS (a .cts file compiles to require()). */
const REQUIRING = `
import { createTrustedDevicesClient, isApiError, memoryTokenStore, TrustedDevicesError } from '@trusted-devices/client';
import { collectFingerprint } from '@trusted-devices/client/browser';

async function main(): Promise<void> {
  const baseUrl = process.argv[2]!;
  const client = createTrustedDevicesClient({ baseUrl, tokens: memoryTokenStore(), deviceKeys: false });
  const email = \`cjs-\${Date.now()}@example.com\`;
  await client.account.signup({ email, password: 'Correct-Horse-7' });
  let code = '';
  let errorClass = false;
  try {
    await client.account.signup({ email, password: 'Correct-Horse-7' });
  } catch (error) {
    errorClass = error instanceof TrustedDevicesError;
    if (isApiError(error, 'signup')) code = error.code;
  }
  const step = await client.login({ email, password: 'Correct-Horse-7' });
  const me = await client.call('getCurrentUser');
  console.log(JSON.stringify({ kind: step.kind, me: me.email === email, code, errorClass, module: typeof module, resolved: require.resolve('@trusted-devices/client'), browser: typeof collectFingerprint }));
}
main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
`;

const tsconfig = (resolution: 'NodeNext' | 'Bundler') => ({
  compilerOptions: {
    strict: true,
    target: 'ES2022',
    module: resolution === 'NodeNext' ? 'NodeNext' : 'ESNext',
    moduleResolution: resolution,
    lib: ['ES2022'],
    types: ['node'],
    typeRoots: [join(ROOT, 'node_modules/@types')],
    exactOptionalPropertyTypes: true,
    noUncheckedIndexedAccess: true,
    skipLibCheck: false,
    outDir: `dist-${resolution}`,
  },
  include: ['index.ts'],
});

describe('the client package', () => {
  let dir: string;
  let t: TestApp;
  let server: Server;
  let origin: string;
  let tarball: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'td-client-package-'));
    // The package's build script, step by step (npm pack runs it as prepack; here --ignore-scripts, and this tsc).
    rmSync(join(CLIENT, 'dist'), { recursive: true, force: true });
    execFileSync(process.execPath, [TSC, '-p', join(CLIENT, 'tsconfig.build.json')], { cwd: CLIENT, stdio: 'pipe' });
    execFileSync(process.execPath, [TSC, '-p', join(CLIENT, 'tsconfig.cjs.json')], { cwd: CLIENT, stdio: 'pipe' });
    execFileSync(process.execPath, [join(CLIENT, 'scripts/mark-commonjs.mjs')], { cwd: CLIENT, stdio: 'pipe' });
    assert.match(JSON.parse(readFileSync(join(CLIENT, 'package.json'), 'utf8')).scripts.prepack, /tsconfig\.build\.json && tsc -p tsconfig\.cjs\.json && node scripts\/mark-commonjs\.mjs/, 'the same steps as the package\'s own build');
    const packed = execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: CLIENT, encoding: 'utf8' });
    tarball = join(dir, JSON.parse(packed)[0].filename);
    t = await createTestApp(sqlite!);
    // One origin for the browser: the installed package's files, and the API (through app.inject).
    server = createServer(async (req, res) => {
      const url = req.url ?? '/';
      if (url.startsWith('/api/')) {
        const chunks: Buffer[] = [];
        for await (const chunk of req) chunks.push(chunk as Buffer);
        const answer = await t.app.inject({ method: req.method as 'GET', url, headers: req.headers as Record<string, string>, ...(chunks.length ? { payload: Buffer.concat(chunks) } : {}) });
        res.writeHead(answer.statusCode, answer.headers as Record<string, string>);
        res.end(answer.rawPayload);
        return;
      }
      try {
        const file = join(dir, 'consumer', url === '/' ? 'index.html' : url.split('?')[0]!);
        const type = { '.js': 'text/javascript', '.mjs': 'text/javascript', '.html': 'text/html' }[extname(file)] ?? 'application/octet-stream';
        const content = readFileSync(file);
        res.writeHead(200, { 'content-type': type }).end(content);
      } catch {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server?.close();
    await t?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the tarball holds the build, the document and the README; no sources of tests or scripts', () => {
    const list = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).split('\n').filter(Boolean);
    assert.ok(list.includes('package/dist/index.js') && list.includes('package/dist/index.d.ts') && list.includes('package/README.md'), list.join(' '));
    for (const cjs of ['index.js', 'index.d.ts', 'browser.js', 'package.json']) assert.ok(list.includes(`package/dist/cjs/${cjs}`), `dist/cjs/${cjs}`);
    assert.deepEqual(list.filter((f) => /\/(test|scripts|src)\//.test(f)), []);
    const manifest = JSON.parse(readFileSync(join(CLIENT, 'package.json'), 'utf8'));
    assert.equal(manifest.private, undefined);
    assert.ok(manifest.engines.node);
    assert.deepEqual(Object.keys(manifest.dependencies), ['openapi-fetch']);
    assert.deepEqual(manifest.exports['.'], { import: { types: './dist/index.d.ts', default: './dist/index.js' }, require: { types: './dist/cjs/index.d.ts', default: './dist/cjs/index.js' } });
    assert.equal(manifest.main, './dist/cjs/index.js');
  });

  test('installed from the tarball, it compiles (tsc --strict, NodeNext and Bundler) and runs on Node against a live server', async () => {
    const consumer = join(dir, 'consumer');
    mkdirSync(join(consumer, 'node_modules'), { recursive: true });
    writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    for (const dep of ['openapi-fetch', 'openapi-typescript-helpers']) cpSync(join(ROOT, 'node_modules', dep), join(consumer, 'node_modules', dep), { recursive: true, dereference: true });
    const install = spawnSync('npm', ['install', '--offline', '--no-audit', '--no-fund', '--ignore-scripts', '--no-package-lock', tarball], { cwd: consumer, encoding: 'utf8' });
    assert.equal(install.status, 0, install.stderr);
    writeFileSync(join(consumer, 'index.ts'), CONSUMER);
    for (const resolution of ['NodeNext', 'Bundler'] as const) {
      writeFileSync(join(consumer, `tsconfig.${resolution}.json`), JSON.stringify(tsconfig(resolution)));
      const compiled = spawnSync(process.execPath, [TSC, '-p', `tsconfig.${resolution}.json`], { cwd: consumer, encoding: 'utf8' });
      assert.equal(compiled.status, 0, `${resolution}: ${compiled.stdout}${compiled.stderr}`);
    }
    // A mistyped call does not compile: the operations and their bodies are typed.
    writeFileSync(join(consumer, 'wrong.ts'), `import { createTrustedDevicesClient } from '@trusted-devices/client';\nconst c = createTrustedDevicesClient({ baseUrl: '' });\nawait c.call('signup', { body: { email: 'a@b.co', passwrd: 'x' } });\n`);
    writeFileSync(join(consumer, 'tsconfig.wrong.json'), JSON.stringify({ ...tsconfig('NodeNext'), include: ['wrong.ts'] }));
    const wrong = spawnSync(process.execPath, [TSC, '-p', 'tsconfig.wrong.json', '--noEmit'], { cwd: consumer, encoding: 'utf8' });
    assert.notEqual(wrong.status, 0);
    assert.match(wrong.stdout, /passwrd/);

    // Asynchronously: the server answering it lives in this process.
    const run = await execFileAsync(process.execPath, [join(consumer, 'dist-NodeNext/index.js'), origin], { cwd: consumer, encoding: 'utf8', timeout: 60_000 });
    const out = JSON.parse(run.stdout.trim().split('\n').pop()!);
    assert.equal(out.created, out.me);
    assert.equal(out.sessions, 1);
    assert.equal(out.secret, true);
    assert.equal(out.code, 'EMAIL_TAKEN 409 string');
    assert.equal(out.again, true, 'a 401 was refreshed and retried');
    assert.ok(out.operations >= 45);
  });

  test('from CommonJS: a .cts program compiles against the require types (tsc --strict, NodeNext) and require()s the package on Node', async () => {
    const consumer = join(dir, 'consumer');
    writeFileSync(join(consumer, 'required.cts'), REQUIRING);
    writeFileSync(join(consumer, 'tsconfig.cjs.json'), JSON.stringify({ ...tsconfig('NodeNext'), compilerOptions: { ...tsconfig('NodeNext').compilerOptions, outDir: 'dist-cjs' }, include: ['required.cts'] }));
    const compiled = spawnSync(process.execPath, [TSC, '-p', 'tsconfig.cjs.json'], { cwd: consumer, encoding: 'utf8' });
    assert.equal(compiled.status, 0, `${compiled.stdout}${compiled.stderr}`);
    const emitted = readFileSync(join(consumer, 'dist-cjs/required.cjs'), 'utf8');
    assert.match(emitted, /require\("@trusted-devices\/client"\)/, 'compiled to a require()');
    const run = await execFileAsync(process.execPath, [join(consumer, 'dist-cjs/required.cjs'), origin], { cwd: consumer, encoding: 'utf8', timeout: 60_000 });
    const out = JSON.parse(run.stdout.trim().split('\n').pop()!);
    assert.deepEqual(out, { kind: 'session', me: true, code: 'EMAIL_TAKEN', errorClass: true, module: 'object', resolved: join(consumer, 'node_modules/@trusted-devices/client/dist/cjs/index.js'), browser: 'function' });
  });

  test('imported in Chromium (ES module, openapi-fetch by an import map), it calls the API', async () => {
    const consumer = join(dir, 'consumer');
    writeFileSync(
      join(consumer, 'index.html'),
      `<!doctype html><script type="importmap">{"imports":{"openapi-fetch":"/node_modules/openapi-fetch/dist/index.mjs"}}</script>
<script type="module">
import { createTrustedDevicesClient } from '/node_modules/@trusted-devices/client/dist/index.js';
import { collectFingerprint } from '/node_modules/@trusted-devices/client/dist/browser.js';
const client = createTrustedDevicesClient({ baseUrl: location.origin, deviceKeys: false });
const policy = await client.call('getPasswordPolicy');
window.result = { minLength: policy.min_length, signals: typeof collectFingerprint };
</script>`,
    );
    const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'] });
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('pageerror', (error) => errors.push(error.message));
      await page.goto(`${origin}/`);
      await page.waitForFunction(() => (window as unknown as { result?: unknown }).result !== undefined || false, undefined, { timeout: 15_000 }).catch(() => undefined);
      const result = await page.evaluate(() => (window as unknown as { result?: { minLength: number; signals: string } }).result);
      assert.deepEqual(errors, []);
      assert.equal(result?.minLength, 8);
      assert.equal(result?.signals, 'function');
    } finally {
      await browser.close();
    }
  });
});
