// The watch server: /healthz reports the last export, /metrics the counters the issue asks for
// (exports, uploads, unchanged, failures, duration, last success), from a registry of its own.
import t from 'tap';
import type { ExportOutcome } from '../../exporter/export.ts';
import { HealthTracker } from '../../exporter/health.ts';
import { createMetrics } from '../../exporter/metrics.ts';
import { buildWatchServer } from '../../exporter/status-app.ts';

const summary = {
  namespaces: 2,
  flags: 10,
  segments: 3,
  bytes: 1234,
  sha256: 'ab',
  fliptRequests: 14,
  documents: 3,
  namespacesRead: 2,
  rewrites: [],
  durationMs: 120,
};
const uploaded: ExportOutcome = { status: 'uploaded', previousFlags: 9, ...summary };
const unchanged: ExportOutcome = { status: 'unchanged', ...summary };
const failed: ExportOutcome = {
  status: 'failed',
  stage: 'flipt',
  message: 'reading the Flipt master failed: HTTP 503',
  problems: [],
  fliptRequests: 3,
  durationMs: 30,
};

t.test('health follows the last export', async (t) => {
  const metrics = createMetrics({ processMetrics: false });
  const health = new HealthTracker();
  const app = buildWatchServer({ metrics, health: () => health.state });
  t.teardown(() => app.close());

  let res = await app.inject({ url: '/healthz' });
  t.equal(res.statusCode, 503);
  t.match(res.json(), { status: 'starting' });

  health.record(uploaded, new Date('2026-03-01T10:00:00Z'));
  res = await app.inject({ url: '/healthz' });
  t.equal(res.statusCode, 200);
  t.same(res.json(), {
    status: 'ok',
    lastResult: 'uploaded',
    lastSuccessAt: '2026-03-01T10:00:00.000Z',
    consecutiveFailures: 0,
  });

  health.record(failed, new Date());
  health.record(failed, new Date());
  res = await app.inject({ url: '/healthz' });
  t.equal(res.statusCode, 503);
  t.match(res.json(), {
    status: 'failing',
    lastResult: 'failed',
    lastError: 'reading the Flipt master failed: HTTP 503',
    lastSuccessAt: '2026-03-01T10:00:00.000Z',
    consecutiveFailures: 2,
  });
});

t.test('metrics count exports by result', async (t) => {
  const metrics = createMetrics({ processMetrics: false });
  const app = buildWatchServer({ metrics, health: () => ({ status: 'ok', consecutiveFailures: 0 }) });
  t.teardown(() => app.close());
  metrics.record(uploaded, 1_772_359_200);
  metrics.record(unchanged, 1_772_359_205);
  metrics.record(unchanged, 1_772_359_210);
  metrics.record(failed, 1_772_359_215);
  metrics.record({ ...failed, stage: 'guard' }, 1_772_359_220);

  const res = await app.inject({ url: '/metrics' });
  t.equal(res.statusCode, 200);
  t.match(res.headers['content-type'], /text\/plain; version=0\.0\.4/);
  const body = res.body;
  for (const line of [
    'flipt_exporter_exports_total 5',
    'flipt_exporter_uploads_total 1',
    'flipt_exporter_unchanged_total 2',
    'flipt_exporter_failures_total{stage="flipt"} 1',
    'flipt_exporter_failures_total{stage="guard"} 1',
    'flipt_exporter_failures_total{stage="s3"} 0',
    'flipt_exporter_export_duration_seconds_count 5',
    'flipt_exporter_last_success_timestamp_seconds 1772359210',
    'flipt_exporter_flags 10',
    'flipt_exporter_object_bytes 1234',
  ]) {
    t.ok(body.split('\n').includes(line), line);
  }
});

t.test('each metrics instance has its own registry', async (t) => {
  const a = createMetrics();
  const b = createMetrics();
  a.record(uploaded, 1);
  t.match(await b.registry.metrics(), /flipt_exporter_exports_total 0/);
  t.match(
    await a.registry.metrics(),
    /flipt_exporter_process_cpu_seconds_total/,
    'process metrics, prefixed',
  );
});
