import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Registry } from 'prom-client';
import { Type } from 'typebox';
import { ServiceUnavailableError } from '../../platform/errors.ts';
import { ok, success, withErrors } from '../../platform/http/envelope.ts';

const tags = ['operations'];

export interface OpsOptions {
  ping(): Promise<void>;
  registry: Registry;
}

export const opsRoutes: FastifyPluginAsyncTypebox<OpsOptions> = async (app, { ping, registry }) => {
  app.get('/healthz', {
    schema: { operationId: 'getHealth', security: [], tags, summary: 'The process is up', response: withErrors({ 200: success(Type.Object({ status: Type.Literal('ok') })) }, [], { storage: false }) },
  }, async () => ok({ status: 'ok' as const }));

  app.get('/readyz', {
    schema: { operationId: 'getReadiness', security: [], tags, summary: 'Storage is reachable (503 otherwise)', response: withErrors({ 200: success(Type.Object({ status: Type.Literal('ready') })) }) },
  }, async (request) => {
    try {
      await ping();
    } catch (error) {
      request.log.warn({ err: error }, 'readiness check failed');
      throw new ServiceUnavailableError(error);
    }
    return ok({ status: 'ready' as const });
  });

  app.get('/metrics', {
    schema: { operationId: 'getMetrics', security: [], tags, summary: 'Prometheus metrics (text format)', response: withErrors({ 200: { description: 'Prometheus text exposition format', content: { 'text/plain': { schema: Type.String() } } } }, [], { storage: false }) },
  }, async (_request, reply) => {
    reply.type(registry.contentType);
    return registry.metrics();
  });
};
