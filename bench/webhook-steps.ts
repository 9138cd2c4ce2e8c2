// node bench/webhook-steps.ts — CPU per step of one admission of the webhook benchmark's pod,
// in-process: what each step of the handler costs, without TLS, HTTP or the load generator (use
// `BENCH_PROFILE=DIR npm run bench:webhook` for the whole server). CPU time (process.cpuUsage) of
// batches of calls, median of 7 batches; a shared machine inflates all figures alike.
//
//   BENCH_BODY=FILE measures another AdmissionReview (JSON).
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import sjson from 'secure-json-parse';
import { resolveSettings } from '../src/core/annotations.ts';
import { defaultConfig } from '../src/core/config.ts';
import { decide } from '../src/core/decide.ts';
import { injectPod, type InjectionContext } from '../src/core/inject.ts';
import { podDisplayName, type Pod } from '../src/core/k8s.ts';
import { SidecarCache } from '../src/core/sidecar-cache.ts';
import { buildSidecar } from '../src/core/sidecar.ts';
import { admissionAnswer, admissionResponse, parseAdmissionReview } from '../src/webhook/admission.ts';
import { createMetrics, recordDuration, recordRequest, recordResult } from '../src/webhook/metrics.ts';
import { benchReview } from './webhook-review.ts';

const text = process.env.BENCH_BODY
  ? readFileSync(process.env.BENCH_BODY, 'utf8')
  : JSON.stringify(benchReview);
const config = defaultConfig();
const body: unknown = JSON.parse(text);
const parsed = parseAdmissionReview(body);
if (!parsed.ok || !parsed.value.pod) throw new Error('the body is not a Pod CREATE');
const pod: Pod = parsed.value.pod;
const annotations = pod.metadata?.annotations ?? {};
const context: InjectionContext = {
  config,
  namespace: parsed.value.request.namespace,
  namespaceEnabled: false,
  kind: 'Pod',
  operation: 'CREATE',
};
const cache = new SidecarCache(config);
const cachedContext = { ...context, sidecars: cache };
const result = injectPod(pod, context);
if (result.outcome !== 'injected') throw new Error(`the pod is not injected: ${JSON.stringify(result)}`);
const resolved = resolveSettings(config, annotations);
if (!resolved.ok) throw new Error(resolved.errors.join('; '));
const answer = admissionResponse('uid-1', result, 'shop/x');
const metrics = createMetrics();
const log = pino({ level: 'info' }, new Writable({ write: (_c, _e, cb) => cb() }));

let sink: unknown;
function bench(name: string, fn: () => unknown, n = 20_000): number {
  for (let i = 0; i < n / 4; i++) sink = fn();
  const runs: number[] = [];
  for (let r = 0; r < 7; r++) {
    const start = process.cpuUsage();
    for (let i = 0; i < n; i++) sink = fn();
    const used = process.cpuUsage(start);
    runs.push((used.user + used.system) / n);
  }
  const us = runs.sort((a, b) => a - b)[3] as number;
  console.log(`${us.toFixed(2).padStart(8)} µs  ${name}`);
  return us;
}

console.log(`body ${text.length} bytes; patch ${JSON.stringify(result.patch).length} bytes\n`);
console.log('common to both servers');
bench('body JSON.parse (secure-json-parse, as Fastify)', () =>
  sjson.parse(text, undefined, { protoAction: 'error', constructorAction: 'error' }),
);
console.log('\nbefore (every admission builds everything)');
const before = [
  bench('parseAdmissionReview (TypeBox check + pod shape)', () => parseAdmissionReview(body)),
  bench('injectPod, uncached (all below + checks + planPatch)', () => injectPod(pod, context)),
  bench('answer: JSON.stringify(admissionResponse) (Fastify)', () =>
    JSON.stringify(admissionResponse('uid-1', result, 'shop/x')),
  ),
  bench('podDisplayName', () => podDisplayName(pod, 'shop')),
  bench('metrics, prom-client per admission (requests, timer, outcome)', () => {
    metrics.requests.inc({ path: '/mutate' });
    const stop = metrics.duration.startTimer();
    recordResult(metrics, result);
    stop({ outcome: 'injected' });
  }),
  bench('log line (pino child + line, null stream)', () =>
    log
      .child({ reqId: 'req-1' })
      .info(
        { uid: 'u', pod: 'shop/x', dryRun: false, outcome: 'injected', reason: 'pod-label', operations: 3 },
        'the pod is labelled flipt.io/inject=true',
      ),
  ),
];
console.log('  of which:');
bench('  decide', () =>
  decide({ pod, namespace: 'shop', namespaceEnabled: false, injectorNamespace: 'flipt-system' }),
);
bench('  resolveSettings', () => resolveSettings(config, annotations));
bench('  buildSidecar', () => buildSidecar(resolved.settings));
bench('  JSON.stringify(patch) + base64 (in the answer)', () =>
  Buffer.from(JSON.stringify(result.patch)).toString('base64'),
);
bench('  JSON.stringify(answer) alone (in the answer)', () => JSON.stringify(answer));

console.log('\nafter (sidecar cache, answer assembled as bytes, metrics counted until read)');
const cachedResult = injectPod(pod, cachedContext);
const after = [
  before[0] as number,
  bench('injectPod, cached', () => injectPod(pod, cachedContext)),
  bench('answer: admissionAnswer (encodePatch of a cached shape + envelope)', () =>
    admissionAnswer('uid-1', cachedResult, 'shop/x'),
  ),
  before[3] as number,
  bench('metrics, counted in plain numbers until read (recordRequest/Result/Duration)', () => {
    const start = performance.now();
    recordRequest(metrics, '/mutate');
    recordResult(metrics, cachedResult);
    recordDuration(metrics, 'injected', start);
  }),
  before[5] as number,
];
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
console.log(
  `\nhandler work besides body parsing: before ${sum(before).toFixed(1)} µs, after ${sum(after).toFixed(1)} µs`,
);
void sink;
