// manifests/, statically: `kubectl kustomize` of the whole demo, every object against the Kubernetes
// schemas, the restricted Pod Security Standard, requests/limits, probes, labels and pinned images
// for every workload, the chart-rendered injector not stale, and consistency: bucket, endpoint,
// Secret names, ports, URLs and image agree across the manifests, the chart's demo values, the
// exporter's configuration, the injector's output and deploy.sh.
import { spawnSync } from 'node:child_process';
import { readFileSync, existsSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { parse, stringify } from 'yaml';
import { parseConfig as parseExporterConfig } from '../../exporter/config.ts';
import { createDocumentValidator } from '../../exporter/schema.ts';
import {
  DIRECT_RESOURCES_FILE,
  OUT_DIR,
  RESOURCES_FILE,
  renderManifests,
} from '../../scripts/render-manifests.ts';
import { parseConfig, type InjectorConfig } from '../../src/core/config.ts';
import { DEMO_FLAGS } from '../../src/sample-app/config.ts';
import { runCli } from '../support/cli.ts';
import {
  CHART,
  describe,
  kustomize,
  MANIFESTS,
  parseObjects,
  podTemplate,
  restrictedViolations,
  ROOT,
  validateObject,
  type Container,
  type K8sObject,
} from './support.ts';

// helm, kubectl and flipt-injector run as processes: slow on a busy 2-core machine, bounded here.
t.setTimeout(300_000);

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
const OUR_IMAGE = `flipt-sidecar-injector:${pkg.version}`;
const deployScript = readFileSync(join(ROOT, 'deploy.sh'), 'utf8');

const all = await kustomize(MANIFESTS);
// deploy.sh --storage direct applies this file instead of RESOURCES_FILE (not in the kustomization).
const directInjector = parseObjects(readFileSync(join(OUT_DIR, DIRECT_RESOURCES_FILE), 'utf8'));
const cacheInjector = parseObjects(readFileSync(join(OUT_DIR, RESOURCES_FILE), 'utf8'));
const isCache = (o: K8sObject) => o.metadata.labels?.['app.kubernetes.io/component'] === 'bucket-cache';
const watch = await kustomize(join(MANIFESTS, 'flipt-exporter', 'watch'));
const everything = [...all, ...watch];

function find(kind: string, name: string, objects = everything): K8sObject {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (!found) throw new Error(`no ${kind} ${name} in manifests/`);
  return found;
}
function container(kind: string, name: string, containerName?: string): Container {
  const spec = podTemplate(find(kind, name))?.spec;
  const found = containerName ? spec?.containers.find((c) => c.name === containerName) : spec?.containers[0];
  if (!found) throw new Error(`no container in ${kind} ${name}`);
  return found;
}
function injectorConfigOf(objects: K8sObject[]): InjectorConfig {
  const configMap = find('ConfigMap', 'flipt-sidecar-injector', objects);
  const result = parseConfig(parse((configMap.data as Record<string, string>)['config.yaml'] as string));
  if (!result.ok) throw new Error(result.errors.join('; '));
  return result.config;
}
function env(c: Container, name: string): string {
  const value = c.env?.find((e) => e.name === name)?.value;
  if (value === undefined) throw new Error(`${c.name} has no env ${name}`);
  return value;
}
function secretRef(c: Container, name: string): { name: string; key: string } {
  const ref = c.env?.find((e) => e.name === name)?.valueFrom?.secretKeyRef;
  if (!ref) throw new Error(`${c.name} has no secretKeyRef env ${name}`);
  return ref;
}
type ServiceSpec = { ports: { name: string; port: number; targetPort: number | string }[] };
function servicePort(name: string, portName: string) {
  const port = (find('Service', name).spec as ServiceSpec).ports.find((p) => p.name === portName);
  if (!port) throw new Error(`Service ${name} has no port ${portName}`);
  return port;
}
const serviceUrl = (name: string, portName: string, namespace = 'default') =>
  `http://${name}.${namespace}.svc.cluster.local:${servicePort(name, portName).port}`;

// The injector's configuration exactly as deployed: the chart-rendered ConfigMap.
const injectorConfigMap = find('ConfigMap', 'flipt-sidecar-injector');
const injectorConfig: InjectorConfig = (() => {
  const result = parseConfig(
    parse((injectorConfigMap.data as Record<string, string>)['config.yaml'] as string),
  );
  if (!result.ok) throw new Error(result.errors.join('; '));
  return result.config;
})();

t.test('manifests/flipt-sidecar-injector/ is what the chart renders (not stale)', async (t) => {
  const files = await renderManifests();
  for (const [name, text] of Object.entries(files)) {
    t.equal(
      readFileSync(join(OUT_DIR, name), 'utf8'),
      text,
      `${name}: run node_modules/.bin/node scripts/render-manifests.ts`,
    );
  }
});

t.test('scripts/render-manifests.ts --check agrees (what a developer runs)', async (t) => {
  const run = spawnSync(process.execPath, [join(ROOT, 'scripts', 'render-manifests.ts'), '--check'], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  t.equal(run.status, 0, run.stderr);
});

t.test('every object is valid against the Kubernetes schemas', async (t) => {
  t.equal(all.length, 22, all.map(describe).join(', '));
  for (const object of [...everything, ...directInjector])
    await t.resolves(validateObject(object), describe(object));
});

t.test('namespaces: the demo in default, the injector in flipt-system (restricted)', async (t) => {
  for (const object of everything) {
    const clusterScoped = object.kind === 'Namespace' || object.kind === 'MutatingWebhookConfiguration';
    const expected = clusterScoped
      ? undefined
      : object.metadata.labels?.['app.kubernetes.io/name'] === 'flipt-sidecar-injector'
        ? 'flipt-system'
        : 'default';
    t.equal(object.metadata.namespace, expected, describe(object));
  }
  const namespaces = everything.filter((o) => o.kind === 'Namespace');
  t.same(
    namespaces.map((n) => n.metadata.name),
    ['flipt-system'],
    'default is labelled by deploy.sh, never managed (so never deleted)',
  );
  t.equal(namespaces[0]?.metadata.labels?.['pod-security.kubernetes.io/enforce'], 'restricted');
  t.match(
    deployScript,
    /kubectl label namespace "\$APP_NS" pod-security\.kubernetes\.io\/enforce=restricted/,
  );
  t.equal(injectorConfigMap.metadata.namespace, 'flipt-system');
});

t.test('every workload: restricted PSS, requests and limits, probes, labels, pinned images', async (t) => {
  const workloads = everything.filter((o) => podTemplate(o));
  t.same(workloads.map((w) => `${w.kind}/${w.metadata.name}`).sort(), [
    'CronJob/flipt-exporter',
    'Deployment/flipt-bucket-cache',
    'Deployment/flipt-exporter-watch',
    'Deployment/flipt-master',
    'Deployment/flipt-sidecar-injector',
    'Deployment/minio',
    'Deployment/sample-app',
    'Job/minio-create-bucket',
  ]);
  for (const workload of workloads) {
    const name = describe(workload);
    const template = podTemplate(workload);
    if (!template) continue;
    t.same(restrictedViolations(template.spec), [], `${name}: restricted`);
    t.equal(template.spec.automountServiceAccountToken, false, `${name}: no API token (none needs one)`);
    for (const label of [
      'app.kubernetes.io/name',
      'app.kubernetes.io/component',
      'app.kubernetes.io/part-of',
    ]) {
      t.ok(workload.metadata.labels?.[label], `${name}: ${label}`);
      t.ok(template.labels[label], `${name}: pod template ${label}`);
    }
    for (const c of [...(template.spec.initContainers ?? []), ...template.spec.containers]) {
      t.ok(c.resources?.requests?.cpu && c.resources.requests.memory, `${name}/${c.name}: requests`);
      t.ok(c.resources?.limits?.cpu && c.resources.limits.memory, `${name}/${c.name}: limits`);
      t.equal(c.securityContext?.readOnlyRootFilesystem, true, `${name}/${c.name}: read-only root`);
      t.match(c.image, /^[^@]+(:[\w][\w.-]*)(@sha256:[a-f0-9]{64})?$/, `${name}/${c.name}: image has a tag`);
      t.notMatch(c.image, /:latest(@|$)/, `${name}/${c.name}: never latest`);
    }
    if (workload.kind === 'Deployment') {
      for (const c of template.spec.containers) {
        t.ok(c.readinessProbe && c.livenessProbe, `${name}/${c.name}: readiness and liveness probes`);
      }
    } else {
      // Run-to-completion pods have no probes: they are bounded by a deadline and a retry limit.
      const job = (
        workload.kind === 'CronJob'
          ? (workload.spec as { jobTemplate: { spec: unknown } }).jobTemplate.spec
          : workload.spec
      ) as { activeDeadlineSeconds?: number; backoffLimit?: number };
      t.ok(job.activeDeadlineSeconds && job.backoffLimit !== undefined, `${name}: deadline and backoffLimit`);
    }
  }
});

t.test('the exporter CronJob: every minute, never overlapping, bounded history and runs', async (t) => {
  const spec = find('CronJob', 'flipt-exporter').spec as {
    schedule: string;
    concurrencyPolicy: string;
    successfulJobsHistoryLimit: number;
    failedJobsHistoryLimit: number;
    jobTemplate: { spec: { activeDeadlineSeconds: number; backoffLimit: number } };
  };
  t.equal(spec.schedule, '* * * * *');
  t.equal(spec.concurrencyPolicy, 'Forbid');
  t.ok(spec.successfulJobsHistoryLimit > 0 && spec.successfulJobsHistoryLimit <= 5);
  t.ok(spec.failedJobsHistoryLimit > 0 && spec.failedJobsHistoryLimit <= 5);
  t.ok(spec.jobTemplate.spec.activeDeadlineSeconds < 60, 'ends before the next tick');
});

t.test(
  'our image: one tag everywhere, equal to the package and chart versions; programs exist',
  async (t) => {
    const chart = parse(readFileSync(join(CHART, 'Chart.yaml'), 'utf8')) as {
      version: string;
      appVersion: string;
    };
    t.equal(chart.appVersion, pkg.version, 'Chart appVersion = package.json version');
    t.equal(chart.version, pkg.version, 'Chart version = package.json version');
    const programs = new Map([
      ['dist/src/cli.js', 'src/cli.ts'],
      ['dist/exporter/main.js', 'exporter/main.ts'],
      ['dist/src/sample-app/main.js', 'src/sample-app/main.ts'],
      ['dist/cache/main.js', 'cache/main.ts'],
    ]);
    for (const workload of everything) {
      for (const c of podTemplate(workload)?.spec.containers ?? []) {
        if (!c.image?.startsWith('flipt-sidecar-injector')) continue;
        t.equal(c.image, OUR_IMAGE, `${describe(workload)}: image`);
        const program = c.args?.[0] ?? '';
        t.ok(programs.has(program), `${describe(workload)}: runs ${program}`);
        t.ok(existsSync(join(ROOT, programs.get(program) ?? 'missing')), `${program} is built from source`);
      }
    }
    t.match(
      deployScript,
      /MANIFEST_IMAGE_NAME=flipt-sidecar-injector\n/,
      'deploy.sh replaces this image name',
    );
    const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
    for (const program of programs.keys()) t.match(dockerfile, program, `Dockerfile documents ${program}`);
  },
);

t.test('consistency: bucket, endpoint, region across MinIO, exporter and injector', async (t) => {
  t.same(
    (find('Service', 'minio').spec as ServiceSpec).ports.map((p) => [p.name, p.port]),
    [
      ['s3', 9000],
      ['console', 9090],
    ],
  );
  const minioEndpoint = serviceUrl('minio', 's3');
  const exporter = container('CronJob', 'flipt-exporter');
  const parsed = parseExporterConfig(
    [],
    Object.fromEntries((exporter.env ?? []).map((e) => [e.name, e.value ?? 'from-a-secret-0123456789'])),
  );
  if (parsed.kind !== 'run') throw new Error(`exporter config: ${JSON.stringify(parsed)}`);
  const bucketJob = container('Job', 'minio-create-bucket');
  const bucket = bucketJob.args?.at(-1)?.replace(/^demo\//, '');
  t.equal(parsed.config.bucket, bucket, 'exporter bucket = created bucket');
  t.equal(injectorConfig.storage.bucket, bucket, 'sidecar bucket = created bucket');
  t.equal(parsed.config.endpoint, minioEndpoint, 'exporter endpoint = MinIO Service');
  t.equal(injectorConfig.storage.endpoint, minioEndpoint, 'sidecar endpoint = MinIO Service');
  t.match(env(bucketJob, 'MC_HOST_demo'), new RegExp(`@${minioEndpoint.replace(/^http:\/\//, '')}$`));
  t.equal(parsed.config.region, injectorConfig.storage.region, 'region');
  t.equal(parsed.config.prefix, injectorConfig.storage.prefix, 'prefix');
  t.match(parsed.config.objectKey, /features\.ya?ml$/, 'a key the sidecar reads (*features.yml)');
  // The same keys in the watch-mode alternative.
  const watcher = container('Deployment', 'flipt-exporter-watch');
  for (const name of ['FLIPT_EXPORTER_BUCKET', 'FLIPT_EXPORTER_ENDPOINT', 'FLIPT_EXPORTER_FLIPT_URL']) {
    t.equal(env(watcher, name), env(exporter, name), `watch mode ${name}`);
  }
});

t.test('consistency: Secret names and keys across MinIO, exporter, injector and deploy.sh', async (t) => {
  const { secretName, accessKeyIdKey, secretAccessKeyKey } = injectorConfig.credentials;
  for (const [kind, name] of [
    ['CronJob', 'flipt-exporter'],
    ['Deployment', 'flipt-exporter-watch'],
  ] as const) {
    const c = container(kind, name);
    t.same(
      secretRef(c, 'AWS_ACCESS_KEY_ID'),
      { name: secretName, key: accessKeyIdKey },
      `${name}: access key`,
    );
    t.same(
      secretRef(c, 'AWS_SECRET_ACCESS_KEY'),
      { name: secretName, key: secretAccessKeyKey },
      `${name}: secret key`,
    );
  }
  t.match(
    deployScript,
    `apply_secret "$APP_NS" ${secretName} `,
    'deploy.sh creates the credentials Secret in default',
  );
  t.match(
    deployScript,
    `${accessKeyIdKey}=%s\\n${secretAccessKeyKey}=%s`,
    'with the keys the injector references',
  );
  for (const [kind, name] of [
    ['Deployment', 'minio'],
    ['Job', 'minio-create-bucket'],
  ] as const) {
    const c = container(kind, name);
    t.same(secretRef(c, 'MINIO_ROOT_USER'), { name: 'minio-root-credentials', key: 'MINIO_ROOT_USER' });
    t.same(secretRef(c, 'MINIO_ROOT_PASSWORD'), {
      name: 'minio-root-credentials',
      key: 'MINIO_ROOT_PASSWORD',
    });
  }
  t.match(deployScript, 'apply_secret "$APP_NS" minio-root-credentials');
  const volumes = podTemplate(find('Deployment', 'flipt-sidecar-injector'))?.spec.volumes as {
    secret?: { secretName: string };
  }[];
  const tlsSecret = volumes.find((v) => v.secret)?.secret?.secretName;
  t.equal(tlsSecret, 'flipt-sidecar-injector-tls');
  t.match(deployScript, `apply_secret "$INJECTOR_NS" ${tlsSecret} --type=kubernetes.io/tls`);
});

t.test('consistency: flipt-master URL, ports and Flipt version', async (t) => {
  t.same(
    (find('Service', 'flipt-master').spec as ServiceSpec).ports.map((p) => [p.name, p.port]),
    [
      ['http', 8080],
      ['grpc', 9000],
    ],
  );
  const masterUrl = serviceUrl('flipt-master', 'http');
  t.equal(env(container('CronJob', 'flipt-exporter'), 'FLIPT_EXPORTER_FLIPT_URL'), masterUrl);
  t.equal(env(container('Deployment', 'sample-app'), 'SAMPLE_APP_MASTER_URL'), masterUrl);
  t.equal(
    container('Deployment', 'flipt-master').image,
    injectorConfig.sidecar.image,
    'master and sidecars run one Flipt',
  );
  const master = podTemplate(find('Deployment', 'flipt-master'))?.spec;
  t.same(
    master?.initContainers?.[0]?.env,
    master?.containers[0]?.env,
    'the seed writes the same database the server reads',
  );
});

t.test(
  'sample-app: labelled, no sidecar in its spec, Service 8080 → the sidecar port (numeric)',
  async (t) => {
    const deployment = find('Deployment', 'sample-app');
    const template = podTemplate(deployment);
    t.equal(template?.labels['flipt.io/inject'], 'true');
    const names = [...(template?.spec.initContainers ?? []), ...(template?.spec.containers ?? [])].map(
      (c) => c.name,
    );
    t.same(names, ['sample-app'], 'no sidecar written by hand');
    const app = container('Deployment', 'sample-app');
    const appPort = app.ports?.find((p) => p.name === 'http')?.containerPort;
    t.equal(String(appPort), env(app, 'SAMPLE_APP_PORT'));
    t.not(appPort, injectorConfig.sidecar.httpPort, "the app's own port is not the sidecar's");
    t.equal(env(app, 'SAMPLE_APP_SIDECAR_URL'), `http://127.0.0.1:${injectorConfig.sidecar.httpPort}`);
    const flipt = servicePort('sample-app', 'flipt-http');
    t.equal(flipt.port, 8080, 'kubectl port-forward svc/sample-app 8080:8080');
    t.equal(
      flipt.targetPort,
      injectorConfig.sidecar.httpPort,
      'a NUMERIC targetPort equal to the sidecar port',
    );
    t.equal(servicePort('sample-app', 'http').targetPort, 'http');
    t.equal(
      servicePort('flipt-master', 'http').port,
      8080,
      'kubectl port-forward svc/flipt-master 8080:8080',
    );
    const flags = env(app, 'SAMPLE_APP_FLAGS').split(',');
    t.same(flags, DEMO_FLAGS, 'the page shows the demo flags');
  },
);

t.test(
  "the injector's own output for these manifests: sample-app gets one sidecar, nothing else does",
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'flipt-deploy-inject-'));
    const configFile = join(dir, 'config.yaml');
    await writeFile(configFile, (injectorConfigMap.data as Record<string, string>)['config.yaml'] as string);
    const workloads = all.filter((o) => podTemplate(o) && o.metadata.namespace === 'default');
    const input = workloads.map((w) => stringify(w)).join('---\n');
    const run = await runCli(['inject', '-f', '-', '--config', configFile], input);
    t.equal(run.code, 0, run.stderr);
    for (const out of parseObjects(run.stdout)) {
      const spec = podTemplate(out)?.spec;
      const sidecars = [...(spec?.initContainers ?? []), ...(spec?.containers ?? [])].filter(
        (c) => c.name === 'flipt-sidecar',
      );
      if (out.metadata.name !== 'sample-app') {
        t.equal(sidecars.length, 0, `${describe(out)}: no sidecar`);
        continue;
      }
      t.equal(sidecars.length, 1, 'sample-app: exactly one flipt-sidecar');
      t.equal(spec?.initContainers?.[0]?.name, 'flipt-sidecar', 'a native sidecar (first init container)');
      const sidecar = sidecars[0] as Container;
      t.ok(
        sidecar.ports?.some((p) => p.containerPort === servicePort('sample-app', 'flipt-http').targetPort),
        'the Service target port is a port of the sidecar',
      );
      const value = (name: string) => sidecar.env?.find((e) => e.name === name);
      // Cache mode (the demo's default): the cache's Service, placeholder keys, no Secret.
      t.equal(value('FLIPT_STORAGE_OBJECT_S3_ENDPOINT')?.value, injectorConfig.storage.cacheEndpoint);
      t.equal(
        value('FLIPT_STORAGE_OBJECT_S3_BUCKET')?.value,
        container('Job', 'minio-create-bucket').args?.at(-1)?.slice(5),
      );
      t.equal(value('AWS_ACCESS_KEY_ID')?.value, 'flipt-bucket-cache', 'a placeholder key');
      t.notOk(
        sidecar.env?.some((e) => e.valueFrom?.secretKeyRef),
        'no credentials Secret referenced in the app namespace',
      );
    }
  },
);

t.test('the demo flags: valid for Flipt v1.61.1 and what sample-app shows', async (t) => {
  const text = readFileSync(join(MANIFESTS, 'flipt-master', 'demo-flags.yml'), 'utf8');
  const document = parse(text) as {
    flags: {
      key: string;
      type: string;
      variants?: { attachment?: unknown }[];
      rules?: unknown[];
      rollouts?: unknown[];
    }[];
    segments: { key: string }[];
  };
  t.same(createDocumentValidator()([document]), [], "Flipt's document schema (as the exporter checks it)");
  t.same(document.flags.map((f) => f.key).sort(), [...DEMO_FLAGS].sort());
  t.ok(
    document.flags.some((f) => f.type === 'VARIANT_FLAG_TYPE' && f.variants?.some((v) => v.attachment)),
    'variants with attachments',
  );
  t.ok(
    document.flags.some((f) => f.type === 'BOOLEAN_FLAG_TYPE' && f.rollouts?.length),
    'boolean flag with rollouts',
  );
  t.ok(
    document.flags.some((f) => f.rules?.length),
    'rules',
  );
  t.ok(document.segments.length >= 3, 'segments');
  t.notMatch(text, /operator:\s*lt\s*$/m, 'no "lt" constraint (Flipt v1.61.1 cannot read it back)');
  const configMap = find('ConfigMap', 'flipt-master-demo-flags');
  t.equal(
    (configMap.data as Record<string, string>)['demo-flags.yml'],
    text,
    'the ConfigMap carries the file',
  );
});

t.test(
  'storage: the demo reads through the bucket cache; the direct variant is the same less the cache',
  async (t) => {
    t.equal(injectorConfig.storage.mode, 'cache');
    const cache = find('Deployment', 'flipt-bucket-cache');
    t.equal(cache.metadata.namespace, 'flipt-system');
    t.ok((cache.spec as { replicas: number }).replicas >= 2, 'at least 2 replicas');
    const cacheService = (find('Service', 'flipt-bucket-cache').spec as ServiceSpec).ports[0];
    t.equal(
      injectorConfig.storage.cacheEndpoint,
      `http://flipt-bucket-cache.flipt-system.svc.cluster.local:${cacheService?.port}`,
      "sidecars' endpoint = the cache's Service",
    );
    const c = container('Deployment', 'flipt-bucket-cache');
    t.equal(env(c, 'FLIPT_CACHE_ENDPOINT'), serviceUrl('minio', 's3'), 'the cache reads MinIO');
    t.equal(env(c, 'FLIPT_CACHE_BUCKET'), injectorConfig.storage.bucket);
    t.same(secretRef(c, 'AWS_ACCESS_KEY_ID'), { name: 'flipt-s3-credentials', key: 'AWS_ACCESS_KEY_ID' });
    t.match(
      deployScript,
      'apply_secret "$INJECTOR_NS" flipt-s3-credentials',
      'deploy.sh gives the cache its keys',
    );
    const push = secretRef(c, 'FLIPT_CACHE_REFRESH_TOKEN');
    // The exporter pushes every replica through the headless Service, with the same Secret's token.
    const peers = find('Service', 'flipt-bucket-cache-peers');
    t.equal((peers.spec as { clusterIP?: string }).clusterIP, 'None', 'headless');
    for (const [kind, name] of [
      ['CronJob', 'flipt-exporter'],
      ['Deployment', 'flipt-exporter-watch'],
    ] as const) {
      const exporter = container(kind, name);
      t.equal(
        env(exporter, 'FLIPT_EXPORTER_NOTIFY_URL'),
        `http://flipt-bucket-cache-peers.flipt-system.svc.cluster.local:${(peers.spec as ServiceSpec).ports[0]?.port}`,
        `${name}: pushes the headless Service`,
      );
      t.same(secretRef(exporter, 'FLIPT_EXPORTER_NOTIFY_TOKEN'), push, `${name}: the cache's token`);
    }
    t.match(deployScript, 'readonly PUSH_SECRET=' + push.name + '\n');
    t.match(deployScript, 'apply_secret "$APP_NS" "$PUSH_SECRET"');
    t.match(deployScript, 'apply_secret "$INJECTOR_NS" "$PUSH_SECRET"');
    t.match(
      deployScript,
      'FLIPT_EXPORTER_NOTIFY_URL- FLIPT_EXPORTER_NOTIFY_TOKEN-',
      'direct mode drops the push',
    );

    // The direct variant: every object of the cache one less the cache's, the config in mode s3.
    const key = (o: K8sObject) => `${o.kind}/${o.metadata.name}`;
    t.same(
      directInjector.map(key),
      cacheInjector.filter((o) => !isCache(o)).map(key),
      'the same objects less the bucket cache',
    );
    t.same(directInjector.filter(isCache), []);
    const direct = injectorConfigOf(directInjector);
    t.equal(direct.storage.mode, 's3');
    t.same(
      { ...direct, storage: { ...direct.storage, mode: 'cache' } },
      injectorConfig,
      'nothing else differs',
    );
    t.match(deployScript, `injector_file=${DIRECT_RESOURCES_FILE}`);
  },
);

t.test("the direct variant's injector output: sidecars read MinIO with the Secret", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'flipt-deploy-inject-direct-'));
  const configFile = join(dir, 'config.yaml');
  const configMap = find('ConfigMap', 'flipt-sidecar-injector', directInjector);
  await writeFile(configFile, (configMap.data as Record<string, string>)['config.yaml'] as string);
  const run = await runCli(
    ['inject', '-f', '-', '--config', configFile],
    stringify(find('Deployment', 'sample-app')),
  );
  t.equal(run.code, 0, run.stderr);
  const spec = podTemplate(parseObjects(run.stdout)[0] as K8sObject)?.spec;
  const sidecar = spec?.initContainers?.find((c) => c.name === 'flipt-sidecar');
  const value = (name: string) => sidecar?.env?.find((e) => e.name === name);
  t.equal(value('FLIPT_STORAGE_OBJECT_S3_ENDPOINT')?.value, serviceUrl('minio', 's3'));
  t.equal(value('AWS_ACCESS_KEY_ID')?.valueFrom?.secretKeyRef?.name, 'flipt-s3-credentials');
});
