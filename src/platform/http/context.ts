import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../config.ts';
import type { RequestDevice } from '../context.ts';

/**
 * What every route plugin receives besides its own feature's service (and the
 * seams of others it needs, named in src/domain/contracts.ts): the
 * configuration and the per-request helpers.
 */
export interface HttpTools {
  config: Readonly<Config>;
  requestDevice(request: FastifyRequest): RequestDevice;
  authenticate(request: FastifyRequest, reply: FastifyReply): Promise<void>;
}
