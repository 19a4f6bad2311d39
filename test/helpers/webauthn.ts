/**
 * A software WebAuthn authenticator for the API tests: it makes real
 * attestation ('none' format) and assertion objects with node:crypto ES256
 * keys and CBOR from @levischuck/tiny-cbor (the CBOR library
 * @simplewebauthn/server itself uses), so the service's verifier runs
 * unmocked. Every field a test wants to break (origin, RP ID, challenge,
 * counter, user verification, user handle) can be overridden per call.
 */
import { createHash, generateKeyPairSync, type KeyObject, randomBytes, sign } from 'node:crypto';
import { type CBORType, encodeCBOR } from '@levischuck/tiny-cbor';

const b64url = (bytes: Uint8Array | string) => Buffer.from(bytes).toString('base64url');
const sha256 = (data: Uint8Array | string) => createHash('sha256').update(data).digest();

const FLAG_UP = 0x01;
const FLAG_UV = 0x04;
const FLAG_AT = 0x40;

export interface SoftCredential {
  id: string;
  privateKey: KeyObject;
  counter: number;
  /** Set for discoverable credentials (passkeys): the user handle from the registration options. */
  userHandle: string | undefined;
}

export interface RegisterOverrides {
  origin?: string;
  rpId?: string;
  challenge?: string;
  uv?: boolean;
  /** Discoverable credential (passkey); default true. */
  rk?: boolean;
  type?: string;
  /** Reuse a credential id (to register one id twice). */
  credentialId?: string;
}

export interface AssertOverrides {
  origin?: string;
  rpId?: string;
  challenge?: string;
  uv?: boolean;
  /** The counter to report; default: the credential's last one + 1. */
  counter?: number;
  /** Which credential answers; default: the first the options allow (any passkey when none are listed). */
  credential?: SoftCredential;
  /** Override the user handle sent (null: send none). */
  userHandle?: string | null;
  type?: string;
}

export class SoftAuthenticator {
  readonly credentials: SoftCredential[] = [];

  constructor(
    readonly origin = 'http://localhost:3000',
    readonly rpId = 'localhost',
  ) {}

  /** navigator.credentials.create() for `options` (PublicKeyCredentialCreationOptionsJSON), as RegistrationResponseJSON. */
  register(options: any, o: RegisterOverrides = {}): { response: any; credential: SoftCredential } {
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = publicKey.export({ format: 'jwk' });
    const cose = encodeCBOR(
      new Map<number, CBORType>([
        [1, 2], // kty: EC2
        [3, -7], // alg: ES256
        [-1, 1], // crv: P-256
        [-2, new Uint8Array(Buffer.from(jwk.x!, 'base64url'))],
        [-3, new Uint8Array(Buffer.from(jwk.y!, 'base64url'))],
      ]),
    );
    const credentialId = o.credentialId ? Buffer.from(o.credentialId, 'base64url') : randomBytes(32);
    const rk = o.rk ?? true;
    const credential: SoftCredential = { id: b64url(credentialId), privateKey, counter: 0, userHandle: rk ? options.user.id : undefined };
    const idLength = Buffer.alloc(2);
    idLength.writeUInt16BE(credentialId.length);
    const authData = Buffer.concat([
      sha256(o.rpId ?? this.rpId),
      Buffer.from([FLAG_UP | ((o.uv ?? true) ? FLAG_UV : 0) | FLAG_AT]),
      Buffer.alloc(4), // counter 0
      Buffer.alloc(16), // AAGUID: none
      idLength,
      credentialId,
      Buffer.from(cose),
    ]);
    const attestationObject = encodeCBOR(
      new Map<string, CBORType>([
        ['fmt', 'none'],
        ['attStmt', new Map()],
        ['authData', new Uint8Array(authData)],
      ]),
    );
    const clientDataJSON = JSON.stringify({ type: o.type ?? 'webauthn.create', challenge: o.challenge ?? options.challenge, origin: o.origin ?? this.origin, crossOrigin: false });
    this.credentials.push(credential);
    return {
      credential,
      response: {
        id: credential.id,
        rawId: credential.id,
        type: 'public-key',
        response: { clientDataJSON: b64url(clientDataJSON), attestationObject: b64url(attestationObject), transports: ['usb'] },
        clientExtensionResults: { credProps: { rk } },
        authenticatorAttachment: 'cross-platform',
      },
    };
  }

  /** navigator.credentials.get() for `options` (PublicKeyCredentialRequestOptionsJSON), as AuthenticationResponseJSON. */
  assert(options: any, o: AssertOverrides = {}): any {
    const allowed: string[] = (options.allowCredentials ?? []).map((c: { id: string }) => c.id);
    const credential =
      o.credential ??
      (allowed.length > 0 ? this.credentials.find((c) => allowed.includes(c.id)) : this.credentials.find((c) => c.userHandle !== undefined));
    if (!credential) throw new Error('the soft authenticator holds no credential these options allow');
    const counter = o.counter ?? credential.counter + 1;
    credential.counter = Math.max(credential.counter, counter);
    const counterBytes = Buffer.alloc(4);
    counterBytes.writeUInt32BE(counter);
    const authData = Buffer.concat([sha256(o.rpId ?? this.rpId), Buffer.from([FLAG_UP | ((o.uv ?? true) ? FLAG_UV : 0)]), counterBytes]);
    const clientDataJSON = JSON.stringify({ type: o.type ?? 'webauthn.get', challenge: o.challenge ?? options.challenge, origin: o.origin ?? this.origin, crossOrigin: false });
    // ES256: ECDSA P-256 over authenticatorData ‖ SHA-256(clientDataJSON), DER-encoded (node's default).
    const signature = sign('sha256', Buffer.concat([authData, sha256(clientDataJSON)]), credential.privateKey);
    const userHandle = o.userHandle === undefined ? credential.userHandle : o.userHandle ?? undefined;
    return {
      id: credential.id,
      rawId: credential.id,
      type: 'public-key',
      response: {
        clientDataJSON: b64url(clientDataJSON),
        authenticatorData: b64url(authData),
        signature: b64url(signature),
        ...(userHandle !== undefined ? { userHandle } : {}),
      },
      clientExtensionResults: {},
      authenticatorAttachment: 'cross-platform',
    };
  }
}
