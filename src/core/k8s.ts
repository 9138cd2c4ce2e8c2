// The slices of Kubernetes object shapes the core reads and writes. Objects arrive as plain JSON
// (from an AdmissionReview or a YAML manifest), so these describe JSON, and every field we do not
// touch is carried through untouched.
import { clip } from './bounded.ts';

/** Kubernetes names are at most 253 characters; longer ones are clipped in messages. */
const MAX_NAME_CHARS = 253;

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string; optional?: boolean } } & Record<string, unknown>;
}

export interface ContainerPort {
  name?: string;
  containerPort: number;
  protocol?: string;
  hostPort?: number;
}

export interface Probe {
  httpGet?: { path: string; port: number | string; scheme?: string };
  initialDelaySeconds?: number;
  periodSeconds?: number;
  timeoutSeconds?: number;
  failureThreshold?: number;
  successThreshold?: number;
}

export interface Container {
  name: string;
  image?: string;
  imagePullPolicy?: string;
  restartPolicy?: string;
  args?: string[];
  env?: EnvVar[];
  ports?: ContainerPort[];
  resources?: {
    requests?: Record<string, string>;
    limits?: Record<string, string>;
  };
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
  readinessProbe?: Probe;
  startupProbe?: Probe;
  securityContext?: Record<string, unknown>;
  [field: string]: unknown;
}

export interface Volume {
  name: string;
  [source: string]: unknown;
}

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  [field: string]: unknown;
}

export interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  volumes?: Volume[];
  hostNetwork?: boolean;
  [field: string]: unknown;
}

/** A Pod, or a pod template (which has the same metadata and spec). */
export interface Pod {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
  spec?: PodSpec;
  [field: string]: unknown;
}

/** A JSON Patch (RFC 6902) operation, as the API server accepts it. */
export type PatchOperation =
  | { op: 'add'; path: string; value: unknown }
  | { op: 'replace'; path: string; value: unknown }
  | { op: 'remove'; path: string };

/** "namespace/name", or "namespace/generateName*" for pods that get their name on creation. */
export function podDisplayName(pod: Pod, namespace: string | undefined): string {
  const meta = pod.metadata ?? {};
  const name = meta.name || (meta.generateName ? `${meta.generateName}*` : '<unnamed>');
  // Names are checked by the API server only after admission: clip what a request can make huge.
  return `${clip(namespace || meta.namespace || '<no namespace>', MAX_NAME_CHARS)}/${clip(name, MAX_NAME_CHARS)}`;
}
