// What a patch must never make or keep: a pod without an app container, or with two containers or
// two volumes of ours. The API server would refuse such a pod only after admission, with a message
// about a field the user never wrote; the injector refuses it first, saying what to fix.
import type { Pod } from './k8s.ts';
import { SIDECAR_NAME, VOLUME_NAME } from './sidecar.ts';

// An index loop, no closure or copy: this runs on every admission, and most pods pass.
function countNamed(items: readonly { name?: string }[] | null | undefined, name: string): number {
  let count = 0;
  if (!items) return count;
  for (let i = 0; i < items.length; i++) if (items[i]?.name === name) count++;
  return count;
}

/** Problems with the pod as it would be after injection; empty when the patch is safe to plan. */
export function podInvariantProblems(pod: Pod): string[] {
  const spec = pod.spec;
  const problems: string[] = [];
  const containers = spec?.containers ?? [];
  let ours = countNamed(containers, SIDECAR_NAME);
  if (containers.length === 0) {
    problems.push('spec.containers is empty: a pod needs at least one container to give a sidecar to');
  } else if (ours === containers.length) {
    problems.push(
      `spec.containers holds only ${SIDECAR_NAME}: the pod has no app container of its own (injecting would leave it with none or only the sidecar); add the app container`,
    );
  }
  ours += countNamed(spec?.initContainers, SIDECAR_NAME);
  if (ours > 1) {
    const places: string[] = [];
    for (const list of ['initContainers', 'containers'] as const) {
      (spec?.[list] ?? []).forEach((c, i) => {
        if (c.name === SIDECAR_NAME) places.push(`spec.${list}[${i}]`);
      });
    }
    problems.push(
      `${places.length} containers are named ${SIDECAR_NAME} (${places.slice(0, 4).join(', ')}${places.length > 4 ? ', …' : ''}); container names must be unique across spec.initContainers and spec.containers: remove all but one`,
    );
  }
  const volumes = countNamed(spec?.volumes, VOLUME_NAME);
  if (volumes > 1) {
    problems.push(
      `${volumes} volumes are named ${VOLUME_NAME}; volume names must be unique: remove all but one`,
    );
  }
  return problems;
}
