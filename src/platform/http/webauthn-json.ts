/**
 * The WebAuthn JSON shapes the browser sends and receives: what
 * @simplewebauthn/browser's startRegistration / startAuthentication return
 * (the WebAuthn Level 3 toJSON() shape), base64url strings bounded in size,
 * and the options handed to them. Standard wire formats, no feature's own.
 */
import { Type } from 'typebox';
import { PRINTABLE } from './envelope.ts';

const B64URL = '^[A-Za-z0-9_-]*$';
const b64url = (maxLength: number) => Type.String({ pattern: B64URL, minLength: 1, maxLength });
const ExtensionResults = Type.Object({}, { additionalProperties: true, description: 'clientExtensionResults, as the browser returned them.' });
const Attachment = Type.Optional(Type.Union([Type.Literal('platform'), Type.Literal('cross-platform')]));

export const AuthenticationResponse = Type.Object(
  {
    id: b64url(1366),
    rawId: b64url(1366),
    type: Type.Literal('public-key'),
    response: Type.Object(
      {
        clientDataJSON: b64url(4096),
        authenticatorData: b64url(4096),
        signature: b64url(1024),
        userHandle: Type.Optional(Type.String({ pattern: B64URL, maxLength: 128 })),
      },
      { additionalProperties: false },
    ),
    clientExtensionResults: ExtensionResults,
    authenticatorAttachment: Attachment,
  },
  { additionalProperties: false, description: 'AuthenticationResponseJSON (navigator.credentials.get(), as JSON).' },
);

export const RegistrationResponse = Type.Object(
  {
    id: b64url(1366),
    rawId: b64url(1366),
    type: Type.Literal('public-key'),
    response: Type.Object(
      {
        clientDataJSON: b64url(4096),
        attestationObject: b64url(8192),
        authenticatorData: Type.Optional(b64url(4096)),
        transports: Type.Optional(Type.Array(Type.String({ maxLength: 32, pattern: PRINTABLE }), { maxItems: 8 })),
        publicKeyAlgorithm: Type.Optional(Type.Integer()),
        publicKey: Type.Optional(b64url(2048)),
      },
      { additionalProperties: false },
    ),
    clientExtensionResults: ExtensionResults,
    authenticatorAttachment: Attachment,
  },
  { additionalProperties: false, description: 'RegistrationResponseJSON (navigator.credentials.create(), as JSON).' },
);

/** PublicKeyCredentialCreationOptionsJSON / RequestOptionsJSON: passed to the browser as is. */
export const PublicKeyOptions = Type.Object({ challenge: Type.String() }, { additionalProperties: true, description: 'Hand to startRegistration / startAuthentication of @simplewebauthn/browser.' });

