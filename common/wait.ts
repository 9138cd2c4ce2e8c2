// Waiting that a stop cuts short. One behaviour for every loop and retry: the promise resolves
// either way and says whether the whole time passed, so a loop just ends and a retry rethrows the
// signal's reason; nothing is left listening on the signal afterwards.

/** Waits `ms`; true when the time passed, false when `signal` aborted first (or already had). */
export function wait(ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const timer = setTimeout(() => finish(true), ms);
    const onAbort = () => finish(false);
    function finish(elapsed: boolean) {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      resolve(elapsed);
    }
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
