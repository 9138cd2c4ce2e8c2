// Prometheus metrics for the webhook, on a registry owned by the app instance (never the global
// one), so tests and several apps in one process do not share counters.
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { InjectionResult } from '../core/inject.ts';

export interface WebhookMetrics {
  registry: Registry;
  /** Admission counts not yet handed to the metrics below (see PendingCounts). */
  tally: AdmissionTally;
  requests: Counter<'path'>;
  injected: Counter<'reason' | 'changed'>;
  skipped: Counter<'reason'>;
  rejected: Counter<'reason'>;
  errors: Counter<'kind'>;
  duration: Histogram<'outcome'>;
}

export function createMetrics(registry = new Registry()): WebhookMetrics {
  collectDefaultMetrics({ register: registry, prefix: 'flipt_injector_' });
  const registers = [registry];
  const duration = new Histogram({
    name: 'flipt_injector_admission_duration_seconds',
    help: 'Time to answer an AdmissionReview, by outcome',
    labelNames: ['outcome'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers,
    // Runs only on a read, after createMetrics has returned and `tally` exists.
    collect: () => tally.duration.flush(),
  });
  const tally: AdmissionTally = {
    requests: new PendingCounts(),
    injected: new PendingCounts(),
    injectedUnchanged: new PendingCounts(),
    skipped: new PendingCounts(),
    rejected: new PendingCounts(),
    duration: new PendingObservations(duration),
  };
  return {
    registry,
    tally,
    requests: new Counter({
      name: 'flipt_injector_admission_requests_total',
      help: 'AdmissionReview requests received, by webhook path',
      labelNames: ['path'],
      registers,
      collect() {
        tally.requests.flushInto(this);
      },
    }),
    injected: new Counter({
      name: 'flipt_injector_injections_total',
      help: 'Pods injected, by trigger; changed="false" when the pod already had the sidecar',
      labelNames: ['reason', 'changed'],
      registers,
      collect() {
        tally.injected.flushInto(this);
        tally.injectedUnchanged.flushInto(this);
      },
    }),
    skipped: new Counter({
      name: 'flipt_injector_skips_total',
      help: 'Pods not injected, by reason',
      labelNames: ['reason'],
      registers,
      collect() {
        tally.skipped.flushInto(this);
      },
    }),
    rejected: new Counter({
      name: 'flipt_injector_rejections_total',
      help: 'Pods refused (invalid annotation, conflict, ...), by reason',
      labelNames: ['reason'],
      registers,
      collect() {
        tally.rejected.flushInto(this);
      },
    }),
    errors: new Counter({
      name: 'flipt_injector_errors_total',
      help: 'Requests answered with an HTTP error: bad-request (4xx) or internal (5xx)',
      labelNames: ['kind'],
      registers,
    }),
    duration,
  };
}

// Admissions are counted in plain numbers per series and handed to prom-client in each metric's
// collect() hook, which prom-client runs on every read (a scrape, registry.metrics(), get()): what
// /metrics shows is unchanged, to the last admission. Why: prom-client's inc() and observe() build
// a label hash and validate the labels on every call (a `.labels()` child does too), which in the
// running server measured 5-10 µs per admission (issue 11). Label values are paths, reason codes
// and outcomes, a fixed handful, so the series maps stay small.

type Labels = Record<string, string>;

class PendingCounts {
  readonly #series = new Map<string, { labels: Labels; count: number }>();

  add(key: string, labels: () => Labels): void {
    const series = this.#series.get(key);
    if (series) series.count += 1;
    else this.#series.set(key, { labels: labels(), count: 1 });
  }

  flushInto(counter: Counter<string>): void {
    for (const series of this.#series.values()) {
      if (series.count === 0) continue;
      counter.inc(series.labels, series.count);
      series.count = 0;
    }
  }
}

/** Durations waiting for the histogram; at most this many per series, then handed over at once. */
export const PENDING_OBSERVATIONS = 1024;

class PendingObservations {
  readonly #series = new Map<string, { labels: Labels; values: Float64Array; length: number }>();
  readonly #histogram: Histogram<string>;

  constructor(histogram: Histogram<string>) {
    this.#histogram = histogram;
  }

  add(key: string, labels: () => Labels, value: number): void {
    let series = this.#series.get(key);
    if (!series) {
      series = { labels: labels(), values: new Float64Array(PENDING_OBSERVATIONS), length: 0 };
      this.#series.set(key, series);
    }
    series.values[series.length++] = value;
    // Bounded whether or not anything scrapes: a full buffer goes to the histogram now.
    if (series.length === PENDING_OBSERVATIONS) this.#flush(series);
  }

  flush(): void {
    for (const series of this.#series.values()) this.#flush(series);
  }

  #flush(series: { labels: Labels; values: Float64Array; length: number }) {
    for (let i = 0; i < series.length; i++)
      this.#histogram.observe(series.labels, series.values[i] as number);
    series.length = 0;
  }
}

interface AdmissionTally {
  requests: PendingCounts;
  injected: PendingCounts;
  injectedUnchanged: PendingCounts;
  skipped: PendingCounts;
  rejected: PendingCounts;
  duration: PendingObservations;
}

export function recordRequest(metrics: WebhookMetrics, path: string): void {
  metrics.tally.requests.add(path, () => ({ path }));
}

/**
 * Observes the time since `startMs` (performance.now(), monotonic, a double: hrtime.bigint()
 * allocated two BigInts per admission) under `outcome`.
 */
export function recordDuration(metrics: WebhookMetrics, outcome: string, startMs: number): void {
  const seconds = (performance.now() - startMs) / 1000;
  metrics.tally.duration.add(outcome, () => ({ outcome }), seconds);
}

export function recordResult(metrics: WebhookMetrics, result: InjectionResult): void {
  const { tally } = metrics;
  switch (result.outcome) {
    case 'injected': {
      const { reason } = result.decision;
      // Two maps rather than a "reason changed" key: no string is built per request.
      if (result.changed) tally.injected.add(reason, () => ({ reason, changed: 'true' }));
      else tally.injectedUnchanged.add(reason, () => ({ reason, changed: 'false' }));
      break;
    }
    case 'skipped': {
      const { reason } = result.decision;
      tally.skipped.add(reason, () => ({ reason }));
      break;
    }
    case 'rejected': {
      const { reason } = result;
      tally.rejected.add(reason, () => ({ reason }));
      break;
    }
  }
}
