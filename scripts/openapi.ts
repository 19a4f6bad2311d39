/**
 * The OpenAPI document of the current code, built from a real app (in-memory
 * SQLite, throw-away keys) exactly as GET /openapi.json serves it.
 *
 *   node --import tsx scripts/openapi.ts write FILE   writes it (pretty JSON)
 *   node --import tsx scripts/openapi.ts lint         writes it to a temp file and runs
 *                                                     Redocly's recommended rules (npm run lint:openapi)
 *
 * Redocly runs offline: telemetry and the update check are switched off.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildApp } from '../src/app/build-app.ts';
import { loadConfig } from '../src/platform/config.ts';
import { connectDatabase } from '../src/store/connect.ts';
import { migrateToLatest } from '../src/store/migrate.ts';
import { randomBytes } from 'node:crypto';
import { generateSigningKeyPem, parseSigningKey } from '../src/platform/crypto/signing-keys.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export async function openApiDocument(): Promise<Record<string, unknown>> {
  const database = connectDatabase('sqlite::memory:');
  try {
    await migrateToLatest(database.db);
    const config = loadConfig({ LOG_LEVEL: 'silent' });
    const keys = {
      jwtSigningKey: parseSigningKey(generateSigningKeyPem('ES256')),
      jwtPreviousKeys: [],
      fingerprintKey: randomBytes(32),
      dataEncryptionKey: randomBytes(32),
    };
    const app = await buildApp({ config, keys, database });
    try {
      return app.swagger() as unknown as Record<string, unknown>;
    } finally {
      await app.close();
    }
  } finally {
    await database.close();
  }
}

export const documentText = (document: unknown): string => `${JSON.stringify(document, null, 2)}\n`;

/** Redocly's recommended rules (redocly.yaml) on the document; returns the exit status and output. */
export function lintOpenApi(file: string): { status: number; output: string } {
  const cli = createRequire(import.meta.url).resolve('@redocly/cli/bin/cli.js');
  const result = spawnSync(process.execPath, [cli, 'lint', file, '--config', join(ROOT, 'redocly.yaml'), '--format', 'stylish'], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true', NO_COLOR: '1' },
    timeout: 120_000,
  });
  return { status: result.status ?? 1, output: `${result.stdout ?? ''}${result.stderr ?? ''}` };
}

async function cli(): Promise<void> {
  const [command, target] = process.argv.slice(2);
  const document = await openApiDocument();
  if (command === 'write' && target) {
    writeFileSync(target, documentText(document));
    return;
  }
  if (command === 'lint') {
    const dir = mkdtempSync(join(tmpdir(), 'td-openapi-'));
    try {
      const file = join(dir, 'openapi.json');
      writeFileSync(file, documentText(document));
      const { status, output } = lintOpenApi(file);
      process.stdout.write(output);
      process.exitCode = status;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    return;
  }
  process.stderr.write('usage: scripts/openapi.ts write FILE | lint\n');
  process.exitCode = 2;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await cli();
