/**
 * Password hashing: argon2id with the OWASP Password Storage Cheat Sheet
 * parameters (m = 19 MiB, t = 2, p = 1). @node-rs/argon2 runs on libuv's
 * thread pool, so hashing never blocks the event loop.
 *
 * The hashing line (docs/security.md, "Password hashing under load"):
 * - At most one hash per core runs at a time: more would not finish sooner,
 *   would hold 19 MiB each, and would take every thread of the pool that
 *   file and DNS work also need. The others wait.
 * - Two lanes. The PRIORITY lane is for sign-ins from a recognised device of
 *   the account (a valid device token, and its proof when key-bound; the
 *   sign-in decides): its hashes run before any other waiting one, and it
 *   has one slot of its own beyond the per-core ones, so a known device
 *   does not wait for a stranger's hash to end (one more 19 MiB hash at
 *   most). The
 *   SHARED lane is everyone else, shared fairly per client (the caller's
 *   key: the address, IPv6 per /64): among the waiting, the client that used
 *   the line least recently goes first (a decaying count of its attempts,
 *   refused ones included, per process), and a hash that has waited over
 *   twice the bound goes first whatever its client, so no one waits forever.
 * - The shared lane is bounded (QUEUE_PER_SLOT per running hash, and no more
 *   than MAX_EXPECTED_WAIT_MS of expected waiting). When it is full, a
 *   client that used the line less than the heaviest waiting one takes that
 *   one's place (the displaced request answers 429 RATE_LIMITED: its client
 *   is over its share); otherwise the newcomer is refused at once: 429
 *   RATE_LIMITED when its own client has used the line recently (over its
 *   share, e.g. one client's burst), 503 SERVER_BUSY when it has not (the
 *   line is full of clients no heavier than it: many addresses at once).
 *   Both carry Retry-After. So one client's burst never refuses another
 *   client's single login, and no login waits seconds behind a flood.
 *
 * Unknown emails are verified against a dummy hash made once at start, so a
 * login for an email that does not exist costs the same as a wrong password.
 */
import { availableParallelism } from 'node:os';
import { hash, verify } from '@node-rs/argon2';
import { AppError } from '../errors.ts';

/** Algorithm.Argon2id of @node-rs/argon2 (an ambient const enum, so spelled out). */
const ARGON2ID = 2;

export interface PasswordHasherOptions {
  memoryCost: number;
  timeCost: number;
  parallelism: number;
}

export const OWASP_ARGON2ID: PasswordHasherOptions = { memoryCost: 19_456, timeCost: 2, parallelism: 1 };

/**
 * Where a hash waits: the priority lane (a recognised device of the account),
 * or the shared lane under the client's key (an address, IPv6 per /64).
 * Without a lane: the shared lane under one key for all unattributed work.
 */
export type HashLane = { priority: true } | { priority?: false; client: string };

export interface PasswordHasher {
  readonly options: PasswordHasherOptions;
  hash(password: string, lane?: HashLane): Promise<string>;
  verify(hashed: string, password: string, lane?: HashLane): Promise<boolean>;
  /** Spends the time of one verification and answers false. */
  verifyDummy(password: string, lane?: HashLane): Promise<false>;
}

/** Hashes that may wait per running one, at most (the expected-wait bound usually comes first). */
export const QUEUE_PER_SLOT = 16;
/** And at most this much expected waiting: a new hash is refused when the line ahead would take longer (docs/security.md: no login waits seconds). */
export const MAX_EXPECTED_WAIT_MS = 1000;
/** A client's use of the line halves every this long (the fair share looks at the recent past). */
export const USAGE_HALF_LIFE_MS = 30_000;
/** Clients whose use is remembered, at most (a spray of addresses cannot grow memory; the forgotten count as new). */
export const MAX_TRACKED_CLIENTS = 10_000;
const UNATTRIBUTED: HashLane = { client: '-' };

export const serverBusy = () => new AppError('SERVER_BUSY', undefined, { headers: { 'retry-after': '1' } });
/** The client already had its share of the line (429, not 503: it is this client that is sending too much). */
export const overShare = (seconds = 1) =>
  new AppError('RATE_LIMITED', `Too many sign-ins from your network are being checked at once. Try again in ${seconds} seconds.`, {
    headers: { 'retry-after': String(seconds) },
    details: { retry_after_seconds: seconds },
  });

/**
 * A decaying count of attempts per client (half-life USAGE_HALF_LIFE_MS), bounded in size.
 * Kept in least-recently-seen order (a Map iterates in insertion order; a client seen again
 * moves to the end), so at the bound the client forgotten is the one quiet the longest, in
 * O(1). An earlier version scanned every entry for decayed ones whenever the map was full:
 * a flood from a new address per request kept it full, and every sign-in then paid a
 * 10,000-entry scan on the event loop (`npm run bench:login-flood`, flood 3).
 */
export function createUsage(halfLifeMs: number, maxClients: number, now: () => number) {
  const clients = new Map<string, { score: number; at: number }>();
  const decayed = (entry: { score: number; at: number }, t: number) => entry.score * 2 ** (-(t - entry.at) / halfLifeMs);
  return {
    get size() {
      return clients.size;
    },
    score(client: string, t = now()): number {
      const entry = clients.get(client);
      return entry === undefined ? 0 : decayed(entry, t);
    },
    add(client: string): void {
      const t = now();
      const entry = clients.get(client);
      if (entry !== undefined) {
        clients.delete(client);
        clients.set(client, { score: decayed(entry, t) + 1, at: t });
        return;
      }
      if (clients.size >= maxClients) clients.delete(clients.keys().next().value!);
      clients.set(client, { score: 1, at: t });
    },
  };
}

interface Waiter {
  client: string;
  since: number;
  /** true: the priority lane's own extra slot is handed over. */
  resolve(extra: boolean): void;
  reject(error: unknown): void;
}

/**
 * Runs at most `slots` tasks at once; the others wait in two lanes (see the
 * module comment). The shared lane refuses at once when `maxWaiting` already
 * wait, or when the line ahead would take more than `maxWaitMs` at the recent
 * pace (a moving average of task durations: the bound follows the machine,
 * slow under load, fast when idle).
 */
export function createHashLine(slots: number, maxWaiting: number, maxWaitMs: number, now: () => number = () => performance.now()) {
  let running = 0;
  /** The priority lane's one extra slot: a known device never waits for a running hash to end. */
  let extraInUse = false;
  let averageMs = 50;
  const priority: Waiter[] = [];
  const shared: Waiter[] = [];
  const usage = createUsage(USAGE_HALF_LIFE_MS, MAX_TRACKED_CLIENTS, now);

  const wait = (queue: Waiter[], client: string) =>
    new Promise<boolean>((resolve, reject) => queue.push({ client, since: now(), resolve, reject }));

  /** The next shared waiter: one that waited too long, else the least recent user of the line (then arrival order). */
  const nextShared = (): Waiter | undefined => {
    if (shared.length === 0) return undefined;
    const t = now();
    let best = 0;
    let bestScore = Number.POSITIVE_INFINITY;
    for (let i = 0; i < shared.length; i++) {
      const w = shared[i]!;
      if (t - w.since > 2 * maxWaitMs) {
        best = i;
        break;
      }
      const score = usage.score(w.client, t);
      if (score < bestScore) {
        best = i;
        bestScore = score;
      }
    }
    return shared.splice(best, 1)[0];
  };

  /** The shared lane is full: the newcomer takes the place of a heavier client's waiter, or is refused. */
  const makeRoom = (mine: number) => {
    const t = now();
    let victim = -1;
    let heaviest = mine + 1;
    // The newest of the heaviest: the earlier arrivals keep their bounded wait.
    for (let i = shared.length - 1; i >= 0; i--) {
      const score = usage.score(shared[i]!.client, t);
      if (score > heaviest) {
        victim = i;
        heaviest = score;
      }
    }
    const seconds = Math.max(1, Math.ceil(((shared.length + priority.length) * averageMs) / slots / 1000));
    if (victim === -1) throw mine >= 1 ? overShare(seconds) : serverBusy();
    shared.splice(victim, 1)[0]!.reject(overShare(seconds));
  };

  return {
    /** How many wait in each lane (for tests and the benchmark). */
    get waiting() {
      return { priority: priority.length, shared: shared.length, running };
    },
    async run<T>(task: () => Promise<T>, lane: HashLane = UNATTRIBUTED): Promise<T> {
      let usesExtra = false;
      if (lane.priority === true) {
        if (running < slots) running++;
        else if (!extraInUse) {
          extraInUse = true;
          usesExtra = true;
        } else {
          if (priority.length >= maxWaiting) throw serverBusy();
          usesExtra = await wait(priority, '');
        }
      } else {
        const client = lane.client;
        // Every attempt counts, refused or not: a client that keeps knocking on a full line is
        // heavier than one that just arrived, even when the line lets few through.
        const mine = usage.score(client);
        usage.add(client);
        if (running < slots) running++;
        else {
          const expectedWaitMs = ((priority.length + shared.length + 1) * averageMs) / slots;
          if (shared.length >= maxWaiting || expectedWaitMs > maxWaitMs) makeRoom(mine);
          await wait(shared, client);
        }
      }
      const started = now();
      try {
        return await task();
      } finally {
        averageMs = 0.8 * averageMs + 0.2 * (now() - started);
        if (usesExtra) {
          const next = priority.shift();
          if (next) next.resolve(true);
          else extraInUse = false;
        } else {
          const next = priority.shift() ?? nextShared();
          if (next) next.resolve(false);
          else running--;
        }
      }
    },
  };
}

export function createPasswordHasher(
  options: PasswordHasherOptions = OWASP_ARGON2ID,
  concurrency = availableParallelism(),
  maxWaiting = QUEUE_PER_SLOT * Math.max(1, concurrency),
  maxWaitMs = MAX_EXPECTED_WAIT_MS,
): PasswordHasher {
  const argonOptions = { algorithm: ARGON2ID, ...options };
  const line = createHashLine(Math.max(1, concurrency), maxWaiting, maxWaitMs);
  // A malformed stored hash is a wrong password; a full line is SERVER_BUSY or RATE_LIMITED, never "wrong password".
  const check = (hashed: string, password: string, lane?: HashLane) => line.run(() => verify(hashed, password).catch(() => false), lane);
  // Made once, at start, off the event loop (never refused: nothing waits yet); the catch keeps an early failure from being unhandled.
  const dummy = line.run(() => hash('dummy-password-for-unknown-emails', argonOptions), { priority: true });
  dummy.catch(() => undefined);
  return {
    options,
    hash: (password, lane) => line.run(() => hash(password, argonOptions), lane),
    verify: check,
    verifyDummy: async (password, lane) => {
      await check(await dummy, password, lane);
      return false;
    },
  };
}

/**
 * README "API overview", the one password policy: the API enforces it (passwordProblems)
 * and serves it (GET /auth/password-policy) so clients check the same rule.
 * Length counts Unicode code points; the classes are Unicode categories, so
 * "Ärger123x" has its upper-case letter.
 */
export const PASSWORD_POLICY = Object.freeze({
  min_length: 8,
  max_length: 128,
  require_uppercase: true,
  require_lowercase: true,
  require_digit: true,
  description: '8 to 128 characters, with an upper-case letter, a lower-case letter and a digit.',
});

export function passwordProblems(password: string): string[] {
  const problems: string[] = [];
  const length = [...password].length;
  const { min_length: min, max_length: max } = PASSWORD_POLICY;
  if (length < min || length > max) problems.push(`must be ${min} to ${max} characters long`);
  if (PASSWORD_POLICY.require_uppercase && !/\p{Lu}/u.test(password)) problems.push('must contain an upper-case letter');
  if (PASSWORD_POLICY.require_lowercase && !/\p{Ll}/u.test(password)) problems.push('must contain a lower-case letter');
  if (PASSWORD_POLICY.require_digit && !/\p{Nd}/u.test(password)) problems.push('must contain a digit');
  return problems;
}
