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
/**
 * The credential JSON is written by the browser, not by the caller: members a
 * newer WebAuthn level adds are accepted and ignored (the one exception to
 * "unknown fields are refused", docs/integration.md), so a browser update
 * never breaks sign-in.
 */
const BROWSER_MEMBERS = 'Written by the browser: members this version does not know are accepted and ignored.';
const ExtensionResults = Type.Object({}, { additionalProperties: true, description: 'clientExtensionResults, as the browser returned them.' });
const Attachment = Type.Optional(Type.Union([Type.Literal('platform'), Type.Literal('cross-platform')]));

/** Example answers of the browser (the document's request examples); their signatures verify nothing. */
export const AUTHENTICATION_EXAMPLE = {
  id: 'q83vEjRWeJA',
  rawId: 'q83vEjRWeJA',
  type: 'public-key',
  response: { clientDataJSON: 'eyJ0eXBlIjoid2ViYXV0aG4uZ2V0In0', authenticatorData: 'SZYN5YgOjGh0NBcPZHZgW4_krrmihjLHmVzzuoMdl2MFAAAAAQ', signature: 'MEUCIQ' },
  clientExtensionResults: {},
};
export const REGISTRATION_EXAMPLE = {
  id: 'q83vEjRWeJA',
  rawId: 'q83vEjRWeJA',
  type: 'public-key',
  response: { clientDataJSON: 'eyJ0eXBlIjoid2ViYXV0aG4uY3JlYXRlIn0', attestationObject: 'o2NmbXRkbm9uZQ', transports: ['internal'] },
  clientExtensionResults: {},
};

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
      { additionalProperties: true },
    ),
    clientExtensionResults: ExtensionResults,
    authenticatorAttachment: Attachment,
  },
  { additionalProperties: true, description: `AuthenticationResponseJSON (navigator.credentials.get(), as JSON). ${BROWSER_MEMBERS}` },
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
      { additionalProperties: true },
    ),
    clientExtensionResults: ExtensionResults,
    authenticatorAttachment: Attachment,
  },
  { additionalProperties: true, description: `RegistrationResponseJSON (navigator.credentials.create(), as JSON). ${BROWSER_MEMBERS}` },
);

/** PublicKeyCredentialCreationOptionsJSON / RequestOptionsJSON: passed to the browser as is. */
export const PublicKeyOptions = Type.Object({ challenge: Type.String() }, { additionalProperties: true, description: 'Hand to startRegistration / startAuthentication of @simplewebauthn/browser.' });

