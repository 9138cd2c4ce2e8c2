// What the missing controllers would do, plus small helpers for talking to the e2e API server with
// @kubernetes/client-node.
import {
  ApiException,
  AppsV1Api,
  CoreV1Api,
  KubernetesObjectApi,
  type KubeConfig,
  type V1Pod,
  type V1PodTemplateSpec,
  type V1ReplicaSet,
} from '@kubernetes/client-node';
import { createHash } from 'node:crypto';

/** The HTTP status of a failed API call, or undefined for other errors. */
export function statusCode(err: unknown): number | undefined {
  return err instanceof ApiException ? err.code : undefined;
}

/** The API server's `Status.message` of a failed call (the text a kubectl user would see). */
export function apiErrorMessage(err: unknown): string {
  if (err instanceof ApiException) {
    const body: unknown = err.body;
    const parsed: unknown = typeof body === 'string' ? safeJson(body) : body;
    if (parsed && typeof parsed === 'object' && 'message' in parsed && typeof parsed.message === 'string') {
      return parsed.message;
    }
    return typeof body === 'string' ? body : err.message;
  }
  return err instanceof Error ? err.message : String(err);
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

async function ignoreAlreadyExists(call: Promise<unknown>): Promise<void> {
  try {
    await call;
  } catch (err) {
    if (statusCode(err) !== 409) throw err;
  }
}

/**
 * Creates a ServiceAccount (the ServiceAccount admission plugin refuses pods whose account does not
 * exist) and the kube-root-ca.crt ConfigMap the projected token volume refers to: the work of
 * kube-controller-manager's serviceaccount and root-ca-cert-publisher controllers.
 */
export async function ensureServiceAccount(
  kubeConfig: KubeConfig,
  namespace: string,
  name = 'default',
  rootCaCert?: string,
): Promise<void> {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  await ignoreAlreadyExists(core.createNamespacedServiceAccount({ namespace, body: { metadata: { name } } }));
  if (rootCaCert !== undefined) {
    await ignoreAlreadyExists(
      core.createNamespacedConfigMap({
        namespace,
        body: { metadata: { name: 'kube-root-ca.crt' }, data: { 'ca.crt': rootCaCert } },
      }),
    );
  }
}

/** Creates a namespace with its `default` ServiceAccount, ready for pods. */
export async function createNamespace(
  plane: { kubeConfig: KubeConfig; caCert: string },
  name: string,
  labels: Record<string, string> = {},
): Promise<void> {
  const core = plane.kubeConfig.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name, labels } } });
  await ensureServiceAccount(plane.kubeConfig, name, 'default', plane.caCert);
}

/** Reads back a stored pod. */
export async function readPod(kubeConfig: KubeConfig, namespace: string, name: string): Promise<V1Pod> {
  return kubeConfig.makeApiClient(CoreV1Api).readNamespacedPod({ namespace, name });
}

/** Creates a pod and returns the object as stored (after every admission plugin and webhook). */
export async function createPod(
  kubeConfig: KubeConfig,
  namespace: string,
  pod: V1Pod,
  options: { dryRun?: boolean } = {},
): Promise<V1Pod> {
  return kubeConfig
    .makeApiClient(CoreV1Api)
    .createNamespacedPod({ namespace, body: pod, dryRun: options.dryRun ? 'All' : undefined });
}

/** A generic client for objects of any kind (golden-file manifests). */
export function objectApi(kubeConfig: KubeConfig): KubernetesObjectApi {
  return KubernetesObjectApi.makeApiClient(kubeConfig);
}

/** The pod-template-hash label value the ReplicaSet controller would compute (stable, not identical). */
function templateHash(template: V1PodTemplateSpec): string {
  return createHash('sha256').update(JSON.stringify(template)).digest('hex').slice(0, 10);
}

/**
 * Creates the ReplicaSet that the Deployment controller would create for `deploymentName`'s
 * template, then one Pod the way the ReplicaSet controller creates it: generateName (so admission
 * sees no name), the template's labels plus pod-template-hash, and a controller ownerReference.
 * Returns the pod as stored.
 */
export async function createPodLikeReplicaSet(
  kubeConfig: KubeConfig,
  namespace: string,
  deploymentName: string,
  template: V1PodTemplateSpec,
): Promise<{ replicaSet: V1ReplicaSet; pod: V1Pod }> {
  const hash = templateHash(template);
  const labels = { ...(template.metadata?.labels ?? {}), 'pod-template-hash': hash };
  const apps = kubeConfig.makeApiClient(AppsV1Api);
  const replicaSet = await apps.createNamespacedReplicaSet({
    namespace,
    body: {
      metadata: { name: `${deploymentName}-${hash}`, labels },
      spec: {
        replicas: 1,
        selector: { matchLabels: labels },
        template: { ...template, metadata: { ...template.metadata, labels } },
      },
    },
  });
  const pod = await createPod(kubeConfig, namespace, {
    metadata: {
      generateName: `${replicaSet.metadata?.name}-`,
      labels,
      annotations: template.metadata?.annotations,
      ownerReferences: [
        {
          apiVersion: 'apps/v1',
          kind: 'ReplicaSet',
          name: replicaSet.metadata?.name ?? '',
          uid: replicaSet.metadata?.uid ?? '',
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    spec: template.spec,
  });
  return { replicaSet, pod };
}
