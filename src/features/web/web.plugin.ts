/**
 * Serves the web app (static files in /public).
 *
 * The app is plain ES modules + CSS with no build step. Caching without a
 * bundler: at start-up a build id is computed from the content of every file
 * in public/ (SHA-256, 12 hex characters), and the files are served under
 * `/assets/<build id>/…` with `Cache-Control: public, max-age=31536000,
 * immutable`. Relative module imports (`./api.js`) resolve under the same
 * versioned prefix, so every asset is cached for a year and a deploy that
 * changes any file changes every URL. Only `/` (index.html, with the asset
 * URLs rewritten to the current build id) is `no-cache`, so a reload always
 * sees the current build.
 *
 * `wildcard: false` makes @fastify/static register one route per file found
 * at start-up instead of a catch-all, so unknown paths still reach the
 * service's JSON 404 handler (README "API overview"). The app uses hash routes
 * (`/#/devices`), so no SPA fallback is needed.
 *
 * Compression (gzip or brotli, as the browser asks) by @fastify/compress,
 * registered inside this plugin only: the API's JSON answers are small and
 * stay uncompressed. The @simplewebauthn/browser module (passkeys) is served
 * as is at /vendor/simplewebauthn/ (revalidated on every load: its URL is not
 * versioned). Security headers (CSP etc.) come from the service's
 * onRequest hook (src/platform/http/security-headers.ts).
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyCompress from '@fastify/compress';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';

/**
 * The web app's folder: `public/` at the project root, found by walking up from
 * this module, which runs from src/features/web/ under tsx and from
 * dist/server/ as the `npm start` bundle.
 */
export const PUBLIC_DIR = findPublicDir(dirname(fileURLToPath(import.meta.url)));

function findPublicDir(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'public'))) return join(dir, 'public') + '/';
    if (dirname(dir) === dir) throw new Error(`no public/ folder above ${from}`);
  }
}
const IMMUTABLE = 'public, max-age=31536000, immutable';

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((entry) => (entry.isDirectory() ? filesUnder(join(dir, entry.name)) : [join(dir, entry.name)]))
    .sort();
}

/** Content hash of public/ (paths and bytes). */
export function computeBuildId(dir = PUBLIC_DIR): string {
  const hash = createHash('sha256');
  for (const file of filesUnder(dir)) {
    hash.update(relative(dir, file)).update('\0').update(readFileSync(file)).update('\0');
  }
  return hash.digest('hex').slice(0, 12);
}
/** @simplewebauthn/browser's ESM build, served as is at /vendor/simplewebauthn/ (the web app has no bundler). */
export const SIMPLEWEBAUTHN_BROWSER_DIR = join(dirname(createRequire(import.meta.url).resolve('@simplewebauthn/browser')), '..', 'esm');

export async function webPlugin(app: FastifyInstance): Promise<void> {
  const buildId = computeBuildId();
  const assetPrefix = `/assets/${buildId}/`;
  // Root-relative asset URLs in index.html ("/css/app.css") → the versioned prefix.
  const indexHtml = readFileSync(join(PUBLIC_DIR, 'index.html'), 'utf8').replace(
    /(\s(?:href|src)=")\/(css|js|favicon\.svg)/g,
    (_m, attr: string, rest: string) => `${attr}${assetPrefix}${rest}`,
  );
  const indexEtag = `"${createHash('sha256').update(indexHtml).digest('hex').slice(0, 16)}"`;

  await app.register(fastifyCompress, { global: true, threshold: 1024, encodings: ['br', 'gzip'] });
  await app.register(fastifyStatic, {
    root: PUBLIC_DIR,
    prefix: assetPrefix,
    wildcard: false,
    index: false,
    cacheControl: false, // set by the hook below, over the service's default no-store
    etag: true,
    lastModified: false,
  });
  // Runs after the service's onRequest hook (which sets no-store on everything), for this plugin's routes only.
  app.addHook('onRequest', (request, reply, done) => {
    if (request.url.startsWith(assetPrefix)) reply.header('cache-control', IMMUTABLE);
    done();
  });

  app.get('/', { schema: { hide: true } }, async (request, reply) => {
    reply.header('cache-control', 'no-cache').header('etag', indexEtag).type('text/html; charset=utf-8');
    if (request.headers['if-none-match'] === indexEtag) return reply.code(304).send();
    return indexHtml;
  });
  await app.register(fastifyStatic, {
    root: SIMPLEWEBAUTHN_BROWSER_DIR,
    prefix: '/vendor/simplewebauthn/',
    wildcard: false,
    decorateReply: false,
    // Only the modules, not the .d.ts / .map files beside them.
    allowedPath: (path) => path.endsWith('.js'),
    cacheControl: true,
    maxAge: 0,
  });
}
