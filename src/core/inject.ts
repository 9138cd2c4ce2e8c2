// The one entry point both doors (webhook and CLI) call: decide, resolve settings, check for
// conflicts, build the sidecar, and plan the JSON Patch. Idempotent: a pod whose flipt.io/status
// annotation shows it already carries the sidecar we would build gets an empty patch.
import { resolveSettings } from './annotations.ts';
import type { InjectorConfig } from './config.ts';
import { decide, type Decision } from './decide.ts';
import type { PatchOperation, Pod } from './k8s.ts';
import { podInvariantProblems } from './pod-checks.ts';
import { buildSidecar } from './sidecar.ts';
import type { CachedSettings } from './sidecar-cache.ts';
import { conflicts } from './conflicts.ts';
import { readStatus } from './injection-status.ts';
import { planPatch } from './plan-patch.ts';

export type RejectReason =
  'invalid-inject-label' | 'invalid-annotation' | 'invalid-status' | 'invalid-pod' | 'conflict';

export type InjectionResult =
  | { outcome: 'injected'; decision: Decision; patch: PatchOperation[]; changed: boolean }
  | { outcome: 'skipped'; decision: Decision }
  | { outcome: 'rejected'; reason: RejectReason; message: string; errors: string[] };

/** What a refusal says of itself (a log line's message), by reason; the errors say the details. */
const REFUSED: Record<Exclude<RejectReason, 'invalid-inject-label'>, string> = {
  'invalid-annotation': 'refused: a flipt.io/* annotation is invalid or unknown',
  'invalid-status': 'refused: its flipt.io/status annotation is not one the injector wrote',
  'invalid-pod': 'refused: the pod would be invalid with or without the sidecar',
  conflict: 'refused: the pod already uses a name, port or volume the sidecar needs',
};

function refused(reason: Exclude<RejectReason, 'invalid-inject-label'>, errors: string[]): InjectionResult {
  return { outcome: 'rejected', reason, message: REFUSED[reason], errors };
}

export interface InjectionContext {
  config: InjectorConfig;
  /** The namespace the pod lives in (request.namespace for the webhook). */
  namespace: string | undefined;
  namespaceEnabled: boolean;
  kind?: string;
  operation?: string;
  /**
   * Resolved settings and built sidecars, remembered across pods (src/core/sidecar-cache.ts, used by
   * the webhook). Without it every pod resolves and builds afresh (the CLI, and the reference the
   * cached path is tested against).
   */
  sidecars?: { resolve(annotations: Record<string, string>): CachedSettings };
}

export function injectPod(pod: Pod, context: InjectionContext): InjectionResult {
  const decision = decide({
    pod,
    namespace: context.namespace,
    namespaceEnabled: context.namespaceEnabled,
    injectorNamespace: context.config.injector.namespace,
    kind: context.kind,
    operation: context.operation,
  });
  if (decision.action === 'reject') {
    return {
      outcome: 'rejected',
      reason: decision.reason,
      message: decision.message,
      errors: [decision.message],
    };
  }
  if (decision.action === 'skip') return { outcome: 'skipped', decision };

  const annotations = pod.metadata?.annotations ?? {};
  const cached = context.sidecars?.resolve(annotations);
  const resolved = cached ?? resolveSettings(context.config, annotations);
  if (!resolved.ok) return refused('invalid-annotation', resolved.errors);
  const status = readStatus(pod);
  if (!status.ok) return refused('invalid-status', [status.error]);

  const invalid = podInvariantProblems(pod);
  if (invalid.length > 0) return refused('invalid-pod', invalid);

  const { container, volume } = cached?.ok ? cached.sidecar : buildSidecar(resolved.settings);
  const clashes = conflicts(pod, container, status.status);
  if (clashes.length > 0) return refused('conflict', clashes);

  const patch = planPatch(pod, container, volume, resolved.settings.sidecar.nativeSidecar);
  return { outcome: 'injected', decision, patch, changed: patch.length > 0 };
}
