import assert from 'node:assert/strict';
import { test } from 'node:test';
import { iso } from '../../src/platform/http/envelope.ts';

test('iso() formats exactly like Date#toISOString', () => {
  const samples = [0, 1, 999, 1000, 59_999, 86_399_999, 86_400_000, 951_782_400_000 /* 2000-02-29 */, 1_767_225_599_999, 253_402_300_799_999, 253_402_300_800_000, 1.5, -1];
  for (let i = 0; i < 20_000; i++) samples.push(Math.floor(Math.random() * 4_102_444_800_000));
  for (const ms of samples) assert.equal(iso(ms), new Date(ms).toISOString(), String(ms));
});
