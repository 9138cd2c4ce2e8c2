// Our injector, run in-process on loopback HTTPS and registered with the e2e API server through the
// same MutatingWebhookConfiguration production uses (src/webhook/registration.ts, URL form of
// clientConfig, CA bundle from certificates made by src/tls.ts).
import {
  CoreV1Api,
  KubernetesObjectApi,
  type KubeConfig,
  type KubernetesObject,
  type V1Pod,
} from '@kubernetes/client-node';
import type { InjectorConfig } from '../../../src/core/config.ts';
import { startInjectorServer } from '../../../src/server.ts';
import { generateCertificates } from '../../../src/tls.ts';
import { mutatingWebhookConfiguration } from '../../../src/webhook/registration.ts';
import { waitFor } from '../../support/process.ts';
import { statusCode } from './kube.ts';

export const INJECTOR_NAMESPACE = 'flipt-system';
export const WEBHOOK_CONFIGURATION_NAME = 'flipt-sidecar-injector';
export const SIDECAR_NAME = 'flipt-sidecar';
export const INJECT_LABEL = 'flipt.io/inject';

export interface RunningInjector {
  /** https://127.0.0.1:PORT */
  url: string;
  /** Base64 PEM of the CA that signed the injector's serving certificate. */
  caBundle: string;
  close(): Promise<void>;
}

/** Starts the injector on a free loopback port with a fresh CA and serving certificate. */
export async function startInjector(config: InjectorConfig): Promise<RunningInjector> {
  const certs = await generateCertificates({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], days: 1 });
  const server = await startInjectorServer({
    host: '127.0.0.1',
    port: 0,
    tls: { cert: certs.cert, key: certs.key },
    config,
    // Quiet unless debugging: FLIPT_E2E_INJECTOR_LOG=debug shows every admission request.
    logLevel: process.env.FLIPT_E2E_INJECTOR_LOG || false,
  });
  let closed = false;
  return {
    url: server.url,
    caBundle: Buffer.from(certs.caCert).toString('base64'),
    close: async () => {
      if (closed) return;
      closed = true;
      await server.close();
    },
  };
}

/** Where a pod's flipt-sidecar containers are. */
export function sidecarsOf(pod: V1Pod): { init: number; main: number } {
  const count = (list: { name: string }[] | undefined) =>
    (list ?? []).filter((c) => c.name === SIDECAR_NAME).length;
  return { init: count(pod.spec?.initContainers), main: count(pod.spec?.containers) };
}

const probeNamespace = 'e2e-webhook-probe';

/**
 * Registers `injector` (creating or replacing the MutatingWebhookConfiguration) and waits until the
 * API server uses it: webhook configurations reach admission through an informer, a moment later.
 * `mode` says where the probe pod's sidecar must appear to count as "this injector answers".
 */
export async function registerInjector(
  kubeConfig: KubeConfig,
  injector: RunningInjector,
  { mode, failurePolicy = 'Fail' }: { mode: 'native' | 'classic'; failurePolicy?: 'Fail' | 'Ignore' },
): Promise<object> {
  const configuration = mutatingWebhookConfiguration({
    name: WEBHOOK_CONFIGURATION_NAME,
    caBundle: injector.caBundle,
    target: { url: injector.url },
    injectorNamespace: INJECTOR_NAMESPACE,
    failurePolicy,
  }) as KubernetesObject;
  const objects = KubernetesObjectApi.makeApiClient(kubeConfig);
  try {
    const existing = await objects.read({
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'MutatingWebhookConfiguration',
      metadata: { name: WEBHOOK_CONFIGURATION_NAME },
    });
    await objects.replace({
      ...configuration,
      metadata: { ...configuration.metadata, resourceVersion: existing.metadata?.resourceVersion },
    });
  } catch (err) {
    if (statusCode(err) !== 404) throw err;
    await objects.create(configuration);
  }

  const core = kubeConfig.makeApiClient(CoreV1Api);
  try {
    await core.createNamespace({ body: { metadata: { name: probeNamespace } } });
    await core.createNamespacedServiceAccount({
      namespace: probeNamespace,
      body: { metadata: { name: 'default' } },
    });
  } catch (err) {
    if (statusCode(err) !== 409) throw err;
  }
  await waitFor(
    `the API server to call the ${mode} injector`,
    async () => {
      const pod = await core.createNamespacedPod({
        namespace: probeNamespace,
        dryRun: 'All',
        body: {
          metadata: { name: 'probe', labels: { [INJECT_LABEL]: 'true' } },
          spec: { containers: [{ name: 'app', image: 'registry.example/app:1' }] },
        },
      });
      const { init, main } = sidecarsOf(pod);
      return mode === 'native' ? init === 1 && main === 0 : init === 0 && main === 1;
    },
    { timeoutMs: 30_000, intervalMs: 250 },
  );
  return configuration;
}
