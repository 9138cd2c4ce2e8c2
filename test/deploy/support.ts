// Shared by the static deployment tests: helm and kubectl (the real binaries from the npm
// devDependency, test/support/kube-tools.ts) run without a cluster, YAML streams parsed into
// objects, and every object checked against the Kubernetes OpenAPI schemas (kubernetes-models).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { helm, kubectl, type ToolResult } from '../support/kube-tools.ts';

export const ROOT = resolve(import.meta.dirname, '..', '..');
export const CHART = join(ROOT, 'charts', 'flipt-sidecar-injector');
export const MANIFESTS = join(ROOT, 'manifests');

// helm and kubectl never reach a cluster here; a kubeconfig path of our own keeps them away from
// the user's ~/.kube/config and keeps helm's caches out of $HOME.
const scratch = mkdtempSync(join(tmpdir(), 'flipt-deploy-test-'));
process.on('exit', () => rmSync(scratch, { recursive: true, force: true }));
const options = { kubeconfig: join(scratch, 'kubeconfig'), cwd: ROOT, timeoutMs: 120_000 };

function ok(result: ToolResult, what: string): string {
  if (result.code !== 0)
    throw new Error(`${what} failed (exit ${result.code}):\n${result.stderr}${result.stdout}`);
  return result.stdout;
}

export const runHelm = (args: string[]) => helm(args, options);
export const runKubectl = (args: string[]) => kubectl(args, options);

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [key: string]: unknown;
}

export function parseObjects(text: string): K8sObject[] {
  return parseAllDocuments(text)
    .map((doc) => {
      if (doc.errors.length > 0) throw new Error(doc.errors.map((e) => e.message).join('; '));
      return doc.toJS() as K8sObject | null;
    })
    .filter((o): o is K8sObject => o !== null && typeof o === 'object');
}

/** `helm template` of the chart with the given values files and --set pairs. */
export async function renderChart(
  valuesFiles: string[] = [],
  set: string[] = [],
  namespace = 'flipt-system',
  release = 'flipt-sidecar-injector',
): Promise<K8sObject[]> {
  const args = ['template', release, CHART, '--namespace', namespace];
  for (const file of valuesFiles) args.push('--values', file);
  for (const pair of set) args.push('--set', pair);
  return parseObjects(ok(await runHelm(args), `helm ${args.join(' ')}`));
}

/** `kubectl kustomize DIR`. */
export async function kustomize(dir: string): Promise<K8sObject[]> {
  return parseObjects(ok(await runKubectl(['kustomize', dir]), `kubectl kustomize ${dir}`));
}

/** Kinds that kubernetes-models does not carry (CRDs): validated only by their own CRD in a cluster. */
export const NOT_IN_KUBERNETES_SCHEMAS = new Set(['cert-manager.io/v1']);

/** Validates one object against the Kubernetes schema of its apiVersion and kind; throws with the problem. */
export async function validateObject(object: K8sObject): Promise<void> {
  const [group, version] = object.apiVersion.includes('/')
    ? object.apiVersion.split('/')
    : ['', object.apiVersion];
  const path = group
    ? `kubernetes-models/${group}/${version}/${object.kind}`
    : `kubernetes-models/${version}/${object.kind}`;
  const module = (await import(path)) as Record<string, new (data: unknown) => { validate(): void }>;
  const Model = module[object.kind];
  if (!Model) throw new Error(`${path} has no model ${object.kind}`);
  new Model(object).validate();
}

export const describe = (o: K8sObject) =>
  `${o.kind} ${o.metadata.namespace ? `${o.metadata.namespace}/` : ''}${o.metadata.name}`;

type Container = {
  name: string;
  image?: string;
  restartPolicy?: string;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: Record<string, unknown> & { capabilities?: { drop?: string[]; add?: string[] } };
  readinessProbe?: unknown;
  livenessProbe?: unknown;
  startupProbe?: unknown;
  env?: { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }[];
  ports?: { name?: string; containerPort: number }[];
  args?: string[];
};
export type PodSpec = {
  containers: Container[];
  initContainers?: Container[];
  securityContext?: Record<string, unknown> & { seccompProfile?: { type: string } };
  volumes?: Record<string, unknown>[];
  hostNetwork?: boolean;
  hostPID?: boolean;
  hostIPC?: boolean;
  automountServiceAccountToken?: boolean;
  restartPolicy?: string;
};
export type { Container };

/** The pod template of a workload (Deployment, Job, CronJob), or undefined. */
export function podTemplate(o: K8sObject): { labels: Record<string, string>; spec: PodSpec } | undefined {
  const spec = o.spec as Record<string, any> | undefined; // eslint-disable-line @typescript-eslint/no-explicit-any
  const template = o.kind === 'CronJob' ? spec?.jobTemplate?.spec?.template : spec?.template;
  if (!template) return undefined;
  return { labels: template.metadata?.labels ?? {}, spec: template.spec as PodSpec };
}

/**
 * What the restricted Pod Security Standard (v1.35) requires of a pod, checked statically; a real
 * API server enforcing it is the e2e suite's job. Returns the violations.
 */
export function restrictedViolations(spec: PodSpec): string[] {
  const problems: string[] = [];
  const pod = spec.securityContext ?? {};
  if (spec.hostNetwork || spec.hostPID || spec.hostIPC) problems.push('host namespaces');
  const allowedVolumes = new Set([
    'configMap',
    'csi',
    'downwardAPI',
    'emptyDir',
    'ephemeral',
    'persistentVolumeClaim',
    'projected',
    'secret',
  ]);
  for (const volume of spec.volumes ?? []) {
    for (const key of Object.keys(volume)) {
      if (key !== 'name' && !allowedVolumes.has(key))
        problems.push(`volume ${String(volume.name)} is ${key}`);
    }
  }
  const podSeccomp = (pod.seccompProfile as { type?: string } | undefined)?.type;
  for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
    const sc = c.securityContext ?? {};
    if (sc.privileged) problems.push(`${c.name}: privileged`);
    if (sc.allowPrivilegeEscalation !== false)
      problems.push(`${c.name}: allowPrivilegeEscalation must be false`);
    if (!(sc.runAsNonRoot === true || (sc.runAsNonRoot === undefined && pod.runAsNonRoot === true))) {
      problems.push(`${c.name}: runAsNonRoot must be true`);
    }
    if (sc.runAsUser === 0 || pod.runAsUser === 0) problems.push(`${c.name}: runAsUser 0`);
    const seccomp = (sc.seccompProfile as { type?: string } | undefined)?.type ?? podSeccomp;
    if (seccomp !== 'RuntimeDefault' && seccomp !== 'Localhost') problems.push(`${c.name}: seccompProfile`);
    if (!sc.capabilities?.drop?.includes('ALL')) problems.push(`${c.name}: must drop ALL capabilities`);
    const added = (sc.capabilities?.add ?? []).filter((cap) => cap !== 'NET_BIND_SERVICE');
    if (added.length > 0) problems.push(`${c.name}: adds ${added.join(',')}`);
  }
  return problems;
}
