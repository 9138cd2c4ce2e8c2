// The MutatingWebhookConfiguration, in one place: the e2e suite registers it, the CLI prints it
// (`flipt-injector webhook-config`), and the Helm chart renders the same rules.
//
// Two entries whose selectors never overlap, so exactly one fires per pod:
//  - pod entry:       namespace NOT enabled, pod labelled flipt.io/inject=true  → /mutate
//  - namespace entry: namespace enabled,     pod not labelled flipt.io/inject=false → /mutate/namespace
// The API server evaluates the selectors before calling us, so the path tells the injector whether the
// namespace is enabled: no namespace lookups, no RBAC, no cache to warm up.
import { INJECT_LABEL } from '../core/annotations.ts';
import { NAMESPACE_ENABLED_VALUES, SYSTEM_NAMESPACES } from '../core/decide.ts';
import { MUTATE_NAMESPACE_PATH, MUTATE_PATH } from './paths.ts';

export type WebhookTarget = { url: string } | { service: { name: string; namespace: string; port?: number } };

export interface WebhookConfigurationOptions {
  /** metadata.name of the MutatingWebhookConfiguration. */
  name?: string;
  /** Base64 PEM of the CA that signed the serving certificate. */
  caBundle: string;
  /** A base URL (https://host:port) or a Service in the cluster. */
  target: WebhookTarget;
  /** The injector's namespace, excluded like the system namespaces. */
  injectorNamespace: string;
  /** Fail (default): a labelled pod is refused while the webhook is down, never started without its sidecar. */
  failurePolicy?: 'Fail' | 'Ignore';
  timeoutSeconds?: number;
  labels?: Record<string, string>;
}

const NAME_LABEL = 'kubernetes.io/metadata.name';

function clientConfig(target: WebhookTarget, caBundle: string, path: string) {
  if ('url' in target) return { url: `${target.url.replace(/\/+$/, '')}${path}`, caBundle };
  const { name, namespace, port = 443 } = target.service;
  return { service: { name, namespace, path, port }, caBundle };
}

export function mutatingWebhookConfiguration(options: WebhookConfigurationOptions) {
  const excludedNamespaces = [...SYSTEM_NAMESPACES, options.injectorNamespace];
  const notExcluded = { key: NAME_LABEL, operator: 'NotIn', values: excludedNamespaces };
  const common = {
    admissionReviewVersions: ['v1'],
    // We write nothing anywhere, so dry-run requests are safe to send (kubectl --dry-run=server).
    sideEffects: 'None',
    failurePolicy: options.failurePolicy ?? 'Fail',
    // Injection is idempotent (flipt.io/status), so a re-run after other webhooks is safe.
    reinvocationPolicy: 'IfNeeded',
    matchPolicy: 'Equivalent',
    timeoutSeconds: options.timeoutSeconds ?? 10,
    rules: [
      {
        apiGroups: [''],
        apiVersions: ['v1'],
        operations: ['CREATE'],
        resources: ['pods'],
        scope: 'Namespaced',
      },
    ],
  };
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: {
      name: options.name ?? 'flipt-sidecar-injector',
      labels: {
        'app.kubernetes.io/name': 'flipt-sidecar-injector',
        'app.kubernetes.io/component': 'webhook',
        ...options.labels,
      },
    },
    webhooks: [
      {
        name: 'pod.inject.flipt.io',
        clientConfig: clientConfig(options.target, options.caBundle, MUTATE_PATH),
        namespaceSelector: {
          matchExpressions: [
            notExcluded,
            { key: INJECT_LABEL, operator: 'NotIn', values: [...NAMESPACE_ENABLED_VALUES] },
          ],
        },
        objectSelector: { matchLabels: { [INJECT_LABEL]: 'true' } },
        ...common,
      },
      {
        name: 'namespace.inject.flipt.io',
        clientConfig: clientConfig(options.target, options.caBundle, MUTATE_NAMESPACE_PATH),
        namespaceSelector: {
          matchExpressions: [
            notExcluded,
            { key: INJECT_LABEL, operator: 'In', values: [...NAMESPACE_ENABLED_VALUES] },
          ],
        },
        objectSelector: { matchExpressions: [{ key: INJECT_LABEL, operator: 'NotIn', values: ['false'] }] },
        ...common,
      },
    ],
  };
}
