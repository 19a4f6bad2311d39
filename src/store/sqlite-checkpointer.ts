/**
 * SQLite WAL checkpoints off the event loop.
 *
 * Why: in WAL mode every commit appends pages to the -wal file, and by default
 * the commit that takes it past 1,000 pages (16 MB with our 16 KiB pages) also
 * runs the checkpoint that copies them back into the database file — on the
 * thread that committed, which is the event loop. At a million devices those
 * pages are scattered over a 2 GB file and one checkpoint took 50–300 ms
 * (docs/performance.md): every request in flight waited. So the request
 * connection never checkpoints (`wal_autocheckpoint = 0`), and a worker
 * thread with its own connection runs a PASSIVE checkpoint every
 * CHECKPOINT_INTERVAL_MS. PASSIVE never blocks readers or the writer; the
 * writer restarts the -wal file from the beginning once everything in it
 * has been copied.
 *
 * Lifetimes: the worker lives as long as the connection (it is stopped before
 * the connection closes, and SQLite's last close checkpoints what is left).
 * Storage: nothing of its own. Threats: none new — the worker only copies
 * committed pages; a crash at any point is SQLite's ordinary WAL recovery.
 * If the worker dies, the request connection goes back to checkpointing
 * itself (slower, but the -wal file cannot grow without bound).
 */
import { resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import type BetterSqlite3 from 'better-sqlite3';

export const CHECKPOINT_INTERVAL_MS = 1_000;
/** SQLite's own default, restored if the worker is lost. */
const DEFAULT_AUTOCHECKPOINT_PAGES = 1_000;

export interface Checkpointer {
  stop(): Promise<void>;
}

export function startCheckpointer(sqlite: BetterSqlite3.Database, path: string, intervalMs = CHECKPOINT_INTERVAL_MS): Checkpointer {
  const worker = new Worker(new URL('./sqlite-checkpointer.worker.mjs', import.meta.url), { workerData: { path: resolve(path), intervalMs }, resourceLimits: { maxYoungGenerationSizeMb: 1, maxOldGenerationSizeMb: 16, stackSizeMb: 1 } });
  // The timer inside must not keep a finished process alive.
  worker.unref();
  sqlite.pragma('wal_autocheckpoint = 0');
  let stopping = false;
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  const fallBack = () => {
    if (!stopping && sqlite.open) sqlite.pragma(`wal_autocheckpoint = ${DEFAULT_AUTOCHECKPOINT_PAGES}`);
  };
  worker.once('error', fallBack);
  worker.once('exit', fallBack);
  return {
    async stop() {
      stopping = true;
      // Held while it finishes, or a process with nothing else to do would exit under our feet.
      worker.ref();
      worker.postMessage('stop');
      await exited;
    },
  };
}
