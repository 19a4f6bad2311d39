/**
 * docs/security.md (malformed HTTP answers with the error envelope) and issue 10: errors of Node's HTTP parser, Expect, a
 * missing Host, compressed bodies, another method on a known path and CORS
 * preflights all answer in the error envelope with no-store, nosniff and the
 * other security headers. Raw HTTP over a real socket where the parser is
 * involved; app.inject otherwise.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { gzipSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import { createClientErrorHandler } from '../../src/platform/http/protocol.ts';
import { call, createTestApp, databaseKinds, signupAndLogin, type TestApp } from '../helpers/app.ts';

const kind = databaseKinds()[0]!;

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

function parseResponse(text: string): RawResponse {
  const end = text.indexOf('\r\n\r\n');
  const [statusLine, ...lines] = text.slice(0, end).split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const i = line.indexOf(':');
    headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return { status: Number(statusLine!.split(' ')[1]), headers, body: text.slice(end + 4) };
}

/** Writes raw bytes, reads until the server closes (or 3 s), returns the first response. */
export function rawRequest(port: number, payload: string | Buffer): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(), 3000);
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('utf8');
      if (!text.startsWith('HTTP/1.1')) return reject(new Error(`no HTTP response: ${JSON.stringify(text.slice(0, 200))}`));
      resolve(parseResponse(text));
    });
    socket.write(payload);
  });
}

export function assertErrorResponse(response: { status: number; headers: Record<string, unknown>; body: string }, status: number, code?: string) {
  assert.equal(response.status, status, response.body);
  assert.match(String(response.headers['content-type']), /^application\/json/);
  assert.equal(response.headers['cache-control'], 'no-store');
  assert.equal(response.headers['x-content-type-options'], 'nosniff');
  assert.equal(response.headers['x-frame-options'], 'DENY');
  const body = JSON.parse(response.body);
  assert.equal(body.success, false);
  assert.equal(typeof body.error.code, 'string');
  assert.equal(typeof body.error.message, 'string');
  assert.equal(typeof body.error.request_id, 'string');
  if (code) assert.equal(body.error.code, code);
  return body;
}

describe('HTTP parser errors over a socket', () => {
  let t: TestApp;
  let port: number;
  before(async () => {
    t = await createTestApp(kind);
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    port = (t.app.server.address() as { port: number }).port;
  });
  after(() => t.close());

  const cases: Array<[string, string, number, string]> = [
    ['duplicate Content-Length', 'POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}', 400, 'BAD_REQUEST'],
    ['a bad method', 'G@T /healthz HTTP/1.1\r\nHost: x\r\n\r\n', 400, 'BAD_REQUEST'],
    ['a well-formed method Node does not know', 'BREW /healthz HTTP/1.1\r\nHost: x\r\n\r\n', 405, 'METHOD_NOT_ALLOWED'],
    ['a bad request line', 'this is not http\r\n\r\n', 400, 'BAD_REQUEST'],
    ['Content-Length and Transfer-Encoding together', 'POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400, 'BAD_REQUEST'],
    ['headers over the limit', `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431, 'HEADERS_TOO_LARGE'],
    ['a missing Host', 'GET /healthz HTTP/1.1\r\n\r\n', 400, 'BAD_REQUEST'],
    ['an unsupported Expect', 'GET /healthz HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\n\r\n', 417, 'EXPECTATION_FAILED'],
  ];
  for (const [name, payload, status, code] of cases) {
    test(`${name} → ${status} ${code} in the envelope with the security headers`, async () => {
      assertErrorResponse(await rawRequest(port, payload), status, code);
    });
  }

  test('the server still answers afterwards', async () => {
    const ok = await rawRequest(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.equal(ok.status, 200);
  });

  test('a request that arrives too slowly (408) gets the envelope too', () => {
    let written = '';
    const socket = { destroyed: false, writable: true, bytesWritten: 0, write: (text: string) => (written += text), destroy: () => undefined };
    const headers = { 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', 'x-frame-options': 'DENY' };
    createClientErrorHandler(headers)(Object.assign(new Error('timeout'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' }), socket as never);
    assertErrorResponse(parseResponse(written), 408, 'REQUEST_TIMEOUT');
  });
});

describe('methods, CORS and content coding', () => {
  let t: TestApp;
  let cors: TestApp;
  before(async () => {
    t = await createTestApp(kind);
    cors = await createTestApp(kind, { env: { CORS_ORIGINS: 'https://app.example.com' } });
  });
  after(async () => {
    await t.close();
    await cors.close();
  });

  const inject = async (app: TestApp, method: string, url: string, headers: Record<string, string> = {}, payload?: string | Buffer) => {
    const res = await app.app.inject({ method: method as 'GET', url, headers, ...(payload !== undefined ? { payload } : {}) });
    return { res, response: { status: res.statusCode, headers: res.headers as Record<string, unknown>, body: res.body } };
  };

  test('another method on a known path → 405 with Allow; an unknown path stays 404', async () => {
    for (const [method, url, allow] of [
      ['DELETE', '/api/v1/auth/login', 'POST'],
      ['GET', '/api/v1/auth/signup', 'POST'],
      ['PUT', '/api/v1/devices/3f1c2b9e-0000-4000-8000-000000000000', 'PATCH, DELETE'],
      ['POST', '/api/v1/devices', 'GET, HEAD, DELETE'],
      ['POST', '/healthz', 'GET, HEAD'],
    ] as const) {
      const { res, response } = await inject(t, method, url);
      assertErrorResponse(response, 405, 'METHOD_NOT_ALLOWED');
      assert.equal(res.headers.allow, allow, `${method} ${url}`);
    }
    const { res, response } = await inject(t, 'GET', '/api/v1/nope');
    assertErrorResponse(response, 404, 'NOT_FOUND');
    assert.equal(res.headers.allow, undefined);
  });

  test('QUERY (no body, or a body) → 405 before the body is read; a fixed path is not a parameter of its neighbour', async () => {
    for (const payload of [undefined, '{"a":1}', 'not json']) {
      const { res, response } = await inject(t, 'QUERY', '/api/v1/devices', payload === undefined ? {} : { 'content-type': 'application/json' }, payload);
      assertErrorResponse(response, 405, 'METHOD_NOT_ALLOWED');
      assert.equal(res.headers.allow, 'GET, HEAD, DELETE');
    }
    // Without a token: the 405 comes first (a rename of a device called "activate" would be 401).
    for (const [method, url, allow] of [
      ['PATCH', '/api/v1/devices/activate', 'POST'],
      ['DELETE', '/api/v1/devices/skip', 'POST'],
      ['DELETE', '/api/v1/devices/events', 'GET, HEAD'],
    ] as const) {
      const { res, response } = await inject(t, method, url, { 'content-type': 'application/json' }, '{"device_name":"x"}');
      assertErrorResponse(response, 405, 'METHOD_NOT_ALLOWED');
      assert.equal(res.headers.allow, allow, `${method} ${url}`);
    }
  });

  test('OPTIONS without CORS says which methods a path has', async () => {
    const { res } = await inject(t, 'OPTIONS', '/api/v1/devices');
    assert.equal(res.statusCode, 204);
    assert.equal(res.headers.allow, 'GET, HEAD, DELETE, OPTIONS');
    assertErrorResponse((await inject(t, 'OPTIONS', '/api/v1/nope')).response, 404, 'NOT_FOUND');
  });

  test('CORS allows every method the API has, and a preflight without Origin answers in the envelope', async () => {
    const preflight = (method: string, headers: Record<string, string> = { origin: 'https://app.example.com' }) =>
      inject(cors, 'OPTIONS', '/api/v1/devices/3f1c2b9e-0000-4000-8000-000000000000', { ...headers, 'access-control-request-method': method });
    for (const method of ['DELETE', 'PATCH', 'GET', 'POST']) {
      const { res } = await preflight(method);
      assert.equal(res.statusCode, 204, method);
      assert.equal(res.headers['access-control-allow-origin'], 'https://app.example.com');
      assert.ok(String(res.headers['access-control-allow-methods']).split(/,\s*/).includes(method), String(res.headers['access-control-allow-methods']));
    }
    assertErrorResponse((await preflight('DELETE', {})).response, 400, 'BAD_REQUEST');
    // A foreign origin gets no CORS headers.
    assert.equal((await preflight('DELETE', { origin: 'https://evil.example' })).res.headers['access-control-allow-origin'], undefined);
  });

  test('a compressed request body → 415 with Accept-Encoding: identity', async () => {
    const user = await signupAndLogin(t.app);
    for (const encoding of ['gzip', 'deflate', 'br']) {
      const { res, response } = await inject(
        t,
        'POST',
        '/api/v1/auth/login',
        { 'content-type': 'application/json', 'content-encoding': encoding },
        gzipSync(JSON.stringify({ email: user.email, password: user.password })),
      );
      assertErrorResponse(response, 415, 'UNSUPPORTED_MEDIA_TYPE');
      assert.equal(res.headers['accept-encoding'], 'identity');
    }
    const identity = await call(t.app, 'POST', '/api/v1/auth/login', { email: user.email, password: user.password }, { headers: { 'content-encoding': 'identity' } });
    assert.equal(identity.res.statusCode, 200);
  });
});
