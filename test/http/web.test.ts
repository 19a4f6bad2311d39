/**
 * The web app's static serving (src/features/web/web.plugin.ts): versioned immutable
 * assets, a no-cache index.html that points at them, compression, and the
 * JSON 404 for anything else.
 */
import assert from 'node:assert/strict';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import { computeBuildId } from '../../src/features/web/web.plugin.ts';
import { createTestApp, databaseKinds, type TestApp } from '../helpers/app.ts';

const [sqlite] = databaseKinds(); // no storage involved: one database kind is enough

describe('web app static files', () => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp(sqlite!);
  });
  after(() => t.close());

  const get = (url: string, headers: Record<string, string> = {}) => t.app.inject({ method: 'GET', url, headers });

  test('index.html: no-cache with an ETag, asset URLs under /assets/<build id>/, 304 on revalidation', async () => {
    const res = await get('/');
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['cache-control'], 'no-cache');
    assert.match(String(res.headers['content-type']), /^text\/html/);
    const id = computeBuildId();
    assert.match(id, /^[0-9a-f]{12}$/);
    assert.ok(res.body.includes(`src="/assets/${id}/js/app.js"`), 'the module script is versioned');
    assert.ok(res.body.includes(`href="/assets/${id}/css/app.css"`), 'the stylesheet is versioned');
    assert.ok(!/(src|href)="\/(js|css)\//.test(res.body), 'no unversioned asset URL left');
    assert.match(String(res.headers['content-security-policy']), /script-src 'self'/);
    const again = await get('/', { 'if-none-match': String(res.headers.etag) });
    assert.equal(again.statusCode, 304);
  });

  test('assets: one year, immutable; modules imported relatively resolve under the same prefix', async () => {
    const id = computeBuildId();
    for (const path of ['js/app.js', 'js/views/devices.js', 'js/router.js', 'css/app.css', 'favicon.svg']) {
      const res = await get(`/assets/${id}/${path}`);
      assert.equal(res.statusCode, 200, path);
      assert.equal(res.headers['cache-control'], 'public, max-age=31536000, immutable', path);
    }
  });

  test('compressed as the browser asks (brotli, gzip), identical content', async () => {
    const url = `/assets/${computeBuildId()}/js/views/devices.js`;
    const plain = await get(url);
    const br = await get(url, { 'accept-encoding': 'br' });
    assert.equal(br.headers['content-encoding'], 'br');
    assert.equal(brotliDecompressSync(br.rawPayload).toString('utf8'), plain.body);
    const gz = await get(url, { 'accept-encoding': 'gzip' });
    assert.equal(gz.headers['content-encoding'], 'gzip');
    assert.equal(gunzipSync(gz.rawPayload).toString('utf8'), plain.body);
    assert.ok(gz.rawPayload.length < plain.rawPayload.length / 2);
  });

  test('API answers are not compressed; unknown paths, old unversioned and other build ids are the JSON 404', async () => {
    const api = await get('/api/v1/auth/password-policy', { 'accept-encoding': 'gzip, br' });
    assert.equal(api.headers['content-encoding'], undefined);
    assert.equal(api.headers['cache-control'], 'no-store');
    for (const url of ['/js/app.js', '/assets/000000000000/js/app.js', '/nope']) {
      const res = await get(url);
      assert.equal(res.statusCode, 404, url);
      assert.equal(res.json().error.code, 'NOT_FOUND');
    }
  });
});
