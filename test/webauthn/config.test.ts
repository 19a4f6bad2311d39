/**
 * WebAuthn configuration (docs/passkeys.md, README "Configuration"): the relying party derives from
 * PUBLIC_URL unless WEBAUTHN_RP_ID / WEBAUTHN_ORIGINS / WEBAUTHN_RP_NAME say
 * otherwise; bad values stop the process with the variable named.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, loadConfig } from '../../src/platform/config.ts';

const problemsOf = (env: Record<string, string>): string[] => {
  try {
    loadConfig(env);
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return error.problems;
  }
  return assert.fail('accepted');
};

test('defaults: PUBLIC_URL http://localhost:3000, relying party derived from it', () => {
  const config = loadConfig({});
  assert.equal(config.publicUrl, 'http://localhost:3000');
  assert.deepEqual(config.webauthn, { rpId: 'localhost', rpName: 'Trusted Devices', origins: ['http://localhost:3000'] });
});

test('PUBLIC_URL alone sets the RP ID (host name) and the one origin', () => {
  const config = loadConfig({ PUBLIC_URL: 'https://Auth.Example.com/base/' });
  assert.equal(config.publicUrl, 'https://Auth.Example.com/base');
  assert.deepEqual(config.webauthn, { rpId: 'auth.example.com', rpName: 'Trusted Devices', origins: ['https://auth.example.com'] });
});

test('explicit WEBAUTHN_* variables win', () => {
  const config = loadConfig({
    PUBLIC_URL: 'https://auth.example.com',
    WEBAUTHN_RP_ID: 'example.com',
    WEBAUTHN_ORIGINS: 'https://auth.example.com, https://app.example.com',
    WEBAUTHN_RP_NAME: 'Example',
  });
  assert.deepEqual(config.webauthn, { rpId: 'example.com', rpName: 'Example', origins: ['https://auth.example.com', 'https://app.example.com'] });
});

test('bad values are refused, each variable named', () => {
  assert.ok(problemsOf({ PUBLIC_URL: 'ftp://x.example' }).some((p) => p.startsWith('PUBLIC_URL')));
  assert.ok(problemsOf({ PUBLIC_URL: 'not a url' }).some((p) => p.startsWith('PUBLIC_URL')));
  assert.ok(problemsOf({ WEBAUTHN_ORIGINS: 'https://ok.example, app.example.com' }).some((p) => p.includes('WEBAUTHN_ORIGINS') && p.includes('app.example.com')));
  assert.ok(problemsOf({ WEBAUTHN_RP_ID: 'https://example.com' }).some((p) => p.startsWith('WEBAUTHN_RP_ID')));
});
