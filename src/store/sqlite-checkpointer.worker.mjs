// The SQLite checkpointer's thread (see sqlite-checkpointer.ts for why). Plain
// JavaScript on purpose: it runs the same under tsx (tests, development) and
// next to the esbuild bundle (`npm start` copies it to dist/server/), with no
// loader in the worker.
import { parentPort, workerData } from 'node:worker_threads';
import BetterSqlite3 from 'better-sqlite3';

const { path, intervalMs } = workerData;
// The file the request connection already created: never a new one, which nothing would checkpoint.
const db = new BetterSqlite3(path, { fileMustExist: true });
// Never wait on the main thread's locks: a busy checkpoint is simply tried again next time.
db.pragma('busy_timeout = 0');

let timer;
const checkpoint = () => {
  try {
    // PASSIVE copies every frame no reader still needs, and takes no lock the writer waits on.
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch {
    // SQLITE_BUSY and the like: the next tick tries again; the frames are safe in the -wal file meanwhile.
  }
  timer = setTimeout(checkpoint, intervalMs);
};
timer = setTimeout(checkpoint, intervalMs);

parentPort.on('message', (message) => {
  if (message !== 'stop') return;
  clearTimeout(timer);
  db.close();
  parentPort.close();
});
