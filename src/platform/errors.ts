/**
 * One small error hierarchy with stable codes (README "API overview"), in the style of
 * panva/jose: every code the API can answer with is in ERRORS below, with its
 * HTTP status and the default message. Nothing else in the code base names a
 * status for an error: a service throws `new AppError('DEVICE_NOT_FOUND')`
 * (optionally with a more precise message or details) and the root error
 * handler (src/platform/http/error-handler.ts) is the only place that turns errors into
 * HTTP responses. `expose: false` means the message is for logs only and the
 * client sees the catalogue's text. Expected "no" answers inside the service
 * layer (an untrusted device, a wrong code that is still within its attempts)
 * are values, not exceptions.
 *
 * The catalogue is also the documentation: README's error table and the
 * OpenAPI ErrorEnvelope list these codes, and a test checks that they agree.
 */

export const ERRORS = {
  // Generic (README "API overview")
  MALFORMED_REQUEST: { status: 400, message: 'The request body is not valid JSON.' },
  BAD_REQUEST: { status: 400, message: 'The request could not be processed.' },
  UNAUTHORIZED: { status: 401, message: 'A valid access token is required.' },
  FORBIDDEN: { status: 403, message: 'This is not allowed.' },
  NOT_FOUND: { status: 404, message: 'Not found.' },
  METHOD_NOT_ALLOWED: { status: 405, message: 'This method is not allowed on this path.' },
  NOT_ACCEPTABLE: { status: 406, message: 'The requested representation is not available.' },
  REQUEST_TIMEOUT: { status: 408, message: 'The request took too long to arrive.' },
  LENGTH_REQUIRED: { status: 411, message: 'A Content-Length is required.' },
  EXPECTATION_FAILED: { status: 417, message: 'Only "Expect: 100-continue" is supported.' },
  PAYLOAD_TOO_LARGE: { status: 413, message: 'The request body is too large (limit 16 KiB).' },
  URI_TOO_LONG: { status: 414, message: 'The request URL is too long.' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'Send the request body as application/json.' },
  VALIDATION_ERROR: { status: 422, message: 'The request is not valid.' },
  RATE_LIMITED: { status: 429, message: 'Too many requests. Try again later.' },
  HEADERS_TOO_LARGE: { status: 431, message: 'The request headers are too large.' },
  INTERNAL_ERROR: { status: 500, message: 'Something went wrong on our side.' },
  SERVICE_UNAVAILABLE: { status: 503, message: 'The service is temporarily unavailable. Try again shortly.' },
  SERVER_BUSY: { status: 503, message: 'Too many sign-ins are being checked right now. Try again in a moment.' },

  // Authentication (README "API overview")
  INVALID_PASSWORD: { status: 422, message: 'The password is too weak: use 8 to 128 characters with an upper-case letter, a lower-case letter and a digit.' },
  EMAIL_TAKEN: { status: 409, message: 'An account with this email already exists.' },
  INVALID_CREDENTIALS: { status: 401, message: 'The email or password is not correct.' },
  INVALID_TOKEN: { status: 401, message: 'The token is not valid or has expired.' },
  INVALID_MFA_CODE: { status: 400, message: 'That code is not correct.' },
  MFA_CODE_ALREADY_USED: { status: 400, message: 'This code was just used. Wait for the next one in your authenticator app.' },
  STEP_UP_METHOD_NOT_AVAILABLE: { status: 400, message: 'This account cannot confirm it is you this way: use its second factor, or the password on an account without one.' },
  TOO_MANY_ATTEMPTS: { status: 429, message: 'Too many attempts. Try again later.' },
  INVALID_CURRENT_PASSWORD: { status: 400, message: 'The current password is not correct.' },

  // MFA (README "API overview")
  TOTP_ALREADY_ENABLED: { status: 409, message: 'Two-factor authentication is already on.' },
  NO_PENDING_SETUP: { status: 400, message: 'Start the setup first.' },
  INVALID_CODE: { status: 400, message: 'That code is not correct.' },
  MFA_NOT_ENABLED: { status: 400, message: 'Two-factor authentication is not turned on.' },

  // Trusted devices (docs/fingerprint.md, docs/trust-model.md)
  INVALID_FINGERPRINT: { status: 422, message: 'The x-device-fingerprint header is not valid.' },
  ACTIVATION_TOKEN_NOT_FOUND: { status: 404, message: 'This activation token does not exist.' },
  ACTIVATION_TOKEN_EXPIRED: { status: 410, message: 'This activation token has expired. Verify your second factor again.' },
  ACTIVATION_TOKEN_USED: { status: 409, message: 'This activation token has already been used.' },
  FINGERPRINT_MISMATCH: { status: 403, message: 'This device does not match the one that passed the second factor.' },
  DEVICE_NOT_FOUND: { status: 404, message: 'No such trusted device.' },

  // Account email (docs/email.md): verification, reset and "This wasn't me" links
  LINK_INVALID: { status: 400, message: 'This link is not valid. Use the latest link we sent you.' },
  LINK_USED: { status: 409, message: 'This link has already been used.' },
  LINK_EXPIRED: { status: 410, message: 'This link has expired. Ask for a new one.' },
  // Device-bound keys (docs/trust-model.md)
  INVALID_PUBLIC_KEY: { status: 422, message: 'public_key must be a public EC P-256 JWK.' },
  // Passkeys and security keys (docs/passkeys.md)
  WEBAUTHN_VERIFICATION_FAILED: { status: 400, message: 'The passkey or security key response could not be verified.' },
  WEBAUTHN_NOT_REGISTERED: { status: 400, message: 'No passkey or security key is registered for this account.' },
  WEBAUTHN_CREDENTIAL_NOT_FOUND: { status: 404, message: 'No such passkey or security key.' },
  WEBAUTHN_CREDENTIAL_EXISTS: { status: 409, message: 'This passkey or security key is already registered.' },
  WEBAUTHN_CREDENTIAL_LIMIT: { status: 409, message: 'Too many passkeys and security keys: remove one first.' },

  // Step-up (docs/step-up.md)
  STEP_UP_REQUIRED: { status: 401, message: 'Confirm it is you: this action needs a recent second factor (or your password, on an account without one).' },

  // Sessions (docs/sessions.md)
  SESSION_NOT_FOUND: { status: 404, message: 'No such session.' },
  SESSION_CHALLENGE_REQUIRED: { status: 403, message: 'Sign the challenge of the Secure-Session-Challenge header and send it as Secure-Session-Response.' },
  INVALID_SESSION_RESPONSE: { status: 400, message: 'Secure-Session-Response is not a DBSC proof (an ES256 or RS256 dbsc+jwt over a challenge of this service).' },
  SESSION_PROOF_REQUIRED: { status: 401, message: 'This session is bound to a key of its browser: sign details.challenge with it and send x-session-proof.' },

  // Admin API (docs/admin-and-webhooks.md)
  USER_NOT_FOUND: { status: 404, message: 'No such user.' },

  // Shared Signals (docs/integration.md)
  SSF_STREAM_LIMIT: { status: 409, message: 'The deployment has as many event streams as it allows; delete one first.' },
  SSF_SUBJECT_LIMIT: { status: 409, message: 'This event stream has removed as many subjects as it allows; add some back first.' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERRORS;

export interface FieldProblem {
  field: string;
  message: string;
}

export interface AppErrorOptions {
  expose?: boolean;
  details?: unknown;
  headers?: Record<string, string>;
  cause?: unknown;
}

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly expose: boolean;
  readonly details: unknown;
  /** Extra response headers, e.g. Retry-After or WWW-Authenticate. */
  readonly headers: Readonly<Record<string, string>>;

  constructor(code: ErrorCode, message: string = ERRORS[code].message, options: AppErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.status = ERRORS[code].status;
    this.expose = options.expose ?? this.status < 500;
    this.details = options.details;
    this.headers = options.headers ?? {};
  }
}

export class ValidationError extends AppError {
  constructor(details: FieldProblem[], code: 'VALIDATION_ERROR' | 'INVALID_PASSWORD' | 'INVALID_FINGERPRINT' = 'VALIDATION_ERROR', message?: string) {
    super(code, message, { details });
  }
}

export class UnauthorizedError extends AppError {
  constructor(message?: string, details?: unknown) {
    super('UNAUTHORIZED', message, { headers: { 'www-authenticate': 'Bearer' }, details });
  }
}

/**
 * RFC 9470: the access token is good but the authentication behind it is not
 * recent or strong enough for this operation (docs/step-up.md). The client
 * steps up (POST /auth/step-up) and retries.
 */
export class StepUpRequiredError extends AppError {
  readonly maxAge: number;
  constructor(options: { maxAge: number; acrValues?: string | undefined; methods: readonly string[]; description: string }) {
    const params = [`error="insufficient_user_authentication"`, `error_description="${options.description.replace(/["\\]/g, '')}"`, `max_age=${options.maxAge}`];
    if (options.acrValues !== undefined) params.push(`acr_values="${options.acrValues}"`);
    super('STEP_UP_REQUIRED', undefined, {
      headers: { 'www-authenticate': `Bearer ${params.join(', ')}` },
      details: { max_age: options.maxAge, ...(options.acrValues !== undefined ? { acr_values: options.acrValues } : {}), methods: [...options.methods], reason: options.description },
    });
    this.maxAge = options.maxAge;
  }
}

export class TooManyAttemptsError extends AppError {
  constructor(retryAfterSeconds: number, message?: string, options: { details?: Record<string, unknown> } = {}) {
    const seconds = Math.max(1, Math.ceil(retryAfterSeconds));
    super('TOO_MANY_ATTEMPTS', message, {
      headers: { 'retry-after': String(seconds) },
      details: { retry_after_seconds: seconds, ...options.details },
    });
  }
}

/** Storage could not be reached or failed: 503, never a guess. */
export class ServiceUnavailableError extends AppError {
  constructor(cause?: unknown) {
    super('SERVICE_UNAVAILABLE', undefined, { cause, headers: { 'retry-after': '5' } });
  }
}

export const isAppError = (error: unknown): error is AppError => error instanceof AppError;
