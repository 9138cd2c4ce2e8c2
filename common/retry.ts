// One retry policy for every remote call (the Flipt master, S3): capped exponential backoff with
// jitter, a bounded number of attempts, and a stop signal that ends the wait at once. Jitter keeps
// a fleet of exporters or caches that failed together from retrying together. Hand-written rather
// than p-retry (the loop below is the whole of it): p-retry's `randomize` multiplies the delay by
// 1-2 and then caps it, so once the cap is reached every client waits exactly `maxTimeout` and the
// fleet retries in step again; here the jitter is taken off after the cap, so it survives there.
import { wait } from './wait.ts';

export interface RetryPolicy {
  /** Extra attempts after the first. */
  retries: number;
  /** Delay before the first retry; doubles each time, up to maxMs. */
  baseMs: number;
  maxMs: number;
  /** For tests: the wait between attempts (false = stopped) and the jitter source in [0, 1). */
  wait?: ((ms: number, signal?: AbortSignal) => Promise<boolean>) | undefined;
  random?: (() => number) | undefined;
}

export interface RetryEvent<E> {
  attempt: number;
  delayMs: number;
  error: E;
}

/** The delay before retry number `attempt` (1-based): doubled, capped, then up to half taken off. */
export function backoffDelay(attempt: number, policy: RetryPolicy, random: () => number): number {
  const capped = Math.min(policy.maxMs, policy.baseMs * 2 ** (attempt - 1));
  return Math.round(capped * (0.5 + random() / 2));
}

/**
 * Runs `op` until it succeeds, fails with an error `retryable` refuses, or the retries are spent
 * (the last error is thrown). A stop during an attempt or a wait throws the signal's reason.
 */
export async function retry<T, E = unknown>(
  op: () => Promise<T>,
  policy: RetryPolicy,
  options: {
    retryable: (error: unknown) => error is E;
    onRetry?: ((event: RetryEvent<E>) => void) | undefined;
    signal?: AbortSignal | undefined;
  },
): Promise<T> {
  const pause = policy.wait ?? wait;
  const random = policy.random ?? Math.random;
  for (let attempt = 1; ; attempt++) {
    try {
      return await op();
    } catch (err) {
      if (options.signal?.aborted) throw options.signal.reason;
      if (!options.retryable(err) || attempt > policy.retries) throw err;
      const delayMs = backoffDelay(attempt, policy, random);
      options.onRetry?.({ attempt, delayMs, error: err });
      if (!(await pause(delayMs, options.signal))) throw options.signal?.reason;
    }
  }
}
