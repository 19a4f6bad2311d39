/**
 * The bearer check: the signature and claims of the access token, then its
 * session: live and the token subject's (one primary-key read, see
 * src/features/sessions/sessions.service.ts), so the access tokens of an ended session
 * are refused from the next request on. Runs as the route's onRequest hook,
 * so an unauthenticated request is answered before its body is even read and
 * has no side effect. A storage error leaves as 503, never as a pass.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { UnauthorizedError } from '../errors.ts';
import type { AccessTokens } from '../crypto/access-tokens.ts';
import type { Amr } from '../authn-methods.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The access token's subject, and how the person last authenticated in its session (the session row's, docs/step-up.md). */
    auth: { userId: string; sessionId: string; authTime: number; amr: Amr[] };
  }
}

/**
 * `live(sessionId, userId)`: the sessions feature's check that the session has not ended and is the subject's,
 * with its authentication (docs/step-up.md); `{ ended }` says why it is over (`details` of the 401: docs/sessions.md,
 * "Signed-out reasons"); null when it is not the subject's or gone.
 */
export function createAuthenticate(
  accessTokens: AccessTokens,
  sessions: { live(sessionId: string, userId: string): Promise<{ authTime: number; amr: Amr[] } | { ended: Record<string, unknown> } | null> },
) {
  return async function authenticate(request: FastifyRequest, _reply: FastifyReply): Promise<void> {
    const header = request.headers.authorization;
    if (typeof header !== 'string' || !/^Bearer [^\s]+$/i.test(header)) throw new UnauthorizedError();
    const subject = accessTokens.verify(header.slice(7));
    if (subject === null) throw new UnauthorizedError('The access token is not valid or has expired.');
    const session = await sessions.live(subject.sessionId, subject.userId);
    if (session === null) throw new UnauthorizedError('This session has ended. Sign in again.');
    if ('ended' in session) throw new UnauthorizedError('This session has ended. Sign in again.', session.ended);
    request.auth = { ...subject, ...session };
  };
}

/** Every route that calls authenticate is documented as needing it. */
export const bearerSecurity = [{ bearerAuth: [] as string[] }];
