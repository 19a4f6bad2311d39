/**
 * Which errors mean "storage is unavailable" (→ 503 SERVICE_UNAVAILABLE)
 * rather than a bug (→ 500). Anything unrecognised stays a 500, so a
 * programming error is never disguised as an outage.
 */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'EAI_AGAIN']);
const SQLITE_CODES = new Set(['SQLITE_BUSY', 'SQLITE_LOCKED', 'SQLITE_IOERR', 'SQLITE_CANTOPEN', 'SQLITE_FULL', 'SQLITE_READONLY', 'SQLITE_CORRUPT', 'SQLITE_NOTADB']);

export function isStorageUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (NETWORK_CODES.has(code)) return true;
    if (SQLITE_CODES.has(code) || code.startsWith('SQLITE_IOERR')) return true;
    // PostgreSQL SQLSTATE classes: 08 connection exception, 53 insufficient
    // resources, 57 operator intervention (admin shutdown, query canceled by timeout), 58 system error.
    if (/^(08|53|57|58)[0-9A-Z]{3}$/.test(code)) return true;
  }
  const message = error.message;
  if (
    message.includes('Connection terminated') ||
    message.includes('timeout exceeded when trying to connect') ||
    message.includes('Client has encountered a connection error') ||
    message.includes('The database connection is not open') ||
    message.includes('driver has already been destroyed') ||
    message.includes('Cannot use a pool after calling end')
  ) {
    return true;
  }
  return error.cause !== undefined && error.cause !== error && isStorageUnavailable(error.cause);
}

/** A unique constraint failed (SQLite SQLITE_CONSTRAINT_UNIQUE/PRIMARYKEY, PostgreSQL 23505). */
export function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}
