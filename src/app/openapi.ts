/**
 * The OpenAPI document (GET /openapi.json, README "API overview", docs/integration.md): named component
 * schemas, servers, licence, tags, and the rules a standard linter checks
 * (`npm run lint:openapi`, Redocly's recommended set, 0 errors).
 *
 * Component schemas carry a `$id` and are registered here once, at the root,
 * so every route plugin (and fast-json-stringify) can `$ref` them
 * (`ref()` in ./envelope.ts) and the document names them by that `$id`
 * instead of `def-N`. Each operation names its own operationId next to its
 * route; test/integration/openapi.test.ts checks that none is missing.
 */
import type { FastifyDynamicSwaggerOptions } from '@fastify/swagger';
import type { FastifyInstance } from 'fastify';
import type { TSchema } from 'typebox';
import { LoginSession, MfaChallenge, PendingDevice, StepUpResult, TokenPair, User } from '../features/auth/auth.schemas.ts';
import { DeviceEvent, DeviceSchema } from '../domain/views/device.ts';
import { MfaStatus } from '../features/mfa/mfa.schemas.ts';
import { SessionSchema } from '../domain/views/session.ts';
import { LocationSchema } from '../domain/views/location.ts';
import { SecurityEventSchema } from '../features/security/security.schemas.ts';
import { openApiWebhooks } from '../features/webhooks/webhooks.schemas.ts';
import { ErrorEnvelope } from '../platform/http/envelope.ts';

/** Every named schema of the document. A feature adds its own here (Session, …). */
export const COMPONENT_SCHEMAS: TSchema[] = [ErrorEnvelope, DeviceSchema, DeviceEvent, PendingDevice, LoginSession, MfaChallenge, TokenPair, StepUpResult, User, MfaStatus, SessionSchema, LocationSchema, SecurityEventSchema];

export function registerComponentSchemas(app: FastifyInstance): void {
  for (const schema of COMPONENT_SCHEMAS) app.addSchema(schema);
}

export const TAGS = [
  { name: 'auth', description: 'Sign-up, login, sessions' },
  { name: 'mfa', description: 'TOTP and backup codes' },
  { name: 'devices', description: 'Trusted devices' },
  { name: 'sessions', description: 'Where the account is signed in' },
  { name: 'security', description: 'The security history: every security change, with who, where and why' },
  { name: 'webauthn', description: 'Passkeys and security keys' },
  { name: 'integration', description: 'Keys that verify access tokens (JWKS)' },
  { name: 'operations', description: 'Health, readiness, metrics' },
  { name: 'admin', description: 'Admin API: admin API keys with scopes (npm run admin -- create-key)' },
  { name: 'shared-signals', description: 'OpenID Shared Signals transmitter: event streams of Security Event Tokens (admin API key with the ssf:streams scope)' },
];

export const swaggerOptions: FastifyDynamicSwaggerOptions = {
  openapi: {
    // 3.1: its schemas are JSON Schema 2020-12 (type: [..., 'null'], examples arrays), and it has `webhooks`.
    openapi: '3.1.0',
    info: {
      title: 'Trusted Devices',
      version: '1.0.0',
      description:
        'Authentication with TOTP MFA and "remember this device". Every error uses the ErrorEnvelope schema. ' +
        'Access tokens are JWTs that any service can verify with the keys at /.well-known/jwks.json.',
      license: { name: 'UNLICENSED (private)', url: 'https://spdx.org/licenses/' },
    },
    // Relative: the document describes the server that serves it, wherever it runs.
    servers: [{ url: '/', description: 'This service' }],
    components: {
      securitySchemes: {
        bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
        adminKey: { type: 'http', scheme: 'bearer', description: 'An admin API key (tdk_…), from `npm run admin -- create-key`' },
      },
    },
    tags: TAGS,
    // What WEBHOOK_URL receives (src/features/webhooks).
    webhooks: openApiWebhooks as never,
  },
  // Components are named by their $id (the default would be def-0, def-1, …).
  refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
  // A prefixed '/' route answers with and without the slash; document it once, without.
  transform: ({ schema, url }) => ({ schema, url: url.length > 1 ? url.replace(/\/$/, '') : url }),
};
