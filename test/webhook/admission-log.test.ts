// Which admissions get a log line of their own (src/webhook/admission-log.ts): the first of each
// workload and outcome per window, every refusal, every admission at debug; the repeats as one line.
import { Writable } from 'node:stream';
import { pino } from 'pino';
import t from 'tap';
import { defaultConfig } from '../../src/core/config.ts';
import { AdmissionLog, MAX_REPEAT_GROUPS } from '../../src/webhook/admission-log.ts';
import { buildApp } from '../../src/webhook/app.ts';
import { admissionReview } from '../support/webhook.ts';

function capture() {
  const records: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').trim().split('\n')) records.push(JSON.parse(line));
      done();
    },
  });
  return { records, stream };
}

const injected = ['shop/web-*', 'injected', 'pod-label', false, 'sidecar injected'] as const;

t.test('a workload: its first admission in full, the repeats as one line when the window ends', async (t) => {
  const { records, stream } = capture();
  const log = new AdmissionLog(pino(stream), { everyAdmission: false, windowMs: 60_000 });
  t.equal(log.first(...injected), true, 'the first is logged');
  for (let i = 0; i < 4; i++) t.equal(log.first(...injected), false, 'a repeat is counted');
  t.equal(
    log.first('shop/api-*', 'injected', 'pod-label', false, 'sidecar injected'),
    true,
    'another workload',
  );
  t.equal(
    log.first('shop/web-*', 'skipped', 'not-requested', false, 'not labelled'),
    true,
    'another outcome',
  );
  t.equal(log.first('shop/web-*', 'injected', 'pod-label', true, 'sidecar injected'), true, 'a dry run');
  t.equal(log.first(...injected), false, 'a repeat after other workloads is still counted');
  log.flush();
  await new Promise((resolve) => setImmediate(resolve));
  t.same(
    records.map((r) => [r.pod, r.repeats, r.msg]),
    [['shop/web-*', 5, 'sidecar injected (5 more like it in the last 60s)']],
    'one summary, only for the workload that repeated',
  );
  t.match(records[0], { outcome: 'injected', reason: 'pod-label', dryRun: false });
  t.equal(log.first(...injected), true, 'a new window logs the first in full again');
});

t.test('the window ends by itself', async (t) => {
  const { records, stream } = capture();
  const log = new AdmissionLog(pino(stream), { everyAdmission: false, windowMs: 50 });
  log.first(...injected);
  log.first(...injected);
  const deadline = Date.now() + 5_000;
  while (records.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  t.match(records, [{ pod: 'shop/web-*', repeats: 1 }]);
});

t.test(
  'bounded: a flood of distinct workloads is logged in full, never remembered past the limit',
  async (t) => {
    const { records, stream } = capture();
    const log = new AdmissionLog(pino(stream), { everyAdmission: false, windowMs: 60_000, maxGroups: 3 });
    let logged = 0;
    for (let i = 0; i < 10_000; i++) {
      if (log.first(`shop/pod-${i}`, 'injected', 'pod-label', false, 'x')) logged++;
      if (i < 3) log.first(`shop/pod-${i}`, 'injected', 'pod-label', false, 'x');
    }
    t.equal(logged, 10_000, 'every distinct workload has its line');
    log.flush();
    await new Promise((resolve) => setImmediate(resolve));
    t.equal(records.length, 3, 'summaries only for the 3 workloads remembered');
    t.equal(MAX_REPEAT_GROUPS, 1_000);
  },
);

t.test('at debug every admission is logged, nothing is counted', async (t) => {
  const { records, stream } = capture();
  const log = new AdmissionLog(pino(stream), { everyAdmission: true });
  for (let i = 0; i < 3; i++) t.equal(log.first(...injected), true);
  log.flush();
  t.equal(records.length, 0);
});

const config = defaultConfig();
const pod = (annotations: Record<string, string> = {}) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { generateName: 'web-', namespace: 'shop', labels: { 'flipt.io/inject': 'true' }, annotations },
  spec: { containers: [{ name: 'app', image: 'nginx' }] },
});

for (const level of ['info', 'debug'] as const) {
  t.test(`the webhook at ${level}: refusals always in full, repeats counted until close`, async (t) => {
    const { records, stream } = capture();
    const app = buildApp({ config, log: pino({ level }, stream) });
    for (let i = 0; i < 3; i++) {
      const answer = await app.inject({
        method: 'POST',
        url: '/mutate',
        payload: admissionReview(pod(), 'shop'),
      });
      t.equal(answer.statusCode, 200);
    }
    for (let i = 0; i < 2; i++)
      await app.inject({
        method: 'POST',
        url: '/mutate',
        payload: admissionReview(pod({ 'flipt.io/http-port': 'x' }), 'shop'),
      });
    await app.close();
    const full = records.filter((r) => typeof r.uid === 'string');
    t.equal(full.filter((r) => r.outcome === 'rejected').length, 2, 'each refusal has its line');
    const injections = full.filter((r) => r.outcome === 'injected');
    const summaries = records.filter((r) => r.repeats !== undefined);
    if (level === 'info') {
      t.equal(injections.length, 1, 'the first injection in full');
      t.match(summaries, [{ pod: 'shop/web-*', outcome: 'injected', repeats: 2, msg: /2 more like it/ }]);
    } else {
      t.equal(injections.length, 3, 'every injection in full');
      t.same(summaries, []);
    }
  });
}
