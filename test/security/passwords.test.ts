import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createPasswordHasher, OWASP_ARGON2ID } from '../../src/platform/crypto/passwords.ts';

test('argon2id with the OWASP parameters; verify tells right from wrong', async () => {
  const hasher = createPasswordHasher();
  const hashed = await hasher.hash('Correct-Horse-9');
  assert.match(hashed, new RegExp(`^\\$argon2id\\$v=19\\$m=${OWASP_ARGON2ID.memoryCost},t=${OWASP_ARGON2ID.timeCost},p=${OWASP_ARGON2ID.parallelism}\\$`));
  assert.equal(await hasher.verify(hashed, 'Correct-Horse-9'), true);
  assert.equal(await hasher.verify(hashed, 'Correct-Horse-8'), false);
  assert.equal(await hasher.verify('not a hash', 'x'), false);
  assert.equal(await hasher.verifyDummy('anything'), false);
});

test('hashes queued beyond the concurrency limit all finish, each with its own result', async () => {
  // An unbounded line (the bound has its own test, password-queue.test.ts): this one is about order and results.
  const hasher = createPasswordHasher({ memoryCost: 1024, timeCost: 1, parallelism: 1 }, 2, 100, Number.POSITIVE_INFINITY);
  const passwords = Array.from({ length: 12 }, (_, i) => `Password-${i}A`);
  const hashes = await Promise.all(passwords.map((p) => hasher.hash(p)));
  const checks = await Promise.all(hashes.map((h, i) => hasher.verify(h, passwords[i]!)));
  assert.deepEqual(checks, Array(12).fill(true));
  assert.equal(new Set(hashes).size, 12);
});
