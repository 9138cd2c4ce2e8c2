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

export function recordResult(metrics: WebhookMetrics, result: InjectionResult): void {
  switch (result.outcome) {
    case 'injected':
      metrics.injected.inc({ reason: result.decision.reason, changed: String(result.changed) });
      break;
    case 'skipped':
      metrics.skipped.inc({ reason: result.decision.reason });
      break;
    case 'rejected':
      metrics.rejected.inc({ reason: result.reason });
      break;
  }
}
