/**
 * Issue 4, faults: storage that goes away never crashes the process and
 * never answers 500. While it is unreachable, API calls answer 503
 * SERVICE_UNAVAILABLE and /readyz fails; when it is back, requests succeed
 * without a restart.
 *
 * PostgreSQL outages are made for real: the app reaches the server through a
 * small TCP relay that can stop accepting, and pg_terminate_backend kills the
 * service's sessions (found by a unique application_name). The "nothing
 * listens" and SQLite cases need no server and run everywhere.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { type AddressInfo, createServer, connect, type Server, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { connectDatabase, type DatabaseHandle } from '../../src/store/connect.ts';
import { call, createTestApp, databaseKinds, PASSWORD, signupAndLogin, type TestApp, uniqueEmail } from '../helpers/app.ts';
import type { TestDatabase } from '../helpers/databases.ts';

const sqlite = databaseKinds().find((k) => k.name === 'sqlite')!;
const postgres = databaseKinds().find((k) => k.name === 'postgres');

type Response = Awaited<ReturnType<typeof call>>;

function assertUnavailable(response: Response) {
  assert.equal(response.res.statusCode, 503, response.res.body);
  assert.equal(response.body.success, false);
  assert.equal(response.body.error.code, 'SERVICE_UNAVAILABLE');
  assert.ok(response.body.error.request_id);
  assert.doesNotMatch(response.res.body, /ECONNREFUSED|terminat|pg_|sqlite|stack/i, 'no internals in the body');
}

/** A TestDatabase around a handle the test opened itself (closed by the test, not by createTestApp). */
const around = (handle: DatabaseHandle, url: string): TestDatabase => ({ handle, url, searchPath: undefined, drop: () => handle.close() });

const login = (t: TestApp, email: string) => call(t.app, 'POST', '/api/v1/auth/login', { email, password: PASSWORD });

describe('storage unreachable from the start (nothing listens on the port)', () => {
  test('the app builds, /healthz 200, /readyz and login 503 with the envelope, within seconds', async () => {
    const url = 'postgres://postgres@127.0.0.1:1/test';
    const handle = connectDatabase(url, { applicationName: 'td-test-nothing-listens' });
    const started = Date.now();
    const t = await createTestApp(sqlite, { db: around(handle, url) });
    try {
      assert.equal((await call(t.app, 'GET', '/healthz')).res.statusCode, 200);
      assertUnavailable(await call(t.app, 'GET', '/readyz'));
      const attempt = await login(t, uniqueEmail());
      assertUnavailable(attempt);
      assert.equal(attempt.res.headers['retry-after'], '5');
      // A bound against hanging on connection retries, loose enough for a loaded CI machine (not a timing test).
      assert.ok(Date.now() - started < 20_000, `took ${Date.now() - started} ms`);
    } finally {
      await t.app.close();
      await handle.close();
    }
  });
});

describe('storage closed under a running app (sqlite)', () => {
  test('login answers 503, not 500; /healthz still 200', async () => {
    const t = await createTestApp(sqlite);
    try {
      const user = await signupAndLogin(t.app);
      await t.db.handle.close();
      assertUnavailable(await login(t, user.email));
      assertUnavailable(await call(t.app, 'GET', '/readyz'));
      assert.equal((await call(t.app, 'GET', '/healthz')).res.statusCode, 200);
      assert.doesNotMatch(t.logs.text, /INTERNAL_ERROR/);
    } finally {
      await t.close();
    }
  });
});

/** A TCP relay to the PostgreSQL server that can stop accepting (and start again on the same port). */
async function startRelay(target: URL) {
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  const listen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      server = createServer((client) => {
        const upstream = connect(Number(target.port || 5432), target.hostname);
        for (const [socket, peer] of [[client, upstream], [upstream, client]] as const) {
          sockets.add(socket);
          socket.on('error', () => peer.destroy());
          socket.on('close', () => {
            sockets.delete(socket);
            peer.destroy();
          });
        }
        client.pipe(upstream).pipe(client);
      });
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve((server!.address() as AddressInfo).port));
    });
  const port = await listen(0);
  return {
    port,
    /** New connections are refused; open ones live until the server ends them. */
    refuse: () => new Promise<void>((resolve) => server!.close(() => resolve())),
    accept: () => listen(port),
    async close() {
      for (const socket of sockets) socket.destroy();
      if (server?.listening) await new Promise<void>((resolve) => server!.close(() => resolve()));
    },
  };
}

if (!postgres) {
  test('PostgreSQL faults', (t) => t.skip('TEST_DATABASE_URL does not name PostgreSQL: PostgreSQL fault tests NOT run'));
} else {
  describe('PostgreSQL faults (connections killed, server unreachable)', () => {
    const applicationName = `td-faults-${randomBytes(6).toString('hex')}`;
    const backgroundErrors: Error[] = [];
    let db: TestDatabase;
    let relay: Awaited<ReturnType<typeof startRelay>>;
    let handle: DatabaseHandle;
    let admin: pg.Client;
    let t: TestApp;

    /** pg_terminate_backend on every session of this app; returns how many it hit. */
    const killSessions = async (): Promise<number> => {
      const { rows } = await admin.query(
        `select pg_terminate_backend(pid) as killed from pg_stat_activity
          where datname = current_database() and pid <> pg_backend_pid() and application_name = $1`,
        [applicationName],
      );
      return rows.filter((row) => row.killed).length;
    };

    /** Killed sessions die asynchronously: wait (bounded) until the pool has heard of `count` of them. */
    const reportsReach = async (count: number) => {
      for (let i = 0; i < 100 && backgroundErrors.length < count; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    };

    before(async () => {
      db = await postgres.create();
      relay = await startRelay(new URL(db.url));
      const viaRelay = new URL(db.url);
      viaRelay.hostname = '127.0.0.1';
      viaRelay.port = String(relay.port);
      handle = connectDatabase(viaRelay.toString(), {
        searchPath: db.searchPath,
        applicationName,
        poolSize: 5,
        onBackgroundError: (error) => backgroundErrors.push(error),
      });
      admin = new pg.Client({ connectionString: db.url });
      await admin.connect();
      t = await createTestApp(postgres, { db: { ...db, handle } });
    });
    after(async () => {
      await t.app.close();
      await handle.close().catch(() => undefined);
      await relay.close();
      await admin.end();
      await db.drop();
    });

    test('sessions killed in the middle of traffic: every answer is 200 or 503, and the pool heals', async () => {
      const user = await signupAndLogin(t.app);
      const listDevices = () => call(t.app, 'GET', '/api/v1/devices', undefined, { token: user.accessToken });

      // Idle sessions killed: each dropped client is reported and replaced; the next request just works.
      await Promise.all(Array.from({ length: 5 }, listDevices));
      const idleKilled = await killSessions();
      assert.ok(idleKilled > 0);
      await reportsReach(idleKilled);
      assert.equal(backgroundErrors.length, idleKilled, 'one report per dropped connection');
      assert.equal((await listDevices()).res.statusCode, 200);

      // Busy sessions killed: requests in flight fail as 503, never as 500.
      let killed = idleKilled;
      const statuses: number[] = [];
      for (let round = 0; round < 5; round++) {
        const burst = Promise.all(Array.from({ length: 20 }, () => Promise.all([listDevices(), login(t, user.email)])));
        await new Promise((resolve) => setTimeout(resolve, 5));
        killed += await killSessions();
        for (const pair of await burst) statuses.push(...pair.map((r) => r.res.statusCode));
      }
      assert.ok(killed > idleKilled, 'sessions were killed under load');
      assert.deepEqual([...new Set(statuses)].filter((s) => s !== 200 && s !== 503), [], `statuses: ${statuses.join(',')}`);

      await reportsReach(killed);
      assert.equal((await listDevices()).res.statusCode, 200);
      assert.equal((await call(t.app, 'GET', '/readyz')).res.statusCode, 200);
      assert.doesNotMatch(t.logs.text, /INTERNAL_ERROR/);
    });

    test('server unreachable: 503 and /readyz 503 meanwhile; back again without a restart', async () => {
      const user = await signupAndLogin(t.app);
      await relay.refuse();
      const reported = backgroundErrors.length;
      await reportsReach(reported + (await killSessions()));
      try {
        const readyz = await call(t.app, 'GET', '/readyz');
        assertUnavailable(readyz);
        assertUnavailable(await login(t, user.email));
        assertUnavailable(await call(t.app, 'POST', '/api/v1/auth/refresh', { refresh_token: user.refreshToken }));
        assert.equal((await call(t.app, 'GET', '/healthz')).res.statusCode, 200);
      } finally {
        await relay.accept();
      }

      assert.equal((await call(t.app, 'GET', '/readyz')).res.statusCode, 200);
      const again = await login(t, user.email);
      assert.equal(again.res.statusCode, 200);
      assert.ok(again.body.data.access_token);
      assert.doesNotMatch(t.logs.text, /INTERNAL_ERROR/);
    });
  });
}
