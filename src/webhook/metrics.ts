// Prometheus metrics for the webhook, on a registry owned by the app instance (never the global
// one), so tests and several apps in one process do not share counters.
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { InjectionResult } from '../core/inject.ts';

export interface WebhookMetrics {
  registry: Registry;
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
  return {
    registry,
    requests: new Counter({
      name: 'flipt_injector_admission_requests_total',
      help: 'AdmissionReview requests received, by webhook path',
      labelNames: ['path'],
      registers,
    }),
    injected: new Counter({
      name: 'flipt_injector_injections_total',
      help: 'Pods injected, by trigger; changed="false" when the pod already had the sidecar',
      labelNames: ['reason', 'changed'],
      registers,
    }),
    skipped: new Counter({
      name: 'flipt_injector_skips_total',
      help: 'Pods not injected, by reason',
      labelNames: ['reason'],
      registers,
    }),
    rejected: new Counter({
      name: 'flipt_injector_rejections_total',
      help: 'Pods refused (invalid annotation, conflict, ...), by reason',
      labelNames: ['reason'],
      registers,
    }),
    errors: new Counter({
      name: 'flipt_injector_errors_total',
      help: 'Requests answered with an HTTP error: bad-request (4xx) or internal (5xx)',
      labelNames: ['kind'],
      registers,
    }),
    duration: new Histogram({
      name: 'flipt_injector_admission_duration_seconds',
      help: 'Time to answer an AdmissionReview, by outcome',
      labelNames: ['outcome'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    }),
  };
}

// The labelled series each admission touches, looked up once per label set: prom-client otherwise
// hashes the label object on every inc() and observe() (issue 11's profile). Created on first use,
// so /metrics lists the same series as before; label values are reason codes, paths and outcomes,
// a fixed handful, so these maps stay small.
interface Series {
  requests: Map<string, { inc(): void }>;
  injected: Map<string, { inc(): void }>;
  injectedUnchanged: Map<string, { inc(): void }>;
  skipped: Map<string, { inc(): void }>;
  rejected: Map<string, { inc(): void }>;
  duration: Map<string, { observe(seconds: number): void }>;
}
const seriesOf = new WeakMap<WebhookMetrics, Series>();

function series(metrics: WebhookMetrics): Series {
  let s = seriesOf.get(metrics);
  if (!s) {
    s = {
      requests: new Map(),
      injected: new Map(),
      injectedUnchanged: new Map(),
      skipped: new Map(),
      rejected: new Map(),
      duration: new Map(),
    };
    seriesOf.set(metrics, s);
  }
  return s;
}

function child<T>(map: Map<string, T>, key: string, make: () => T): T {
  let found = map.get(key);
  if (found === undefined) {
    found = make();
    map.set(key, found);
  }
  return found;
}

export function recordRequest(metrics: WebhookMetrics, path: string): void {
  child(series(metrics).requests, path, () => metrics.requests.labels({ path })).inc();
}

/** Observes the time since `startNs` (process.hrtime.bigint()) under `outcome`. */
export function recordDuration(metrics: WebhookMetrics, outcome: string, startNs: bigint): void {
  const seconds = Number(process.hrtime.bigint() - startNs) / 1e9;
  child(series(metrics).duration, outcome, () => metrics.duration.labels({ outcome })).observe(seconds);
}

export function recordResult(metrics: WebhookMetrics, result: InjectionResult): void {
  const s = series(metrics);
  switch (result.outcome) {
    case 'injected': {
      const { reason } = result.decision;
      // Two maps rather than a "reason changed" key: no string is built per request.
      const changed = result.changed ? 'true' : 'false';
      const byReason = result.changed ? s.injected : s.injectedUnchanged;
      child(byReason, reason, () => metrics.injected.labels({ reason, changed })).inc();
      break;
    }
    case 'skipped': {
      const { reason } = result.decision;
      child(s.skipped, reason, () => metrics.skipped.labels({ reason })).inc();
      break;
    }
    case 'rejected': {
      const { reason } = result;
      child(s.rejected, reason, () => metrics.rejected.labels({ reason })).inc();
      break;
    }
  }
}
