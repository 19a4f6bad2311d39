/**
 * Backup codes: 10 per user, shown once, each usable once. A code is 10
 * characters from a 31-letter alphabet (about 49 bits), written `xxxxx-xxxxx`.
 * Stored as HMAC-SHA-256 under a key derived from DATA_ENCRYPTION_KEY, so a
 * copy of the database alone cannot be used to brute-force them offline.
 */
import { createHmac, hkdfSync, randomInt } from 'node:crypto';

export const BACKUP_CODE_COUNT = 10;
const ALPHABET = 'abcdefghjkmnpqrstuvwxyz23456789'; // no 0/o, 1/l/i look-alikes

export function generateBackupCodes(count = BACKUP_CODE_COUNT): string[] {
  return Array.from({ length: count }, () => {
    let code = '';
    for (let i = 0; i < 10; i++) code += ALPHABET[randomInt(ALPHABET.length)];
    return `${code.slice(0, 5)}-${code.slice(5)}`;
  });
}

export function normaliseBackupCode(input: string): string {
  return input.toLowerCase().replace(/[\s-]/g, '');
}

export function createBackupCodeHasher(dataEncryptionKey: Buffer): (code: string) => string {
  const key = Buffer.from(hkdfSync('sha256', dataEncryptionKey, Buffer.alloc(0), 'backup-codes/v1', 32));
  return (code) => createHmac('sha256', key).update(normaliseBackupCode(code)).digest('hex');
}
