// The one entry point both doors (webhook and CLI) call: decide, resolve settings, check for
// conflicts, build the sidecar, and plan the JSON Patch. Idempotent: a pod whose flipt.io/status
// annotation shows it already carries the sidecar we would build gets an empty patch.
import { resolveSettings, STATUS_ANNOTATION } from './annotations.ts';
import { capMessage, clip, MAX_PROBLEMS, ProblemList, quote } from './bounded.ts';
import type { InjectorConfig } from './config.ts';
import { decide, type Decision } from './decide.ts';
import type { Container, PatchOperation, Pod, PodSpec, Volume } from './k8s.ts';
import { addToArray, pointer, setInMap } from './patch.ts';
import { podInvariantProblems } from './pod-checks.ts';
import { buildSidecar, HTTP_PORT_NAME, SIDECAR_NAME, VOLUME_NAME } from './sidecar.ts';
import type { CachedSettings } from './sidecar-cache.ts';

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

/** What the injector put into a pod, recorded in the flipt.io/status annotation. */
export interface InjectionStatus {
  initContainers: string[];
  containers: string[];
  volumes: string[];
}

type StatusRead = { ok: true; status: InjectionStatus | undefined } | { ok: false; error: string };

function readStatus(pod: Pod): StatusRead {
  const text = pod.metadata?.annotations?.[STATUS_ANNOTATION];
  if (text === undefined) return { ok: true, status: undefined };
  const invalid = {
    ok: false as const,
    error: `annotation ${STATUS_ANNOTATION} is written by the injector and is not valid (${quote(text)}); remove it and create the pod again`,
  };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return invalid;
  }
  // Only names the injector ever writes: a status is at most three one-item lists, so checking it,
  // and later looking names up in it, costs nothing however large a forged one is.
  const isNames = (v: unknown, ours: string) =>
    Array.isArray(v) && v.length <= 1 && v.every((n) => n === ours);
  if (typeof parsed !== 'object' || parsed === null) return invalid;
  const record = parsed as Record<string, unknown>;
  if (
    !isNames(record.initContainers, SIDECAR_NAME) ||
    !isNames(record.containers, SIDECAR_NAME) ||
    !isNames(record.volumes, VOLUME_NAME)
  )
    return invalid;
  return { ok: true, status: record as unknown as InjectionStatus };
}

/** Status annotation text: fixed key order, so the same injection always yields the same bytes. */
function statusText(native: boolean): string {
  return native ? NATIVE_STATUS : CLASSIC_STATUS;
}

const status = (native: boolean): InjectionStatus => ({
  initContainers: native ? [SIDECAR_NAME] : [],
  containers: native ? [] : [SIDECAR_NAME],
  volumes: [VOLUME_NAME],
});
const NATIVE_STATUS = JSON.stringify(status(true));
const CLASSIC_STATUS = JSON.stringify(status(false));

/**
 * True when `actual` has every field of `expected` with the same value, and every item of an
 * expected array, in order, among its own. The API server fills in defaults (terminationMessagePath,
 * probe thresholds) and in-tree admission plugins add to our container (the ServiceAccount plugin
 * appends its token volumeMount) after our patch: none of that may make a re-invocation think the
 * sidecar changed.
 */
export function containsAll(expected: unknown, actual: unknown): boolean {
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual)) return false;
    let from = 0;
    for (const item of expected) {
      const at = actual.findIndex((candidate, i) => i >= from && containsAll(item, candidate));
      if (at < 0) return false;
      from = at + 1;
    }
    return true;
  }
  if (typeof expected === 'object' && expected !== null) {
    if (typeof actual !== 'object' || actual === null || Array.isArray(actual)) return false;
    const record = actual as Record<string, unknown>;
    return Object.entries(expected).every(([key, value]) => containsAll(value, record[key]));
  }
  return expected === actual;
}

type ContainerList = 'initContainers' | 'containers';

function conflicts(pod: Pod, container: Container, status: InjectionStatus | undefined): string[] {
  const spec = pod.spec;
  const errors = new ProblemList(MAX_PROBLEMS);
  const owned = (list: ContainerList | 'volumes', name: string) => status?.[list].includes(name) ?? false;
  const lists: ContainerList[] = ['initContainers', 'containers'];
  for (const list of lists) {
    for (const c of spec?.[list] ?? []) {
      if (c.name === SIDECAR_NAME) {
        if (!owned(list, c.name)) {
          errors.add(
            `a container named ${SIDECAR_NAME} already exists in spec.${list} and was not injected by flipt-sidecar-injector (no ${STATUS_ANNOTATION} annotation lists it); rename that container, or opt the pod out with label flipt.io/inject=false`,
          );
        }
        continue;
      }
      for (const port of c.ports ?? []) {
        for (const ours of container.ports ?? []) {
          const which = ours.name === HTTP_PORT_NAME ? 'HTTP' : 'gRPC';
          const annotation = ours.name === HTTP_PORT_NAME ? 'flipt.io/http-port' : 'flipt.io/grpc-port';
          if (port.containerPort === ours.containerPort) {
            errors.add(
              () =>
                `container ${clip(c.name)} already uses port ${port.containerPort}, which the sidecar's ${which} port needs; choose another port for the sidecar with annotation ${annotation}`,
            );
          }
          if (port.name !== undefined && port.name === ours.name) {
            errors.add(
              () =>
                `container ${clip(c.name)} already has a port named ${clip(port.name as string)}, which the sidecar's ${which} port needs; rename that port`,
            );
          }
        }
      }
    }
  }
  for (const v of spec?.volumes ?? []) {
    if (v.name === VOLUME_NAME && !owned('volumes', v.name)) {
      errors.add(
        `a volume named ${VOLUME_NAME} already exists and was not injected by flipt-sidecar-injector; rename that volume`,
      );
    }
  }
  return errors.list();
}

/** Patch operations that bring the pod to exactly one up-to-date sidecar, one volume and the status. */
function planPatch(pod: Pod, container: Container, volume: Volume, native: boolean): PatchOperation[] {
  // podInvariantProblems has already refused a pod without spec.containers.
  const spec = pod.spec as PodSpec;
  const target: ContainerList = native ? 'initContainers' : 'containers';
  const other: ContainerList = native ? 'containers' : 'initContainers';
  const ops: PatchOperation[] = [];

  // Our sidecar in the other list (the pod switched between native and classic mode): move it.
  const stale = (spec[other] ?? []).findIndex((c) => c.name === SIDECAR_NAME);
  if (stale >= 0) ops.push({ op: 'remove', path: pointer('spec', other, stale) });

  const existing = (spec[target] ?? []).findIndex((c) => c.name === SIDECAR_NAME);
  if (existing < 0) {
    // First, so that it starts before the app (and before other init containers, which may need flags).
    ops.push(addToArray(spec[target], ['spec', target], container, 'first'));
  } else if (!containsAll(container, spec[target]?.[existing])) {
    ops.push({ op: 'replace', path: pointer('spec', target, existing), value: container });
  }

  const volumeIndex = (spec.volumes ?? []).findIndex((v) => v.name === VOLUME_NAME);
  if (volumeIndex < 0) {
    ops.push(addToArray(spec.volumes, ['spec', 'volumes'], volume, 'last'));
  } else if (!containsAll(volume, spec.volumes?.[volumeIndex])) {
    ops.push({ op: 'replace', path: pointer('spec', 'volumes', volumeIndex), value: volume });
  }

  const status = statusText(native);
  const annotations = pod.metadata?.annotations;
  if (annotations?.[STATUS_ANNOTATION] !== status) {
    if (pod.metadata === undefined || pod.metadata === null) {
      ops.push({ op: 'add', path: '/metadata', value: { annotations: { [STATUS_ANNOTATION]: status } } });
    } else {
      ops.push(setInMap(annotations, ['metadata', 'annotations'], STATUS_ANNOTATION, status));
    }
  }
  return ops;
}

/** The one wording of a refusal, used by the webhook's denial and the CLI's error output alike. */
export function rejectionMessage(subject: string, errors: string[]): string {
  return capMessage(`flipt-sidecar-injector refused ${subject}: ${errors.join('; ')}`);
}

export function injectPod(pod: Pod, context: InjectionContext): InjectionResult {
  const decision = decide({
    pod,
    namespace: context.namespace,
    namespaceEnabled: context.namespaceEnabled,
    injectorNamespace: context.config.injector.namespace,
    ...(context.kind === undefined ? {} : { kind: context.kind }),
    ...(context.operation === undefined ? {} : { operation: context.operation }),
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
