/**
 * One small error hierarchy with stable codes (SPEC §2).
 *
 * Services throw an AppError when a request cannot go on; the root error
 * handler (src/http/error-handler.ts) is the only place that turns errors into
 * HTTP responses. `expose: false` means the message is for logs only and the
 * client sees a generic text. Expected "no" answers inside the service layer
 * (an untrusted device, a wrong code that is still within its attempts) are
 * values, not exceptions.
 */

export interface FieldProblem {
  field: string;
  message: string;
}

export class AppError extends Error {
  readonly code: string;
  readonly status: number;
  readonly expose: boolean;
  readonly details: unknown;
  /** Extra response headers, e.g. Retry-After or WWW-Authenticate. */
  readonly headers: Readonly<Record<string, string>>;

  constructor(
    code: string,
    status: number,
    message: string,
    options: { expose?: boolean; details?: unknown; headers?: Record<string, string>; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.status = status;
    this.expose = options.expose ?? status < 500;
    this.details = options.details;
    this.headers = options.headers ?? {};
  }
}

export class ValidationError extends AppError {
  constructor(details: FieldProblem[], code = 'VALIDATION_ERROR', message = 'The request is not valid.') {
    super(code, 422, message, { details });
  }
}

export class UnauthorizedError extends AppError {
  constructor(message = 'A valid access token is required.') {
    super('UNAUTHORIZED', 401, message, { headers: { 'www-authenticate': 'Bearer' } });
  }
}

export class NotFoundError extends AppError {
  constructor(code = 'NOT_FOUND', message = 'Not found.') {
    super(code, 404, message);
  }
}

export class TooManyAttemptsError extends AppError {
  constructor(retryAfterSeconds: number, code = 'TOO_MANY_ATTEMPTS', message = 'Too many attempts. Try again later.') {
    super(code, 429, message, {
      headers: { 'retry-after': String(Math.max(1, Math.ceil(retryAfterSeconds))) },
      details: { retry_after_seconds: Math.max(1, Math.ceil(retryAfterSeconds)) },
    });
  }
}

/** Storage could not be reached or failed: 503, never a guess. */
export class ServiceUnavailableError extends AppError {
  constructor(cause?: unknown) {
    super('SERVICE_UNAVAILABLE', 503, 'The service is temporarily unavailable. Try again shortly.', {
      cause,
      headers: { 'retry-after': '5' },
    });
  }
}

export const isAppError = (error: unknown): error is AppError => error instanceof AppError;
