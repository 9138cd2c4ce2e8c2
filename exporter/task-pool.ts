// Bounded concurrency for work that arrives while it runs: per-flag reads start as soon as a page
// of the flag list arrives, rather than after the last page, so the master is never idle while the
// list is paged. At most `limit` tasks run at once; the first failure stops the rest (their signal
// is aborted, nothing new starts) and is what `done()` rejects with. No task's rejection is ever
// left unhandled, whatever happens to the pool. Hand-written rather than p-limit: p-limit bounds
// concurrency but neither stops at the first failure nor aborts the tasks in flight, and the
// wrapper that adds both is this class.

export class TaskPool<R> {
  readonly #limit: number;
  readonly #stop = new AbortController();
  readonly #signal: AbortSignal;
  readonly #queue: { index: number; run: (signal: AbortSignal) => Promise<R> }[] = [];
  readonly #results: R[] = [];
  #added = 0;
  #running = 0;
  #failure: { error: unknown } | undefined;
  #idle: (() => void) | undefined;

  constructor(limit: number, signal?: AbortSignal) {
    this.#limit = Math.max(1, limit);
    this.#signal = signal ? AbortSignal.any([signal, this.#stop.signal]) : this.#stop.signal;
  }

  /** Queues a task; its result lands at the position it was added in. */
  add(run: (signal: AbortSignal) => Promise<R>): void {
    if (this.#failure !== undefined) return;
    this.#queue.push({ index: this.#added++, run });
    this.#pump();
  }

  /** Stops the pool with `error` (e.g. the list feeding it failed). */
  fail(error: unknown): void {
    if (this.#failure === undefined) this.#failure = { error };
    this.#queue.length = 0;
    this.#stop.abort(error);
  }

  /** Waits for every task added so far; rejects with the first failure. */
  async done(): Promise<R[]> {
    while (this.#running > 0 || (this.#queue.length > 0 && this.#failure === undefined)) {
      await new Promise<void>((resolve) => (this.#idle = resolve));
    }
    if (this.#failure !== undefined) throw this.#failure.error;
    return this.#results;
  }

  #pump(): void {
    while (this.#running < this.#limit && this.#queue.length > 0 && this.#failure === undefined) {
      const task = this.#queue.shift() as { index: number; run: (signal: AbortSignal) => Promise<R> };
      this.#running++;
      void task
        .run(this.#signal)
        .then(
          (result) => {
            this.#results[task.index] = result;
          },
          (error: unknown) => this.fail(error),
        )
        .finally(() => {
          this.#running--;
          this.#pump();
          const idle = this.#idle;
          this.#idle = undefined;
          idle?.();
        });
    }
  }
}

/** Runs `fn` over `items` with at most `limit` in flight, results in order; the first failure stops the rest. */
export function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, signal: AbortSignal) => Promise<R>,
  signal?: AbortSignal,
): Promise<R[]> {
  const pool = new TaskPool<R>(limit, signal);
  for (const item of items) pool.add((s) => fn(item, s));
  return pool.done();
}
