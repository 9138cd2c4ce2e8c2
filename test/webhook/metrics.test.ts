// Admission metrics are counted in plain numbers and handed to prom-client when it reads them:
// every read shows every admission exactly once, and the durations waiting for the histogram are
// bounded whether or not anything scrapes.
import t from 'tap';
import {
  createMetrics,
  PENDING_OBSERVATIONS,
  recordDuration,
  recordRequest,
  recordResult,
} from '../../src/webhook/metrics.ts';
import type { InjectionResult } from '../../src/core/inject.ts';

const skipped: InjectionResult = {
  outcome: 'skipped',
  decision: { action: 'skip', reason: 'not-requested', message: 'neither the pod nor its namespace asks' },
};

function sample(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(name));
  return line === undefined ? Number.NaN : Number(line.slice(line.lastIndexOf(' ') + 1));
}

t.test('every read shows every admission once', async (t) => {
  const metrics = createMetrics();
  for (let i = 0; i < 3; i++) recordRequest(metrics, '/mutate');
  recordRequest(metrics, '/mutate-namespace');
  recordResult(metrics, skipped);
  recordDuration(metrics, 'skipped', performance.now());
  let text = await metrics.registry.metrics();
  t.equal(sample(text, 'flipt_injector_admission_requests_total{path="/mutate"}'), 3);
  t.equal(sample(text, 'flipt_injector_admission_requests_total{path="/mutate-namespace"}'), 1);
  t.equal(sample(text, 'flipt_injector_skips_total{reason="not-requested"}'), 1);
  t.equal(sample(text, 'flipt_injector_admission_duration_seconds_count{outcome="skipped"}'), 1);
  // A second read adds nothing; new admissions are added to the totals.
  text = await metrics.registry.metrics();
  t.equal(sample(text, 'flipt_injector_admission_requests_total{path="/mutate"}'), 3);
  recordRequest(metrics, '/mutate');
  t.equal((await metrics.requests.get()).values.find((v) => v.labels.path === '/mutate')?.value, 4);
});

t.test('durations waiting for the histogram are bounded without any scrape', async (t) => {
  const metrics = createMetrics();
  let observed = 0;
  const observe = metrics.duration.observe.bind(metrics.duration);
  metrics.duration.observe = ((...args: Parameters<typeof observe>) => {
    observed++;
    observe(...args);
  }) as typeof metrics.duration.observe;
  const start = performance.now();
  for (let i = 0; i < PENDING_OBSERVATIONS - 1; i++) recordDuration(metrics, 'injected', start);
  t.equal(observed, 0, 'kept as numbers until the buffer is full');
  recordDuration(metrics, 'injected', start);
  t.equal(observed, PENDING_OBSERVATIONS, 'a full buffer goes to the histogram at once');
  recordDuration(metrics, 'injected', start);
  const text = await metrics.registry.metrics();
  t.equal(
    sample(text, 'flipt_injector_admission_duration_seconds_count{outcome="injected"}'),
    PENDING_OBSERVATIONS + 1,
  );
});
