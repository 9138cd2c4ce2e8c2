// What in a pod clashes with the sidecar the injector would add: names, ports, volumes and a
// sidecar the status annotation does not account for.
import { STATUS_ANNOTATION } from './annotations.ts';
import { clip, MAX_PROBLEMS, ProblemList } from './bounded.ts';
import type { Container, Pod } from './k8s.ts';
import { HTTP_PORT_NAME, SIDECAR_NAME, VOLUME_NAME } from './sidecar.ts';
import type { InjectionStatus } from './injection-status.ts';

export type ContainerList = 'initContainers' | 'containers';

export function conflicts(pod: Pod, container: Container, status: InjectionStatus | undefined): string[] {
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
