/**
 * Development keys: generated once into `<DATA_DIR>/keys.json` (mode 0600)
 * and reused on every later start, so tokens and encrypted TOTP secrets stay
 * valid across restarts. Production never reaches here without explicit keys
 * (loadConfig refuses to start), and the repository holds no key.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config, Keys } from './config.ts';

const KEY_NAMES = ['jwtSecret', 'fingerprintKey', 'dataEncryptionKey'] as const;

export function resolveKeys(config: Config): Keys {
  const missing = KEY_NAMES.filter((name) => config.keys[name] === undefined);
  if (missing.length === 0) return config.keys as Keys;

  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const file = join(config.dataDir, 'keys.json');
  let stored: Partial<Record<(typeof KEY_NAMES)[number], string>> = {};
  if (existsSync(file)) stored = JSON.parse(readFileSync(file, 'utf8'));

  let changed = false;
  for (const name of KEY_NAMES) {
    if (stored[name] === undefined) {
      stored[name] = randomBytes(32).toString('hex');
      changed = true;
    }
  }
  if (changed) writeFileSync(file, `${JSON.stringify(stored, null, 2)}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);

  const keys = {} as Keys;
  for (const name of KEY_NAMES) keys[name] = config.keys[name] ?? Buffer.from(stored[name]!, 'hex');
  return keys;
}
