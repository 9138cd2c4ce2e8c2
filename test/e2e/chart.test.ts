// The Helm chart installed by the real helm into a real kube-apiserver (no controllers: the objects
// are what is tested, not their pods): every object accepted by the API server, not a client-side
// dry run; no Pod Security warning for the injector's pod template in a namespace enforcing
// `restricted`; a pod made from that template admitted; TLS generated at install and KEPT across an
// upgrade (lookup), so the webhook's caBundle never changes under running pods; uninstall leaves
// nothing behind. The demo install (deploy.sh with the rendered chart) is test/e2e/deploy.test.ts.
import { X509Certificate } from 'node:crypto';
import { join, resolve } from 'node:path';
import {
  AdmissionregistrationV1Api,
  AppsV1Api,
  CoreV1Api,
  type V1PodTemplateSpec,
} from '@kubernetes/client-node';
import t from 'tap';
import { useControlPlane } from './harness/apiserver.ts';
import { createNamespace, createPodLikeReplicaSet, statusCode } from './harness/kube.ts';
import { helm } from '../support/kube-tools.ts';

t.setTimeout(300_000);
const plane = await useControlPlane(t, { name: 'flipt-e2e-chart' });
const chart = resolve(import.meta.dirname, '..', '..', 'charts', 'flipt-sidecar-injector');
const NAMESPACE = 'flipt-system';
const RELEASE = 'flipt-sidecar-injector';
const core = plane.kubeConfig.makeApiClient(CoreV1Api);
const apps = plane.kubeConfig.makeApiClient(AppsV1Api);
const admission = plane.kubeConfig.makeApiClient(AdmissionregistrationV1Api);

const run = (args: string[]) => helm(args, { kubeconfig: plane.kubeconfigPath, timeoutMs: 120_000 });

await createNamespace(plane, NAMESPACE, {
  'pod-security.kubernetes.io/enforce': 'restricted',
  'pod-security.kubernetes.io/warn': 'restricted',
});

async function tlsState() {
  const secret = await core.readNamespacedSecret({ namespace: NAMESPACE, name: `${RELEASE}-tls` });
  const webhook = await admission.readMutatingWebhookConfiguration({ name: RELEASE });
  return {
    data: secret.data ?? {},
    caBundles: (webhook.webhooks ?? []).map((w) => w.clientConfig.caBundle),
  };
}

t.test('helm install: every object accepted, no Pod Security warning', async (t) => {
  const result = await run(['install', RELEASE, chart, '--namespace', NAMESPACE]);
  t.equal(result.code, 0, result.stderr);
  t.notMatch(result.stderr, /PodSecurity|violate/i, 'no warning for the restricted namespace');
  const deployment = await apps.readNamespacedDeployment({ namespace: NAMESPACE, name: RELEASE });
  t.equal(deployment.spec?.replicas, 2);
  const configMap = await core.readNamespacedConfigMap({ namespace: NAMESPACE, name: RELEASE });
  t.match(configMap.data?.['config.yaml'], /namespace: flipt-system/);
  const account = await core.readNamespacedServiceAccount({ namespace: NAMESPACE, name: RELEASE });
  t.equal(account.automountServiceAccountToken, false);
  const service = await core.readNamespacedService({ namespace: NAMESPACE, name: RELEASE });
  t.equal(service.spec?.ports?.[0]?.port, 443);
});

t.test('generated TLS: the caBundle signed a certificate for the Service the webhook calls', async (t) => {
  const { data, caBundles } = await tlsState();
  t.same(caBundles, [data['ca.crt'], data['ca.crt']]);
  const ca = new X509Certificate(Buffer.from(data['ca.crt'] as string, 'base64'));
  const cert = new X509Certificate(Buffer.from(data['tls.crt'] as string, 'base64'));
  t.ok(cert.verify(ca.publicKey));
  t.match(cert.subjectAltName, `DNS:${RELEASE}.${NAMESPACE}.svc`);
});

t.test("the injector's pod, as its ReplicaSet would create it, is admitted under restricted", async (t) => {
  const deployment = await apps.readNamespacedDeployment({ namespace: NAMESPACE, name: RELEASE });
  const template = deployment.spec?.template as V1PodTemplateSpec;
  const { pod } = await createPodLikeReplicaSet(plane.kubeConfig, NAMESPACE, RELEASE, template);
  t.ok(pod.metadata?.name, 'created');
  t.equal(pod.spec?.securityContext?.runAsNonRoot, true);
});

t.test('helm upgrade keeps the generated CA and certificate (lookup), so the caBundle stays', async (t) => {
  const before = await tlsState();
  const result = await run(['upgrade', RELEASE, chart, '--namespace', NAMESPACE, '--set', 'replicaCount=3']);
  t.equal(result.code, 0, result.stderr);
  const after = await tlsState();
  t.same(after, before, 'Secret data and caBundle unchanged');
  const deployment = await apps.readNamespacedDeployment({ namespace: NAMESPACE, name: RELEASE });
  t.equal(deployment.spec?.replicas, 3, 'the upgrade did apply');
});

t.test('a second release with the EKS/IRSA values in another namespace is accepted too', async (t) => {
  await createNamespace(plane, 'injector-irsa', { 'pod-security.kubernetes.io/enforce': 'restricted' });
  const values = join(chart, 'ci', 'eks-irsa-values.yaml');
  const result = await run(['install', 'irsa', chart, '--namespace', 'injector-irsa', '--values', values]);
  t.equal(result.code, 0, result.stderr);
  const webhook = await admission.readMutatingWebhookConfiguration({ name: 'irsa-flipt-sidecar-injector' });
  const excluded = webhook.webhooks?.[0]?.namespaceSelector?.matchExpressions?.[0]?.values;
  t.ok(excluded?.includes('injector-irsa'), "the release's namespace is never injected");
  t.equal((await run(['uninstall', 'irsa', '--namespace', 'injector-irsa', '--wait'])).code, 0);
});

t.test('helm uninstall leaves nothing behind', async (t) => {
  const result = await run(['uninstall', RELEASE, '--namespace', NAMESPACE, '--wait']);
  t.equal(result.code, 0, result.stderr);
  const gone = async (read: () => Promise<unknown>, what: string) => {
    try {
      await read();
      t.fail(`${what} still exists`);
    } catch (err) {
      t.equal(statusCode(err), 404, `${what} deleted`);
    }
  };
  await gone(() => admission.readMutatingWebhookConfiguration({ name: RELEASE }), 'webhook configuration');
  await gone(() => core.readNamespacedSecret({ namespace: NAMESPACE, name: `${RELEASE}-tls` }), 'TLS Secret');
  await gone(() => apps.readNamespacedDeployment({ namespace: NAMESPACE, name: RELEASE }), 'Deployment');
  await gone(() => core.readNamespacedConfigMap({ namespace: NAMESPACE, name: RELEASE }), 'ConfigMap');
  const left = await run(['list', '--all-namespaces', '--short']);
  t.equal(left.stdout.trim(), '', 'no release left');
});
