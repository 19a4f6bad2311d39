/**
 * The step-up gate (docs/step-up.md; RFC 9470). An operation in the list
 * the app hands to `installStepUp` (src/domain/step-up.ts) runs only when
 * the session's last performed factor is at most STEP_UP_MAX_AGE_SECONDS
 * old and, on an account with a second factor, the session is multi-factor
 * (`mfa` in its amr: a trusted device that stood in for the second factor
 * never counts). Otherwise 401 STEP_UP_REQUIRED with
 * `WWW-Authenticate: Bearer error="insufficient_user_authentication", …, max_age=…`
 * (and `acr_values` naming the multi-factor class when a second factor is due).
 *
 * The gate reads the session's record as the bearer check found it (one
 * primary-key read, done already), not the token's claims: a step-up or a
 * TOTP enrolment moves the record, and the client's next request sees it.
 *
 * Installed as a preHandler on each listed route, after the bearer check
 * and body validation, before the handler: a refused request changes
 * nothing (a code in its body is not even checked, so not spent).
 * Threats: a copied or unattended session (stale factor), a trusted device
 * used by someone else (no factor at all).
 */
import type { FastifyInstance, FastifyRequest, preHandlerAsyncHookHandler, RouteOptions } from 'fastify';
import type { Clock } from '../clock.ts';
import { ACR } from '../authn-methods.ts';
import { ERRORS, type ErrorCode, StepUpRequiredError } from '../errors.ts';
import { errorResponse } from './error-responses.ts';

export interface StepUpPolicy {
  maxAgeSeconds: number;
  clock: Clock;
  /** The second factors the account can step up with (totp, backup_code, webauthn); empty: the password is asked instead. */
  secondFactorMethods(userId: string): Promise<string[]>;
}

/** Why the gate refused (the header's error_description). */
export const STEP_UP_REASONS = {
  stale: 'More recent authentication is required',
  secondFactor: 'A second factor is required',
  trustedDevice: 'A trusted device stood in for the second factor; perform it now',
} as const;

/** Refuses with STEP_UP_REQUIRED unless the session's authentication is recent (and multi-factor when the account has a second factor). */
export async function checkRecentAuthentication(policy: StepUpPolicy, request: FastifyRequest): Promise<void> {
  const { userId, authTime, amr } = request.auth;
  const methods = await policy.secondFactorMethods(userId);
  const needsSecondFactor = methods.length > 0;
  const ageMs = policy.clock.now() - authTime;
  const recent = ageMs <= policy.maxAgeSeconds * 1000;
  const strong = !needsSecondFactor || amr.includes('mfa');
  if (recent && strong) return;
  throw new StepUpRequiredError({
    maxAge: policy.maxAgeSeconds,
    acrValues: needsSecondFactor ? ACR.multiFactor : undefined,
    methods: needsSecondFactor ? methods : ['password'],
    description: strong ? STEP_UP_REASONS.stale : amr.includes('device') ? STEP_UP_REASONS.trustedDevice : STEP_UP_REASONS.secondFactor,
  });
}

/** The OpenAPI answer every gated operation documents (beside the generic 4xx). */
export const stepUpResponse = (maxAgeSeconds: number) => ({
  description:
    `STEP_UP_REQUIRED: the session's last factor is older than ${maxAgeSeconds} s, or a trusted device stood in for the second factor ` +
    '(docs/step-up.md). Step up with POST /api/v1/auth/step-up, then retry. (Also UNAUTHORIZED for a missing or ended session.)',
  headers: {
    'WWW-Authenticate': {
      type: 'string',
      description: `Bearer error="insufficient_user_authentication", error_description="…", max_age=${maxAgeSeconds} (and acr_values="${ACR.multiFactor}" when a second factor is due) — RFC 9470`,
    },
  },
  content: { 'application/json': { schema: { $ref: 'ErrorEnvelope' } } },
});

/**
 * Puts the gate on every route whose operationId is listed, and documents
 * its answer. Must run before the routes are registered; the app refuses to
 * start if a listed operation was never registered (the list and the routes
 * cannot drift apart).
 */
export function installStepUp(app: FastifyInstance, operationIds: readonly string[], policy: StepUpPolicy): void {
  const wanted = new Set(operationIds);
  const gated = new Set<string>();
  const gate: preHandlerAsyncHookHandler = async (request) => checkRecentAuthentication(policy, request);
  app.addHook('onRoute', (route: RouteOptions) => {
    const id = (route.schema as { operationId?: unknown } | undefined)?.operationId;
    if (typeof id !== 'string' || !wanted.has(id)) return;
    gated.add(id);
    const existing = route.preHandler === undefined ? [] : Array.isArray(route.preHandler) ? route.preHandler : [route.preHandler];
    route.preHandler = [...existing, gate];
    // The 401 the document already lists (UNAUTHORIZED, built from the error catalogue) gains
    // STEP_UP_REQUIRED in its codes, and the RFC 9470 header.
    const schema = route.schema as { response?: Record<string, unknown> };
    const listed = schema.response?.['401'] as { allOf?: Array<{ properties?: { error?: { properties?: { code?: { enum?: string[] } } } } }> } | undefined;
    const codes = listed?.allOf?.[1]?.properties?.error?.properties?.code?.enum ?? [];
    const gatedCodes = [...new Set([...codes, 'STEP_UP_REQUIRED'])].filter((code): code is ErrorCode => code in ERRORS);
    const { content: _envelope, ...described } = stepUpResponse(policy.maxAgeSeconds);
    schema.response = { ...schema.response, 401: { ...errorResponse(gatedCodes), ...described } };
  });
  app.addHook('onReady', async () => {
    const missing = [...wanted].filter((id) => !gated.has(id));
    if (missing.length > 0) throw new Error(`step-up: no route for the sensitive operation(s) ${missing.join(', ')}`);
  });
}
