// The served snapshot and how it is replaced: one refresh at a time (a push during a refresh runs
// one more right after it, never more), each bounded by a deadline; a refused or failed refresh
// keeps the last good snapshot.
import { wait } from '../common/wait.ts';
import type { DocumentValidator } from '../exporter/schema.ts';
import type { CacheMetrics, RefreshResult } from './metrics.ts';
import { buildSnapshot, versionLabel, type Snapshot } from './snapshot.ts';
import { readUpstream, type UpstreamOptions } from './upstream.ts';

export interface RefreshOutcome {
  result: RefreshResult;
  /** The served snapshot's version label after this refresh, if any. */
  version?: string;
  fetched?: number;
  problems?: string[];
  message?: string;
  durationMs: number;
}

export interface LogSink {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface BucketCacheOptions {
  upstream: UpstreamOptions;
  validate: DocumentValidator | undefined;
  metrics?: CacheMetrics;
  log?: LogSink;
  /** Deadline of one whole refresh. */
  refreshDeadlineMs: number;
}

export class BucketCache {
  #snapshot: Snapshot | undefined;
  #confirmedAt: number | undefined;
  #lastOutcome: RefreshOutcome | undefined;
  #running: Promise<RefreshOutcome> | undefined;
  #queued: Promise<RefreshOutcome> | undefined;
  readonly #options: BucketCacheOptions;

  constructor(options: BucketCacheOptions) {
    this.#options = options;
  }

  get snapshot(): Snapshot | undefined {
    return this.#snapshot;
  }

  /** Unix seconds at which the bucket last confirmed the served snapshot. */
  get confirmedAt(): number | undefined {
    return this.#confirmedAt;
  }

  get lastOutcome(): RefreshOutcome | undefined {
    return this.#lastOutcome;
  }

  /**
   * Refreshes now. A call while one runs waits for one more refresh after it (that one may see
   * what the running one listed too early); calls arriving meanwhile share that same one.
   */
  refresh(trigger: 'interval' | 'push', signal?: AbortSignal): Promise<RefreshOutcome> {
    if (!this.#running) return this.#start(trigger, signal);
    this.#queued ??= this.#running.then(() => {
      this.#queued = undefined;
      return this.#start(trigger, signal);
    });
    return this.#queued;
  }

  #start(trigger: 'interval' | 'push', signal?: AbortSignal): Promise<RefreshOutcome> {
    const run = this.#run(trigger, signal).finally(() => {
      if (this.#running === run) this.#running = undefined;
    });
    this.#running = run;
    return run;
  }

  async #run(trigger: 'interval' | 'push', signal?: AbortSignal): Promise<RefreshOutcome> {
    const started = performance.now();
    const { metrics, log } = this.#options;
    const deadline = AbortSignal.timeout(this.#options.refreshDeadlineMs);
    const read = await readUpstream(
      this.#options.upstream,
      this.#snapshot,
      signal ? AbortSignal.any([signal, deadline]) : deadline,
    ).catch((err: unknown) => ({
      kind: 'failed' as const,
      message: `refresh failed: ${(err as Error).message}`,
    }));
    const durationMs = Math.round(performance.now() - started);
    let outcome: RefreshOutcome;
    if (read.kind === 'unchanged') {
      this.#confirmedAt = Date.now() / 1000;
      outcome = { result: 'unchanged', durationMs, ...this.#version() };
    } else if (read.kind === 'failed') {
      outcome = { result: 'failed', message: read.message, durationMs, ...this.#version() };
      log?.warn({ trigger, durationMs }, `refresh failed, serving the last good snapshot: ${read.message}`);
    } else if (read.kind === 'refused') {
      outcome = { result: 'refused', problems: read.problems, durationMs, ...this.#version() };
      log?.error(
        { trigger, problems: read.problems.slice(0, 20) },
        'upstream state refused, serving the last good snapshot',
      );
    } else {
      const built = buildSnapshot(
        this.#options.upstream.prefix,
        read.objects,
        this.#options.validate,
        Date.now(),
      );
      if (!built.ok) {
        outcome = { result: 'refused', problems: built.problems, durationMs, ...this.#version() };
        log?.error(
          { trigger, problems: built.problems.slice(0, 20), count: built.problems.length },
          'upstream state is not a valid Flipt state, serving the last good snapshot',
        );
      } else {
        const s = built.snapshot;
        this.#snapshot = s;
        this.#confirmedAt = s.readAt / 1000;
        const version = versionLabel(s);
        metrics?.snapshot({ version, objects: s.sorted.length, bytes: s.bytes, flags: s.flags });
        outcome = { result: 'updated', fetched: read.fetched, durationMs, version };
        log?.info(
          {
            trigger,
            version,
            objects: s.sorted.length,
            flags: s.flags,
            bytes: s.bytes,
            fetched: read.fetched,
            durationMs,
          },
          'snapshot updated',
        );
      }
    }
    metrics?.refresh(outcome.result, trigger);
    this.#lastOutcome = outcome;
    return outcome;
  }

  #version(): { version?: string } {
    return this.#snapshot ? { version: versionLabel(this.#snapshot) } : {};
  }

  /** Refreshes every intervalMs (from the start of one to the start of the next) until aborted. */
  async loop(intervalMs: number, signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const started = Date.now();
      await this.refresh('interval', signal);
      await wait(Math.max(0, intervalMs - (Date.now() - started)), signal);
    }
  }
}
