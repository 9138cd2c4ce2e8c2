// Who gets a sidecar, and why: one function whose answer carries a reason code (for metrics) and a
// sentence (for logs, denials and `flipt-injector check`).
import { INJECT_LABEL } from './annotations.ts';
import { quote } from './bounded.ts';
import type { Pod } from './k8s.ts';

export const SYSTEM_NAMESPACES: readonly string[] = ['kube-system', 'kube-public', 'kube-node-lease'];

/** Namespace label values that enable injection for every pod in the namespace. */
export const NAMESPACE_ENABLED_VALUES: readonly string[] = ['enabled', 'true'];

export type InjectReason = 'pod-label' | 'namespace-label';
export type SkipReason =
  'not-a-pod' | 'not-create' | 'system-namespace' | 'injector-namespace' | 'pod-opted-out' | 'not-requested';
export type InvalidReason = 'invalid-inject-label';

export type Decision =
  | { action: 'inject'; reason: InjectReason; message: string }
  | { action: 'skip'; reason: SkipReason; message: string }
  | { action: 'reject'; reason: InvalidReason; message: string };

export interface DecisionInput {
  pod: Pod;
  /** The namespace the pod is created in (an AdmissionReview's request.namespace). */
  namespace: string | undefined;
  /**
   * Whether the namespace is enabled for injection. The webhook knows it from the entry that called
   * it (the API server already matched that entry's namespaceSelector); the CLI from a flag.
   */
  namespaceEnabled: boolean;
  /** The injector's own namespace, which is never injected. */
  injectorNamespace: string;
  /** The admission request's resource kind and operation; omitted by the CLI, which only sees pod templates. */
  kind?: string | undefined;
  operation?: string | undefined;
}

// The decisions that do not depend on the request, made once: the webhook decides on every admission.
const POD_LABEL: Decision = Object.freeze({
  action: 'inject',
  reason: 'pod-label',
  message: `the pod is labelled ${INJECT_LABEL}=true`,
});
const POD_OPTED_OUT: Decision = Object.freeze({
  action: 'skip',
  reason: 'pod-opted-out',
  message: `the pod is labelled ${INJECT_LABEL}=false`,
});
const NOT_REQUESTED: Decision = Object.freeze({
  action: 'skip',
  reason: 'not-requested',
  message: `neither the pod nor its namespace asks for injection (label ${INJECT_LABEL})`,
});

export function decide(input: DecisionInput): Decision {
  const { pod, namespace, namespaceEnabled, injectorNamespace } = input;
  if (input.kind !== undefined && input.kind !== 'Pod') {
    return {
      action: 'skip',
      reason: 'not-a-pod',
      message: `a ${input.kind} is not a Pod; only Pods are injected`,
    };
  }
  if (input.operation !== undefined && input.operation !== 'CREATE') {
    return {
      action: 'skip',
      reason: 'not-create',
      message: `operation ${input.operation}: sidecars are only injected when a Pod is created`,
    };
  }
  if (namespace && SYSTEM_NAMESPACES.includes(namespace)) {
    return {
      action: 'skip',
      reason: 'system-namespace',
      message: `namespace ${namespace} is a system namespace`,
    };
  }
  if (namespace && namespace === injectorNamespace) {
    return {
      action: 'skip',
      reason: 'injector-namespace',
      message: `namespace ${namespace} is the injector's own namespace`,
    };
  }
  const label = pod.metadata?.labels?.[INJECT_LABEL];
  if (label === 'false') return POD_OPTED_OUT;
  if (label === 'true') return POD_LABEL;
  if (label !== undefined) {
    return {
      action: 'reject',
      reason: 'invalid-inject-label',
      message: `label ${INJECT_LABEL} has the value ${quote(label)}; allowed: "true" (inject) or "false" (opt out)`,
    };
  }
  if (namespaceEnabled) {
    return {
      action: 'inject',
      reason: 'namespace-label',
      message: `namespace ${namespace || '(unknown)'} is labelled ${INJECT_LABEL}=${NAMESPACE_ENABLED_VALUES[0]}`,
    };
  }
  return NOT_REQUESTED;
}
