/**
 * AES-256-GCM for secrets at rest (TOTP secrets). Key: DATA_ENCRYPTION_KEY,
 * 32 bytes, from configuration only. Each value gets a fresh 96-bit nonce;
 * the owner's id is bound as associated data, so a ciphertext copied to
 * another user's row does not decrypt. Format: `v1.<nonce>.<tag>.<ciphertext>` (base64url).
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

const NONCE_BYTES = 12;
const TAG_BYTES = 16;

export interface Encryptor {
  encrypt(plaintext: string, associatedData: string): string;
  decrypt(sealed: string, associatedData: string): string;
}

export function createEncryptor(key: Buffer): Encryptor {
  if (key.length !== 32) throw new Error('DATA_ENCRYPTION_KEY must be 32 bytes');
  return {
    encrypt(plaintext, associatedData) {
      const nonce = randomBytes(NONCE_BYTES);
      const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
      cipher.setAAD(Buffer.from(associatedData, 'utf8'));
      const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
      const parts = [nonce, cipher.getAuthTag(), ciphertext].map((b) => b.toString('base64url'));
      return `v1.${parts.join('.')}`;
    },
    decrypt(sealed, associatedData) {
      const [version, nonceText, tagText, ciphertext] = sealed.split('.');
      if (version !== 'v1' || !nonceText || !tagText || ciphertext === undefined) throw new Error('Unknown ciphertext format');
      const nonce = Buffer.from(nonceText, 'base64url');
      const tag = Buffer.from(tagText, 'base64url');
      // A shorter tag would be accepted by GCM as a (weaker) truncated one: pin both lengths.
      if (nonce.length !== NONCE_BYTES || tag.length !== TAG_BYTES) throw new Error('Unknown ciphertext format');
      const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
      decipher.setAAD(Buffer.from(associatedData, 'utf8'));
      decipher.setAuthTag(tag);
      return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]).toString('utf8');
    },
  };
}
