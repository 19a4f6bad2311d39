/**
 * The bench's reference: a bare Fastify route that returns a constant JSON
 * body, on the same path the list case calls, so the load generator sends
 * byte-identical requests to both. Whatever the real service does on top of
 * this (auth, storage, serialisation, hooks) is the difference between the two.
 *
 *   PORT=3001 node --import tsx bench/reference-server.ts
 */
import Fastify from 'fastify';

const app = Fastify({ logger: false });
const body = { success: true, data: { devices: [], total_count: 0 }, message: 'OK' };

app.get('/api/v1/devices', async () => body);
app.get('/healthz', async () => ({ status: 'ok' }));

const port = Number(process.env.PORT ?? 3001);
await app.listen({ host: '127.0.0.1', port });
const stop = () => {
  void app.close().then(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
