import type { Kysely } from 'kysely';
import type { Database, RefreshTokensTable } from '../db/schema.ts';

export type RotationResult =
  | { kind: 'rotated'; userId: string; familyId: string }
  | { kind: 'reused'; userId: string; familyId: string }
  | { kind: 'invalid' };

export function createRefreshTokensRepository(db: Kysely<Database>) {
  return {
    async insert(row: RefreshTokensTable): Promise<void> {
      await db.insertInto('refresh_tokens').values(row).execute();
    },

    /**
     * Marks the token rotated with one conditional UPDATE, so of two
     * concurrent refreshes exactly one wins. A token that exists but was
     * already rotated is reuse: the caller revokes the whole family.
     */
    async rotate(tokenHash: string, now: number): Promise<RotationResult> {
      const won = await db
        .updateTable('refresh_tokens')
        .set({ rotated_at: now })
        .where('token_hash', '=', tokenHash)
        .where('rotated_at', 'is', null)
        .where('revoked_at', 'is', null)
        .where('expires_at', '>', now)
        .returning(['user_id', 'family_id'])
        .executeTakeFirst();
      if (won) return { kind: 'rotated', userId: won.user_id, familyId: won.family_id };

      const existing = await db
        .selectFrom('refresh_tokens')
        .select(['user_id', 'family_id', 'rotated_at'])
        .where('token_hash', '=', tokenHash)
        .executeTakeFirst();
      if (existing && existing.rotated_at !== null) {
        return { kind: 'reused', userId: existing.user_id, familyId: existing.family_id };
      }
      return { kind: 'invalid' };
    },

    async revokeFamily(familyId: string, now: number): Promise<void> {
      await db
        .updateTable('refresh_tokens')
        .set({ revoked_at: now })
        .where('family_id', '=', familyId)
        .where('revoked_at', 'is', null)
        .execute();
    },

    /** The family of a refresh token, only if it belongs to the user. */
    async familyOf(tokenHash: string, userId: string): Promise<string | undefined> {
      const row = await db
        .selectFrom('refresh_tokens')
        .select('family_id')
        .where('token_hash', '=', tokenHash)
        .where('user_id', '=', userId)
        .executeTakeFirst();
      return row?.family_id;
    },

    async revokeAllForUser(userId: string, now: number, exceptFamilyId?: string): Promise<void> {
      let query = db
        .updateTable('refresh_tokens')
        .set({ revoked_at: now })
        .where('user_id', '=', userId)
        .where('revoked_at', 'is', null);
      if (exceptFamilyId !== undefined) query = query.where('family_id', '!=', exceptFamilyId);
      await query.execute();
    },

    /** At most `limit` rows, chosen through the expiry index (housekeeping loops). */
    async deleteExpired(now: number, limit: number): Promise<number> {
      const result = await db
        .deleteFrom('refresh_tokens')
        .where('id', 'in', (eb) => eb.selectFrom('refresh_tokens').select('id').where('expires_at', '<=', now).limit(limit))
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
}

export type RefreshTokensRepository = ReturnType<typeof createRefreshTokensRepository>;
