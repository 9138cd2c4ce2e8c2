// deploy.sh against a real control plane: etcd + kube-apiserver + kube-controller-manager, with the
// kubelet stand-in reporting pod statuses (no container runtime here, and the image cannot be built).
// The injector runs on loopback from this repository (`flipt-injector serve`) with deploy.sh's
// certificates and the chart's rendered config, and deploy.sh registers it with --injector-url: a
// webhook clientConfig.url instead of the in-cluster Service, because the alternative
// (--enable-aggregator-routing and an EndpointSlice pointing at the injector) needs an endpoint
// address, which EndpointSlice validation refuses for loopback, and nothing but loopback may be used.
//
// One cluster for the file; the subtests run in order and build on each other: first run, what it
// created, second run, teardown.
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { dirname, join, resolve } from 'node:path';
import {
  AdmissionregistrationV1Api,
  AppsV1Api,
  BatchV1Api,
  CoreV1Api,
  DiscoveryV1Api,
  type KubernetesObject,
  type V1Container,
  type V1EnvVar,
  type V1MutatingWebhook,
  type V1Pod,
} from '@kubernetes/client-node';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { mutatingWebhookConfiguration } from '../../src/webhook/registration.ts';
import { freePort, startProcess } from '../support/process.ts';
import { kubectl, kubeTools } from '../support/kube-tools.ts';
import { webhookInvocations } from './harness/apiserver.ts';
import { useCluster } from './harness/controller-manager.ts';
import { SIDECAR_NAME, sidecarsOf } from './harness/injector.ts';
import { statusCode } from './harness/kube.ts';

const repo = resolve(import.meta.dirname, '..', '..');
const deployScript = join(repo, 'deploy.sh');
const renderedInjector = join(repo, 'manifests/flipt-sidecar-injector/flipt-sidecar-injector.yaml');
const renderedWebhook = join(repo, 'manifests/flipt-sidecar-injector/mutatingwebhookconfiguration.yaml');
const APP_NS = 'default';
const INJECTOR_NS = 'flipt-system';
const WEBHOOK_NAME = 'flipt-sidecar-injector';
// Bounds every wait inside deploy.sh (its DEPLOY_TIMEOUT) and each whole run.
const DEPLOY_WAIT = '120s';
const RUN_TIMEOUT_MS = 420_000;

// Several minutes warm: three deploy.sh runs, each with a few dozen kubectl calls and rollouts.
t.setTimeout(1_200_000);
const started = Date.now();
const cluster = await useCluster(t, { name: 'flipt-e2e-deploy' });
const { plane } = cluster;
t.comment(`cluster ready in ${Date.now() - started} ms (dir ${plane.dir})`);
const core = plane.kubeConfig.makeApiClient(CoreV1Api);
const apps = plane.kubeConfig.makeApiClient(AppsV1Api);
const batch = plane.kubeConfig.makeApiClient(BatchV1Api);
const discovery = plane.kubeConfig.makeApiClient(DiscoveryV1Api);
const admissionApi = plane.kubeConfig.makeApiClient(AdmissionregistrationV1Api);
const kube = { kubeconfig: plane.kubeconfigPath, timeoutMs: 60_000 };

// --- running deploy.sh -----------------------------------------------------------------------------

const tools = kubeTools();
const deployEnv: NodeJS.ProcessEnv = {
  ...process.env,
  // kubectl 1.35 and helm v4 from the npm package, ahead of anything on the machine.
  PATH: [dirname(tools.kubectl), dirname(tools.helm), process.env.PATH].join(':'),
  KUBECONFIG: plane.kubeconfigPath,
  KUBECACHEDIR: join(plane.dir, 'kube-cache'),
  HELM_CACHE_HOME: join(plane.dir, 'helm', 'cache'),
  HELM_CONFIG_HOME: join(plane.dir, 'helm', 'config'),
  HELM_DATA_HOME: join(plane.dir, 'helm', 'data'),
  DEPLOY_TIMEOUT: DEPLOY_WAIT,
};

interface RunResult {
  code: number;
  output: string;
  ms: number;
}

let runCount = 0;
/** Runs deploy.sh with `args`, its output (stdout and stderr, interleaved) kept in the plane's dir. */
async function deploySh(args: string[]): Promise<RunResult> {
  const logFile = join(plane.dir, `deploy-${++runCount}.log`);
  const begin = Date.now();
  const result = await new Promise<RunResult>((done, fail) => {
    const child = spawn('bash', [deployScript, ...args], {
      cwd: repo,
      env: deployEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    const timer = setTimeout(() => {
      output += `\n[test] deploy.sh killed after ${RUN_TIMEOUT_MS} ms\n`;
      child.kill('SIGKILL');
    }, RUN_TIMEOUT_MS);
    child.once('error', (err) => {
      clearTimeout(timer);
      fail(err);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      done({ code: code ?? 128, output, ms: Date.now() - begin });
    });
  });
  await writeFile(logFile, `$ deploy.sh ${args.join(' ')}\n${result.output}`);
  return result;
}

function httpsGet(url: string, ca: string): Promise<{ status: number; body: string }> {
  return new Promise((done, fail) => {
    const req = request(url, { ca, timeout: 5_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => done({ status: res.statusCode ?? 0, body }));
      res.on('error', fail);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', fail);
    req.end();
  });
}

// --- what the server holds ---------------------------------------------------------------------------

/** One stored object, reduced to what the comparisons need. */
interface Stored {
  key: string;
  uid: string;
  resourceVersion: string;
  generation?: number;
  /** Everything but status, resourceVersion and managedFields: what a re-apply would change. */
  fingerprint: string;
  owners: string[];
  object: KubernetesObject & Record<string, unknown>;
}

function objectKey(o: KubernetesObject): string {
  const group = (o.apiVersion ?? '').includes('/') ? (o.apiVersion ?? '').split('/')[0] : 'core';
  return `${group}/${o.kind}/${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;
}

function fingerprint(o: KubernetesObject & Record<string, unknown>): string {
  const { status: _status, metadata, ...rest } = o;
  const { resourceVersion: _rv, managedFields: _mf, ...meta } = metadata ?? {};
  return JSON.stringify({ ...rest, metadata: meta });
}

// Resources that change on their own (events, leases) or cannot be listed usefully.
const NOT_INVENTORIED = /^(events|events\.events\.k8s\.io|leases\.coordination\.k8s\.io|componentstatuses)$/;
let listableResources: string[] | undefined;

/**
 * Every object the API server holds in `default`, `flipt-system` and at cluster scope, read back
 * with kubectl (one `kubectl get` of every listable resource).
 */
async function inventory(): Promise<Map<string, Stored>> {
  if (!listableResources) {
    const res = await kubectl(['api-resources', '--verbs=list', '-o', 'name'], kube);
    if (res.code !== 0) throw new Error(`kubectl api-resources: ${res.stderr}`);
    listableResources = res.stdout.split('\n').filter((n) => n !== '' && !NOT_INVENTORIED.test(n));
  }
  const res = await kubectl(['get', listableResources.join(','), '--all-namespaces', '-o', 'json'], kube);
  if (res.code !== 0) throw new Error(`kubectl get: ${res.stderr}`);
  const list = JSON.parse(res.stdout) as { items: Array<KubernetesObject & Record<string, unknown>> };
  const stored = new Map<string, Stored>();
  for (const object of list.items) {
    const namespace = object.metadata?.namespace ?? '';
    if (namespace !== '' && namespace !== APP_NS && namespace !== INJECTOR_NS) continue;
    const key = objectKey(object);
    stored.set(key, {
      key,
      uid: object.metadata?.uid ?? '',
      resourceVersion: object.metadata?.resourceVersion ?? '',
      generation: object.metadata?.generation,
      fingerprint: fingerprint(object),
      owners: (object.metadata?.ownerReferences ?? []).map((r) => `${r.kind}/${r.name}`),
      object,
    });
  }
  return stored;
}

/** The objects `kubectl kustomize manifests/` renders: what deploy.sh applies (client-side only). */
async function renderedManifests(): Promise<KubernetesObject[]> {
  const res = await kubectl(['kustomize', join(repo, 'manifests')], kube);
  if (res.code !== 0) throw new Error(`kubectl kustomize manifests/: ${res.stderr}`);
  return parseAllDocuments(res.stdout)
    .map((d) => d.toJS() as KubernetesObject | null)
    .filter((o): o is KubernetesObject => o !== null);
}

async function renderedFile(file: string): Promise<KubernetesObject[]> {
  return parseAllDocuments(await readFile(file, 'utf8'))
    .map((d) => d.toJS() as KubernetesObject | null)
    .filter((o): o is KubernetesObject => o !== null);
}

function envValue(container: V1Container, name: string): V1EnvVar | undefined {
  return container.env?.find((e) => e.name === name);
}

const podsOf = async (namespace: string, selector: string): Promise<V1Pod[]> =>
  (await core.listNamespacedPod({ namespace, labelSelector: selector })).items;

// --- preconditions -------------------------------------------------------------------------------

if (!existsSync(deployScript)) throw new Error(`${deployScript} is missing: nothing to test`);
for (const file of [renderedInjector, renderedWebhook]) {
  if (!existsSync(file)) throw new Error(`${file} is missing (scripts/render-manifests.ts renders it)`);
}

// What exists before deploy.sh: the teardown must bring the cluster back to exactly this.
await cluster.waitFor(
  'the controller manager to publish kube-root-ca.crt in default',
  async () =>
    (await core.readNamespacedConfigMap({ namespace: APP_NS, name: 'kube-root-ca.crt' })) !== undefined,
  { timeoutMs: 60_000 },
);
const baseline = await inventory();

// One test holds the runs; its subtests run in order and build on each other.
t.test('deploy.sh against a real control plane', async (t) => {
  // --- certificates, then the injector, then the first run -------------------------------------------

  const certsDir = join(plane.dir, 'certs');
  const injectorPort = await freePort();
  const injectorUrl = `https://127.0.0.1:${injectorPort}`;
  // deploy.sh against this control plane, with the certificates --certs-only writes below.
  const deployArgs = [
    '--no-minikube',
    '--no-image-build',
    '--certs-dir',
    certsDir,
    '--injector-url',
    injectorUrl,
  ];

  const certsRun = await deploySh(['--certs-only', '--certs-dir', certsDir, '--injector-url', injectorUrl]);
  t.equal(certsRun.code, 0, `deploy.sh --certs-only:\n${certsRun.output}`);
  const files = ['ca.crt', 'ca.key', 'tls.crt', 'tls.key'].map((f) => join(certsDir, f));
  if (!files.every((f) => existsSync(f)))
    throw new Error(`deploy.sh --certs-only did not write ${files.join(', ')}`);

  // The injector's config: the ConfigMap the chart rendered into manifests/ (the same file deploy.sh
  // applies; checked against the cluster's copy below).
  const renderedConfigMap = (await renderedFile(renderedInjector)).find(
    (o) => o.kind === 'ConfigMap' && o.metadata?.name === WEBHOOK_NAME,
  ) as (KubernetesObject & { data?: Record<string, string> }) | undefined;
  const injectorConfigYaml = renderedConfigMap?.data?.['config.yaml'];
  if (injectorConfigYaml === undefined)
    throw new Error(`no ConfigMap ${WEBHOOK_NAME} with config.yaml in ${renderedInjector}`);
  const injectorConfigFile = join(plane.dir, 'injector-config.yaml');
  await writeFile(injectorConfigFile, injectorConfigYaml);
  const injectorConfig = parseYaml(injectorConfigYaml) as {
    storage: { bucket: string; endpoint: string; mode: string; cacheEndpoint: string };
    credentials: { secretName: string; accessKeyIdKey: string; secretAccessKeyKey: string };
    sidecar: { httpPort: number };
  };

  for (const key of ['ca.key', 'tls.key']) {
    t.equal(statSync(join(certsDir, key)).mode & 0o777, 0o600, `${key} is private (0600)`);
  }
  const caCert = await readFile(join(certsDir, 'ca.crt'), 'utf8');
  const servingCert = await readFile(join(certsDir, 'tls.crt'), 'utf8');
  const injector = await startProcess({
    name: 'flipt-injector',
    command: join(repo, 'node_modules/.bin/node'),
    args: [
      join(repo, 'src/cli.ts'),
      'serve',
      '--tls-cert',
      join(certsDir, 'tls.crt'),
      '--tls-key',
      join(certsDir, 'tls.key'),
      '--config',
      injectorConfigFile,
      '--host',
      '127.0.0.1',
      '--port',
      String(injectorPort),
    ],
    logFile: join(plane.dir, 'flipt-injector.log'),
    // Verifies TLS with deploy.sh's CA: the same trust the API server gets from the caBundle.
    ready: async () => (await httpsGet(`${injectorUrl}/healthz`, caCert)).status === 200,
    readyTimeoutMs: 30_000,
  });
  t.teardown(() => injector.stop());

  const firstRun = await deploySh(deployArgs);
  t.comment(`first deploy.sh run: exit ${firstRun.code} in ${firstRun.ms} ms`);
  if (firstRun.code !== 0) {
    t.fail(`deploy.sh failed (exit ${firstRun.code}):\n${firstRun.output}`);
    t.comment(`kubelet stand-in: ${cluster.kubelet.lastError()?.message ?? 'no error'}`);
  } else {
    await checks();
  }

  async function checks(): Promise<void> {
    const afterFirst = await inventory();

    t.test('the full run kept the still-valid certificates from --certs-only', async (t) => {
      t.equal(await readFile(join(certsDir, 'ca.crt'), 'utf8'), caCert, 'same CA');
      t.equal(await readFile(join(certsDir, 'tls.crt'), 'utf8'), servingCert, 'same serving certificate');
    });

    t.test('every manifest and chart object is stored by the API server', async (t) => {
      const expected = await renderedManifests();
      t.ok(expected.length > 10, `${expected.length} objects in manifests/`);
      for (const object of expected) {
        // kustomize leaves cluster-scoped objects and those of flipt-system with their own namespace.
        const key = objectKey(object);
        const stored = afterFirst.get(key);
        t.ok(stored, `stored: ${key}`);
        if (!stored) continue;
        t.has(
          stored.object.metadata?.labels ?? {},
          object.metadata?.labels ?? {},
          `${key}: labels as rendered`,
        );
        // The server kept what was rendered (plus defaults), except what deploy.sh fills in: the
        // image (--image, default equal) and the webhook's clientConfig (checked below).
        if (object.kind !== 'MutatingWebhookConfiguration') {
          const { metadata: _m, ...renderedBody } = object as KubernetesObject & Record<string, unknown>;
          t.has(stored.object, renderedBody, `${key}: content as rendered`);
        }
      }
      for (const [namespace, name] of [
        [APP_NS, 'minio-root-credentials'],
        [APP_NS, 'flipt-s3-credentials'],
        [INJECTOR_NS, 'flipt-sidecar-injector-tls'],
        // The bucket cache's (deploy.sh's default storage): its S3 keys and the push token, which
        // the exporter in default shares.
        [INJECTOR_NS, 'flipt-s3-credentials'],
        [INJECTOR_NS, 'flipt-bucket-cache-push'],
        [APP_NS, 'flipt-bucket-cache-push'],
      ] as const) {
        t.ok(afterFirst.has(`core/Secret/${namespace}/${name}`), `deploy.sh's Secret ${namespace}/${name}`);
      }
      const configMap = await core.readNamespacedConfigMap({ namespace: INJECTOR_NS, name: WEBHOOK_NAME });
      t.equal(
        configMap.data?.['config.yaml'],
        injectorConfigYaml,
        'the local injector runs the deployed config',
      );
    });

    t.test(
      "the chart's webhook configuration, with deploy.sh's CA, is what the API server calls",
      async (t) => {
        const registered = await admissionApi.readMutatingWebhookConfiguration({ name: WEBHOOK_NAME });
        const rendered = (await renderedFile(renderedWebhook)).find(
          (o) => o.kind === 'MutatingWebhookConfiguration',
        ) as (KubernetesObject & { webhooks: V1MutatingWebhook[] }) | undefined;
        if (!rendered) throw new Error(`no MutatingWebhookConfiguration in ${renderedWebhook}`);
        const caBundle = Buffer.from(caCert).toString('base64');
        t.equal(
          registered.webhooks?.length,
          rendered.webhooks.length,
          'as many webhooks as the chart renders',
        );
        for (const [i, webhook] of rendered.webhooks.entries()) {
          const stored = registered.webhooks?.[i];
          const { clientConfig, ...rest } = webhook;
          t.has(stored, rest, `${webhook.name}: everything but clientConfig as rendered`);
          t.same(
            stored?.clientConfig,
            { url: `${injectorUrl}${clientConfig.service?.path ?? ''}`, caBundle },
            `${webhook.name}: the chart's path on --injector-url, deploy.sh's CA bundle`,
          );
        }
        t.has(registered.metadata?.labels, rendered.metadata?.labels, 'labels as rendered');

        // ... and the code's own configuration (src/webhook/registration.ts) for the same target.
        const fromCode = mutatingWebhookConfiguration({
          name: WEBHOOK_NAME,
          caBundle,
          target: { url: injectorUrl },
          injectorNamespace: INJECTOR_NS,
        });
        t.has(registered.webhooks, fromCode.webhooks, 'what src/webhook/registration.ts would register');

        // The API server called it for sample-app's pod, and the injector injected it.
        const samplePods = await podsOf(APP_NS, 'app.kubernetes.io/name=sample-app');
        const calls = (await plane.auditEvents()).filter(
          (e) =>
            e.verb === 'create' &&
            e.stage === 'ResponseComplete' &&
            e.objectRef?.resource === 'pods' &&
            e.objectRef.namespace === APP_NS &&
            webhookInvocations(e).some((w) => w.configuration === WEBHOOK_NAME),
        );
        t.ok(
          calls.length >= samplePods.length && calls.length > 0,
          `${calls.length} pod creation(s) sent to the webhook`,
        );
        for (const event of calls) {
          const ours = webhookInvocations(event).filter((w) => w.configuration === WEBHOOK_NAME);
          t.equal(
            ours[0]?.webhook,
            'pod.inject.flipt.io',
            'the pod entry (labelled pod, namespace not enabled)',
          );
          t.equal(ours[0]?.mutated, true, 'and it mutated the pod');
          t.equal(event.responseStatus?.code, 201);
        }
        const log = await readFile(injector.logFile, 'utf8');
        const injected = log
          .split('\n')
          .filter((l) => l.startsWith('{'))
          .map((l) => JSON.parse(l) as { outcome?: string; pod?: string; dryRun?: boolean })
          .filter((l) => l.outcome === 'injected' && !l.dryRun);
        t.ok(
          injected.some((l) => (l.pod ?? '').startsWith(`${APP_NS}/sample-app-`)),
          `the injector's log shows sample-app injected: ${JSON.stringify(injected.map((l) => l.pod))}`,
        );
        const metrics = await httpsGet(`${injectorUrl}/metrics`, caCert);
        t.match(metrics.body, /flipt_injector_injections_total\{[^}]*\} [1-9]/, 'counted in its metrics');
      },
    );

    t.test('sample-app: one flipt-sidecar, pointed at the bucket cache, which reads MinIO', async (t) => {
      t.equal(injectorConfig.storage.mode, 'cache', "deploy.sh's default storage is the bucket cache");
      const deployment = await apps.readNamespacedDeployment({ namespace: APP_NS, name: 'sample-app' });
      t.notOk(
        [
          ...(deployment.spec?.template.spec?.initContainers ?? []),
          ...(deployment.spec?.template.spec?.containers ?? []),
        ].some((c) => c.name === SIDECAR_NAME),
        'the Deployment itself has no sidecar',
      );
      const pods = await podsOf(APP_NS, 'app.kubernetes.io/name=sample-app');
      t.equal(pods.length, deployment.spec?.replicas ?? 1, 'the ReplicaSet controller made its pods');
      for (const pod of pods) {
        t.equal(
          pod.metadata?.ownerReferences?.[0]?.kind,
          'ReplicaSet',
          `${pod.metadata?.name}: made by the controller`,
        );
        t.same(sidecarsOf(pod), { init: 1, main: 0 }, 'exactly one flipt-sidecar, a native sidecar');
        const sidecar = pod.spec?.initContainers?.find((c) => c.name === SIDECAR_NAME);
        if (!sidecar) continue;
        t.equal(sidecar.restartPolicy, 'Always');

        // Endpoint: the bucket cache's Service, which exists and serves that port.
        const endpoint = envValue(sidecar, 'FLIPT_STORAGE_OBJECT_S3_ENDPOINT')?.value ?? '';
        t.equal(endpoint, injectorConfig.storage.cacheEndpoint);
        const url = new URL(endpoint);
        const [serviceName, serviceNs = APP_NS] = url.hostname.split('.');
        const service = await core.readNamespacedService({ namespace: serviceNs, name: serviceName ?? '' });
        t.equal(
          service.metadata?.labels?.['app.kubernetes.io/component'],
          'bucket-cache',
          `${endpoint} is the bucket cache's Service`,
        );
        t.ok(
          service.spec?.ports?.some((p) => p.port === Number(url.port)),
          `the bucket cache's Service serves port ${url.port}`,
        );
        // The cache reads what the exporter writes: the MinIO Service, with a Secret of its namespace.
        const cacheDeployment = await apps.readNamespacedDeployment({
          namespace: INJECTOR_NS,
          name: 'flipt-bucket-cache',
        });
        t.ok((cacheDeployment.status?.readyReplicas ?? 0) >= 2, 'the bucket cache runs 2 ready replicas');
        const cache = cacheDeployment.spec?.template.spec?.containers[0];
        const upstream = (cache && envValue(cache, 'FLIPT_CACHE_ENDPOINT')?.value) ?? '';
        const minioUrl = new URL(upstream);
        const [minioName, minioNs = APP_NS] = minioUrl.hostname.split('.');
        const minio = await core.readNamespacedService({ namespace: minioNs, name: minioName ?? '' });
        t.equal(
          minio.metadata?.labels?.['app.kubernetes.io/name'],
          'minio',
          `${upstream} is the MinIO Service`,
        );
        for (const name of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']) {
          const ref = cache && envValue(cache, name)?.valueFrom?.secretKeyRef;
          const cacheSecret = await core.readNamespacedSecret({
            namespace: INJECTOR_NS,
            name: ref?.name ?? '',
          });
          t.ok(
            ref?.key && cacheSecret.data?.[ref.key],
            `the cache's ${name} from ${INJECTOR_NS}/${ref?.name}`,
          );
        }

        // Bucket: the one the bucket Job creates and the exporter writes.
        const bucket = envValue(sidecar, 'FLIPT_STORAGE_OBJECT_S3_BUCKET')?.value;
        t.equal(bucket, injectorConfig.storage.bucket);
        const bucketJob = await batch.readNamespacedJob({ namespace: APP_NS, name: 'minio-create-bucket' });
        t.ok(
          bucketJob.spec?.template.spec?.containers.some((c) =>
            (c.args ?? []).some((a) => a.endsWith(`/${bucket ?? ''}`)),
          ),
          `the minio-create-bucket Job creates bucket ${bucket}`,
        );
        const cronJob = await batch.readNamespacedCronJob({ namespace: APP_NS, name: 'flipt-exporter' });
        const exporter = cronJob.spec?.jobTemplate.spec?.template.spec?.containers[0];
        t.equal(
          exporter && envValue(exporter, 'FLIPT_EXPORTER_BUCKET')?.value,
          bucket,
          'the exporter writes it',
        );
        t.equal(
          exporter && envValue(exporter, 'FLIPT_EXPORTER_ENDPOINT')?.value,
          upstream,
          'at the endpoint the cache reads',
        );
        // The exporter pushes every cache replica with the cache's token (the same Secret value).
        t.match(
          exporter && envValue(exporter, 'FLIPT_EXPORTER_NOTIFY_URL')?.value,
          /^http:\/\/flipt-bucket-cache-peers\.flipt-system\.svc\.cluster\.local:\d+$/,
        );
        const pushRef =
          exporter && envValue(exporter, 'FLIPT_EXPORTER_NOTIFY_TOKEN')?.valueFrom?.secretKeyRef;
        const cachePushRef = cache && envValue(cache, 'FLIPT_CACHE_REFRESH_TOKEN')?.valueFrom?.secretKeyRef;
        const [exporterToken, cacheToken] = await Promise.all([
          core.readNamespacedSecret({ namespace: APP_NS, name: pushRef?.name ?? '' }),
          core.readNamespacedSecret({ namespace: INJECTOR_NS, name: cachePushRef?.name ?? '' }),
        ]);
        const token = exporterToken.data?.[pushRef?.key ?? ''];
        t.ok(token && Buffer.from(token, 'base64').length >= 16, 'a push token of at least 16 characters');
        t.equal(token, cacheToken.data?.[cachePushRef?.key ?? ''], 'the same token on both sides');

        // Credentials: none in the app namespace, only the placeholders the cache does not check.
        t.equal(envValue(sidecar, 'AWS_ACCESS_KEY_ID')?.value, 'flipt-bucket-cache');
        t.notOk(
          (sidecar.env ?? []).some((e) => e.valueFrom?.secretKeyRef),
          'the sidecar references no Secret',
        );
      }

      // The Service's sidecar port resolves to the sidecar's container port (EndpointSlice controller).
      const service = await core.readNamespacedService({ namespace: APP_NS, name: 'sample-app' });
      const sidecarServicePort = service.spec?.ports?.find((p) => p.port === 8080);
      t.ok(sidecarServicePort, 'sample-app Service port 8080');
      await cluster.waitFor(
        'an EndpointSlice for sample-app with its pods ready',
        async () => {
          const slices = await discovery.listNamespacedEndpointSlice({
            namespace: APP_NS,
            labelSelector: 'kubernetes.io/service-name=sample-app',
          });
          return slices.items.some((s) => (s.endpoints ?? []).some((e) => e.conditions?.ready));
        },
        { timeoutMs: 60_000 },
      );
      const slices = (
        await discovery.listNamespacedEndpointSlice({
          namespace: APP_NS,
          labelSelector: 'kubernetes.io/service-name=sample-app',
        })
      ).items;
      const slicePort = slices.flatMap((s) => s.ports ?? []).find((p) => p.name === sidecarServicePort?.name);
      t.equal(slicePort?.port, injectorConfig.sidecar.httpPort, "Service port 8080 → the sidecar's httpPort");
      const sidecarPorts = pods.flatMap((p) =>
        (p.spec?.initContainers ?? []).filter((c) => c.name === SIDECAR_NAME).flatMap((c) => c.ports ?? []),
      );
      t.ok(
        sidecarPorts.some((p) => p.containerPort === slicePort?.port),
        `port ${slicePort?.port} is a port of the flipt-sidecar container`,
      );
      t.same(
        slices.flatMap((s) => (s.endpoints ?? []).flatMap((e) => e.addresses)).sort(),
        pods.map((p) => p.status?.podIP).sort(),
        'its endpoints are the sample-app pods',
      );

      // Nobody else gets a sidecar.
      for (const selector of [
        'app.kubernetes.io/name=minio',
        'app.kubernetes.io/name=minio-create-bucket',
        'app.kubernetes.io/name=flipt-master',
        'app.kubernetes.io/name=flipt-exporter',
      ]) {
        const others = await podsOf(APP_NS, selector);
        t.ok(others.length > 0, `${selector}: pods exist`);
        for (const pod of others)
          t.same(sidecarsOf(pod), { init: 0, main: 0 }, `${pod.metadata?.name}: no sidecar`);
      }
      const injectorPods = await podsOf(INJECTOR_NS, 'app.kubernetes.io/name=flipt-sidecar-injector');
      t.ok(injectorPods.length >= 4, 'the injector and the bucket cache run replicas ≥ 2 each');
      for (const pod of injectorPods)
        t.same(sidecarsOf(pod), { init: 0, main: 0 }, `${pod.metadata?.name}: no sidecar`);
    });

    t.test('Pod Security admission (restricted, enforced) admits every pod of every workload', async (t) => {
      for (const name of [APP_NS, INJECTOR_NS]) {
        const ns = await core.readNamespace({ name });
        t.equal(
          ns.metadata?.labels?.['pod-security.kubernetes.io/enforce'],
          'restricted',
          `${name} enforces restricted`,
        );
      }
      for (const namespace of [APP_NS, INJECTOR_NS]) {
        for (const d of (await apps.listNamespacedDeployment({ namespace })).items) {
          t.equal(
            d.status?.readyReplicas,
            d.spec?.replicas,
            `${namespace}/${d.metadata?.name}: every replica's pod admitted`,
          );
        }
        for (const j of (await batch.listNamespacedJob({ namespace })).items) {
          const complete = j.status?.conditions?.some((c) => c.type === 'Complete' && c.status === 'True');
          // A CronJob's newest Job may still be running; its pod must exist all the same.
          const pods = await podsOf(namespace, `batch.kubernetes.io/job-name=${j.metadata?.name ?? ''}`);
          t.ok(complete || pods.length > 0, `${namespace}/job ${j.metadata?.name}: its pod was admitted`);
        }
        const failed = (await core.listNamespacedEvent({ namespace })).items.filter(
          (e) => e.reason === 'FailedCreate',
        );
        t.same(
          failed.map((e) => e.message),
          [],
          `${namespace}: no FailedCreate events`,
        );
      }
      // The audit log has every pod creation: all allowed, all under the restricted policy.
      const podCreates = (await plane.auditEvents()).filter(
        (e) =>
          e.verb === 'create' &&
          e.stage === 'ResponseComplete' &&
          e.objectRef?.resource === 'pods' &&
          (e.objectRef.namespace === APP_NS || e.objectRef.namespace === INJECTOR_NS),
      );
      // Every pod that exists was created once (a generated name is not in the audit event yet).
      const existing =
        (await core.listNamespacedPod({ namespace: APP_NS })).items.length +
        (await core.listNamespacedPod({ namespace: INJECTOR_NS })).items.length;
      t.ok(
        podCreates.length > 0 && podCreates.length >= existing,
        `${podCreates.length} pod creations audited for ${existing} pods`,
      );
      for (const e of podCreates) {
        t.equal(e.responseStatus?.code, 201, `${e.objectRef?.namespace}: pod admitted`);
        t.match(
          e.annotations?.['pod-security.kubernetes.io/enforce-policy'] ?? '',
          /^restricted:/,
          'under restricted',
        );
        t.notOk(e.annotations?.['pod-security.kubernetes.io/audit-violations'], 'no audit violations');
      }
      t.notMatch(firstRun.output, /would violate PodSecurity/, 'no Pod Security warnings while applying');
    });

    t.test('a second deploy.sh run changes nothing', async (t) => {
      const before = await inventory();
      const second = await deploySh(deployArgs);
      t.equal(second.code, 0, `second run:\n${second.output}`);
      t.comment(`second deploy.sh run: ${second.ms} ms`);
      const after = await inventory();
      // What controllers add and remove on their own: the CronJob's scheduled Jobs and their pods.
      const ownSchedule = (s: Stored) =>
        s.owners.some((o) => o.startsWith('CronJob/')) ||
        (s.key.startsWith('core/Pod/') && s.owners.some((o) => o.startsWith('Job/')));
      const changed: string[] = [];
      for (const [key, was] of before) {
        const now = after.get(key);
        if (!now) {
          if (!ownSchedule(was)) changed.push(`${key}: deleted`);
        } else if (now.uid !== was.uid) {
          changed.push(`${key}: recreated`);
        } else if (key.startsWith('core/Pod/')) {
          continue; // pods: only their identity (a rollout replaces them); the rest is controllers' work
        } else if (now.generation !== was.generation) {
          changed.push(`${key}: generation ${was.generation} → ${now.generation}`);
        } else if (now.fingerprint !== was.fingerprint) {
          changed.push(
            `${key}: metadata/spec/data changed (resourceVersion ${was.resourceVersion} → ${now.resourceVersion})`,
          );
        }
      }
      for (const [key, now] of after)
        if (!before.has(key) && !ownSchedule(now)) changed.push(`${key}: created`);
      t.same(changed, [], `${before.size} objects compared: nothing changed`);
      t.notMatch(second.output, /^\S+ created$/m, 'kubectl created nothing');
      // `kubectl apply` says "configured" whenever its strategic merge patch is not empty, which for
      // some kinds it never is (a PodDisruptionBudget's selector has patchStrategy "replace"); what
      // counts is that the server stored nothing new: the same resourceVersion.
      for (const [, resource, name] of second.output.matchAll(/^([a-z.]+)\/(\S+) configured$/gm)) {
        const kind = (resource ?? '').split('.')[0];
        const matches = [...before.values()].filter(
          (s) => s.key.split('/')[1]?.toLowerCase() === kind && s.object.metadata?.name === name,
        );
        t.ok(matches.length > 0, `kubectl said ${resource}/${name} configured: found it`);
        for (const was of matches) {
          t.equal(
            after.get(was.key)?.resourceVersion,
            was.resourceVersion,
            `${was.key}: a no-op for the server`,
          );
        }
      }
    });

    t.test('deploy.sh --storage direct: the injector on MinIO, no bucket cache, no push', async (t) => {
      const direct = await deploySh([...deployArgs, '--storage', 'direct']);
      t.equal(direct.code, 0, `--storage direct:\n${direct.output}`);
      t.comment(`deploy.sh --storage direct: ${direct.ms} ms`);
      t.equal(
        await apps
          .readNamespacedDeployment({ namespace: INJECTOR_NS, name: 'flipt-bucket-cache' })
          .then(() => 200, statusCode),
        404,
        'the bucket cache left by the first run is deleted',
      );
      for (const name of ['flipt-bucket-cache', 'flipt-bucket-cache-peers']) {
        t.equal(
          await core.readNamespacedService({ namespace: INJECTOR_NS, name }).then(() => 200, statusCode),
          404,
          `Service ${name} deleted`,
        );
      }
      const configMap = await core.readNamespacedConfigMap({ namespace: INJECTOR_NS, name: WEBHOOK_NAME });
      const config = parseYaml(configMap.data?.['config.yaml'] ?? '') as { storage: { mode: string } };
      t.equal(config.storage.mode, 's3', 'the injector config is the direct variant');
      const renderedDirect = (
        await renderedFile(join(repo, 'manifests/flipt-sidecar-injector/flipt-sidecar-injector-direct.yaml'))
      ).find((o) => o.kind === 'ConfigMap' && o.metadata?.name === WEBHOOK_NAME) as
        (KubernetesObject & { data?: Record<string, string> }) | undefined;
      t.equal(configMap.data?.['config.yaml'], renderedDirect?.data?.['config.yaml'], 'as rendered');
      const cronJob = await batch.readNamespacedCronJob({ namespace: APP_NS, name: 'flipt-exporter' });
      const exporter = cronJob.spec?.jobTemplate.spec?.template.spec?.containers[0];
      t.ok(exporter && envValue(exporter, 'FLIPT_EXPORTER_BUCKET'), 'the exporter is there');
      t.notOk(
        exporter &&
          (envValue(exporter, 'FLIPT_EXPORTER_NOTIFY_URL') ||
            envValue(exporter, 'FLIPT_EXPORTER_NOTIFY_TOKEN')),
        'and pushes nothing (no cache to push to)',
      );
    });

    t.test('--teardown leaves nothing behind', async (t) => {
      const teardown = await deploySh(['--no-minikube', '--teardown', '--certs-dir', certsDir]);
      t.equal(teardown.code, 0, `teardown:\n${teardown.output}`);
      t.comment(`teardown: ${teardown.ms} ms`);
      await cluster.waitFor(
        'namespace flipt-system to be gone',
        async () => (await core.readNamespace({ name: INJECTOR_NS }).then(() => 200, statusCode)) === 404,
        { timeoutMs: 120_000, intervalMs: 500 },
      );
      t.equal(
        await admissionApi
          .readMutatingWebhookConfiguration({ name: WEBHOOK_NAME })
          .then(() => 200, statusCode),
        404,
        'the MutatingWebhookConfiguration is gone',
      );
      const ns = await core.readNamespace({ name: APP_NS });
      t.equal(ns.status?.phase, 'Active', 'default is still there');
      const left = await inventory();
      const extra = [...left.keys()].filter((k) => !baseline.has(k));
      const missing = [...baseline.keys()].filter((k) => !left.has(k));
      t.same(extra, [], 'nothing left that was not there before the first run');
      t.same(missing, [], 'nothing removed that was there before');
      t.equal(
        left.get(`core/Namespace//${APP_NS}`)?.fingerprint,
        baseline.get(`core/Namespace//${APP_NS}`)?.fingerprint,
        "default's labels and annotations as before (its Pod Security label removed)",
      );
      const labelled = await kubectl(
        [
          'get',
          'all,configmaps,secrets,pvc,serviceaccounts,endpointslices,poddisruptionbudgets',
          '--all-namespaces',
          '-l',
          'app.kubernetes.io/part-of',
          '-o',
          'name',
        ],
        kube,
      );
      t.equal(labelled.stdout.trim(), '', 'no object with an app.kubernetes.io/part-of label anywhere');
    });

    t.test('the kubelet stand-in and the controller manager ran without errors', async (t) => {
      t.equal(cluster.kubelet.lastError(), undefined);
      t.doesNotThrow(() => cluster.controllerManager.assertRunning());
    });
  }
});
