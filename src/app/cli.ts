/**
 * Operator commands: `npm run migrate` and `npm run prune`, against the
 * DATABASE_URL of the environment.
 */
import { loadConfig } from '../platform/config.ts';
import { connectDatabase } from '../store/connect.ts';
import { migrateToLatest } from '../store/migrate.ts';
import { pruneExpired } from './housekeeping.ts';

const command = process.argv[2];
const config = loadConfig(process.env);
// Pruning marks expired devices with events, which go to the webhook outbox too (pruneExpired reads config.webhook).
const database = connectDatabase(config.databaseUrl, { poolSize: 2, statementTimeoutMs: 600_000 });
try {
  if (command === 'migrate') {
    const applied = await migrateToLatest(database.db);
    console.log(applied.length > 0 ? `Applied: ${applied.join(', ')}` : 'Already up to date.');
  } else if (command === 'prune') {
    await migrateToLatest(database.db);
    console.log(JSON.stringify(await pruneExpired(database, config)));
  } else {
    console.error('Usage: node --import tsx src/app/cli.ts <migrate|prune>');
    process.exitCode = 2;
  }
} finally {
  await database.close();
}
