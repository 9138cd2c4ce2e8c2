// The bucket cache with the real Flipt v1.61.1 and MinIO (issue 13): a seeded master, the exporter,
// MinIO behind a counting proxy, two cache replicas behind a Service stand-in (see
// harness/bucket-cache.ts: connection-level round-robin over the ready replicas, like kube-proxy),
// and sidecars started from the injector's real output in storage.mode "cache" (no Secret, the
// placeholder keys only) next to sidecars in the default mode reading MinIO directly.
//
// Shown: equivalence; the bucket's request count independent of the number of sidecars (1, 10, 30)
// and growing with it without the cache (1, 10); propagation with and without the exporter's push
// (--notify-url), and a failed push that fails nothing; MinIO down, an invalid object, a killed
// replica. Counts and times are printed (t.comment) for the docs; the
// assertions are on behaviour and on ratios measured in the same run, never on absolute times.
//
// FLIPT_E2E_CACHE_WINDOW_S sets the counting window per fleet size (default 30 s).
import t, { type Test } from 'tap';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { ask, compareServers, evaluationQuestions } from './harness/flipt-compare.ts';
import {
  FliptApi,
  evaluationPairs,
  flagsOf,
  seedMaster,
  standardSeed,
  variantsWithoutAttachment,
  type SeedSpec,
} from './harness/flipt-seed.ts';
import { createDocumentValidator } from '../../exporter/schema.ts';
import { injectedSidecar, startInjectedSidecar, useFliptMaster, type Sidecar } from './harness/flipt.ts';
import { exportTarget, runExporter, resultLine } from './harness/exporter.ts';
import { startBucketCache, startServiceStandIn, type BucketCacheProcess } from './harness/bucket-cache.ts';
import { startCountingProxy, useMinio } from '../support/minio.ts';
import { freePort } from '../support/process.ts';

t.setTimeout(1_200_000);

/**
 * The standard seed less what the exporter refuses to write (constraints Flipt v1.61.1's schema
 * has no operator for, checked with the exporter's own document check; `lt` is rewritten by the
 * exporter and kept), and the rules and rollouts that use a dropped segment: this suite is about
 * the path from the bucket on, not about the export (test/e2e/flipt-datapath.test.ts is).
 */
function exportableSeed(seed: SeedSpec): SeedSpec {
  const validate = createDocumentValidator();
  return {
    namespaces: seed.namespaces.map((ns) => {
      const segments = ns.segments.filter(
        (segment) =>
          validate([
            {
              version: '1.4',
              namespace: { key: ns.key },
              segments: [
                {
                  key: segment.key,
                  name: segment.name,
                  match_type: segment.matchType,
                  constraints: segment.constraints.map((c) => ({
                    type: c.type,
                    property: c.property,
                    operator: c.operator === 'lt' ? 'lte' : c.operator,
                    ...(c.value !== undefined ? { value: c.value } : {}),
                  })),
                },
              ],
            },
          ]).length === 0,
      );
      const kept = new Set(segments.map((g) => g.key));
      const flags = ns.flags.map((f) => ({
        ...f,
        rules: f.rules?.filter((r) => r.segments.every((k) => kept.has(k))),
        rollouts: f.rollouts?.filter((r) => !r.segment || r.segment.keys.every((k) => kept.has(k))),
      }));
      return { ...ns, segments, flags };
    }),
  };
}

const BUCKET = 'flags';
const PREFIX = 'fleet/';
const TOKEN = 'e2e-push-token-0123456789';
const WINDOW_MS = Number(process.env['FLIPT_E2E_CACHE_WINDOW_S'] ?? '30') * 1000;
const CACHE_MODE = { storage: { mode: 'cache', prefix: PREFIX } };
const DIRECT_MODE = { storage: { prefix: PREFIX } };
const POLL = { 'flipt.io/poll-interval': '2s', 'flipt.io/log-level': 'warn' };

const minio = await useMinio(t, { name: 'flipt-e2e-cache-minio' });
await minio.createBucket(BUCKET);
const master = await useFliptMaster(t);
const spec = exportableSeed(standardSeed());
await seedMaster(master.url, spec);
const api = new FliptApi(master.url);
await api.post('/api/v1/namespaces/default/flags', {
  key: 'cache-prop',
  name: 'cache-prop',
  type: 'BOOLEAN_FLAG_TYPE',
  enabled: false,
});
const creds = minio.credentialsEnv();
let notifyArgs: string[] = [];
const notifyEnv = { FLIPT_EXPORTER_NOTIFY_TOKEN: TOKEN };
const exportArgs = exportTarget({
  fliptUrl: master.url,
  bucket: BUCKET,
  prefix: PREFIX,
  endpoint: minio.endpoint,
});
async function exportOnce(extraArgs: string[] = [], extraEnv: Record<string, string> = {}) {
  const run = await runExporter([...exportArgs, ...extraArgs], { ...creds, ...extraEnv });
  if (run.code !== 0) throw new Error(`export failed: ${JSON.stringify(run.logs.slice(-3))}`);
  return { result: resultLine(run.logs), logs: run.logs };
}
await exportOnce();

// The cache's view of the bucket, counted: everything the cache replicas ask of MinIO.
const upstream = await startCountingProxy(minio.port);
t.teardown(() => upstream.close());
const replicas: BucketCacheProcess[] = [];
for (let i = 0; i < 2; i++) {
  const r = await startBucketCache({
    endpoint: upstream.url,
    bucket: BUCKET,
    prefix: PREFIX,
    credentials: creds,
    interval: '2s',
    refreshToken: TOKEN,
  });
  replicas.push(r);
  t.teardown(() => r.stop());
}
notifyArgs = ['--notify-url', replicas.map((r) => `http://localhost:${r.port}`).join(',')];
const service = await startServiceStandIn(replicas);
t.teardown(() => service.close());

const sidecars = new Set<Sidecar>();
t.teardown(() => Promise.all([...sidecars].map((s) => s.stop())));
async function sidecar(mode: 'cache' | 'direct', s3Endpoint?: string): Promise<Sidecar> {
  const s = await startInjectedSidecar({
    bucket: BUCKET,
    accessKeyId: creds.AWS_ACCESS_KEY_ID as string,
    secretAccessKey: creds.AWS_SECRET_ACCESS_KEY as string,
    annotations: POLL,
    config: mode === 'cache' ? CACHE_MODE : DIRECT_MODE,
    s3Endpoint: s3Endpoint ?? (mode === 'cache' ? service.url : minio.endpoint),
  });
  sidecars.add(s);
  return s;
}
async function stopAll(list: Sidecar[]) {
  await Promise.all(list.map((s) => s.stop()));
  for (const s of list) sidecars.delete(s);
}

const boolean = (url: string, flagKey: string) =>
  ask(url, {
    path: '/evaluate/v1/boolean',
    body: { namespaceKey: 'default', flagKey, entityId: 'e1', context: {} },
  });
async function enabledOf(url: string): Promise<boolean | undefined> {
  const a = await boolean(url, 'cache-prop');
  return a.status === 200 ? (a.body as { enabled: boolean }).enabled : undefined;
}
async function until(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<number> {
  const start = performance.now();
  while (performance.now() - start < timeoutMs) {
    if (await check()) return performance.now() - start;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}
async function setProp(enabled: boolean) {
  await api.put('/api/v1/namespaces/default/flags/cache-prop', {
    key: 'cache-prop',
    name: 'cache-prop',
    enabled,
  });
}
const servedTotal = async () => {
  let n = 0;
  for (const r of replicas) {
    for (const kind of ['get', 'head', 'list', 'not_found', 'not_modified', 'error'])
      n += await r.metric('flipt_bucket_cache_requests_total', { kind }).catch(() => 0);
  }
  return n;
};

const viaCache = await sidecar('cache');
const direct = await sidecar('direct');

t.test('cache mode: the injected sidecar carries no credential reference', async (t) => {
  const injected = injectedSidecar({
    bucket: BUCKET,
    accessKeyId: 'unused',
    secretAccessKey: 'unused',
    config: CACHE_MODE,
  });
  t.notOk(
    injected.container.env?.some((e) => e.valueFrom !== undefined),
    'no valueFrom: the pod namespace needs no Secret',
  );
  t.match(injected.env, {
    FLIPT_STORAGE_OBJECT_S3_ENDPOINT: 'http://flipt-bucket-cache.flipt-system.svc.cluster.local:8080',
    AWS_ACCESS_KEY_ID: 'flipt-bucket-cache',
    AWS_SECRET_ACCESS_KEY: 'not-a-secret',
  });
  t.equal(
    viaCache.env['AWS_ACCESS_KEY_ID'],
    'flipt-bucket-cache',
    'and the running sidecar uses exactly that',
  );
});

t.test('equivalence: a sidecar through the cache answers exactly like one on MinIO', async (t) => {
  const flags = flagsOf(spec);
  const questions = evaluationQuestions(flags, evaluationPairs(spec, 60));
  // The direct sidecar stands where the master usually does: no divergence is normalised (both
  // are sidecars, both answer "null" for a missing attachment).
  const result = await compareServers(direct.url, viaCache.url, questions, {
    withoutAttachment: variantsWithoutAttachment(spec),
  });
  t.comment(
    `${result.questions} questions, ${result.evaluations} evaluations, outcomes ${JSON.stringify(result.outcomes)}`,
  );
  t.equal(result.differences, 0, result.examples.join('\n'));
  t.equal(result.nullAttachment, 0, 'nothing normalised');
  t.ok(result.evaluations >= 3_000, `${result.evaluations} evaluations`);
  t.ok(Object.keys(result.outcomes).length >= 5, 'varied answers');
});

interface FleetCount {
  n: number;
  mode: 'cache' | 'direct';
  upstream: number;
  served: number;
  seconds: number;
}
const counts: FleetCount[] = [];

async function countFleet(t: Test, n: number, mode: 'cache' | 'direct'): Promise<FleetCount> {
  // Without the cache the sidecars' own requests are counted, through a proxy of their own.
  const own = mode === 'direct' ? await startCountingProxy(minio.port) : undefined;
  const fleet: Sidecar[] = [];
  try {
    for (let i = 0; i < n; i += 10) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(10, n - i) }, () => sidecar(mode, own?.url)),
      );
      fleet.push(...batch);
    }
    const proxy = own ?? upstream;
    proxy.reset();
    const servedBefore = await servedTotal();
    const started = performance.now();
    await new Promise((r) => setTimeout(r, WINDOW_MS));
    const seconds = (performance.now() - started) / 1000;
    const count: FleetCount = {
      n,
      mode,
      upstream: proxy.requests.length,
      served: mode === 'cache' ? (await servedTotal()) - servedBefore : 0,
      seconds,
    };
    const answers = await Promise.all(fleet.map((s) => boolean(s.url, 'cache-prop')));
    t.equal(answers.filter((a) => a.status === 200).length, n, `all ${n} sidecars of the fleet answer`);
    return count;
  } finally {
    await stopAll(fleet);
    await own?.close();
  }
}

t.test('the bucket sees the same requests for 1, 10 and 30 sidecars through the cache', async (t) => {
  for (const n of [1, 10, 30]) counts.push(await countFleet(t, n, 'cache'));
  for (const n of [1, 10]) counts.push(await countFleet(t, n, 'direct'));
  for (const c of counts) {
    t.comment(
      `${c.mode} ${String(c.n).padStart(2)} sidecars, ${c.seconds.toFixed(1)} s: bucket ${c.upstream} requests ` +
        `(${(c.upstream / c.seconds).toFixed(2)}/s)${c.mode === 'cache' ? `, cache served ${c.served} (${(c.served / c.seconds).toFixed(1)}/s)` : ''}`,
    );
  }
  const cache = counts.filter((c) => c.mode === 'cache');
  const [one, ten, thirty] = cache.map((c) => c.upstream / c.seconds) as [number, number, number];
  // Two replicas, one LIST each per 2 s: ~1 request/s whatever the fleet; the bound allows for a
  // refresh more or less at either end of the window.
  for (const [n, rate] of [
    [10, ten],
    [30, thirty],
  ] as const) {
    t.ok(
      Math.abs(rate - one) <= 0.25 * one + 0.1,
      `bucket rate with ${n} sidecars ${rate.toFixed(2)}/s ≈ with 1 ${one.toFixed(2)}/s`,
    );
  }
  // Served requests grow with the fleet (the sidecar used by the other tests polls too: N + 1).
  // Each sidecar asks 3 requests per poll; the effective poll interval shows whether the machine
  // kept up with 2 s (a sidecar rebuilds its whole snapshot every poll, CPU-bound).
  const served = cache.map((c) => c.served / c.seconds);
  for (const c of cache) {
    t.comment(
      `  ${c.n} + 1 sidecars polled every ${((3 * (c.n + 1)) / (c.served / c.seconds)).toFixed(1)} s on average`,
    );
  }
  t.ok((served[2] as number) > 2 * (served[0] as number), 'while what the cache served grew with the fleet');
  const [d1, d10] = counts.filter((c) => c.mode === 'direct').map((c) => c.upstream / c.seconds) as [
    number,
    number,
  ];
  t.ok(
    d10 > 5 * d1,
    `without the cache the bucket's rate grows with the fleet: ${d1.toFixed(2)}/s → ${d10.toFixed(2)}/s`,
  );
  t.ok(thirty < d10 / 3, 'and 30 sidecars through the cache cost the bucket less than 10 without it');
});

t.test('propagation master → exporter → MinIO → cache → sidecar, with and without the push', async (t) => {
  const rounds = 6;
  const times: Record<'interval' | 'push', number[]> = { interval: [], push: [] };
  const fromUpload: Record<'interval' | 'push', number[]> = { interval: [], push: [] };
  let state = (await enabledOf(viaCache.url)) ?? false;
  for (let i = 0; i < rounds * 2; i++) {
    const mode = i % 2 === 0 ? 'interval' : 'push';
    state = !state;
    const start = performance.now();
    await setProp(state);
    // The exporter's own push (--notify-url) to every replica, as the headless Service's records
    // give it in a cluster; "localhost" goes through the system resolver like a Service name.
    const { result, logs } = await exportOnce(
      mode === 'push' ? notifyArgs : [],
      mode === 'push' ? notifyEnv : {},
    );
    t.equal(result['result'], 'uploaded');
    const uploaded = performance.now();
    if (mode === 'push') {
      const pushed = logs.find((l) => typeof l.msg === 'string' && l.msg.startsWith('cache push sent to'));
      t.match(pushed, { pushed: 2, failed: 0 }, 'the exporter pushed to both replicas');
      // "unchanged" when the replica's own 2 s refresh read the upload first.
      const results = (pushed?.['results'] as string[]).map((r) => r.replace(/^.*: /, ''));
      t.ok(
        results.length === 2 && results.every((r) => r === 'updated' || r === 'unchanged'),
        `and both hold the upload: ${results.join(', ')}`,
      );
    } else {
      t.notOk(
        logs.some((l) => typeof l.msg === 'string' && /cache push/.test(l.msg)),
        'no push without --notify-url',
      );
    }
    const expected = state;
    await until(
      `the sidecar to serve enabled=${expected}`,
      async () => (await enabledOf(viaCache.url)) === expected,
    );
    times[mode].push(performance.now() - start);
    fromUpload[mode].push(performance.now() - uploaded);
  }
  const stats = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    const at = (q: number) => s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)] as number;
    return `p50 ${(at(0.5) / 1000).toFixed(2)} s, p95 ${(at(0.95) / 1000).toFixed(2)} s, max ${((s.at(-1) as number) / 1000).toFixed(2)} s`;
  };
  t.comment(`propagation (cache refresh 2 s, sidecar poll 2 s), ${rounds} changes each:`);
  t.comment(`  master change → sidecar, without push: ${stats(times.interval)}`);
  t.comment(`  master change → sidecar, with push:    ${stats(times.push)}`);
  t.comment(`  upload done → sidecar, without push:   ${stats(fromUpload.interval)}`);
  t.comment(`  upload done → sidecar, with push:      ${stats(fromUpload.push)}`);
  t.pass('every change reached the sidecar through the cache');
});

t.test('a failed push never fails the export: the interval refresh catches up', async (t) => {
  const before = (await enabledOf(viaCache.url)) ?? false;
  await setProp(!before);
  // One replica's push with a wrong token, one to a port nobody listens on.
  const closed = `http://127.0.0.1:${await freePort()}`;
  const { result, logs } = await exportOnce(
    ['--notify-url', `http://127.0.0.1:${replicas[0]!.port},${closed}`, '--notify-timeout', '2s'],
    { FLIPT_EXPORTER_NOTIFY_TOKEN: 'not-the-cache-token-0123' },
  );
  t.equal(result['result'], 'uploaded', 'exit 0 and uploaded');
  const warned = logs.find((l) => l.level === 'warn' && /cache push failed for 2 of 2/.test(String(l.msg)));
  t.ok(warned, 'the failed push is logged as a warning');
  t.same(((warned?.['failures'] ?? []) as { result: string }[]).map((f) => f.result).sort(), [
    'unauthorized',
    'unreachable',
  ]);
  await until(
    'the sidecar to catch up through the interval refresh',
    async () => (await enabledOf(viaCache.url)) === !before,
  );
  t.pass('the change arrived without the push');
});

t.test('an invalid object in the bucket: the cache keeps the last good snapshot', async (t) => {
  const before = await enabledOf(viaCache.url);
  const refusedBefore = await replicas[0]!.metric('flipt_bucket_cache_refreshes_total', {
    result: 'refused',
  });
  await minio
    .client()
    .send(new PutObjectCommand({ Bucket: BUCKET, Key: `${PREFIX}features.yml`, Body: 'flags: [broken' }));
  await until(
    'the cache to refuse the object',
    async () =>
      (await replicas[0]!.metric('flipt_bucket_cache_refreshes_total', { result: 'refused' })) >
      refusedBefore,
  );
  await new Promise((r) => setTimeout(r, 4_500));
  t.equal(await enabledOf(viaCache.url), before, 'the sidecar still answers from the last good state');
  t.notMatch(viaCache.logs(), /broken/, 'and never saw the broken object');
  const ready = await (await fetch(`${replicas[0]!.url}/readyz`)).json();
  t.match(ready, { ready: true, lastRefresh: { result: 'refused', problems: [/not valid YAML/] } });
  await exportOnce();
  await until('the cache to take the repaired state', async () => {
    const r = (await (await fetch(`${replicas[0]!.url}/readyz`)).json()) as {
      lastRefresh?: { result: string };
    };
    return r.lastRefresh?.result !== 'refused';
  });
});

t.test('MinIO down: the cache and its sidecars keep serving, and catch up after', async (t) => {
  const before = await enabledOf(viaCache.url);
  await minio.stop();
  try {
    await new Promise((r) => setTimeout(r, 5_000));
    t.equal(await enabledOf(viaCache.url), before, 'the sidecar answers');
    t.equal((await fetch(`${replicas[0]!.url}/readyz`)).status, 200, 'the cache stays ready');
    t.ok(
      (await replicas[0]!.metric('flipt_bucket_cache_upstream_requests_total', { result: 'error' })) > 0,
      'its refreshes fail meanwhile',
    );
    t.ok(
      (await replicas[0]!.metric('flipt_bucket_cache_snapshot_age_seconds')) >= 3,
      'and the age metric says so',
    );
  } finally {
    await minio.start();
  }
  await setProp(!before);
  await exportOnce();
  const ms = await until('the sidecar to catch up', async () => (await enabledOf(viaCache.url)) === !before);
  t.comment(`caught up ${(ms / 1000).toFixed(2)} s after the export that followed MinIO's return`);
});

t.test('a replica killed: sidecars switch to the other without an evaluation error', async (t) => {
  const fleet = await Promise.all([1, 2, 3].map(() => sidecar('cache')));
  const all = [viaCache, ...fleet];
  let evaluations = 0;
  let failures = 0;
  const stop = new AbortController();
  const load = (async () => {
    while (!stop.signal.aborted) {
      for (const s of all) {
        const a = await boolean(s.url, 'cache-prop').catch(() => ({ status: 0, body: null }));
        evaluations++;
        if (a.status !== 200) failures++;
      }
    }
  })();
  await new Promise((r) => setTimeout(r, 3_000));
  await replicas[0]!.kill();
  const state = await enabledOf(viaCache.url);
  await new Promise((r) => setTimeout(r, 3_000));
  await setProp(!state);
  await exportOnce();
  for (const s of all)
    await until(
      'every sidecar to serve the change via the surviving replica',
      async () => (await enabledOf(s.url)) === !state,
    );
  stop.abort();
  await load;
  const pollErrors = all.map((s) => (s.logs().match(/"level":"error"/g) ?? []).length);
  t.comment(
    `${evaluations} evaluations during the kill, ${failures} failed; sidecar error log lines: ${pollErrors.join(', ')}`,
  );
  t.equal(failures, 0, 'no evaluation failed');
  t.ok(evaluations > 50);
  await stopAll(fleet);
});
