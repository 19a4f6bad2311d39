/**
 * Request and response schemas of SPEC §5.8. The credential JSON is what
 * @simplewebauthn/browser's startRegistration / startAuthentication return
 * (the WebAuthn Level 3 toJSON() shape): base64url strings, bounded in size.
 */
import { Type } from 'typebox';
import { IsoTime, PRINTABLE } from '../../platform/http/envelope.ts';

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

const CredentialName = Type.String({ minLength: 1, maxLength: 100, pattern: PRINTABLE });

export const RegisterOptionsBody = Type.Union([Type.Object({}, { additionalProperties: false }), Type.Null()]);
export const RegisterVerifyBody = Type.Object({ response: RegistrationResponse, name: Type.Optional(CredentialName) }, { additionalProperties: false });
export const RenameBody = Type.Object({ name: CredentialName }, { additionalProperties: false });
// Any string: an id that is not a credential's is 404, like an unknown one.
export const CredentialIdParams = Type.Object({ credential_id: Type.String({ maxLength: 100 }) });

export const SecondFactorOptionsBody = Type.Object({ temporary_token: Type.String({ minLength: 1, maxLength: 512 }) }, { additionalProperties: false });
export const PasskeyOptionsBody = Type.Union([Type.Object({}, { additionalProperties: false }), Type.Null()]);
export const PasskeyVerifyBody = Type.Object(
  { attempt_token: Type.String({ minLength: 1, maxLength: 512 }), response: AuthenticationResponse },
  { additionalProperties: false },
);

/** PublicKeyCredentialCreationOptionsJSON / RequestOptionsJSON: passed to the browser as is. */
const PublicKeyOptions = Type.Object({ challenge: Type.String() }, { additionalProperties: true, description: 'Hand to startRegistration / startAuthentication of @simplewebauthn/browser.' });

export const Credential = Type.Object({
  id: Type.String({ format: 'uuid' }),
  name: Type.String(),
  device_type: Type.Union([Type.Literal('single_device'), Type.Literal('multi_device')], { description: 'multi_device: a synced passkey.' }),
  backed_up: Type.Boolean(),
  discoverable: Type.Union([Type.Boolean(), Type.Null()], { description: 'Can sign in without a password (null: the browser did not say).' }),
  transports: Type.Array(Type.String()),
  created_at: IsoTime,
  last_used_at: Type.Union([IsoTime, Type.Null()]),
});

export const OptionsData = Type.Object({ options: PublicKeyOptions });
export const CredentialData = Type.Object({ credential: Credential });
export const CredentialListData = Type.Object({ credentials: Type.Array(Credential), total_count: Type.Integer() });
export const RemovedData = Type.Object({
  removed: Type.Literal(true),
  devices_revoked: Type.Integer({ description: 'Trusted devices whose trust this credential granted (all of them when MFA turned off).' }),
  sessions_ended: Type.Integer({ description: 'Other sessions signed out because MFA turned off (SPEC §4.1); 0 otherwise.' }),
  mfa_enabled: Type.Boolean(),
});
export const PasskeyOptionsData = Type.Object({ options: PublicKeyOptions, attempt_token: Type.String(), expires_in: Type.Integer() });
