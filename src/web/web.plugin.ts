/**
 * Serves the web app (static files in /public) at `/`.
 *
 * The app is plain ES modules + CSS with no build step, so this plugin only
 * maps the directory. `wildcard: false` makes @fastify/static register one
 * route per file found at start-up (plus `/` for index.html) instead of a
 * catch-all `GET /*`, so unknown paths still reach the service's JSON 404
 * handler (SPEC §2). The app uses hash routes (`/#/devices`), so no SPA
 * fallback is needed. Security headers (CSP etc.) come from the service's
 * onRequest hook (src/http/security-headers.ts).
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';

export const PUBLIC_DIR = fileURLToPath(new URL('../../public/', import.meta.url));
/** @simplewebauthn/browser's ESM build, served as is at /vendor/simplewebauthn/ (the web app has no bundler). */
export const SIMPLEWEBAUTHN_BROWSER_DIR = join(dirname(createRequire(import.meta.url).resolve('@simplewebauthn/browser')), '..', 'esm');

export async function webPlugin(app: FastifyInstance): Promise<void> {
  await app.register(fastifyStatic, {
    root: PUBLIC_DIR,
    prefix: '/',
    wildcard: false,
    index: ['index.html'],
    // Revalidate on every load (ETag/Last-Modified), so a deploy is seen at once.
    cacheControl: true,
    maxAge: 0,
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
