/**
 * Development keys: generated once into `<DATA_DIR>/keys.json` (mode 0600)
 * and reused on every later start, so tokens and encrypted TOTP secrets stay
 * valid across restarts. Production never reaches here without explicit keys
 * (loadConfig refuses to start), and the repository holds no key.
 *
 * The access-token signing key is kept per algorithm (`jwtSigningKeyES256`,
 * `jwtSigningKeyEdDSA`, PKCS#8 PEM): switching JWT_ALGORITHM in development
 * then gets a key of the right type instead of a refusal.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config, Keys } from './config.ts';
import { generateSigningKeyPem, parseSigningKey } from './crypto/signing-keys.ts';

const BYTE_KEYS = ['jwtSecret', 'fingerprintKey', 'dataEncryptionKey'] as const;
type ByteKey = (typeof BYTE_KEYS)[number];

export function resolveKeys(config: Config): Keys {
  // JWT_SECRET signs only in HS256 mode; the signing key only in the asymmetric modes.
  const neededBytes = BYTE_KEYS.filter((name) => name !== 'jwtSecret' || config.jwtAlgorithm === 'HS256');
  const missing = neededBytes.filter((name) => config.keys[name] === undefined);
  const signingKeyName = config.jwtAlgorithm === 'HS256' ? undefined : (`jwtSigningKey${config.jwtAlgorithm}` as const);
  const needsSigningKey = signingKeyName !== undefined && config.keys.jwtSigningKey === undefined;
  if (missing.length === 0 && !needsSigningKey) return { ...config.keys, jwtPreviousKeys: config.keys.jwtPreviousKeys ?? [] } as Keys;

  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const file = join(config.dataDir, 'keys.json');
  let stored: Partial<Record<string, string>> = {};
  if (existsSync(file)) stored = JSON.parse(readFileSync(file, 'utf8'));

  let changed = false;
  for (const name of missing) {
    if (stored[name] === undefined) {
      stored[name] = randomBytes(32).toString('hex');
      changed = true;
    }
  }
  if (needsSigningKey && stored[signingKeyName] === undefined) {
    stored[signingKeyName] = generateSigningKeyPem(config.jwtAlgorithm as 'ES256' | 'EdDSA');
    changed = true;
  }
  if (changed) writeFileSync(file, `${JSON.stringify(stored, null, 2)}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);

  const keys: Keys = { ...config.keys, jwtPreviousKeys: config.keys.jwtPreviousKeys ?? [] } as Keys;
  for (const name of missing) (keys as Record<ByteKey, Buffer | undefined>)[name] = Buffer.from(stored[name]!, 'hex');
  if (needsSigningKey) keys.jwtSigningKey = parseSigningKey(stored[signingKeyName]!);
  return keys;
}
