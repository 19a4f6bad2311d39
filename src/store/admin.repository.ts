/**
 * Storage for admin API keys. Keys are found by SHA-256 through a unique
 * index; names are unique forever (see the migration).
 */
import type { Kysely } from 'kysely';
import type { AdminKeysTable, Database } from './schema.ts';
import { isUniqueViolation } from '../platform/storage-errors.ts';

export type AdminKey = AdminKeysTable;

export function createAdminRepository(db: Kysely<Database>) {
  return {
    /** false when the name (or, impossibly, the hash) is taken. */
    async insert(row: AdminKey): Promise<boolean> {
      try {
        await db.insertInto('admin_keys').values(row).execute();
        return true;
      } catch (error) {
        if (isUniqueViolation(error)) return false;
        throw error;
      }
    },

    /** A live key by its hash. */
    findLiveByHash(keyHash: string): Promise<Pick<AdminKey, 'id' | 'name' | 'scopes' | 'last_used_at'> | undefined> {
      return db
        .selectFrom('admin_keys')
        .select(['id', 'name', 'scopes', 'last_used_at'])
        .where('key_hash', '=', keyHash)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
    },

    /** Moves last_used_at, at most once per `everyMs`. */
    async touch(id: string, now: number, everyMs: number): Promise<void> {
      await db
        .updateTable('admin_keys')
        .set({ last_used_at: now })
        .where('id', '=', id)
        .where((eb) => eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<=', now - everyMs)]))
        .execute();
    },

    /** Every key, for the operator's list (a handful of rows). */
    list(): Promise<Array<Omit<AdminKey, 'key_hash'>>> {
      return db.selectFrom('admin_keys').select(['id', 'name', 'scopes', 'created_at', 'revoked_at', 'last_used_at']).orderBy('name').execute();
    },

    /** Revokes a live key by name in one conditional UPDATE; false when there is none. */
    async revoke(name: string, now: number): Promise<boolean> {
      const result = await db.updateTable('admin_keys').set({ revoked_at: now }).where('name', '=', name).where('revoked_at', 'is', null).executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },
  };
}

export type AdminRepository = ReturnType<typeof createAdminRepository>;
