/**
 * ES256 device keys for the API tests, made the way a browser makes them:
 * node:crypto's WebCrypto, a non-extractable private key, the public half
 * exported as a JWK, signatures in IEEE P1363 (r||s).
 */
import { webcrypto } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { call } from './app.ts';

const { subtle } = webcrypto;

export interface TestDeviceKey {
  publicJwk: Record<string, unknown>;
  /** base64url ES256 signature of the string. */
  sign(text: string): Promise<string>;
}

export async function makeDeviceKey(): Promise<TestDeviceKey> {
  const pair = await subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify']);
  const publicJwk = (await subtle.exportKey('jwk', pair.publicKey)) as Record<string, unknown>;
  return {
    publicJwk,
    async sign(text) {
      const signature = await subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, pair.privateKey, Buffer.from(text, 'utf8'));
      return Buffer.from(signature).toString('base64url');
    },
  };
}

export async function fetchChallenge(app: FastifyInstance, ip = '127.0.0.1'): Promise<string> {
  const res = await call(app, 'POST', '/api/v1/auth/device-challenge', undefined, { device: { userAgent: 'test', ip } });
  if (res.res.statusCode !== 200) throw new Error(`challenge failed: ${res.res.body}`);
  return res.body.data.challenge;
}

/** A fresh challenge signed by the key: the value of x-device-proof. */
export async function proofHeader(app: FastifyInstance, key: TestDeviceKey): Promise<string> {
  const challenge = await fetchChallenge(app);
  return `${challenge}.${await key.sign(challenge)}`;
}
