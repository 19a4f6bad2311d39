/**
 * The bearer check: one signature verification, no storage access. Runs as
 * the route's onRequest hook, so an unauthenticated request is answered
 * before its body is even read and has no side effect.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { UnauthorizedError } from '../errors.ts';
import type { AccessTokens } from '../security/access-tokens.ts';

declare module 'fastify' {
  interface FastifyRequest {
    auth: { userId: string; sessionId: string };
  }
}

export function createAuthenticate(accessTokens: AccessTokens) {
  return async function authenticate(request: FastifyRequest, _reply: FastifyReply): Promise<void> {
    const header = request.headers.authorization;
    if (typeof header !== 'string' || !/^Bearer [^\s]+$/i.test(header)) throw new UnauthorizedError();
    const subject = accessTokens.verify(header.slice(7));
    if (subject === null) throw new UnauthorizedError('The access token is not valid or has expired.');
    request.auth = subject;
  };
}

/** Every route that calls authenticate is documented as needing it. */
export const bearerSecurity = [{ bearerAuth: [] as string[] }];
