// The API calls of self-managed TLS, and nothing else (the RBAC the chart grants, verb for verb):
// get/create/update of one Secret, get/patch of one MutatingWebhookConfiguration. Every write
// carries the resourceVersion it was decided on, so a concurrent writer makes it fail with a
// Conflict instead of being overwritten.
import {
  AdmissionregistrationV1Api,
  ApiException,
  CoreV1Api,
  KubeConfig,
  type V1Secret,
} from '@kubernetes/client-node';
import { ConflictError, describeApiError, type SecretStore, type WebhookTarget } from './store.ts';

const FIELD_MANAGER = 'flipt-injector';
const LABELS = {
  'app.kubernetes.io/name': 'flipt-sidecar-injector',
  'app.kubernetes.io/component': 'webhook-tls',
  'app.kubernetes.io/managed-by': 'flipt-injector',
};

function status(err: unknown): number | undefined {
  return err instanceof ApiException ? err.code : undefined;
}

async function conflictAware<T>(call: Promise<T>, what: string): Promise<T> {
  try {
    return await call;
  } catch (err) {
    if (status(err) === 409) throw new ConflictError(`${what}: changed by someone else`);
    throw new Error(`${what}: ${describeApiError(err)}`, { cause: err });
  }
}

const decode = (data: Record<string, string> | undefined) =>
  Object.fromEntries(
    Object.entries(data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]),
  );
const encode = (data: Record<string, string>) =>
  Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'utf8').toString('base64')]));

export function kubeSecretStore(kubeConfig: KubeConfig, namespace: string, name: string): SecretStore {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const what = `Secret ${namespace}/${name}`;
  const body = (
    content: { data: Record<string, string>; annotations: Record<string, string> },
    resourceVersion?: string,
  ): V1Secret => ({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name,
      namespace,
      labels: LABELS,
      annotations: content.annotations,
      ...(resourceVersion === undefined ? {} : { resourceVersion }),
    },
    type: 'kubernetes.io/tls',
    data: encode(content.data),
  });
  return {
    async read() {
      let secret: V1Secret;
      try {
        secret = await core.readNamespacedSecret({ name, namespace });
      } catch (err) {
        if (status(err) === 404) return undefined;
        throw new Error(`${what}: ${describeApiError(err)}`, { cause: err });
      }
      return {
        resourceVersion: secret.metadata?.resourceVersion ?? '',
        data: decode(secret.data),
        annotations: secret.metadata?.annotations ?? {},
      };
    },
    async create(content) {
      await conflictAware(
        core.createNamespacedSecret({ namespace, body: body(content), fieldManager: FIELD_MANAGER }),
        what,
      );
    },
    async update(resourceVersion, content) {
      await conflictAware(
        core.replaceNamespacedSecret({
          name,
          namespace,
          body: body(content, resourceVersion),
          fieldManager: FIELD_MANAGER,
        }),
        what,
      );
    },
  };
}

export function kubeWebhookTarget(kubeConfig: KubeConfig, name: string): WebhookTarget {
  const api = kubeConfig.makeApiClient(AdmissionregistrationV1Api);
  const what = `MutatingWebhookConfiguration ${name}`;
  return {
    async read() {
      try {
        const configuration = await api.readMutatingWebhookConfiguration({ name });
        return {
          resourceVersion: configuration.metadata?.resourceVersion ?? '',
          entries: (configuration.webhooks ?? []).map((entry) => ({
            name: entry.name,
            caBundle: decode({ b: entry.clientConfig.caBundle ?? '' }).b ?? '',
          })),
        };
      } catch (err) {
        if (status(err) === 404) return undefined;
        throw new Error(`${what}: ${describeApiError(err)}`, { cause: err });
      }
    },
    async patchBundle(current, bundlePem) {
      const caBundle = Buffer.from(bundlePem, 'utf8').toString('base64');
      // A JSON patch of exactly our entries' caBundle. Setting resourceVersion makes it conditional:
      // the API server answers 409 if the configuration changed since it was read, and the `test`
      // operations make sure each index is still the entry we mean.
      const body = [
        { op: 'replace', path: '/metadata/resourceVersion', value: current.resourceVersion },
        ...current.entries.flatMap((entry, i) => [
          { op: 'test', path: `/webhooks/${i}/name`, value: entry.name },
          { op: 'add', path: `/webhooks/${i}/clientConfig/caBundle`, value: caBundle },
        ]),
      ];
      await conflictAware(
        api.patchMutatingWebhookConfiguration({ name, body, fieldManager: FIELD_MANAGER }),
        what,
      );
    },
  };
}

/** In a pod: the ServiceAccount token; elsewhere KUBECONFIG (tests, running outside the cluster). */
export function loadKubeConfig(): KubeConfig {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromDefault();
  return kubeConfig;
}
