/**
 * Builds the service-level view of the device behind a request: its
 * fingerprint (from the socket or trusted-proxy IP, the User-Agent and the
 * x-device-fingerprint header) and its device token (cookie for browsers,
 * x-device-token header for native clients) and its proof of possession
 * (x-device-proof, docs/trust-model.md). Tokens are read from headers
 * and cookies only, never from the query string.
 */
import type { FastifyRequest } from 'fastify';
import { AppError } from '../errors.ts';
import type { DeviceFingerprint, FingerprintInput } from '../crypto/fingerprint.ts';
import type { Actor, RequestDevice } from '../context.ts';

import { DEVICE_COOKIE } from './cookies.ts';

export { DEVICE_COOKIE };
export const DEVICE_TOKEN_HEADER = 'x-device-token';
export const FINGERPRINT_HEADER = 'x-device-fingerprint';
export const DEVICE_PROOF_HEADER = 'x-device-proof';

function singleHeader(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  if (Array.isArray(value)) {
    if (name === FINGERPRINT_HEADER) {
      throw new AppError('INVALID_FINGERPRINT', 'Send one x-device-fingerprint header.', {
        details: [{ field: FINGERPRINT_HEADER, message: 'must appear once' }],
      });
    }
    return value[0];
  }
  return value;
}

export function createRequestDeviceReader(fingerprinter: { compute(input: FingerprintInput): DeviceFingerprint }) {
  return function requestDevice(request: FastifyRequest): RequestDevice {
    const userAgent = singleHeader(request, 'user-agent') ?? '';
    const fingerprint = fingerprinter.compute({
      ip: request.ip,
      userAgent,
      clientSignals: singleHeader(request, FINGERPRINT_HEADER),
    });
    return { fingerprint, userAgent, deviceToken: requestDeviceToken(request), proof: singleHeader(request, DEVICE_PROOF_HEADER) };
  };
}

/** Only the device token, for routes that need no fingerprint (list, revoke, rename). */
export function requestDeviceToken(request: FastifyRequest): string | undefined {
  return request.cookies?.[DEVICE_COOKIE] || singleHeader(request, DEVICE_TOKEN_HEADER) || undefined;
}

/** The signed-in caller as the actor of an event: its session, IP and User-Agent. */
export function requestActor(request: FastifyRequest): Actor {
  return { type: 'user', sessionId: request.auth?.sessionId ?? null, ipAddress: request.ip, userAgent: singleHeader(request, 'user-agent') ?? null };
}
