import { MFA_REASONS } from '../../domain/contracts.ts';
import { Type } from 'typebox';
import { p256PublicJwk } from '../../platform/http/jwk.ts';
import { IsoTime, PRINTABLE, ref } from '../../platform/http/envelope.ts';
import { AUTHENTICATION_EXAMPLE, AuthenticationResponse, PublicKeyOptions } from '../../platform/http/webauthn-json.ts';


const Email = Type.String({ minLength: 3, maxLength: 254, pattern: PRINTABLE, description: 'An email address; trimmed and lower-cased.' });
/** A new account's address: an email address (`format: email`, checked by the server exactly as written). */
// Signup trims and lower-cases the address (surrounding white space is not a mistake worth a 422), so the
// schema says exactly that: one @, a dot in the domain, no inner white space, optional white space around it.
const NewEmail = Type.String({
  minLength: 3,
  maxLength: 254,
  pattern: '^\\s*[^\\s@\\u0000-\\u001f\\u007f]+@[^\\s@\\u0000-\\u001f\\u007f]+\\.[^\\s@\\u0000-\\u001f\\u007f]+\\s*$',
  description: 'An email address: one @, a dot in the domain, no white space inside; trimmed and stored lower-cased.',
  examples: ['ann@example.com'],
});
const Password = Type.String({ minLength: 1, maxLength: 1024 });
const Token = Type.String({ minLength: 1, maxLength: 512 });

export const SignupBody = Type.Object(
  {
    email: NewEmail,
    password: Type.String({ maxLength: 1024, description: '8–128 characters with an upper-case letter, a lower-case letter and a digit.' }),
    display_name: Type.Optional(Type.String({ maxLength: 100, pattern: PRINTABLE })),
  },
  { additionalProperties: false, examples: [{ email: 'ann@example.com', password: 'Correct-Horse-7', display_name: 'Ann' }] },
);

/** docs/sessions.md, "Bound sessions": checked strictly by src/platform/crypto/device-keys.ts (422 INVALID_PUBLIC_KEY). */
const SessionKey = Type.Optional(
  p256PublicJwk(
    'Binds the session this request opens to a key of this browser: the public half of a non-extractable WebCrypto P-256 key (never the private key). ' +
      'Its refreshes then need x-session-proof, and its access tokens live BOUND_ACCESS_TOKEN_TTL_SECONDS (docs/sessions.md).',
  ),
);

export const LoginBody = Type.Object({ email: Email, password: Password, session_key: SessionKey }, { additionalProperties: false, examples: [{ email: 'ann@example.com', password: 'Correct-Horse-7' }] });

export const MfaVerifyBody = Type.Object(
  {
    temporary_token: Token,
    code: Type.Optional(Type.String({ pattern: '^[0-9]{6}$', description: 'A TOTP code.' })),
    backup_code: Type.Optional(Type.String({ minLength: 1, maxLength: 32 })),
    webauthn: Type.Optional(AuthenticationResponse),
    session_key: SessionKey,
  },
  {
    additionalProperties: false,
    description: 'Exactly one second factor: a TOTP code, a backup code or a WebAuthn answer.',
    oneOf: [{ required: ['code'] }, { required: ['backup_code'] }, { required: ['webauthn'] }],
    examples: [{ temporary_token: 'tdm_from-the-login-answer', code: '123456' }],
  },
);

/**
 * refresh_token may be left out (`{}` or `null`) when it comes in the td_refresh cookie (with
 * `x-refresh-cookie: 1`). Every body of this schema is accepted as a body; a request that carries no refresh
 * token at all (neither in the body nor in the cookie) is 401 INVALID_TOKEN, like a wrong one.
 */
export const RefreshBody = Type.Union([Type.Object({ refresh_token: Type.Optional(Token) }, { additionalProperties: false }), Type.Null()], {
  description: 'The refresh token, or `{}`/`null` with `x-refresh-cookie: 1` and the td_refresh cookie. No token at all: 401 INVALID_TOKEN.',
  examples: [{ refresh_token: 'tdr_from-the-last-answer' }],
});
export const RefreshHeaders = Type.Object({
  'x-session-proof': Type.Optional(
    Type.String({ maxLength: 512, description: 'Bound sessions: <challenge>.<base64url ES256 (P1363) signature over the challenge string> by the key given as session_key at sign-in.' }),
  ),
});
export const LogoutBody = Type.Union([Type.Object({ refresh_token: Type.Optional(Token) }, { additionalProperties: false }), Type.Null()], {
  description: 'Optionally the refresh token of this session (it is revoked with the session either way).',
  examples: [{ refresh_token: 'tdr_from-the-last-answer' }],
});

export const PasswordChangeBody = Type.Object(
  { current_password: Password, new_password: Type.String({ maxLength: 1024 }) },
  { additionalProperties: false, examples: [{ current_password: 'Correct-Horse-7', new_password: 'Battery-Staple-8' }] },
);

const Profile = {
  user_id: Type.String({ format: 'uuid' }),
  email: Type.String(),
  display_name: Type.Union([Type.String(), Type.Null()]),
};

const SessionFields = {
  access_token: Type.String(),
  refresh_token: Type.Optional(
    Type.String({ description: 'Left out when the client sent `x-refresh-cookie: 1`: the token is then set as the HttpOnly td_refresh cookie.' }),
  ),
  token_type: Type.Literal('bearer'),
  expires_in: Type.Integer({ description: 'Access-token lifetime in seconds.' }),
};

export const SignupData = Type.Object({ ...Profile, created_at: IsoTime });
export const TokenPair = Type.Object(SessionFields, { $id: 'TokenPair', description: 'A new access token and refresh token.' });
export const SessionData = ref(TokenPair);

/** docs/trust-model.md: a bypass rotates the device token (login, passkey sign-in on a trusted device). */
const RotatedDeviceToken = Type.Optional(
  Type.Union([Type.String(), Type.Null()], {
    description:
      'When a trusted device was used: its NEW device token (the presented one is retired; browsers get it as the cookie too), or null when the presented token was rotated out moments ago by a parallel login (keep the one you have). Absent otherwise.',
  }),
);

export const LoginSession = Type.Object({
  ...SessionFields,
  ...Profile,
  mfa_bypassed: Type.Boolean(),
  trusted_device_id: Type.Union([Type.String(), Type.Null()]),
  device_token: RotatedDeviceToken,
}, { $id: 'LoginSession', description: 'A completed login: tokens and the user (MFA was not needed or was bypassed on a trusted device).' });
export const LoginSessionData = ref(LoginSession);

export const DeviceChallengeData = Type.Object({
  challenge: Type.String({ description: 'Sign this exact string (UTF-8) with the device key (ES256) and send x-device-proof: <challenge>.<base64url P1363 signature> with the login.' }),
  expires_in: Type.Integer({ description: 'Seconds (60); the challenge is single-use.' }),
});

export const MfaChallenge = Type.Object({
  mfa_required: Type.Literal(true),
  temporary_token: Type.String(),
  methods: Type.Array(Type.String()),
  expires_in: Type.Integer(),
  mfa_reason: Type.Union(MFA_REASONS.map((r) => Type.Literal(r)), {
    description:
      'Why the second factor is asked: new_device (no valid device token: a browser or app this account has not trusted), trust_expired (the device was trusted, and its trust ran out), device_revoked (the device was un-trusted: removed, evicted, or after a security change), proof_missing (a key-bound device sent no proof of its key), proof_failed (its proof was wrong or reused), fingerprint_mismatch (the device token came from another browser or system), unusual_location (farther from the previous sign-in than anyone could travel in the time between: a trusted device does not skip the code), trust_check_failed (the trust check could not complete; the service fails closed). More values may be added: show a generic sentence for an unknown one.',
  }),
}, { $id: 'MfaChallenge', description: 'Login needs a second factor: send temporary_token to /auth/mfa/verify.' });
export const MfaRequiredData = ref(MfaChallenge);

export const PendingDevice = Type.Object({
  id: Type.String({ format: 'uuid' }),
  device_name: Type.String(),
  device_type: Type.String({ description: 'mobile, tablet, desktop or unknown, from the User-Agent (as on device cards).' }),
  device_fingerprint: Type.String(),
  activation_token: Type.String(),
  expires_at: IsoTime,
  is_active: Type.Literal(false),
  trust_ttl_days: Type.Integer({ description: 'How long the device stays trusted once activated.' }),
}, { $id: 'PendingDevice', description: 'This device, not yet trusted: activate it (/devices/activate) or skip (/devices/skip) with activation_token.' });
export const PendingDeviceData = ref(PendingDevice);

export const MfaVerifyData = Type.Object({
  ...SessionFields,
  ...Profile,
  trusted_device: Type.Union([PendingDeviceData, Type.Null()]),
});

export const PasskeySignInData = Type.Object({
  ...SessionFields,
  ...Profile,
  mfa_method: Type.Literal('webauthn'),
  trusted_device_id: Type.Union([Type.String(), Type.Null()], { description: 'The trusted device this sign-in came from, if any.' }),
  trusted_device: Type.Union([PendingDeviceData, Type.Null()], { description: 'A pending device to activate or skip; null on a trusted device.' }),
  device_token: RotatedDeviceToken,
});

export const User = Type.Object({ ...Profile, email_verified: Type.Boolean(), mfa_enabled: Type.Boolean(), created_at: IsoTime }, { $id: 'User', description: 'The signed-in user.' });
export const MeData = ref(User);

export const PasswordChangeData = Type.Object({ password_changed: Type.Literal(true), devices_revoked: Type.Integer(), sessions_ended: Type.Integer() });

export const LoginResponse = Type.Union([LoginSessionData, MfaRequiredData]);

export const PasswordPolicyData = Type.Object({
  min_length: Type.Integer(),
  max_length: Type.Integer({ description: 'Counted in Unicode code points.' }),
  require_uppercase: Type.Boolean({ description: 'A letter of Unicode category Lu.' }),
  require_lowercase: Type.Boolean({ description: 'A letter of Unicode category Ll.' }),
  require_digit: Type.Boolean({ description: 'A digit of Unicode category Nd.' }),
  description: Type.String(),
});

// Passkey sign-in and the WebAuthn second step of a login (docs/passkeys.md).
export const SecondFactorOptionsBody = Type.Object(
  { temporary_token: Type.String({ minLength: 1, maxLength: 512 }) },
  { additionalProperties: false, examples: [{ temporary_token: 'tdm_from-the-login-answer' }] },
);
export const PasskeyOptionsBody = Type.Union([Type.Object({}, { additionalProperties: false }), Type.Null()], { examples: [{}] });
export const PasskeyVerifyBody = Type.Object(
  { attempt_token: Type.String({ minLength: 1, maxLength: 512 }), response: AuthenticationResponse, session_key: SessionKey },
  { additionalProperties: false, examples: [{ attempt_token: 'tdp_from-the-options-answer', response: AUTHENTICATION_EXAMPLE }] },
);

export const WebauthnOptionsData = Type.Object({ options: PublicKeyOptions });
export const PasskeyOptionsData = Type.Object({ options: PublicKeyOptions, attempt_token: Type.String(), expires_in: Type.Integer() });

/** Step-up (docs/step-up.md): exactly one factor. */
export const StepUpBody = Type.Object(
  {
    code: Type.Optional(Type.String({ pattern: '^[0-9]{6}$', description: 'A TOTP code.' })),
    backup_code: Type.Optional(Type.String({ minLength: 1, maxLength: 32, description: 'An unused backup code (it is used up).' })),
    webauthn: Type.Optional(AuthenticationResponse),
    password: Type.Optional(Type.String({ minLength: 1, maxLength: 1024, description: 'Only for an account without a second factor.' })),
  },
  {
    additionalProperties: false,
    description: 'Exactly one factor: a TOTP code, a backup code or a WebAuthn answer; the password only on an account without a second factor.',
    oneOf: [{ required: ['code'] }, { required: ['backup_code'] }, { required: ['webauthn'] }, { required: ['password'] }],
    examples: [{ code: '123456' }],
  },
);

export const StepUpResult = Type.Object(
  {
    access_token: Type.String({ description: 'A new access token of the same session, with the fresh auth_time, amr and acr claims.' }),
    token_type: Type.Literal('bearer'),
    expires_in: Type.Integer(),
    auth_time: IsoTime,
    amr: Type.Array(Type.String(), { description: 'RFC 8176 methods: pwd, otp, hwk, swk, mfa (docs/step-up.md).' }),
    acr: Type.String(),
  },
  { $id: 'StepUpResult', description: 'The session stepped up: the refresh token is unchanged.' },
);
export const StepUpData = ref(StepUpResult);
