// The Helm chart, statically: helm lint, helm template with several value sets, every rendered
// object against the Kubernetes schemas, values and values.schema.json against the injector's own
// schema and defaults, TLS modes, and the webhook configuration against the code's
// (`flipt-injector webhook-config`).
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { parse } from 'yaml';
import { chartValuesSchema, renderChartSchema, standardSchema } from '../../scripts/render-chart-schema.ts';
import { defaultConfig, INJECTOR_CONFIG_SCHEMA, parseConfig } from '../../src/core/config.ts';
import { runCli } from '../support/cli.ts';
import {
  CHART,
  describe,
  NOT_IN_KUBERNETES_SCHEMAS,
  parseObjects,
  podTemplate,
  renderChart,
  restrictedViolations,
  ROOT,
  runHelm,
  validateObject,
  type K8sObject,
} from './support.ts';

// helm, kubectl and flipt-injector run as processes: slow on a busy 2-core machine, bounded here.
t.setTimeout(300_000);

const CI_DIR = join(CHART, 'ci');
const VALUE_SETS: [string, string[]][] = [
  ['defaults', []],
  ...readdirSync(CI_DIR)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f): [string, string[]] => [f, [join(CI_DIR, f)]]),
];

// The bucket cache's objects (bucketCache.enabled, on in the demo's values) are checked in
// test/cache/chart.test.ts; "one" here means one of the injector's own.
const isCache = (o: K8sObject) => o.metadata.labels?.['app.kubernetes.io/component'] === 'bucket-cache';
const byKind = (objects: K8sObject[], kind: string) => objects.filter((o) => o.kind === kind && !isCache(o));
const one = (objects: K8sObject[], kind: string) => {
  const found = byKind(objects, kind);
  if (found.length !== 1) throw new Error(`expected one ${kind}, got ${found.length}`);
  return found[0] as K8sObject;
};

t.test('helm lint passes with the defaults and every CI value set', async (t) => {
  for (const [name, files] of VALUE_SETS) {
    const result = await runHelm(['lint', CHART, '--strict', ...files.flatMap((f) => ['--values', f])]);
    t.equal(result.code, 0, `${name}: ${result.stdout}${result.stderr}`);
  }
});

t.test('every rendered object is valid against the Kubernetes schemas', async (t) => {
  for (const [name, files] of VALUE_SETS) {
    const objects = await renderChart(files);
    t.ok(objects.length >= 6, `${name}: ${objects.length} objects`);
    for (const object of objects) {
      if (NOT_IN_KUBERNETES_SCHEMAS.has(object.apiVersion)) continue; // cert-manager CRDs
      await t.resolves(validateObject(object), `${name}: ${describe(object)}`);
    }
  }
});

t.test('the injector workload is production-shaped in every value set', async (t) => {
  for (const [name, files] of VALUE_SETS) {
    const objects = await renderChart(files);
    const deployment = one(objects, 'Deployment');
    const template = podTemplate(deployment);
    if (!template) throw new Error('no pod template');
    t.ok((deployment.spec as { replicas: number }).replicas >= 2, `${name}: at least 2 replicas`);
    t.same(restrictedViolations(template.spec), [], `${name}: restricted Pod Security Standard`);
    // Self-managed TLS (tls.mode auto) is the one mode that calls the API server: its token and
    // RBAC are checked in 'TLS auto' below.
    const auto = objects.some((o) => o.kind === 'Role');
    t.equal(template.spec.automountServiceAccountToken, auto, `${name}: a token only for tls.mode auto`);
    const container = template.spec.containers[0];
    t.ok(container?.resources?.requests && container.resources.limits, `${name}: requests and limits`);
    t.ok(container?.readinessProbe && container.livenessProbe && container.startupProbe, `${name}: probes`);
    t.equal(container?.securityContext?.readOnlyRootFilesystem, true, `${name}: read-only root`);
    t.notMatch(container?.image ?? '', /:latest$/, `${name}: image pinned`);
    t.ok(
      (template.spec as { topologySpreadConstraints?: unknown[] }).topologySpreadConstraints?.length,
      `${name}: topology spread`,
    );
    t.equal(byKind(objects, 'PodDisruptionBudget').length, 1, `${name}: a PodDisruptionBudget`);
    const account = one(objects, 'ServiceAccount');
    t.equal(account.automountServiceAccountToken, false, `${name}: ServiceAccount without a token`);
    for (const kind of ['Role', 'ClusterRole', 'RoleBinding', 'ClusterRoleBinding']) {
      t.equal(
        byKind(objects, kind).length,
        auto ? 1 : 0,
        auto ? `${name}: one ${kind}` : `${name}: no ${kind}: the injector needs no permissions`,
      );
    }
    for (const object of objects) {
      t.ok(object.metadata.labels?.['app.kubernetes.io/name'], `${name}: ${describe(object)} labelled`);
    }
  }
});

t.test('values.schema.json is generated from INJECTOR_CONFIG_SCHEMA and up to date', async (t) => {
  const committed = readFileSync(join(CHART, 'values.schema.json'), 'utf8');
  t.equal(committed, renderChartSchema(), 'run node_modules/.bin/node scripts/render-chart-schema.ts');
  const schema = JSON.parse(committed) as { properties: { config: Record<string, unknown> } };
  const { description: _ignored, ...config } = schema.properties.config;
  const { description: _also, ...expected } = standardSchema(INJECTOR_CONFIG_SCHEMA) as Record<
    string,
    unknown
  >;
  t.same(
    config,
    expected,
    'the config part is the injector schema (less the non-standard `allowed` keyword)',
  );
  t.notMatch(committed, /"allowed"/, 'no non-standard keywords left');
  t.ok(chartValuesSchema().additionalProperties === false, 'unknown top-level values are refused');
});

t.test('scripts/render-chart-schema.ts --check agrees (what a developer runs)', async (t) => {
  const run = spawnSync(process.execPath, [join(ROOT, 'scripts', 'render-chart-schema.ts'), '--check'], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  t.equal(run.status, 0, run.stderr);
});

t.test("values.yaml's config is the injector's defaults, field for field", async (t) => {
  const values = parse(readFileSync(join(CHART, 'values.yaml'), 'utf8')) as { config: unknown };
  t.same(values.config, defaultConfig());
});

t.test('the rendered config.yaml is what `serve --config` accepts, with the release namespace', async (t) => {
  for (const [name, files] of VALUE_SETS) {
    const objects = await renderChart(files, [], 'flipt-injector-ns');
    const configMap = one(objects, 'ConfigMap');
    t.equal(configMap.metadata.name, 'flipt-sidecar-injector', `${name}: ConfigMap name the tests read`);
    const text = (configMap.data as Record<string, string>)['config.yaml'] as string;
    const result = parseConfig(parse(text));
    t.ok(result.ok, `${name}: ${result.ok ? '' : result.errors.join('; ')}`);
    if (result.ok) t.equal(result.config.injector.namespace, 'flipt-injector-ns', `${name}: namespace`);
  }
});

t.test(
  'Kubernetes without native sidecars is refused unless the sidecar is a regular container',
  async (t) => {
    const old = await runHelm(['template', 'x', CHART, '--kube-version', '1.28.3']);
    t.not(old.code, 0);
    t.match(old.stderr, /no native sidecars \(>= 1\.29\).*nativeSidecar=false/);
    const classic = await runHelm([
      'template',
      'x',
      CHART,
      '--kube-version',
      '1.28.3',
      '--set',
      'config.sidecar.nativeSidecar=false',
    ]);
    t.equal(classic.code, 0, classic.stderr);
    t.equal((await runHelm(['template', 'x', CHART, '--kube-version', '1.29.0'])).code, 0, '1.29 is enough');
  },
);

t.test('invalid values are refused with the field named', async (t) => {
  const cases: [string[], RegExp][] = [
    [['config.storage.bucket=Not_A_Bucket'], /config\/storage\/bucket/],
    [['config.storage.pollInterval=soon'], /pollInterval/],
    [['config.sidecar.unknownField=1'], /unknownField|additional/i],
    [['image.tag=latest'], /image\/tag/],
    [['tls.mode=self-signed'], /tls\/mode/],
    [['replicaCount=0'], /replicaCount/],
  ];
  for (const [set, message] of cases) {
    const result = await runHelm(['template', 'x', CHART, ...set.flatMap((s) => ['--set', s])]);
    t.not(result.code, 0, set.join(' '));
    t.match(result.stderr, message, set.join(' '));
  }
});

async function webhookFromCli(args: string[], caBundle: string): Promise<unknown> {
  const { mkdtemp, writeFile } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const dir = await mkdtemp(join(tmpdir(), 'flipt-chart-ca-'));
  const caFile = join(dir, 'ca.crt');
  await writeFile(caFile, Buffer.from(caBundle, 'base64'));
  const run = await runCli(['webhook-config', '--ca-file', caFile, ...args]);
  if (run.code !== 0) throw new Error(run.stderr);
  return parseObjects(run.stdout)[0];
}

t.test("the chart's webhook configuration is the code's (flipt-injector webhook-config)", async (t) => {
  const caBundle = Buffer.from('-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n').toString(
    'base64',
  );
  const cases: [string, string[], string[]][] = [
    [
      'in-cluster Service',
      ['tls.mode=secret', `webhook.caBundle=${caBundle}`],
      [
        '--service',
        'flipt-sidecar-injector',
        '--service-namespace',
        'flipt-system',
        '--injector-namespace',
        'flipt-system',
      ],
    ],
    [
      'external URL, Ignore, other namespace',
      [
        'tls.mode=secret',
        `webhook.caBundle=${caBundle}`,
        'webhook.url=https://127.0.0.1:8443/',
        'webhook.failurePolicy=Ignore',
      ],
      [
        '--url',
        'https://127.0.0.1:8443',
        '--injector-namespace',
        'flipt-system',
        '--failure-policy',
        'Ignore',
      ],
    ],
  ];
  for (const [name, set, cliArgs] of cases) {
    const chart = one(await renderChart([], set), 'MutatingWebhookConfiguration') as K8sObject & {
      webhooks: unknown;
    };
    const code = (await webhookFromCli(cliArgs, caBundle)) as K8sObject & { webhooks: unknown };
    t.same(chart.webhooks, code.webhooks, `${name}: webhooks`);
    t.equal(chart.metadata.name, code.metadata.name, `${name}: name`);
    t.match(chart.metadata.labels, code.metadata.labels, `${name}: the code's labels are among the chart's`);
  }
  // Another namespace: the injector's own namespace is excluded from injection there too.
  const other = one(
    await renderChart([], ['tls.mode=secret', `webhook.caBundle=${caBundle}`], 'injector'),
    'MutatingWebhookConfiguration',
  );
  const code = (await webhookFromCli(
    [
      '--service',
      'flipt-sidecar-injector',
      '--service-namespace',
      'injector',
      '--injector-namespace',
      'injector',
    ],
    caBundle,
  )) as K8sObject & { webhooks: unknown };
  t.same((other as K8sObject & { webhooks: unknown }).webhooks, code.webhooks, 'release namespace injector');
});

t.test('TLS generated at install: a CA bundle that signed a certificate for the Service', async (t) => {
  const objects = await renderChart([], ['tls.mode=generate']);
  const secret = one(objects, 'Secret');
  const data = secret.data as Record<string, string>;
  t.equal(secret.type, 'kubernetes.io/tls');
  const webhook = one(objects, 'MutatingWebhookConfiguration') as K8sObject & {
    webhooks: { clientConfig: { caBundle: string; service: { name: string; namespace: string } } }[];
  };
  for (const entry of webhook.webhooks)
    t.equal(entry.clientConfig.caBundle, data['ca.crt'], 'caBundle = the Secret ca.crt');
  const ca = new X509Certificate(Buffer.from(data['ca.crt'] as string, 'base64'));
  const cert = new X509Certificate(Buffer.from(data['tls.crt'] as string, 'base64'));
  t.ok(ca.ca, 'a CA');
  t.ok(cert.verify(ca.publicKey), 'signed by it');
  const service = webhook.webhooks[0]?.clientConfig.service;
  t.match(
    cert.subjectAltName,
    `DNS:${service?.name}.${service?.namespace}.svc`,
    'covers the name the API server calls',
  );
  const deployment = one(objects, 'Deployment');
  const volumes = podTemplate(deployment)?.spec.volumes as { secret?: { secretName: string } }[];
  t.ok(
    volumes.some((v) => v.secret?.secretName === secret.metadata.name),
    'the pods mount that Secret',
  );
});

t.test(
  'TLS from cert-manager: a Certificate for the Service and the CA injected by annotation',
  async (t) => {
    for (const file of ['cert-manager-values.yaml', 'cert-manager-selfsigned-values.yaml']) {
      const objects = await renderChart([join(CI_DIR, file)]);
      t.equal(byKind(objects, 'Secret').length, 0, `${file}: no Secret rendered (cert-manager writes it)`);
      const certificates = byKind(objects, 'Certificate');
      const serving = certificates.find((c) => c.metadata.name === 'flipt-sidecar-injector-tls');
      t.ok(serving, `${file}: serving Certificate`);
      t.ok(
        ((serving?.spec as { dnsNames: string[] }).dnsNames ?? []).includes(
          'flipt-sidecar-injector.flipt-system.svc',
        ),
        `${file}: Service DNS name`,
      );
      const webhook = one(objects, 'MutatingWebhookConfiguration');
      t.equal(
        webhook.metadata.annotations?.['cert-manager.io/inject-ca-from'],
        'flipt-system/flipt-sidecar-injector-tls',
      );
    }
  },
);

t.test('EKS with IRSA: no credentials Secret, so the sidecar uses the ambient AWS chain', async (t) => {
  const objects = await renderChart([join(CI_DIR, 'eks-irsa-values.yaml')]);
  const text = (one(objects, 'ConfigMap').data as Record<string, string>)['config.yaml'] as string;
  const config = parse(text) as { credentials: { secretName: string }; storage: { endpoint: string } };
  t.equal(config.credentials.secretName, '');
  t.equal(config.storage.endpoint, '');
  t.match(podTemplate(one(objects, 'Deployment'))?.spec.containers[0]?.image, /@sha256:/);
});

t.test(
  'TLS auto: exactly the RBAC `serve --tls-auto` needs, and the flags that name the objects',
  async (t) => {
    const objects = await renderChart([join(CI_DIR, 'auto-tls-values.yaml')], [], 'injector-ns', 'rel');
    const rules = (kind: string) => (one(objects, kind) as K8sObject & { rules: unknown }).rules;
    t.same(
      rules('Role'),
      [
        {
          apiGroups: [''],
          resources: ['secrets'],
          resourceNames: ['rel-flipt-sidecar-injector-tls'],
          verbs: ['get', 'update'],
        },
        // create cannot be restricted by resourceNames (a create request names no object in its URL).
        { apiGroups: [''], resources: ['secrets'], verbs: ['create'] },
      ],
      'Role: get/update on the one Secret, create on Secrets',
    );
    t.same(
      rules('ClusterRole'),
      [
        {
          apiGroups: ['admissionregistration.k8s.io'],
          resources: ['mutatingwebhookconfigurations'],
          resourceNames: ['rel-flipt-sidecar-injector'],
          verbs: ['get', 'patch'],
        },
      ],
      'ClusterRole: get/patch on our own webhook configuration only',
    );
    const account = one(objects, 'ServiceAccount').metadata.name;
    for (const kind of ['RoleBinding', 'ClusterRoleBinding']) {
      const binding = one(objects, kind) as K8sObject & {
        subjects: { kind: string; name: string; namespace: string }[];
        roleRef: { kind: string; name: string };
      };
      t.same(
        binding.subjects,
        [{ kind: 'ServiceAccount', name: account, namespace: 'injector-ns' }],
        `${kind} subject`,
      );
      t.equal(binding.roleRef.name, one(objects, kind.replace('Binding', '')).metadata.name, `${kind} role`);
    }
    const template = podTemplate(one(objects, 'Deployment'));
    const args = template?.spec.containers[0]?.args ?? [];
    const after = (flag: string) => args[args.indexOf(flag) + 1];
    t.ok(args.includes('--tls-auto'));
    t.notOk(args.includes('--tls-cert'), 'no mounted certificate');
    t.equal(after('--tls-secret'), 'rel-flipt-sidecar-injector-tls', 'the Secret the Role names');
    t.equal(
      after('--webhook-configuration'),
      'rel-flipt-sidecar-injector',
      'the configuration the ClusterRole names',
    );
    const webhook = one(objects, 'MutatingWebhookConfiguration') as K8sObject & {
      webhooks: { clientConfig: { caBundle?: string; service: { name: string; namespace: string } } }[];
    };
    t.equal(webhook.metadata.name, 'rel-flipt-sidecar-injector');
    t.ok(
      args.includes(`${webhook.webhooks[0]?.clientConfig.service.name}.injector-ns.svc`),
      'the certificate covers the name the API server calls',
    );
    t.notOk(webhook.webhooks[0]?.clientConfig.caBundle, 'caBundle left to the injector');
    t.equal(byKind(objects, 'Secret').length, 0, 'no Secret rendered: the injector creates it');
    const volumes = (template?.spec.volumes ?? []) as { name: string }[];
    t.notOk(
      volumes.some((v) => v.name === 'tls'),
      'no TLS volume',
    );
    const byUrl = await renderChart(
      [join(CI_DIR, 'auto-tls-values.yaml')],
      ['webhook.url=https://127.0.0.1:8443'],
    );
    const urlArgs = podTemplate(one(byUrl, 'Deployment'))?.spec.containers[0]?.args ?? [];
    t.equal(
      urlArgs[urlArgs.indexOf('--ip') + 1],
      '127.0.0.1',
      'an injector reached by URL: its host is covered',
    );
    const bad = await runHelm([
      'template',
      'x',
      CHART,
      '--set',
      'tls.mode=auto',
      '--set',
      'tls.auto.renewFraction=1',
    ]);
    t.not(bad.code, 0);
    t.match(bad.stderr, /tls\/auto\/renewFraction/);
  },
);
