/**
 * The Shared Signals transmitter's HTTP side (docs/integration.md "Shared
 * Signals"): `GET /.well-known/ssf-configuration` (public), the stream
 * management endpoints under `/ssf/streams` (configuration, status,
 * subjects, verification) and the poll endpoint
 * `/ssf/poll/{stream_id}`, each with `Authorization: Bearer <admin API key>`
 * carrying the `ssf:streams` scope. Bodies are the SSF JSON, not the API's
 * envelope (an SSF receiver reads them as the specification writes them);
 * errors are the ErrorEnvelope.
 *
 * Registered only when access tokens are signed with an asymmetric key: SETs
 * are signed with that key and verified through the JWK set, which holds no
 * HS256 secret. In HS256 mode every path here is 404 and no SET is written.
 */
import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncTypebox, TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { AdminKeyGate } from '../../domain/contracts.ts';
import { AppError, UnauthorizedError } from '../../platform/errors.ts';
import { withErrors } from '../../platform/http/envelope.ts';
import { RATE_LIMITS, rateLimitConfig } from '../../platform/http/rate-limits.ts';
import { type Receiver, SSF_SCOPE, type SsfService } from './ssf.service.ts';
import * as S from './ssf.schemas.ts';

export const SSF_CONFIGURATION_PATH = '/.well-known/ssf-configuration';

export interface SsfRouteContext {
  ssf: SsfService;
  adminKeys: AdminKeyGate;
}

const tags = ['shared-signals'];
const security = [{ adminKey: [] as string[] }];

export const ssfRoutes: FastifyPluginAsyncTypebox<SsfRouteContext> = async (app, { ssf, adminKeys }) => {
  for (const schema of [S.TransmitterMetadata, S.StreamConfig, S.StreamStatus, S.PollResponse]) app.addSchema(schema);
  const receivers = new WeakMap<FastifyRequest, Receiver>();
  const receiver = (request: FastifyRequest) => receivers.get(request)!;
  const limit = rateLimitConfig(RATE_LIMITS.admin);

  app.get(SSF_CONFIGURATION_PATH, {
    schema: { operationId: 'getSsfConfiguration', tags, security: [], summary: 'Shared Signals transmitter metadata', response: withErrors({ 200: Type.Ref('SsfTransmitterMetadata') }, ['NOT_FOUND']) },
  }, async (_request, reply) => {
    reply.header('cache-control', 'public, max-age=300');
    return ssf.metadata();
  });

  // Everything below: an admin key with the ssf:streams scope, checked before the body is read.
  await app.register(async (scope) => {
    const managed = scope.withTypeProvider<TypeBoxTypeProvider>();
    managed.addHook('onRequest', async (request) => {
      const header = request.headers.authorization;
      if (typeof header !== 'string' || !/^Bearer [^\s]+$/i.test(header)) throw new UnauthorizedError('A valid admin API key is required.');
      const principal = await adminKeys.authenticate(header.slice(7));
      if (!principal.scopes.has(SSF_SCOPE)) throw new AppError('FORBIDDEN', `This admin API key lacks the "${SSF_SCOPE}" scope.`, { details: { required_scope: SSF_SCOPE } });
      receivers.set(request, { keyId: principal.keyId, name: principal.name });
    });
    const doc = (operationId: string, summary: string) => ({ operationId, tags, security, summary, description: `Needs an admin API key with the \`${SSF_SCOPE}\` scope.` });

    managed.post('/ssf/streams', {
      schema: { ...doc('createSsfStream', 'Create an event stream (push or poll)'), body: S.CreateStreamBody, response: withErrors({ 201: Type.Ref('SsfStreamConfig') }, ['FORBIDDEN', 'NOT_FOUND', 'BAD_REQUEST', 'SSF_STREAM_LIMIT']) },
      config: limit,
    }, async (request, reply) => reply.code(201).send(await ssf.create(receiver(request), request.body)));

    managed.get('/ssf/streams', {
      schema: {
        ...doc('getSsfStreams', "A stream's configuration (with stream_id), or every stream of this key"),
        querystring: S.StreamQuery,
        response: withErrors({ 200: Type.Union([Type.Ref('SsfStreamConfig'), Type.Array(Type.Ref('SsfStreamConfig'))]) }, ['FORBIDDEN', 'NOT_FOUND', 'BAD_REQUEST']),
      },
      config: limit,
    }, async (request) => ssf.read(receiver(request), request.query.stream_id));

    managed.patch('/ssf/streams', {
      schema: { ...doc('updateSsfStream', "Change some of a stream's configuration"), body: S.UpdateStreamBody, response: withErrors({ 200: Type.Ref('SsfStreamConfig') }, ['FORBIDDEN', 'NOT_FOUND', 'BAD_REQUEST', 'SSF_STREAM_LIMIT']) },
      config: limit,
    }, async (request) => ssf.update(receiver(request), request.body, false));

    managed.put('/ssf/streams', {
      schema: { ...doc('replaceSsfStream', "Replace a stream's configuration"), body: S.UpdateStreamBody, response: withErrors({ 200: Type.Ref('SsfStreamConfig') }, ['FORBIDDEN', 'NOT_FOUND', 'BAD_REQUEST', 'SSF_STREAM_LIMIT']) },
      config: limit,
    }, async (request) => ssf.update(receiver(request), request.body, true));

    managed.delete('/ssf/streams', {
      schema: { ...doc('deleteSsfStream', 'Delete a stream and the SETs still queued on it'), querystring: S.RequiredStreamQuery, response: withErrors({ 204: { description: 'Deleted', type: 'null' } }, ['FORBIDDEN', 'NOT_FOUND', 'BAD_REQUEST', 'SSF_STREAM_LIMIT']) },
      config: limit,
    }, async (request, reply) => {
      await ssf.remove(receiver(request), request.query.stream_id);
      return reply.code(204).send();
    });

    managed.get('/ssf/streams/status', {
      schema: { ...doc('getSsfStreamStatus', "A stream's status (enabled, paused or disabled) and the receiver's reason"), querystring: S.RequiredStreamQuery, response: withErrors({ 200: Type.Ref('SsfStreamStatus') }, ['FORBIDDEN', 'NOT_FOUND', 'BAD_REQUEST', 'SSF_STREAM_LIMIT']) },
      config: limit,
    }, async (request) => ssf.status(receiver(request), request.query.stream_id));

    managed.post('/ssf/streams/status', {
      schema: { ...doc('updateSsfStreamStatus', 'Enable, pause (SETs held) or disable (SETs dropped) a stream'), body: S.UpdateStatusBody, response: withErrors({ 200: Type.Ref('SsfStreamStatus') }, ['FORBIDDEN', 'NOT_FOUND']) },
      config: limit,
    }, async (request) => ssf.setStatus(receiver(request), request.body.stream_id, request.body.status, request.body.reason));

    managed.post('/ssf/streams/subjects/add', {
      schema: { ...doc('addSsfSubject', 'Add a user back to a stream (streams start with every user)'), body: S.AddSubjectBody, response: withErrors({ 200: { description: 'Added (or had it already)', type: 'null' } }, ['FORBIDDEN', 'NOT_FOUND']) },
      config: limit,
    }, async (request, reply) => {
      await ssf.addSubject(receiver(request), request.body.stream_id, request.body.subject);
      return reply.code(200).send();
    });

    managed.post('/ssf/streams/subjects/remove', {
      schema: { ...doc('removeSsfSubject', 'Remove a user from a stream: no SET about that user is sent on it from then on'), body: S.RemoveSubjectBody, response: withErrors({ 204: { description: 'Removed', type: 'null' } }, ['FORBIDDEN', 'NOT_FOUND', 'SSF_SUBJECT_LIMIT']) },
      config: limit,
    }, async (request, reply) => {
      await ssf.removeSubject(receiver(request), request.body.stream_id, request.body.subject);
      return reply.code(204).send();
    });

    managed.post('/ssf/streams/verify', {
      schema: { ...doc('verifySsfStream', 'Send a verification event on the stream'), body: S.VerifyBody, response: withErrors({ 204: { description: 'Queued', type: 'null' } }, ['FORBIDDEN', 'NOT_FOUND', 'BAD_REQUEST', 'SSF_STREAM_LIMIT']) },
      config: limit,
    }, async (request, reply) => {
      await ssf.verify(receiver(request), request.body.stream_id, request.body.state);
      return reply.code(204).send();
    });

    managed.post('/ssf/poll/:stream_id', {
      schema: { ...doc('pollSsfStream', 'Poll a stream (RFC 8936): acknowledge SETs and receive the next ones'), params: S.PollParams, body: S.PollBody, response: withErrors({ 200: Type.Ref('SsfPollResponse') }, ['FORBIDDEN', 'NOT_FOUND', 'BAD_REQUEST', 'SSF_STREAM_LIMIT']) },
      config: limit,
    }, async (request) => ssf.poll(receiver(request), request.params.stream_id, request.body));
  });
};
