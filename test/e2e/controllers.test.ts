// Self-test of the cluster harness: the real kube-controller-manager and the kubelet stand-in
// together turn workloads into pods through real admission, and compute real statuses from the
// stand-in's pod reports. Also records what the EndpointSlice controller of this Kubernetes
// version does with a Service port that targets a native sidecar (an init container).
import t from 'tap';
import {
  AppsV1Api,
  BatchV1Api,
  CoreV1Api,
  DiscoveryV1Api,
  type V1Deployment,
  type V1EndpointSlice,
  type V1PodSpec,
} from '@kubernetes/client-node';
import { useCluster } from './harness/controller-manager.ts';
import { STANDIN_NODE_NAME, STANDIN_POD_NETWORK } from './harness/kubelet-standin.ts';
import { statusCode } from './harness/kube.ts';
import { kubectl } from '../support/kube-tools.ts';

// tap's default of 30 s per file is too tight for a real control plane on a busy 2-core machine.
t.setTimeout(300_000);
const started = Date.now();
const cluster = await useCluster(t);
const { plane } = cluster;
t.comment(`cluster ready in ${Date.now() - started} ms (dir ${plane.dir})`);
const core = plane.kubeConfig.makeApiClient(CoreV1Api);
const apps = plane.kubeConfig.makeApiClient(AppsV1Api);
const batch = plane.kubeConfig.makeApiClient(BatchV1Api);
const discovery = plane.kubeConfig.makeApiClient(DiscoveryV1Api);
const kube = { kubeconfig: plane.kubeconfigPath, timeoutMs: 90_000 };

// Restricted-compliant containers, so the same specs serve the Pod Security test.
const securityContext = {
  runAsNonRoot: true,
  runAsUser: 10001,
  allowPrivilegeEscalation: false,
  capabilities: { drop: ['ALL'] },
  seccompProfile: { type: 'RuntimeDefault' },
};

function deployment(name: string, spec: V1PodSpec): V1Deployment {
  const labels = { app: name };
  return {
    metadata: { name },
    spec: { replicas: 1, selector: { matchLabels: labels }, template: { metadata: { labels }, spec } },
  };
}

/** A namespace created plainly: its ServiceAccount must come from the controller manager. */
async function namespace(name: string, labels: Record<string, string> = {}): Promise<void> {
  await core.createNamespace({ body: { metadata: { name, labels } } });
  await cluster.waitFor(
    `ServiceAccount ${name}/default`,
    async () => (await core.readNamespacedServiceAccount({ namespace: name, name: 'default' })) !== undefined,
    { timeoutMs: 60_000 },
  );
}

async function slicesOf(ns: string, service: string): Promise<V1EndpointSlice[]> {
  const list = await discovery.listNamespacedEndpointSlice({
    namespace: ns,
    labelSelector: `kubernetes.io/service-name=${service}`,
  });
  return list.items;
}

t.test('a new namespace gets its default ServiceAccount and kube-root-ca.crt', async (t) => {
  await core.createNamespace({ body: { metadata: { name: 'cm-sa' } } });
  await cluster.waitFor(
    'the serviceaccount and root-ca-certificate-publisher controllers',
    async () => {
      await core.readNamespacedServiceAccount({ namespace: 'cm-sa', name: 'default' });
      await core.readNamespacedConfigMap({ namespace: 'cm-sa', name: 'kube-root-ca.crt' });
      return true;
    },
    { timeoutMs: 60_000 },
  );
  const ca = await core.readNamespacedConfigMap({ namespace: 'cm-sa', name: 'kube-root-ca.crt' });
  t.equal(ca.data?.['ca.crt'], plane.caCert, "the API server's CA, from --root-ca-file");
});

t.test('Deployment → ReplicaSet → Pod through admission; the stand-in makes it available', async (t) => {
  await namespace('cm-deploy');
  await apps.createNamespacedDeployment({
    namespace: 'cm-deploy',
    body: deployment('web', { containers: [{ name: 'app', image: 'registry.example/app:1' }] }),
  });
  const rollout = await kubectl(
    ['rollout', 'status', 'deployment/web', '--namespace', 'cm-deploy', '--timeout=60s'],
    kube,
  );
  t.equal(rollout.code, 0, `kubectl rollout status: ${rollout.stdout}${rollout.stderr}`);
  t.match(rollout.stdout, /successfully rolled out/);

  const status = (await apps.readNamespacedDeployment({ namespace: 'cm-deploy', name: 'web' })).status;
  t.equal(status?.availableReplicas, 1, 'the Deployment controller counts the pod available');
  t.equal(status?.observedGeneration, 1);

  const replicaSets = (await apps.listNamespacedReplicaSet({ namespace: 'cm-deploy' })).items;
  t.equal(replicaSets.length, 1, 'one ReplicaSet, made by the Deployment controller');
  const rs = replicaSets[0];
  t.equal(rs?.metadata?.ownerReferences?.[0]?.kind, 'Deployment');
  t.ok(rs?.metadata?.labels?.['pod-template-hash'], 'with the real pod-template-hash');

  const pods = (await core.listNamespacedPod({ namespace: 'cm-deploy' })).items;
  t.equal(pods.length, 1, 'one pod, made by the ReplicaSet controller');
  const pod = pods[0];
  t.equal(pod?.metadata?.ownerReferences?.[0]?.name, rs?.metadata?.name, 'owned by the ReplicaSet');
  t.equal(pod?.spec?.serviceAccountName, 'default', 'ServiceAccount admission ran on it');
  t.equal(pod?.spec?.nodeName, STANDIN_NODE_NAME, 'bound by the stand-in');
  t.equal(pod?.status?.phase, 'Running');
  t.ok(
    pod?.status?.podIP?.startsWith(`${STANDIN_POD_NETWORK}.`),
    `pod IP ${pod?.status?.podIP} from TEST-NET-1`,
  );
  t.same(pod?.status?.conditions?.map((c) => [c.type, c.status]).sort(), [
    ['ContainersReady', 'True'],
    ['Initialized', 'True'],
    ['PodReadyToStartContainers', 'True'],
    ['PodScheduled', 'True'],
    ['Ready', 'True'],
  ]);
});

t.test('Job → Pod → Succeeded (stand-in) → Job complete (job controller)', async (t) => {
  await namespace('cm-job');
  await batch.createNamespacedJob({
    namespace: 'cm-job',
    body: {
      metadata: { name: 'once' },
      spec: {
        backoffLimit: 0,
        template: {
          spec: { restartPolicy: 'Never', containers: [{ name: 'task', image: 'registry.example/task:1' }] },
        },
      },
    },
  });
  const wait = await kubectl(
    ['wait', '--for=condition=complete', 'job/once', '--namespace', 'cm-job', '--timeout=60s'],
    kube,
  );
  t.equal(wait.code, 0, `kubectl wait: ${wait.stdout}${wait.stderr}`);
  const job = await batch.readNamespacedJob({ namespace: 'cm-job', name: 'once' });
  t.equal(job.status?.succeeded, 1);
  const pods = (await core.listNamespacedPod({ namespace: 'cm-job' })).items;
  t.equal(pods.length, 1);
  t.equal(pods[0]?.status?.phase, 'Succeeded');
  t.equal(pods[0]?.metadata?.ownerReferences?.[0]?.kind, 'Job', 'created by the job controller');
  t.same(
    pods[0]?.metadata?.finalizers ?? [],
    [],
    'the job controller removed its tracking finalizer after counting the pod',
  );
});

t.test('a Service targeting a native sidecar port gets an EndpointSlice with that port', async (t) => {
  await namespace('cm-endpoints');
  const spec: V1PodSpec = {
    initContainers: [
      {
        name: 'sidecar',
        image: 'registry.example/sidecar:1',
        restartPolicy: 'Always',
        ports: [{ name: 'sidecar-http', containerPort: 9090 }],
      },
    ],
    containers: [
      { name: 'app', image: 'registry.example/app:1', ports: [{ name: 'app', containerPort: 3000 }] },
    ],
  };
  await apps.createNamespacedDeployment({ namespace: 'cm-endpoints', body: deployment('web', spec) });
  for (const [name, targetPort] of [
    ['numeric', 9090],
    ['named', 'sidecar-http'],
  ] as const) {
    await core.createNamespacedService({
      namespace: 'cm-endpoints',
      body: {
        metadata: { name },
        spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 8080, targetPort }] },
      },
    });
  }
  const pod = await (async () => {
    await cluster.waitFor(
      'the pod to be Ready',
      async () =>
        (await core.listNamespacedPod({ namespace: 'cm-endpoints' })).items.some((p) =>
          p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
        ),
      { timeoutMs: 60_000 },
    );
    return (await core.listNamespacedPod({ namespace: 'cm-endpoints' })).items[0];
  })();

  for (const service of ['numeric', 'named']) {
    await cluster.waitFor(
      `an EndpointSlice for Service ${service} with the pod ready`,
      async () =>
        (await slicesOf('cm-endpoints', service)).some((s) =>
          (s.endpoints ?? []).some(
            (e) => e.conditions?.ready && e.addresses.includes(pod?.status?.podIP ?? ''),
          ),
        ),
      { timeoutMs: 60_000 },
    );
    const slices = await slicesOf('cm-endpoints', service);
    t.equal(slices.length, 1, `${service}: one EndpointSlice`);
    const slice = slices[0];
    t.same(
      slice?.ports,
      [{ name: 'http', port: 9090, protocol: 'TCP' }],
      `${service} targetPort resolves to the sidecar's port 9090`,
    );
    t.equal(slice?.endpoints?.[0]?.nodeName, STANDIN_NODE_NAME);
    t.equal(slice?.endpoints?.[0]?.targetRef?.name, pod?.metadata?.name);
  }
  t.comment(
    'recorded: on Kubernetes 1.35 a NAMED targetPort on a native-sidecar init container resolves ' +
      '(EndpointSlice port 9090), as does a numeric one',
  );
});

t.test('Pod Security admission denies a controller-made pod: FailedCreate, no pod', async (t) => {
  await namespace('cm-restricted', { 'pod-security.kubernetes.io/enforce': 'restricted' });
  // Runs as root and may escalate: the restricted profile refuses the pod (not the Deployment,
  // which is only warned about).
  await apps.createNamespacedDeployment({
    namespace: 'cm-restricted',
    body: deployment('root', { containers: [{ name: 'app', image: 'registry.example/app:1' }] }),
  });
  await apps.createNamespacedDeployment({
    namespace: 'cm-restricted',
    body: deployment('compliant', {
      securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
      containers: [{ name: 'app', image: 'registry.example/app:1', securityContext }],
    }),
  });
  await cluster.waitFor(
    'a FailedCreate event for the non-compliant ReplicaSet',
    async () =>
      (await core.listNamespacedEvent({ namespace: 'cm-restricted' })).items.some(
        (e) => e.reason === 'FailedCreate' && /violates PodSecurity "restricted/.test(e.message ?? ''),
      ),
    { timeoutMs: 60_000 },
  );
  const rollout = await kubectl(
    ['rollout', 'status', 'deployment/compliant', '--namespace', 'cm-restricted', '--timeout=60s'],
    kube,
  );
  t.equal(rollout.code, 0, rollout.stderr);
  const pods = (await core.listNamespacedPod({ namespace: 'cm-restricted' })).items;
  t.same(
    pods.map((p) => p.metadata?.labels?.app),
    ['compliant'],
    'only the compliant workload has a pod',
  );
  const root = await apps.readNamespacedDeployment({ namespace: 'cm-restricted', name: 'root' });
  t.notOk(root.status?.readyReplicas, 'the refused workload never becomes ready');
});

t.test('deleting a namespace finishes: namespace controller, GC and the final pod delete', async (t) => {
  const before = (await core.listNamespacedPod({ namespace: 'cm-deploy' })).items.length;
  t.ok(before > 0, 'the namespace has running pods');
  await core.deleteNamespace({ name: 'cm-deploy' });
  await cluster.waitFor(
    'namespace cm-deploy to be gone',
    async () => (await core.readNamespace({ name: 'cm-deploy' }).then(() => 200, statusCode)) === 404,
    { timeoutMs: 120_000, intervalMs: 500 },
  );
  t.pass('namespace deleted with its Deployment, ReplicaSet and pod');
});

t.test('the stand-in reported without errors', async (t) => {
  t.equal(cluster.kubelet.lastError(), undefined);
  t.ok(cluster.kubelet.passes() > 0);
});
