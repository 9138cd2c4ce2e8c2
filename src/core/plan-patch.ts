// The JSON Patch that brings a pod to exactly one up-to-date sidecar, one volume and the status.
import { STATUS_ANNOTATION } from './annotations.ts';
import type { Container, PatchOperation, Pod, PodSpec, Volume } from './k8s.ts';
import { addToArray, pointer, setInMap } from './patch.ts';
import { SIDECAR_NAME, VOLUME_NAME } from './sidecar.ts';
import type { ContainerList } from './conflicts.ts';
import { statusText } from './injection-status.ts';
import { containsAll } from './contains.ts';

/** The index of the item named `name`, or -1 (a loop: this runs on every admission). */
function indexOfName(items: readonly { name?: string }[] | null | undefined, name: string): number {
  if (!items) return -1;
  for (let i = 0; i < items.length; i++) if (items[i]?.name === name) return i;
  return -1;
}

/** Patch operations that bring the pod to exactly one up-to-date sidecar, one volume and the status. */
export function planPatch(pod: Pod, container: Container, volume: Volume, native: boolean): PatchOperation[] {
  // podInvariantProblems has already refused a pod without spec.containers.
  const spec = pod.spec as PodSpec;
  const target: ContainerList = native ? 'initContainers' : 'containers';
  const other: ContainerList = native ? 'containers' : 'initContainers';
  const ops: PatchOperation[] = [];

  // Our sidecar in the other list (the pod switched between native and classic mode): move it.
  const stale = indexOfName(spec[other], SIDECAR_NAME);
  if (stale >= 0) ops.push({ op: 'remove', path: pointer('spec', other, stale) });

  const existing = indexOfName(spec[target], SIDECAR_NAME);
  if (existing < 0) {
    // First, so that it starts before the app (and before other init containers, which may need flags).
    ops.push(addToArray(spec[target], ['spec', target], container, 'first'));
  } else if (!containsAll(container, spec[target]?.[existing])) {
    ops.push({ op: 'replace', path: pointer('spec', target, existing), value: container });
  }

  const volumeIndex = indexOfName(spec.volumes, VOLUME_NAME);
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
