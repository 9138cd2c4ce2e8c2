// The AdmissionReviews of the webhook benchmarks (bench/webhook.ts, bench/webhook-steps.ts): a
// 3-container pod from a ReplicaSet as the API server sends it, and a large variant.
export const benchReview = {
  apiVersion: 'admission.k8s.io/v1',
  kind: 'AdmissionReview',
  request: {
    uid: '705ab4f5-6393-11e8-b7cc-42010a800002',
    kind: { group: '', version: 'v1', kind: 'Pod' },
    resource: { group: '', version: 'v1', resource: 'pods' },
    namespace: 'shop',
    operation: 'CREATE',
    userInfo: {
      username: 'system:serviceaccount:kube-system:replicaset-controller',
      groups: ['system:serviceaccounts'],
    },
    dryRun: false,
    object: {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        generateName: 'checkout-7d9f8c6b5-',
        namespace: 'shop',
        labels: { app: 'checkout', tier: 'web', 'pod-template-hash': '7d9f8c6b5', 'flipt.io/inject': 'true' },
        annotations: {
          'flipt.io/poll-interval': '10s',
          'prometheus.io/scrape': 'true',
          'prometheus.io/port': '9100',
        },
        ownerReferences: [
          {
            apiVersion: 'apps/v1',
            kind: 'ReplicaSet',
            name: 'checkout-7d9f8c6b5',
            uid: 'b2f4c1d2-1',
            controller: true,
            blockOwnerDeletion: true,
          },
        ],
      },
      spec: {
        serviceAccountName: 'checkout',
        securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
        containers: ['app', 'worker', 'metrics'].map((name, i) => ({
          name,
          image: `ghcr.io/example/checkout-${name}:4.2.${i}`,
          ports:
            name === 'metrics'
              ? [{ name: 'metrics', containerPort: 9100 }]
              : [{ name: `${name}-http`, containerPort: 3000 + i }],
          env: Array.from({ length: 8 }, (_, j) => ({
            name: `${name.toUpperCase()}_SETTING_${j}`,
            value: `value-${j}`,
          })),
          resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '1', memory: '512Mi' } },
          volumeMounts: [
            { name: 'config', mountPath: '/etc/checkout' },
            {
              name: 'kube-api-access-abcde',
              mountPath: '/var/run/secrets/kubernetes.io/serviceaccount',
              readOnly: true,
            },
          ],
          readinessProbe: { httpGet: { path: '/ready', port: 3000 + i }, periodSeconds: 5 },
          securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
        })),
        volumes: [
          { name: 'config', configMap: { name: 'checkout' } },
          {
            name: 'kube-api-access-abcde',
            projected: { sources: [{ serviceAccountToken: { path: 'token', expirationSeconds: 3607 } }] },
          },
        ],
      },
    },
  },
};

/** The same review with a large pod: 20 containers and 40 annotations (6 of them flipt.io/*). */
export const largeReview = structuredClone(benchReview);
{
  const pod = largeReview.request.object;
  const [first] = pod.spec.containers;
  pod.spec.containers = Array.from({ length: 20 }, (_, i) => ({
    ...structuredClone(first as (typeof pod.spec.containers)[number]),
    name: `c${i}`,
    ports: [{ name: `http-${i}`, containerPort: 3000 + i }],
  }));
  const annotations: Record<string, string> = {
    'flipt.io/poll-interval': '10s',
    'flipt.io/cpu-limit': '250m',
    'flipt.io/memory-limit': '128Mi',
    'flipt.io/log-level': 'info',
    'flipt.io/prefix': 'checkout/',
    'flipt.io/native-sidecar': 'true',
  };
  for (let i = 0; Object.keys(annotations).length < 40; i++)
    annotations[`example.com/annotation-${i}`] = `value-${i}-${'x'.repeat(20)}`;
  pod.metadata.annotations = annotations as typeof pod.metadata.annotations;
}
