/**
 * Security Event Tokens (RFC 8417) of the Shared Signals transmitter: signed
 * with the access-token signing key (the key `GET /.well-known/jwks.json`
 * publishes first), header `{ alg, kid, typ: "secevent+jwt" }`. The claims
 * come from the outbox row as they were written (src/store/ssf-events.ts):
 * `iat` is when the event happened, and no `exp` is added (SSF forbids it).
 * Signed when sent, never when queued: a SET queued before a key rotation is
 * signed with the key of the day it leaves, which receivers find in the set.
 *
 * The `typ` keeps a SET from passing as an access token (`at+jwt`) and an
 * access token from passing as a SET: receivers check it.
 */
import { createSigner } from 'fast-jwt';
import type { SigningKey } from './signing-keys.ts';

export const SET_TYP = 'secevent+jwt';

export interface SetSigner {
  /** The compact JWS of these claims (a JSON object text). */
  sign(claimsJson: string): string;
}

export function createSetSigner(key: SigningKey): SetSigner {
  const sign = createSigner({
    key: key.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    algorithm: key.alg,
    kid: key.kid,
    header: { alg: key.alg, typ: SET_TYP },
    noTimestamp: true,
  });
  return { sign: (claimsJson) => sign(JSON.parse(claimsJson) as Record<string, unknown>) };
}
