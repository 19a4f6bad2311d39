import assert from 'node:assert/strict';
import { test } from 'node:test';
import { generateToken, hashToken, looksLike, newTimeOrderedId, TOKEN_PREFIX, type TokenKind } from '../../src/platform/crypto/tokens.ts';

const KINDS = Object.keys(TOKEN_PREFIX) as TokenKind[];

test('10,000 minted tokens of each kind are distinct and carry 256 random bits', () => {
  for (const kind of KINDS) {
    const seen = new Set<string>();
    let ones = 0;
    for (let i = 0; i < 10_000; i++) {
      const token = generateToken(kind);
      assert.ok(token.startsWith(TOKEN_PREFIX[kind]));
      const raw = Buffer.from(token.slice(TOKEN_PREFIX[kind].length), 'base64url');
      assert.equal(raw.length, 32);
      for (const byte of raw) ones += popcount(byte);
      seen.add(token);
    }
    assert.equal(seen.size, 10_000, kind);
    // 2,560,000 random bits: the share of ones sits within a hair of one half.
    const share = ones / (10_000 * 256);
    assert.ok(Math.abs(share - 0.5) < 0.002, `${kind}: ${share}`);
  }
});

test('a token of one kind never looks like another kind', () => {
  for (const kind of KINDS) {
    const token = generateToken(kind);
    for (const other of KINDS) assert.equal(looksLike(other, token), other === kind);
  }
  assert.equal(looksLike('device', 'tdd_short'), false);
});

test('tokens are stored as SHA-256 hex', () => {
  assert.equal(hashToken('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
});

test('event ids are UUIDv7 and sort in creation order, also within one millisecond', () => {
  const ids = Array.from({ length: 100 }, (_, i) => newTimeOrderedId(1_800_000_000_000 + Math.floor(i / 10)));
  assert.deepEqual([...ids].sort(), ids);
  for (const id of ids) assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
});

test('10,000 event ids made in the same millisecond are distinct and strictly increasing', () => {
  const ids = Array.from({ length: 10_000 }, () => newTimeOrderedId(1_800_000_000_123));
  for (let i = 1; i < ids.length; i += 1) assert.ok(ids[i - 1]! < ids[i]!, `id ${i} is not after id ${i - 1}`);
  assert.equal(new Set(ids).size, ids.length);
  for (const id of ids) assert.equal(id.slice(0, 13), '01a3185c-507b', 'every id carries the millisecond it was given');
});

function popcount(byte: number): number {
  let count = 0;
  for (let b = byte; b; b >>= 1) count += b & 1;
  return count;
}
