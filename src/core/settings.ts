// What one pod's sidecar is built from, and the checks across its fields (ports, requests and
// limits) that no single field's format can make. Worded by where each value came from: the pod's
// annotation when it set one, else the config field.
import type { InjectorConfig } from './config-schema.ts';
import { parseQuantity } from './formats.ts';

/** What one pod's sidecar is built from: the config's defaults with the pod's annotations applied. */
export type SidecarSettings = Omit<InjectorConfig, 'injector'>;

/** Where a setting came from, for messages: the annotation when the pod set it, else the config field. */
function source(annotations: Record<string, string>, annotation: string, configField: string): string {
  return annotation in annotations ? `annotation ${annotation}` : `config ${configField}`;
}

/** Every conflict between the resolved values; empty when there is none. */
export function crossFieldProblems(settings: SidecarSettings, annotations: Record<string, string>): string[] {
  const errors: string[] = [];
  const { httpPort, grpcPort, resources } = settings.sidecar;
  if (httpPort === grpcPort) {
    errors.push(
      `${source(annotations, 'flipt.io/http-port', 'sidecar.httpPort')} and ${source(annotations, 'flipt.io/grpc-port', 'sidecar.grpcPort')}: the HTTP and gRPC ports must differ (both are ${httpPort})`,
    );
  }
  for (const resource of ['cpu', 'memory'] as const) {
    const request = resources.requests[resource];
    const limit = resources.limits[resource];
    if ((parseQuantity(request) as number) > (parseQuantity(limit) as number)) {
      errors.push(
        `${source(annotations, `flipt.io/${resource}-request`, `sidecar.resources.requests.${resource}`)}: the ${resource} request ${request} exceeds the ${resource} limit ${limit} (${source(annotations, `flipt.io/${resource}-limit`, `sidecar.resources.limits.${resource}`)}); allowed: a request no larger than the limit`,
      );
    }
  }
  return errors;
}
