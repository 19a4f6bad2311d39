/**
 * `npm run admin -- <command>`: admin API keys, against the DATABASE_URL of
 * the environment.
 *
 *   create-key --name NAME --scopes users:read,devices:write,…
 *       prints the key once (stdout; nothing else goes there). Only its
 *       SHA-256 is stored: a lost key is revoked and replaced, never shown again.
 *   list-keys   name, scopes, created, last used, revoked (never a key or hash)
 *   revoke-key --name NAME   refused from the next request on
 */
import { pathToFileURL } from 'node:url';
import { type Clock, systemClock } from '../platform/clock.ts';
import { loadConfig } from '../platform/config.ts';
import { connectDatabase } from '../store/connect.ts';
import { migrateToLatest } from '../store/migrate.ts';
import type { Database } from '../store/schema.ts';
import type { Kysely } from 'kysely';
import { createAdminRepository } from '../store/admin.repository.ts';
import { ADMIN_SCOPES, AdminKeyError, createAdminKeys } from '../features/admin/admin.service.ts';

export const USAGE = `Usage: npm run admin -- <command>
  create-key --name NAME --scopes SCOPE[,SCOPE…]   prints the new key once
  list-keys
  revoke-key --name NAME
Scopes: ${ADMIN_SCOPES.join(', ')}`;

export interface CliIo {
  out(line: string): void;
  err(line: string): void;
}

function option(args: readonly string[], name: string): string | undefined {
  const at = args.indexOf(`--${name}`);
  if (at !== -1) return args[at + 1];
  const inline = args.find((a) => a.startsWith(`--${name}=`));
  return inline?.slice(name.length + 3);
}

const isoOrDash = (ms: number | null) => (ms === null ? '-' : new Date(ms).toISOString());

/** Runs one command; returns the exit code. */
export async function runAdminCommand(args: readonly string[], db: Kysely<Database>, io: CliIo, clock: Clock = systemClock): Promise<number> {
  const keys = createAdminKeys(createAdminRepository(db), clock);
  const [command, ...rest] = args;
  try {
    if (command === 'create-key') {
      const name = option(rest, 'name');
      const scopes = option(rest, 'scopes');
      if (!name || !scopes) {
        io.err(USAGE);
        return 2;
      }
      const created = await keys.create(name, scopes.split(','));
      io.out(created.key);
      io.err(`Created admin key "${created.name}" with scopes ${created.scopes.join(',')}. It is shown only this once: store it now.`);
      return 0;
    }
    if (command === 'list-keys') {
      const rows = await keys.list();
      if (rows.length === 0) io.err('No admin keys.');
      for (const row of rows) {
        io.out([row.name, row.scopes, `created ${isoOrDash(row.created_at)}`, `last used ${isoOrDash(row.last_used_at)}`, row.revoked_at === null ? 'live' : `revoked ${isoOrDash(row.revoked_at)}`].join('\t'));
      }
      return 0;
    }
    if (command === 'revoke-key') {
      const name = option(rest, 'name');
      if (!name) {
        io.err(USAGE);
        return 2;
      }
      await keys.revoke(name);
      io.err(`Revoked admin key "${name}".`);
      return 0;
    }
    io.err(USAGE);
    return 2;
  } catch (error) {
    if (error instanceof AdminKeyError) {
      io.err(error.message);
      return 1;
    }
    throw error;
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const config = loadConfig(process.env);
  const database = connectDatabase(config.databaseUrl, { poolSize: 2 });
  try {
    await migrateToLatest(database.db);
    process.exitCode = await runAdminCommand(process.argv.slice(2), database.db, {
      out: (line) => process.stdout.write(`${line}\n`),
      err: (line) => process.stderr.write(`${line}\n`),
    });
  } finally {
    await database.close();
  }
}
