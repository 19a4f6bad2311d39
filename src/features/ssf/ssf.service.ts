/**
 * The Shared Signals transmitter (docs/integration.md "Shared Signals"):
 * event streams managed by relying services with their admin key (scope
 * `ssf:streams`), the verification event, and poll delivery (RFC 8936). Push
 * delivery is src/features/ssf/ssf.sender.ts; what each event becomes is
 * src/store/ssf-events.ts, written by the one event writer.
 *
 * Ownership: a stream belongs to the admin key that created it. A key reads,
 * changes, verifies, polls and deletes only its own streams; another key's
 * stream id answers 404 as if it did not exist. The SETs' `aud` is the
 * owning key's name (unique forever, like the actor names of the history).
 *
 * Subjects: every stream starts with every user (`default_subjects` ALL):
 * the relying services are the operator's own. A receiver removes a user
 * (`iss_sub` of this issuer, alone or as the `user` of a complex subject)
 * and its stream gets no SET about that user from then on; adding the user
 * back undoes it, and adding a user never removed changes nothing (the
 * stream had it). SETs written before the removal are still delivered. The
 * user id is not looked up: the answer is the same for any well-formed id,
 * so the endpoints tell nothing about who has an account.
 *
 * Status (the receiver's to set): `enabled` delivers; `paused` holds every
 * SET written meanwhile (push: not sent; poll: not returned) and delivers
 * them, oldest first, once enabled again; `disabled` drops the waiting SETs
 * and keeps none. The transmitter never changes a status on its own, so it
 * sends no stream-updated event.
 *
 * Threats: a receiver reading another's events (ownership above; the SET
 * names only ids, never an email, IP or device name); the push
 * authorization header leaking (encrypted at rest with DATA_ENCRYPTION_KEY,
 * bound to the stream id, never returned or logged); a flood of streams (at
 * most SSF_MAX_STREAMS, each with at most SSF_MAX_REMOVED_SUBJECTS removed
 * users); a poll receiver acknowledging what is not its own (an ack names
 * jtis of the polled stream only).
 */
import { type Clock, SECOND } from '../../platform/clock.ts';
import type { Encryptor } from '../../platform/crypto/encryption.ts';
import type { SetSigner } from '../../platform/crypto/security-event-tokens.ts';
import { newTimeOrderedId } from '../../platform/crypto/tokens.ts';
import { AppError } from '../../platform/errors.ts';
import { setClaims, SSF_EVENT_TYPES, SSF_EVENTS_SUPPORTED } from '../../store/ssf-events.ts';
import { SSF_MAX_REMOVED_SUBJECTS, SSF_MAX_STREAMS, SSF_POLL, SSF_PUSH, type SsfRepository, type SsfStatus, type SsfStream } from '../../store/ssf.repository.ts';

export const SSF_SCOPE = 'ssf:streams';
export const POLL_DEFAULT_MAX_EVENTS = 20;
/** How long a poll with returnImmediately=false waits for a first SET. */
export const POLL_WAIT_MS = 5 * SECOND;
const POLL_RECHECK_MS = 250;

/** The admin key a request came with (src/domain/contracts.ts AdminKeyGate). */
export interface Receiver {
  keyId: string;
  name: string;
}

export interface SsfServiceOptions {
  repository: SsfRepository;
  encryptor: Encryptor;
  signer: SetSigner;
  clock: Clock;
  /** PUBLIC_URL: the issuer, and the base of every URL the metadata names. */
  issuer: string;
  /** Test seam: how a waiting poll sleeps. */
  sleep?: (ms: number) => Promise<void>;
}

export interface DeliveryInput {
  method: string;
  endpoint_url?: string | undefined;
  authorization_header?: string | undefined;
}

export interface StreamInput {
  delivery?: DeliveryInput | undefined;
  events_requested?: string[] | undefined;
  description?: string | undefined;
}

export interface StreamUpdate extends StreamInput {
  stream_id: string;
  iss?: string | undefined;
  aud?: string | string[] | undefined;
  events_supported?: string[] | undefined;
  events_delivered?: string[] | undefined;
}

/** A subject as a receiver names it: a user of this issuer (RFC 9493 `iss_sub`), alone or in a complex subject. */
export type SubjectInput = { format: 'iss_sub'; iss: string; sub: string } | { format: 'complex'; user: { format: 'iss_sub'; iss: string; sub: string } };

export interface PollInput {
  maxEvents?: number | undefined;
  returnImmediately?: boolean | undefined;
  ack?: string[] | undefined;
  setErrs?: Record<string, { err: string; description?: string | undefined }> | undefined;
}

const notFound = () => new AppError('NOT_FOUND', 'No such event stream for this key.');
const invalid = (field: string, message: string) => new AppError('VALIDATION_ERROR', undefined, { details: [{ field, message }] });

export function createSsfService(options: SsfServiceOptions) {
  const { repository, encryptor, signer, clock, issuer } = options;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref()));
  const pollUrl = (streamId: string) => `${issuer}/ssf/poll/${streamId}`;

  function configOf(stream: SsfStream) {
    return {
      stream_id: stream.id,
      iss: issuer,
      aud: stream.audience,
      delivery: { method: stream.delivery_method, endpoint_url: stream.delivery_method === SSF_POLL ? pollUrl(stream.id) : stream.endpoint_url! },
      events_supported: [...SSF_EVENTS_SUPPORTED],
      events_requested: JSON.parse(stream.events_requested) as string[],
      events_delivered: JSON.parse(stream.events_delivered) as string[],
      ...(stream.description !== null ? { description: stream.description } : {}),
    };
  }

  /** The stored delivery of a receiver's `delivery` (poll when none is given, as SSF says). */
  function deliveryOf(streamId: string, delivery: DeliveryInput | undefined): Pick<SsfStream, 'delivery_method' | 'endpoint_url' | 'authorization_header'> {
    if (delivery === undefined || delivery.method === SSF_POLL) return { delivery_method: SSF_POLL, endpoint_url: null, authorization_header: null };
    if (delivery.endpoint_url === undefined) throw invalid('delivery.endpoint_url', 'A push stream needs the URL to push to.');
    return {
      delivery_method: SSF_PUSH,
      endpoint_url: delivery.endpoint_url,
      authorization_header: delivery.authorization_header === undefined ? null : encryptor.encrypt(delivery.authorization_header, `ssf:${streamId}`),
    };
  }

  /** Requested URIs the transmitter does not know are ignored (SSF); none asked for: all of them. */
  const delivered = (requested: readonly string[] | undefined) => (requested === undefined ? [...SSF_EVENTS_SUPPORTED] : SSF_EVENTS_SUPPORTED.filter((uri) => requested.includes(uri)));

  const statusOf = (stream: SsfStream) => ({
    stream_id: stream.id,
    status: stream.status as SsfStatus,
    ...(stream.status_reason !== null ? { reason: stream.status_reason } : {}),
  });

  /** The user a subject names; another issuer's subject is none of ours (404, as SSF asks for an unrecognised subject). */
  function userOf(subject: SubjectInput): string {
    const user = subject.format === 'complex' ? subject.user : subject;
    if (user.iss !== issuer) throw new AppError('NOT_FOUND', 'This transmitter does not know subjects of that issuer.');
    return user.sub;
  }

  async function owned(receiver: Receiver, streamId: string): Promise<SsfStream> {
    const stream = await repository.findOwned(receiver.keyId, streamId);
    if (!stream) throw notFound();
    return stream;
  }

  return {
    metadata() {
      return {
        spec_version: '1_0',
        issuer,
        jwks_uri: `${issuer}/.well-known/jwks.json`,
        delivery_methods_supported: [SSF_PUSH, SSF_POLL],
        configuration_endpoint: `${issuer}/ssf/streams`,
        status_endpoint: `${issuer}/ssf/streams/status`,
        add_subject_endpoint: `${issuer}/ssf/streams/subjects/add`,
        remove_subject_endpoint: `${issuer}/ssf/streams/subjects/remove`,
        verification_endpoint: `${issuer}/ssf/streams/verify`,
        authorization_schemes: [{ spec_urn: 'urn:ietf:rfc:6750' }],
        default_subjects: 'ALL' as const,
      };
    },

    async create(receiver: Receiver, input: StreamInput) {
      if ((await repository.countStreams()) >= SSF_MAX_STREAMS) throw new AppError('SSF_STREAM_LIMIT');
      const id = newTimeOrderedId(clock.now()).replaceAll('-', '');
      const now = clock.now();
      const row: SsfStream = {
        id,
        admin_key_id: receiver.keyId,
        audience: receiver.name,
        ...deliveryOf(id, input.delivery),
        events_requested: JSON.stringify(input.events_requested ?? [...SSF_EVENTS_SUPPORTED]),
        events_delivered: JSON.stringify(delivered(input.events_requested)),
        description: input.description ?? null,
        status: 'enabled',
        status_reason: null,
        created_at: now,
        updated_at: now,
      };
      await repository.insertStream(row);
      return configOf(row);
    },

    async read(receiver: Receiver, streamId: string | undefined) {
      if (streamId === undefined) return (await repository.listOwned(receiver.keyId)).map(configOf);
      return configOf(await owned(receiver, streamId));
    },

    /** PATCH (`replace` false: what is missing stays) or PUT (`replace` true: what is missing takes its default). */
    async update(receiver: Receiver, input: StreamUpdate, replace: boolean) {
      const stream = await owned(receiver, input.stream_id);
      // Transmitter-supplied fields may be sent back, but must be what they are.
      const current = configOf(stream);
      if (input.iss !== undefined && input.iss !== issuer) throw invalid('iss', 'iss cannot be changed.');
      if (input.aud !== undefined && (Array.isArray(input.aud) ? input.aud.length !== 1 || input.aud[0] !== current.aud : input.aud !== current.aud)) throw invalid('aud', 'aud cannot be changed.');
      if (input.events_delivered !== undefined && JSON.stringify([...input.events_delivered].sort()) !== JSON.stringify([...current.events_delivered].sort())) {
        throw invalid('events_delivered', 'events_delivered is set by the transmitter.');
      }
      const patch: Parameters<SsfRepository['updateOwned']>[2] = { updated_at: clock.now() };
      if (replace || input.delivery !== undefined) Object.assign(patch, deliveryOf(stream.id, input.delivery));
      if (replace || input.events_requested !== undefined) {
        patch.events_requested = JSON.stringify(input.events_requested ?? [...SSF_EVENTS_SUPPORTED]);
        patch.events_delivered = JSON.stringify(delivered(input.events_requested));
      }
      if (replace || input.description !== undefined) patch.description = input.description ?? null;
      if (!(await repository.updateOwned(receiver.keyId, stream.id, patch))) throw notFound();
      if (patch.delivery_method !== undefined && patch.delivery_method !== stream.delivery_method) {
        await repository.retarget(stream.id, patch.delivery_method === SSF_PUSH && stream.status === 'enabled', clock.now());
      }
      return configOf((await repository.findOwned(receiver.keyId, stream.id)) ?? stream);
    },

    async remove(receiver: Receiver, streamId: string): Promise<void> {
      if (!(await repository.deleteOwned(receiver.keyId, streamId))) throw notFound();
    },

    async status(receiver: Receiver, streamId: string) {
      return statusOf(await owned(receiver, streamId));
    },

    async setStatus(receiver: Receiver, streamId: string, status: SsfStatus, reason: string | undefined) {
      const stream = await repository.setStatus(receiver.keyId, streamId, status, reason ?? null, clock.now());
      if (!stream) throw notFound();
      return statusOf(stream);
    },

    /** Adds a user back to the stream (only undoes a removal: a stream starts with every user). */
    async addSubject(receiver: Receiver, streamId: string, subject: SubjectInput): Promise<void> {
      const stream = await owned(receiver, streamId);
      await repository.addSubject(stream.id, userOf(subject));
    },

    /** Removes a user: the stream gets no SET about it from now on. */
    async removeSubject(receiver: Receiver, streamId: string, subject: SubjectInput): Promise<void> {
      const stream = await owned(receiver, streamId);
      const userId = userOf(subject);
      if ((await repository.countRemoved(stream.id)) >= SSF_MAX_REMOVED_SUBJECTS) throw new AppError('SSF_SUBJECT_LIMIT');
      await repository.removeSubject(stream.id, userId, clock.now());
    },

    /** Queues a verification SET on the stream (pushed or polled like any other; held while paused, dropped while disabled). */
    async verify(receiver: Receiver, streamId: string, state: string | undefined): Promise<void> {
      const stream = await owned(receiver, streamId);
      if (stream.status === 'disabled') return;
      const now = clock.now();
      const jti = newTimeOrderedId(now);
      const claims = setClaims(issuer, stream.audience, jti, jti, now, {
        eventType: SSF_EVENT_TYPES.verification,
        subId: { format: 'opaque', id: stream.id },
        event: state === undefined ? {} : { state },
      });
      const due = stream.delivery_method === SSF_PUSH && stream.status === 'enabled';
      await repository.insertSet({ id: jti, stream_id: stream.id, payload: JSON.stringify(claims), created_at: now, next_attempt_at: due ? now : null });
    },

    /**
     * RFC 8936: acknowledges `ack` (and `setErrs`: the receiver will not
     * take them, so they are not sent again), then returns up to `maxEvents`
     * unacknowledged SETs, oldest first, each signed now. A SET is returned
     * again by every poll until it is acknowledged.
     */
    async poll(receiver: Receiver, streamId: string, input: PollInput) {
      const stream = await owned(receiver, streamId);
      if (stream.delivery_method !== SSF_POLL) throw new AppError('BAD_REQUEST', 'This stream is delivered by push; change its delivery to poll first.');
      const now = clock.now();
      await repository.acknowledge(stream.id, [...(input.ack ?? []), ...Object.keys(input.setErrs ?? {})], now);
      const max = input.maxEvents ?? POLL_DEFAULT_MAX_EVENTS;
      // Paused or disabled: nothing is transmitted (acknowledgements are still taken above).
      const next = async (current: SsfStream, limit: number) => (current.status === 'enabled' ? repository.waiting(current.id, limit) : []);
      if (max === 0) return { sets: {}, moreAvailable: (await next(stream, 1)).length > 0 };
      let rows = await next(stream, max + 1);
      const deadline = Date.now() + POLL_WAIT_MS;
      while (rows.length === 0 && input.returnImmediately === false && Date.now() < deadline) {
        await sleep(POLL_RECHECK_MS);
        rows = await next((await repository.findOwned(receiver.keyId, stream.id)) ?? { ...stream, status: 'disabled' }, max + 1);
      }
      const sets: Record<string, string> = {};
      for (const row of rows.slice(0, max)) sets[row.id] = signer.sign(row.payload);
      return { sets, moreAvailable: rows.length > max };
    },
  };
}

export type SsfService = ReturnType<typeof createSsfService>;
