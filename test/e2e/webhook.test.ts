// The webhook admitted by real Kubernetes: our injector on loopback HTTPS, registered with a real
// kube-apiserver through the production MutatingWebhookConfiguration, and real objects created
// through it. Every assertion reads back what the API server stored. One control plane for the
// file; each scenario works in namespaces of its own. Scenario 6 stops the injector, so it runs last.
import t, { type Test } from 'tap';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import {
  AdmissionregistrationV1Api,
  AppsV1Api,
  CoreV1Api,
  type KubernetesObject,
  type V1Pod,
} from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { loadConfig } from '../../src/config-file.ts';
import type { InjectorConfig } from '../../src/core/config.ts';
import { findPodTemplates, type PodTemplateRef } from '../../src/manifest.ts';
import { goldenCases, type GoldenCase } from '../support/golden.ts';
import { defaultConfig } from '../../src/core/config.ts';
import { useControlPlane, webhookInvocations, type AuditEvent } from './harness/apiserver.ts';
import {
  FIXTURE_ADDED_LABEL,
  FIXTURE_SELECTOR_LABEL,
  startFixtureWebhook,
} from './harness/fixture-mutating-webhook.ts';
import {
  INJECT_LABEL,
  INJECTOR_NAMESPACE,
  SIDECAR_NAME,
  WEBHOOK_CONFIGURATION_NAME,
  registerInjector,
  sidecarsOf,
  startInjector,
} from './harness/injector.ts';
import {
  apiErrorMessage,
  createNamespace,
  createPod,
  createPodLikeReplicaSet,
  ensureServiceAccount,
  objectApi,
  readPod,
  statusCode,
} from './harness/kube.ts';
import { waitFor } from '../support/process.ts';
import { kubectl } from '../support/kube-tools.ts';

const STATUS_ANNOTATION = 'flipt.io/status';
const POD_ENTRY = 'pod.inject.flipt.io';
const NAMESPACE_ENTRY = 'namespace.inject.flipt.io';
const NAMESPACE_ENABLED = { [INJECT_LABEL]: 'enabled' };

// tap's default of 30 s per file is too tight for a real control plane on a busy 2-core machine.
t.setTimeout(300_000);
const plane = await useControlPlane(t);
const core = plane.kubeConfig.makeApiClient(CoreV1Api);
const injector = await startInjector(defaultConfig());
t.teardown(() => injector.close());
await registerInjector(plane.kubeConfig, injector, { mode: 'native' });

function appPod(
  name: string,
  labels: Record<string, string> = {},
  annotations?: Record<string, string>,
): V1Pod {
  return {
    metadata: { name, labels, ...(annotations ? { annotations } : {}) },
    spec: { containers: [{ name: 'app', image: 'registry.example/app:1' }] },
  };
}

/** Creates the pod and returns it as read back from the API server. */
async function createAndRead(namespace: string, pod: V1Pod): Promise<V1Pod> {
  const created = await createPod(plane.kubeConfig, namespace, pod);
  return readPod(plane.kubeConfig, namespace, created.metadata?.name ?? '');
}

/** Expects the stored pod to carry exactly one native sidecar and the app container unchanged. */
function expectNativeSidecar(t: Test, pod: V1Pod): void {
  const sidecars = (pod.spec?.initContainers ?? []).filter((c) => c.name === SIDECAR_NAME);
  t.equal(sidecars.length, 1, `exactly one ${SIDECAR_NAME} init container`);
  t.equal(sidecars[0]?.restartPolicy, 'Always', 'a native sidecar (restartPolicy Always)');
  t.equal(sidecarsOf(pod).main, 0, `no ${SIDECAR_NAME} among the regular containers`);
  t.same(
    pod.spec?.containers?.map((c) => c.name),
    ['app'],
    'the app container is still the only regular container',
  );
  t.ok(pod.metadata?.annotations?.[STATUS_ANNOTATION], `${STATUS_ANNOTATION} records the injection`);
}

function expectUntouched(t: Test, pod: V1Pod): void {
  t.same(sidecarsOf(pod), { init: 0, main: 0 }, `no ${SIDECAR_NAME}`);
  t.notOk(pod.metadata?.annotations?.[STATUS_ANNOTATION], `no ${STATUS_ANNOTATION} annotation`);
}

/** Our webhook entries that the API server called for a request (each once, in call order). */
function ourEntries(event: AuditEvent): string[] {
  const entries = webhookInvocations(event)
    .filter((c) => c.configuration === WEBHOOK_CONFIGURATION_NAME)
    .map((c) => c.webhook);
  return [...new Set(entries)];
}

/**
 * Expects that exactly one of our two entries served the request: it injected in the first round,
 * and if the API server re-invoked it (reinvocationPolicy IfNeeded) nothing else was called.
 */
function expectServedBy(t: Test, event: AuditEvent, entry: string): void {
  const ours = webhookInvocations(event).filter((c) => c.configuration === WEBHOOK_CONFIGURATION_NAME);
  t.same(
    ours.filter((c) => c.round === 0).map((c) => `${c.webhook}:${c.mutated ? 'mutated' : 'unchanged'}`),
    [`${entry}:mutated`],
    `only ${entry} was called, and it injected`,
  );
  t.same(ourEntries(event), [entry], 'the two entries never overlap, also on re-invocation');
  // The built-in ServiceAccount plugin re-runs after our patch and mounts the API token into the new
  // sidecar; that change re-invokes us, and we must then change nothing (Kubernetes docs: a
  // re-invoked webhook should be a no-op on an object it already handled).
  const again = ours.find((c) => c.round === 1);
  if (again) t.equal(again.mutated, false, 're-invocation changes nothing');
}

async function rejection(promise: Promise<unknown>): Promise<{ code: number | undefined; message: string }> {
  try {
    await promise;
  } catch (err) {
    return { code: statusCode(err), message: apiErrorMessage(err) };
  }
  throw new Error('expected the API server to refuse the request');
}

t.test('1. selectors: who gets the sidecar', async (t) => {
  await createNamespace(plane, 's1-plain');
  await createNamespace(plane, 's1-enabled', NAMESPACE_ENABLED);

  t.test('a pod labelled flipt.io/inject=true is stored with the sidecar', async (t) => {
    const pod = await createAndRead('s1-plain', appPod('labelled', { [INJECT_LABEL]: 'true' }));
    expectNativeSidecar(t, pod);
    expectServedBy(t, await plane.podCreateEvent('s1-plain', 'labelled'), POD_ENTRY);
  });

  t.test("a Deployment's template is not mutated; a pod created as its ReplicaSet would is", async (t) => {
    const apps = plane.kubeConfig.makeApiClient(AppsV1Api);
    const template = {
      metadata: { labels: { app: 'web', [INJECT_LABEL]: 'true' } },
      spec: { containers: [{ name: 'app', image: 'registry.example/app:1' }] },
    };
    await apps.createNamespacedDeployment({
      namespace: 's1-plain',
      body: {
        metadata: { name: 'web' },
        spec: { replicas: 1, selector: { matchLabels: { app: 'web' } }, template },
      },
    });
    const deployment = await apps.readNamespacedDeployment({ namespace: 's1-plain', name: 'web' });
    t.same(
      deployment.spec?.template.spec?.containers.map((c) => c.name),
      ['app'],
      'template containers unchanged',
    );
    t.notOk(deployment.spec?.template.spec?.initContainers, 'no init containers in the template');
    t.notOk(
      deployment.spec?.template.metadata?.annotations?.[STATUS_ANNOTATION],
      'no status in the template',
    );

    // generateName: the AdmissionReview carries no pod name, as for every controller-made pod.
    const { replicaSet, pod: created } = await createPodLikeReplicaSet(
      plane.kubeConfig,
      's1-plain',
      'web',
      template,
    );
    t.notOk(replicaSet.spec?.template?.spec?.initContainers, 'the ReplicaSet template is not mutated either');
    t.match(created.metadata?.name, /^web-[0-9a-f]+-[a-z0-9]{5}$/, 'name generated by the API server');
    const pod = await readPod(plane.kubeConfig, 's1-plain', created.metadata?.name ?? '');
    expectNativeSidecar(t, pod);
    t.equal(pod.metadata?.ownerReferences?.[0]?.kind, 'ReplicaSet', 'owned by the ReplicaSet');
  });

  t.test('an unlabelled pod is untouched, and the webhook is not even called', async (t) => {
    const pod = await createAndRead('s1-plain', appPod('unlabelled'));
    expectUntouched(t, pod);
    t.same(ourEntries(await plane.podCreateEvent('s1-plain', 'unlabelled')), [], 'filtered by the selectors');
  });

  t.test('a namespace labelled for injection injects every pod except those opted out', async (t) => {
    const plain = await createAndRead('s1-enabled', appPod('plain'));
    expectNativeSidecar(t, plain);
    expectServedBy(t, await plane.podCreateEvent('s1-enabled', 'plain'), NAMESPACE_ENTRY);

    const labelled = await createAndRead('s1-enabled', appPod('labelled', { [INJECT_LABEL]: 'true' }));
    expectNativeSidecar(t, labelled);
    // Both selectors could match this pod by its label alone; the namespace decides which one does.
    expectServedBy(t, await plane.podCreateEvent('s1-enabled', 'labelled'), NAMESPACE_ENTRY);

    const optedOut = await createAndRead('s1-enabled', appPod('opted-out', { [INJECT_LABEL]: 'false' }));
    expectUntouched(t, optedOut);
    t.same(
      ourEntries(await plane.podCreateEvent('s1-enabled', 'opted-out')),
      [],
      'opted-out pods are not sent',
    );
  });

  t.test('kube-system is never touched, even when labelled for injection', async (t) => {
    const original = await core.readNamespace({ name: 'kube-system' });
    await core.replaceNamespace({
      name: 'kube-system',
      body: {
        ...original,
        metadata: { ...original.metadata, labels: { ...original.metadata?.labels, ...NAMESPACE_ENABLED } },
      },
    });
    t.teardown(async () => {
      const current = await core.readNamespace({ name: 'kube-system' });
      const labels = { ...current.metadata?.labels };
      delete labels[INJECT_LABEL];
      await core.replaceNamespace({
        name: 'kube-system',
        body: { ...current, metadata: { ...current.metadata, labels } },
      });
    });
    for (const [name, labels] of [
      ['system-labelled', { [INJECT_LABEL]: 'true' }],
      ['system-plain', {}],
    ] as const) {
      const pod = await createAndRead('kube-system', appPod(name, labels));
      expectUntouched(t, pod);
      t.same(
        ourEntries(await plane.podCreateEvent('kube-system', name)),
        [],
        `${name}: not sent to the webhook`,
      );
    }
  });
});

t.test('2. reinvocation: another mutating webhook after ours still leaves exactly one sidecar', async (t) => {
  const fixture = await startFixtureWebhook();
  t.teardown(() => fixture.close());
  const admission = plane.kubeConfig.makeApiClient(AdmissionregistrationV1Api);
  // Configurations are called in name order: ours ("flipt-…") first, the fixture ("zz-…") second.
  const fixtureName = 'zz-e2e-fixture-mutator';
  await admission.createMutatingWebhookConfiguration({ body: fixture.configuration(fixtureName) });
  t.teardown(() => admission.deleteMutatingWebhookConfiguration({ name: fixtureName }));
  await createNamespace(plane, 's2-plain');
  await createNamespace(plane, 's2-enabled', NAMESPACE_ENABLED);
  await waitFor('the fixture webhook to be called', async () => {
    const pod = await createPod(
      plane.kubeConfig,
      's2-plain',
      appPod('probe', { [FIXTURE_SELECTOR_LABEL]: 'on' }),
      {
        dryRun: true,
      },
    );
    return pod.metadata?.labels?.[FIXTURE_ADDED_LABEL] === 'true';
  });

  for (const [namespace, entry, labels] of [
    ['s2-plain', POD_ENTRY, { [INJECT_LABEL]: 'true', [FIXTURE_SELECTOR_LABEL]: 'on' }],
    ['s2-enabled', NAMESPACE_ENTRY, { [FIXTURE_SELECTOR_LABEL]: 'on' }],
  ] as const) {
    t.test(`${entry} in ${namespace}`, async (t) => {
      const callsBefore = fixture.calls.length;
      const pod = await createAndRead(namespace, appPod('both', labels));
      expectNativeSidecar(t, pod);
      t.equal(pod.metadata?.labels?.[FIXTURE_ADDED_LABEL], 'true', 'the fixture webhook changed the pod too');

      const event = await plane.podCreateEvent(namespace, 'both');
      expectServedBy(t, event, entry);
      const calls = webhookInvocations(event).map((c) => `${c.configuration}/${c.webhook}@${c.round}`);
      t.same(
        calls.slice(0, 3),
        [
          `${WEBHOOK_CONFIGURATION_NAME}/${entry}@0`,
          `${fixtureName}/fixture.e2e.flipt.io@0`,
          // The fixture changed the pod after us, so the API server called us again.
          `${WEBHOOK_CONFIGURATION_NAME}/${entry}@1`,
        ],
        'ours, the fixture, then ours re-invoked',
      );
      const seen = fixture.calls.slice(callsBefore);
      t.same(seen[0]?.initContainers, [SIDECAR_NAME], 'the fixture saw our sidecar (we ran first)');
    });
  }

  t.test('a pod re-created from a stored, injected pod (get -o yaml, apply) keeps one sidecar', async (t) => {
    const stored = await readPod(plane.kubeConfig, 's2-plain', 'both');
    const {
      uid: _uid,
      resourceVersion: _rv,
      creationTimestamp: _ct,
      managedFields: _mf,
      ...metadata
    } = stored.metadata ?? {};
    const again = await createAndRead('s2-plain', {
      metadata: { ...metadata, name: 'again' },
      spec: stored.spec,
    });
    expectNativeSidecar(t, again);
    t.same(
      again.spec?.initContainers?.find((c) => c.name === SIDECAR_NAME),
      stored.spec?.initContainers?.find((c) => c.name === SIDECAR_NAME),
      'the same sidecar as before',
    );
  });
});

t.test(
  '3. kubectl create --dry-run=server shows the sidecar, stores nothing, has no side effect',
  async (t) => {
    await createNamespace(plane, 's3');
    const manifest = JSON.stringify({
      apiVersion: 'v1',
      kind: 'Pod',
      ...appPod('dry', { [INJECT_LABEL]: 'true' }),
    });
    const result = await kubectl(['create', '--dry-run=server', '-n', 's3', '-o', 'json', '-f', '-'], {
      kubeconfig: plane.kubeconfigPath,
      input: manifest,
    });
    t.equal(result.code, 0, result.stderr);
    const shown = JSON.parse(result.stdout) as V1Pod;
    expectNativeSidecar(t, shown);

    t.equal(
      await readPod(plane.kubeConfig, 's3', 'dry').then(() => 200, statusCode),
      404,
      'no pod was stored',
    );
    const events = await core.listNamespacedEvent({ namespace: 's3' });
    t.same(
      events.items.map((e) => e.reason),
      [],
      'no Events written for a dry run',
    );
    const configMaps = await core.listNamespacedConfigMap({ namespace: 's3' });
    const secrets = await core.listNamespacedSecret({ namespace: 's3' });
    t.same(
      [...configMaps.items, ...secrets.items].map((o) => o.metadata?.name),
      ['kube-root-ca.crt'],
      'no other objects appeared in the namespace',
    );
  },
);

t.test('4. Pod Security "restricted": a compliant pod is admitted with the sidecar', async (t) => {
  await createNamespace(plane, 's4', {
    'pod-security.kubernetes.io/enforce': 'restricted',
    'pod-security.kubernetes.io/enforce-version': 'latest',
  });
  // Compliant on the app container only: the sidecar must be compliant by itself, without
  // relying on pod-level securityContext defaults.
  const compliant: V1Pod = {
    metadata: { name: 'compliant', labels: { [INJECT_LABEL]: 'true' } },
    spec: {
      containers: [
        {
          name: 'app',
          image: 'registry.example/app:1',
          securityContext: {
            runAsNonRoot: true,
            runAsUser: 1000,
            allowPrivilegeEscalation: false,
            capabilities: { drop: ['ALL'] },
            seccompProfile: { type: 'RuntimeDefault' },
          },
        },
      ],
    },
  };
  const pod = await createAndRead('s4', compliant);
  expectNativeSidecar(t, pod);
  const sidecar = pod.spec?.initContainers?.find((c) => c.name === SIDECAR_NAME);
  t.match(
    sidecar?.securityContext,
    {
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
    'the sidecar is hardened',
  );

  const violating = await rejection(
    createPod(plane.kubeConfig, 's4', appPod('violating', { [INJECT_LABEL]: 'true' })),
  );
  t.equal(violating.code, 403, 'Pod Security is enforced in this namespace');
  t.match(violating.message, /violates PodSecurity "restricted:latest"/);
  t.notMatch(
    violating.message,
    new RegExp(SIDECAR_NAME),
    'only the app container is blamed, never the sidecar',
  );
});

t.test('5. a rejection reaches the kubectl user with our message', async (t) => {
  await createNamespace(plane, 's5');
  await createNamespace(plane, 's5-enabled', NAMESPACE_ENABLED);
  const cases: {
    namespace: string;
    entry: string;
    labels: Record<string, string>;
    annotation: string;
    value: string;
  }[] = [
    {
      namespace: 's5',
      entry: POD_ENTRY,
      labels: { [INJECT_LABEL]: 'true' },
      annotation: 'flipt.io/cpu-request',
      value: 'lots',
    },
    {
      namespace: 's5',
      entry: POD_ENTRY,
      labels: { [INJECT_LABEL]: 'true' },
      annotation: 'flipt.io/no-such-thing',
      value: 'x',
    },
    {
      namespace: 's5-enabled',
      entry: NAMESPACE_ENTRY,
      labels: {},
      annotation: 'flipt.io/http-port',
      value: '99999',
    },
  ];
  for (const c of cases) {
    const manifest = JSON.stringify({
      apiVersion: 'v1',
      kind: 'Pod',
      ...appPod('bad', c.labels, { [c.annotation]: c.value }),
    });
    const result = await kubectl(['apply', '-n', c.namespace, '-f', '-'], {
      kubeconfig: plane.kubeconfigPath,
      input: manifest,
    });
    t.not(result.code, 0, `${c.annotation}: kubectl apply fails`);
    t.match(
      result.stderr,
      `admission webhook "${c.entry}" denied the request`,
      `${c.annotation}: denied by ${c.entry}`,
    );
    t.match(result.stderr, c.annotation, `${c.annotation}: the message names the annotation`);
    t.match(result.stderr, 'flipt-sidecar-injector', `${c.annotation}: the message says who refused`);
    t.equal(
      await readPod(plane.kubeConfig, c.namespace, 'bad').then(() => 200, statusCode),
      404,
      `${c.annotation}: nothing stored`,
    );
  }
});

t.test('7. every golden case is admitted for real, in native and classic mode', async (t) => {
  const cases = goldenCases();
  t.ok(cases.length > 0, 'golden cases found');
  // One injector per configuration: the case's own (whose result must equal the golden output) and
  // the same with the sidecar mode flipped (whose result must be accepted, sidecar in the other list).
  const configs = new Map<string | undefined, GoldenCase[]>();
  for (const c of cases) configs.set(c.configFile, [...(configs.get(c.configFile) ?? []), c]);
  let namespaceCount = 0;

  for (const [configFile, group] of configs) {
    const own = await loadConfig(configFile, {});
    const flipped = structuredClone(own);
    flipped.sidecar.nativeSidecar = !own.sidecar.nativeSidecar;
    for (const [variant, config] of [
      ['golden', own],
      ['flipped', flipped],
    ] as const) {
      const mode = config.sidecar.nativeSidecar ? 'native' : 'classic';
      const configName = configFile ? basename(configFile) : 'default config';
      await t.test(`${configName}, ${mode} mode${variant === 'flipped' ? ' (flipped)' : ''}`, async (t) => {
        const running = await startInjector(config);
        t.teardown(() => running.close());
        await registerInjector(plane.kubeConfig, running, { mode });
        for (const goldenCase of group) {
          if (variant === 'flipped' && goldenCase.kind === 'error') continue; // refusals do not depend on the mode
          await t.test(goldenCase.name, async (t) => {
            const namespace = await goldenNamespace(t, goldenCase, `g${namespaceCount++}`);
            await runGoldenCase(t, goldenCase, namespace, variant === 'golden' ? undefined : config);
          });
        }
      });
    }
  }
  // Scenario 6 needs the first injector registered again.
  await registerInjector(plane.kubeConfig, injector, { mode: 'native' });
});

/**
 * The namespace a golden case runs in: kube-system and the injector's namespace as themselves (their
 * exclusion is the point), any other in a fresh namespace, labelled as the case's arguments say.
 * The "secure" namespace of the golden cases also enforces the restricted Pod Security Standard.
 */
async function goldenNamespace(t: Test, goldenCase: GoldenCase, fresh: string): Promise<string> {
  const docs = parseAllDocuments(goldenCase.input).map(
    (d) => d.toJS() as { metadata?: { namespace?: string } },
  );
  const declared = docs.find((d) => d?.metadata?.namespace)?.metadata?.namespace;
  const labels: Record<string, string> = goldenCase.namespaceEnabled ? { ...NAMESPACE_ENABLED } : {};
  if (declared === 'kube-system') {
    await setNamespaceLabels(t, 'kube-system', labels);
    return 'kube-system';
  }
  if (declared === INJECTOR_NAMESPACE) {
    const exists = await core.readNamespace({ name: INJECTOR_NAMESPACE }).then(
      () => true,
      () => false,
    );
    if (!exists) await createNamespace(plane, INJECTOR_NAMESPACE);
    await setNamespaceLabels(t, INJECTOR_NAMESPACE, labels);
    return INJECTOR_NAMESPACE;
  }
  if (declared === 'secure') {
    labels['pod-security.kubernetes.io/enforce'] = 'restricted';
    labels['pod-security.kubernetes.io/enforce-version'] = 'latest';
  }
  await createNamespace(plane, fresh, labels);
  return fresh;
}

/** Adds labels to an existing namespace until the test ends. */
async function setNamespaceLabels(t: Test, name: string, labels: Record<string, string>): Promise<void> {
  if (Object.keys(labels).length === 0) return;
  const original = await core.readNamespace({ name });
  const before = { ...original.metadata?.labels };
  await core.replaceNamespace({
    name,
    body: { ...original, metadata: { ...original.metadata, labels: { ...before, ...labels } } },
  });
  t.teardown(async () => {
    const current = await core.readNamespace({ name });
    await core.replaceNamespace({
      name,
      body: { ...current, metadata: { ...current.metadata, labels: before } },
    });
  });
}

/** A pod (template) of a golden file, with the workload object it belongs to. */
interface GoldenPod {
  ref: PodTemplateRef;
  workload: { kind?: string; metadata?: { name?: string }; spec?: Record<string, unknown> };
}

function podsOf(text: string): GoldenPod[] {
  return parseAllDocuments(text).flatMap((doc) => {
    const object = doc.toJS() as (GoldenPod['workload'] & { items?: GoldenPod['workload'][] }) | null;
    const items = object?.kind === 'List' ? (object.items ?? []) : object ? [object] : [];
    return items.flatMap((workload) => findPodTemplates(workload).map((ref) => ({ ref, workload })));
  });
}

/**
 * A pod as the workload's controller would create it (a bare Pod as written), without a namespace:
 * the test creates it in its own. Also returns the volumes the controller added (a StatefulSet's
 * claims), which the golden output does not have.
 */
function podFrom({ ref, workload }: GoldenPod): { pod: V1Pod; controllerVolumes: string[] } {
  const template = structuredClone(ref.template) as V1Pod;
  const metadata = { ...template.metadata };
  delete metadata.namespace;
  const spec = template.spec ?? { containers: [] };
  const workloadName = workload.metadata?.name ?? 'pod';
  if (ref.path.length > 0) {
    // A template: the controller names the pod after the workload (generateName).
    delete metadata.name;
    metadata.generateName = `${workloadName}-`;
  }
  const controllerVolumes: string[] = [];
  if (workload.kind === 'StatefulSet') {
    // The StatefulSet controller adds one PersistentVolumeClaim volume per claim template.
    const claims = (workload.spec?.volumeClaimTemplates ?? []) as { metadata?: { name?: string } }[];
    for (const claim of claims) {
      const name = claim.metadata?.name ?? '';
      controllerVolumes.push(name);
      spec.volumes = [
        ...(spec.volumes ?? []),
        { name, persistentVolumeClaim: { claimName: `${name}-${workloadName}-0` } },
      ];
    }
  }
  return { pod: { spec, metadata }, controllerVolumes };
}

const ADMISSION_DEFAULT_TOLERATIONS = ['node.kubernetes.io/not-ready', 'node.kubernetes.io/unreachable'];

/**
 * The stored pod without what the API server's own admission added (the service-account token
 * volume and its mounts, the DefaultTolerationSeconds tolerations) and the volumes a controller
 * added (its mounts were in the template). Field defaults
 * (terminationMessagePath, dnsPolicy, ...) stay; the comparison ignores fields the golden pod lacks.
 */
function withoutAdmissionAdditions(pod: V1Pod, controllerVolumes: string[]): V1Pod {
  const copy = structuredClone(pod);
  const spec = copy.spec;
  if (!spec) return copy;
  const tokenVolumes = new Set(
    (spec.volumes ?? [])
      .filter((v) => v.name.startsWith('kube-api-access-') || controllerVolumes.includes(v.name))
      .map((v) => v.name),
  );
  if (spec.volumes) spec.volumes = spec.volumes.filter((v) => !tokenVolumes.has(v.name));
  for (const container of [...(spec.initContainers ?? []), ...spec.containers]) {
    if (container.volumeMounts) {
      container.volumeMounts = container.volumeMounts.filter(
        (m) => !tokenVolumes.has(m.name) || controllerVolumes.includes(m.name),
      );
      if (container.volumeMounts.length === 0) delete container.volumeMounts;
    }
  }
  if (spec.volumes?.length === 0) delete spec.volumes;
  spec.tolerations = spec.tolerations?.filter(
    (tol) => !ADMISSION_DEFAULT_TOLERATIONS.includes(tol.key ?? ''),
  );
  if (spec.tolerations?.length === 0) delete spec.tolerations;
  return copy;
}

/**
 * Where `actual` lacks or differs from a field of `expected` (objects: every key of expected;
 * arrays: same length, element by element). Empty when expected is contained in actual.
 */
function differences(expected: unknown, actual: unknown, path = ''): string[] {
  if (Array.isArray(expected)) {
    // The API server omits empty lists when it serialises an object.
    if (expected.length === 0 && actual === undefined) return [];
    if (!Array.isArray(actual)) return [`${path}: expected an array, got ${JSON.stringify(actual)}`];
    if (actual.length !== expected.length) {
      return [`${path}: expected ${expected.length} items, got ${actual.length}: ${JSON.stringify(actual)}`];
    }
    return expected.flatMap((item, i) => differences(item, actual[i], `${path}[${i}]`));
  }
  if (typeof expected === 'object' && expected !== null) {
    if (typeof actual !== 'object' || actual === null) {
      return [`${path}: expected an object, got ${JSON.stringify(actual)}`];
    }
    return Object.entries(expected).flatMap(([key, value]) =>
      differences(value, (actual as Record<string, unknown>)[key], `${path}.${key}`),
    );
  }
  return expected === actual
    ? []
    : [`${path}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`];
}

/**
 * Creates every pod of a golden case through the API server. With `flippedConfig` undefined the
 * stored pod must contain the golden output (and the CLI's output must pass a server-side dry run);
 * otherwise it must be accepted with the sidecar where the flipped mode puts it.
 */
async function runGoldenCase(
  t: Test,
  goldenCase: GoldenCase,
  namespace: string,
  flippedConfig: InjectorConfig | undefined,
): Promise<void> {
  const inputs = podsOf(goldenCase.input);
  t.ok(inputs.length > 0, 'the case has pods');
  const expectedText = readFileSync(goldenCase.expectedFile, 'utf8');
  const outputs = goldenCase.kind === 'injected' ? podsOf(expectedText) : [];
  const shared = namespace === 'kube-system' || namespace === INJECTOR_NAMESPACE;

  for (const [i, input] of inputs.entries()) {
    const { ref } = input;
    const { pod, controllerVolumes } = podFrom(input);
    // A pod naming its own ServiceAccount needs it to exist, as in any cluster.
    const serviceAccount = pod.spec?.serviceAccountName;
    if (serviceAccount) await ensureServiceAccount(plane.kubeConfig, namespace, serviceAccount);
    const attempt = createPod(plane.kubeConfig, namespace, pod);
    if (goldenCase.kind === 'error') {
      const refused = await rejection(attempt);
      t.equal(refused.code, 400, `${ref.subject}: refused`);
      const cliErrors = expectedText.trim().replace(/^flipt-sidecar-injector refused [^:]+: /, '');
      const seen = refused.message.replace(/^.*?flipt-sidecar-injector refused [^:]+: /, '');
      // The API server hands webhooks annotations with sorted keys (Go maps) while the CLI reads
      // them in file order; the injector lists errors in its own fixed order, so both agree.
      t.equal(seen, cliErrors, `${ref.subject}: the user sees the errors the CLI prints, in the same order`);
      continue;
    }
    const created = await attempt;
    const name = created.metadata?.name ?? '';
    // Namespaces shared by both modes: make room for the other mode's pod of the same name.
    if (shared) t.teardown(() => core.deleteNamespacedPod({ namespace, name, gracePeriodSeconds: 0 }));
    const stored = await readPod(plane.kubeConfig, namespace, name);
    const expected = outputs[i]?.ref.template as V1Pod | undefined;
    const expectedSidecars = expected ? sidecarsOf(expected) : { init: 0, main: 0 };
    const injected = expectedSidecars.init + expectedSidecars.main > 0;

    if (!flippedConfig) {
      const want = structuredClone(expected ?? {}) as V1Pod;
      delete want.metadata?.namespace;
      delete want.metadata?.name; // a template's pod gets a generated name
      delete want.metadata?.generateName;
      const diff = differences(
        { metadata: want.metadata, spec: want.spec },
        withoutAdmissionAdditions(stored, controllerVolumes),
      );
      t.same(diff, [], `${ref.subject}: the stored pod contains the golden output`);
      continue;
    }
    const annotation = ref.template.metadata?.annotations?.['flipt.io/native-sidecar'];
    const native = annotation === undefined ? flippedConfig.sidecar.nativeSidecar : annotation === 'true';
    t.same(
      sidecarsOf(stored),
      injected ? (native ? { init: 1, main: 0 } : { init: 0, main: 1 }) : { init: 0, main: 0 },
      `${ref.subject}: accepted, with the sidecar where ${native ? 'native' : 'classic'} mode puts it`,
    );
  }

  if (!flippedConfig && goldenCase.kind === 'injected') {
    // The CLI's output (`flipt-injector inject`), applied as it is: every object passes the API
    // server's validation, and pods in it pass through the webhook unchanged.
    const objects = objectApi(plane.kubeConfig);
    for (const doc of parseAllDocuments(expectedText)) {
      const object = doc.toJS() as KubernetesObject & { items?: KubernetesObject[] };
      for (const item of object.kind === 'List' ? (object.items ?? []) : [object]) {
        const metadata = { ...item.metadata, namespace };
        // The webhook-made pod of the same name exists already; a dry run would only say so.
        if (item.kind === 'Pod' && metadata.name) metadata.name = `${metadata.name}-cli`;
        const body = { ...item, metadata };
        const label = `CLI output ${item.kind} ${item.metadata?.name ?? item.metadata?.generateName}`;
        try {
          const created = await objects.create(body, undefined, 'All');
          t.pass(`${label}: accepted by a server-side dry run`);
          if (item.kind === 'Pod') {
            t.same(
              sidecarsOf(created as V1Pod),
              sidecarsOf(item as V1Pod),
              `${label}: the webhook adds nothing`,
            );
          }
        } catch (err) {
          t.fail(`${label}: accepted by a server-side dry run, but: ${apiErrorMessage(err)}`);
        }
      }
    }
  }
}

t.test(
  '6. failurePolicy Fail: with the webhook down only pods that ask for the sidecar are refused',
  async (t) => {
    await createNamespace(plane, 's6-plain');
    await createNamespace(plane, 's6-enabled', NAMESPACE_ENABLED);
    await injector.close();

    for (const [namespace, name, labels, entry] of [
      ['s6-plain', 'labelled', { [INJECT_LABEL]: 'true' }, POD_ENTRY],
      ['s6-enabled', 'plain', {}, NAMESPACE_ENTRY],
    ] as const) {
      const refused = await rejection(createPod(plane.kubeConfig, namespace, appPod(name, labels)));
      t.equal(refused.code, 500, `${namespace}/${name}: refused`);
      t.match(
        refused.message,
        `failed calling webhook "${entry}"`,
        `${namespace}/${name}: says which webhook failed`,
      );
      t.equal(
        await readPod(plane.kubeConfig, namespace, name).then(() => 200, statusCode),
        404,
        `${namespace}/${name}: never started without its sidecar`,
      );
    }

    for (const [namespace, name, labels] of [
      ['s6-plain', 'unlabelled', { app: 'x' }],
      ['s6-enabled', 'opted-out', { [INJECT_LABEL]: 'false' }],
      ['kube-system', 'while-down', { [INJECT_LABEL]: 'true' }],
    ] as const) {
      const pod = await createAndRead(namespace, appPod(name, labels));
      t.ok(pod.metadata?.uid, `${namespace}/${name}: created while the webhook is down`);
      expectUntouched(t, pod);
    }
  },
);
