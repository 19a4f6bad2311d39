/**
 * Closing what a test opened, also when it fails or times out.
 *
 * node:test runs `t.after()` hooks after a failure and after a timeout, so a
 * resource is safe once its hook is registered: call closeAtEnd right where
 * the resource comes into being, not at the end of the test body. Two traps
 * this covers:
 * - the body of a timed-out test runs on, and a hook it registers then never
 *   runs: a resource that appears after the test ended is closed at once
 *   (and the body stopped with an error);
 * - one hook that throws skips the hooks after it: each close is its own hook
 *   and a failed close is reported on stderr, not thrown.
 */
import type { TestContext } from 'node:test';

export function closeAtEnd<T>(t: TestContext, resource: T, close: (resource: T) => unknown): T {
  let closing: Promise<void> | undefined;
  const closeOnce = () =>
    (closing ??= Promise.resolve()
      .then(() => close(resource))
      .then(
        () => undefined,
        (error: unknown) => console.error(`teardown of "${t.name}" failed:`, error),
      ));
  if (t.signal.aborted) {
    void closeOnce();
    throw new Error(`"${t.name}" had already ended (timed out or cancelled) when this resource was ready; it was closed`);
  }
  t.after(closeOnce);
  return resource;
}

/** An after() hook body for suites (describe): closes what was opened, if it was, and never throws. */
export async function closeQuietly(what: string, close: () => unknown): Promise<void> {
  try {
    await close();
  } catch (error) {
    console.error(`teardown: closing ${what} failed:`, error);
  }
}
