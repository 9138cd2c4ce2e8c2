// What in a pod clashes with the sidecar the injector would add: names, ports, volumes and a
// sidecar the status annotation does not account for.
import { STATUS_ANNOTATION } from './annotations.ts';
import { clip, MAX_PROBLEMS, ProblemList } from './bounded.ts';
import type { Container, Pod } from './k8s.ts';
import { HTTP_PORT_NAME, SIDECAR_NAME, VOLUME_NAME } from './sidecar.ts';
import type { InjectionStatus } from './injection-status.ts';

export type ContainerList = 'initContainers' | 'containers';

// Index loops and no closures: this runs on every admission, and most pods have no conflict.
const LISTS: readonly ContainerList[] = ['initContainers', 'containers'];

function owned(status: InjectionStatus | undefined, list: ContainerList | 'volumes', name: string): boolean {
  return status?.[list].includes(name) ?? false;
}

export function conflicts(pod: Pod, container: Container, status: InjectionStatus | undefined): string[] {
  const spec = pod.spec;
  const errors = new ProblemList(MAX_PROBLEMS);
  const ourPorts = container.ports ?? [];
  for (const list of LISTS) {
    const items = spec?.[list];
    if (!items) continue;
    for (let i = 0; i < items.length; i++) {
      const c = items[i] as Container;
      if (c.name === SIDECAR_NAME) {
        if (!owned(status, list, c.name)) {
          errors.add(
            `a container named ${SIDECAR_NAME} already exists in spec.${list} and was not injected by flipt-sidecar-injector (no ${STATUS_ANNOTATION} annotation lists it); rename that container, or opt the pod out with label flipt.io/inject=false`,
          );
        }
        continue;
      }
      const ports = c.ports;
      if (!ports) continue;
      for (let j = 0; j < ports.length; j++) {
        const port = ports[j] as NonNullable<Container['ports']>[number];
        for (let k = 0; k < ourPorts.length; k++) {
          const ours = ourPorts[k] as NonNullable<Container['ports']>[number];
          // `which` and `annotation` are declared inside the branches on purpose: declared per
          // pair, they are captured by the message closures and cost a context allocation for
          // every pair of ports (~450 bytes per admission of the benchmark pod), conflict or not.
          if (port.containerPort === ours.containerPort) {
            const which = ours.name === HTTP_PORT_NAME ? 'HTTP' : 'gRPC';
            const annotation = ours.name === HTTP_PORT_NAME ? 'flipt.io/http-port' : 'flipt.io/grpc-port';
            errors.add(
              () =>
                `container ${clip(c.name)} already uses port ${port.containerPort}, which the sidecar's ${which} port needs; choose another port for the sidecar with annotation ${annotation}`,
            );
          }
          if (port.name !== undefined && port.name === ours.name) {
            const which = ours.name === HTTP_PORT_NAME ? 'HTTP' : 'gRPC';
            errors.add(
              () =>
                `container ${clip(c.name)} already has a port named ${clip(port.name as string)}, which the sidecar's ${which} port needs; rename that port`,
            );
          }
        }
      }
    }
  }
  const volumes = spec?.volumes;
  if (volumes) {
    for (let i = 0; i < volumes.length; i++) {
      const v = volumes[i] as NonNullable<typeof volumes>[number];
      if (v.name === VOLUME_NAME && !owned(status, 'volumes', v.name)) {
        errors.add(
          `a volume named ${VOLUME_NAME} already exists and was not injected by flipt-sidecar-injector; rename that volume`,
        );
      }
    }
  }
  return errors.list();
}
