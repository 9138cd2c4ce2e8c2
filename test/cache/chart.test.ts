// The chart's bucket cache (bucketCache.*): off by default; on, a production-shaped Deployment of
// at least 2 replicas, its Service (and a headless one for the push), a PDB and, as an option, a
// NetworkPolicy; and the injector's config in cache mode points sidecars at that Service.
import t from 'tap';
import { parse } from 'yaml';
import { parseConfig } from '../../src/core/config.ts';
import {
  podTemplate,
  renderChart,
  restrictedViolations,
  runHelm,
  validateObject,
  CHART,
  describe,
} from '../deploy/support.ts';

const CACHE_ON = ['bucketCache.enabled=true', 'config.storage.mode=cache'];
const isCache = (o: { metadata: { labels?: Record<string, string> } }) =>
  o.metadata.labels?.['app.kubernetes.io/component'] === 'bucket-cache';

t.test('off by default', async (t) => {
  const objects = await renderChart();
  t.same(objects.filter(isCache), []);
});

t.test('on: Deployment, Services, PDB, valid and restricted; sidecars point at the Service', async (t) => {
  const objects = await renderChart([], [...CACHE_ON, 'bucketCache.refreshTokenSecret=cache-push']);
  const cache = objects.filter(isCache);
  t.same(cache.map((o) => `${o.kind}/${o.metadata.name}`).sort(), [
    'Deployment/flipt-bucket-cache',
    'PodDisruptionBudget/flipt-bucket-cache',
    'Service/flipt-bucket-cache',
    'Service/flipt-bucket-cache-peers',
  ]);
  for (const o of cache) await t.resolves(validateObject(o), describe(o));
  const deployment = cache.find((o) => o.kind === 'Deployment');
  const template = deployment && podTemplate(deployment);
  if (!deployment || !template) throw new Error('no cache Deployment');
  t.ok((deployment.spec as { replicas: number }).replicas >= 2);
  t.same(restrictedViolations(template.spec), []);
  const container = template.spec.containers[0];
  t.same(container?.args, ['dist/cache/main.js']);
  const env = Object.fromEntries((container?.env ?? []).map((e) => [e.name, e.value ?? e.valueFrom]));
  t.match(env, {
    FLIPT_CACHE_BUCKET: 'flipt',
    FLIPT_CACHE_ENDPOINT: 'http://minio.flipt-system.svc.cluster.local:9000',
    FLIPT_CACHE_REFRESH_TOKEN: { secretKeyRef: { name: 'cache-push', key: 'token' } },
    AWS_ACCESS_KEY_ID: { secretKeyRef: { name: 'flipt-s3-credentials', key: 'AWS_ACCESS_KEY_ID' } },
  });
  t.equal(
    (container?.readinessProbe as { httpGet?: { path?: string } } | undefined)?.httpGet?.path,
    '/readyz',
  );

  const configMap = objects.find((o) => o.kind === 'ConfigMap');
  const text = (configMap?.data as Record<string, string>)['config.yaml'] as string;
  const config = parseConfig(parse(text));
  if (!config.ok) throw new Error(config.errors.join('; '));
  t.equal(config.config.storage.mode, 'cache');
  const service = cache.find((o) => o.kind === 'Service' && o.metadata.name === 'flipt-bucket-cache');
  const port = (service?.spec as { ports: { port: number }[] }).ports[0]?.port;
  t.equal(
    config.config.storage.cacheEndpoint,
    `http://${service?.metadata.name}.${service?.metadata.namespace}.svc.cluster.local:${port}`,
    "the default cacheEndpoint is the chart's Service in flipt-system",
  );
});

t.test('NetworkPolicy option: injected pods by default, plus extra peers', async (t) => {
  const objects = await renderChart(
    [],
    [
      ...CACHE_ON,
      'bucketCache.networkPolicy.enabled=true',
      'bucketCache.networkPolicy.extraFrom[0].podSelector.matchLabels.app=flipt-exporter',
    ],
  );
  const policy = objects.find((o) => o.kind === 'NetworkPolicy');
  if (!policy) throw new Error('no NetworkPolicy');
  await t.resolves(validateObject(policy));
  t.same((policy.spec as { ingress: { from: unknown[] }[] }).ingress[0]?.from, [
    { namespaceSelector: {}, podSelector: { matchLabels: { 'flipt.io/inject': 'true' } } },
    { podSelector: { matchLabels: { app: 'flipt-exporter' } } },
  ]);
});

t.test('one replica is refused', async (t) => {
  const r = await runHelm([
    'template',
    'x',
    CHART,
    '--set',
    'bucketCache.enabled=true',
    '--set',
    'bucketCache.replicaCount=1',
  ]);
  t.not(r.code, 0);
  t.match(r.stderr, /replicaCount/);
});
