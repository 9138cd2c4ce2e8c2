// Prometheus metrics of the watch loop, in a registry of their own (no global state).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ExportOutcome, FailureStage } from './export.ts';

export interface ExporterMetrics {
  readonly registry: Registry;
  /** Records one finished export. `atSeconds` is the wall-clock time it finished. */
  record(outcome: ExportOutcome, atSeconds: number): void;
}

const STAGES: readonly FailureStage[] = ['flipt', 'render', 'schema', 's3', 'guard', 'deadline'];

export function createMetrics(options: { processMetrics?: boolean } = {}): ExporterMetrics {
  const registry = new Registry();
  if (options.processMetrics ?? true)
    collectDefaultMetrics({ register: registry, prefix: 'flipt_exporter_' });
  const registers = [registry];
  const exports = new Counter({
    name: 'flipt_exporter_exports_total',
    help: 'Exports attempted, whatever their result.',
    registers,
  });
  const uploads = new Counter({
    name: 'flipt_exporter_uploads_total',
    help: 'Exports that changed the object and uploaded it.',
    registers,
  });
  const unchanged = new Counter({
    name: 'flipt_exporter_unchanged_total',
    help: 'Exports skipped because the object already held the same content.',
    registers,
  });
  const failures = new Counter({
    name: 'flipt_exporter_failures_total',
    help: 'Failed or refused exports, by the stage that stopped them (flipt, render, schema, s3, guard, deadline).',
    labelNames: ['stage'],
    registers,
  });
  for (const stage of STAGES) failures.labels(stage).inc(0);
  const duration = new Histogram({
    name: 'flipt_exporter_export_duration_seconds',
    help: 'Time of one export, from the first request to the master to the end of the upload.',
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers,
  });
  const lastSuccess = new Gauge({
    name: 'flipt_exporter_last_success_timestamp_seconds',
    help: 'Unix time of the last export that uploaded or found the object unchanged.',
    registers,
  });
  const flags = new Gauge({
    name: 'flipt_exporter_flags',
    help: 'Flags in the last successful export.',
    registers,
  });
  const segments = new Gauge({
    name: 'flipt_exporter_segments',
    help: 'Segments in the last successful export.',
    registers,
  });
  const rewritten = new Gauge({
    name: 'flipt_exporter_rewritten_constraints',
    help: 'Constraints "lt" written as the exactly equivalent "lte" in the last successful export (Flipt v1.61.1 sidecars cannot read "lt").',
    registers,
  });
  const namespacesRead = new Counter({
    name: 'flipt_exporter_namespaces_read_total',
    help: 'Namespaces read from the master; in watch mode only those whose version ETag changed.',
    registers,
  });
  const bytes = new Gauge({
    name: 'flipt_exporter_object_bytes',
    help: 'Size of the object of the last successful export.',
    registers,
  });

  return {
    registry,
    record(outcome, atSeconds) {
      exports.inc();
      duration.observe(outcome.durationMs / 1000);
      if (outcome.status === 'failed') {
        failures.labels(outcome.stage).inc();
        return;
      }
      namespacesRead.inc(outcome.namespacesRead);
      rewritten.set(outcome.rewrites.length);
      if (outcome.status === 'uploaded') uploads.inc();
      else unchanged.inc();
      lastSuccess.set(atSeconds);
      flags.set(outcome.flags);
      segments.set(outcome.segments);
      bytes.set(outcome.bytes);
    },
  };
}
