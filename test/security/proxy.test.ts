/** docs/security.md, proxies: a forged X-Forwarded-For is ignored unless TRUST_PROXY names the sender. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { call, createTestApp, databaseKinds, enableMfa, laptop, signupAndLogin, trustDevice } from '../helpers/app.ts';

const kind = databaseKinds()[0]!;

async function recordedIp(env: Record<string, string>, peer: string, forwardedFor: string) {
  const t = await createTestApp(kind, { env });
  try {
    const device = laptop({ ip: peer });
    const user = await signupAndLogin(t.app, device);
    await enableMfa(t, user);
    // The helper's call() sets remoteAddress from device.ip; add the forged header to every request.
    const forged = { ...device };
    const original = t.app.inject.bind(t.app);
    (t.app as any).inject = (opts: any) => original({ ...opts, headers: { ...opts.headers, 'x-forwarded-for': forwardedFor } });
    const { accessToken } = await trustDevice(t, user, forged);
    const list = await call(t.app, 'GET', '/api/v1/devices', undefined, { token: accessToken });
    return list.body.data.devices[0].ip_address as string;
  } finally {
    await t.close();
  }
}

describe('client IP', () => {
  test('without TRUST_PROXY the socket address is used, X-Forwarded-For ignored', async () => {
    assert.equal(await recordedIp({}, '203.0.113.10', '198.51.100.99'), '203.0.113.10');
  });

  test('TRUST_PROXY naming another address: still the socket address', async () => {
    assert.equal(await recordedIp({ TRUST_PROXY: '10.0.0.1' }, '203.0.113.10', '198.51.100.99'), '203.0.113.10');
  });

  test('TRUST_PROXY naming the sender (address or CIDR): the forwarded address', async () => {
    assert.equal(await recordedIp({ TRUST_PROXY: '203.0.113.10' }, '203.0.113.10', '198.51.100.99'), '198.51.100.99');
    assert.equal(await recordedIp({ TRUST_PROXY: '203.0.113.0/24' }, '203.0.113.10', '198.51.100.99'), '198.51.100.99');
  });
});
