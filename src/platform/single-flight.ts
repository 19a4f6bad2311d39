/**
 * A background task that runs again and again, never twice at once: the next
 * run is scheduled only once the previous one has finished (a setTimeout
 * chain, not setInterval). With setInterval a run that outlasts the interval
 * is joined by the next one, and the next, each holding database connections
 * and event-loop time, until requests (/healthz included) stall behind them.
 *
 * - The timer is unref'd: a loop never keeps the process alive.
 * - A run that throws is logged; the loop goes on (the next run may succeed).
 * - stop() cancels the next run and resolves once the run in flight, if any,
 *   has finished, so shutdown can close the database after it.
 */

export interface SingleFlightOptions {
  /** The wait between the end of one run and the start of the next. */
  intervalMs: number;
  /** The wait before the first run (default: intervalMs). */
  firstDelayMs?: number;
  /** Named in the log line of a failed run. */
  name: string;
  log: { warn(object: object, message: string): void };
}

/**
 * Starts the loop. `run` resolves to true when it left work behind (a full
 * batch): the next run then starts at once, after a turn of the event loop.
 * Returns stop().
 */
export function startSingleFlight(run: () => Promise<boolean | void>, options: SingleFlightOptions): () => Promise<void> {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let inFlight: Promise<void> = Promise.resolve();

  const schedule = (delayMs: number) => {
    timer = setTimeout(tick, delayMs);
    timer.unref();
  };
  function tick() {
    timer = undefined;
    inFlight = Promise.resolve()
      .then(run)
      .catch((error: unknown) => {
        options.log.warn({ err: error }, `${options.name}: run failed; the next run tries again`);
        return false;
      })
      .then((more) => {
        if (!stopped) schedule(more === true ? 0 : options.intervalMs);
      });
  }

  schedule(options.firstDelayMs ?? options.intervalMs);
  return async () => {
    stopped = true;
    if (timer) clearTimeout(timer);
    await inFlight;
  };
}
