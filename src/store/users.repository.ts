import type { Kysely } from 'kysely';
import type { Database, Db, UsersTable } from './schema.ts';
import { isUniqueViolation } from '../platform/storage-errors.ts';

export type User = UsersTable;

export function createUsersRepository(db: Kysely<Database>) {
  return {
    /** Inserts the user; false when the email is taken. */
    async insert(user: User): Promise<boolean> {
      try {
        await db.insertInto('users').values(user).execute();
        return true;
      } catch (error) {
        if (isUniqueViolation(error)) return false;
        throw error;
      }
    },

    findByEmail(email: string): Promise<User | undefined> {
      return db.selectFrom('users').selectAll().where('email', '=', email).executeTakeFirst();
    },

    findById(id: string): Promise<User | undefined> {
      return db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
    },

    async updatePassword(trx: Db, id: string, passwordHash: string, now: number): Promise<void> {
      await trx.updateTable('users').set({ password_hash: passwordHash, updated_at: now }).where('id', '=', id).execute();
    },
  };
}

export type UsersRepository = ReturnType<typeof createUsersRepository>;
