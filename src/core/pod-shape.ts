// The shape of a pod (template) before the injector reads it: the fields it reads must have the types
// it expects. One check for both doors: the webhook answers a 400 naming the field, the CLI prints the
// document and path. Every other field passes through unchecked. One pass, iterative, stops at the
// first problem: the cost is bounded by the pod's size, and the message by MAX_QUOTED_CHARS.
import { clip } from './bounded.ts';

export interface ShapeProblem {
  /** Dotted path from the pod (template) root, e.g. "spec.containers[0].name". */
  path: string;
  /** What belongs there, e.g. "a list of containers". */
  expected: string;
  /** What is there, e.g. "a string". */
  got: string;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return 'a string';
  if (typeof value === 'number') return Number.isInteger(value) ? 'an integer' : 'a number';
  if (typeof value === 'boolean') return `a boolean (${value})`;
  return `a ${typeof value}`;
}

const isMapping = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
/** A key in a path: plain when it is a word, else quoted (label keys contain dots and slashes). */
const key = (k: string) => (/^[A-Za-z_][\w-]*$/.test(k) ? `.${clip(k)}` : `[${JSON.stringify(clip(k))}]`);

function stringMap(value: unknown, path: string, what: string): ShapeProblem | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isMapping(value)) return { path, expected: `a mapping of ${what}`, got: describe(value) };
  for (const k in value) {
    const v = value[k];
    if (typeof v !== 'string') {
      const hint = typeof v === 'boolean' || typeof v === 'number' ? ` (quote it: "${String(v)}")` : '';
      return { path: `${path}${key(k)}`, expected: `a string${hint}`, got: describe(v) };
    }
  }
  return undefined;
}

const isOptionalString = (value: unknown) =>
  value === undefined || value === null || typeof value === 'string';

function optionalString(value: unknown, path: string): ShapeProblem | undefined {
  if (isOptionalString(value)) return undefined;
  return { path, expected: 'a string', got: describe(value) };
}

// The loops below run on every admission: a path is written only for the problem it reports.
const portPath = (path: string, i: number, j: number) => `${path}[${i}].ports[${j}]`;

function containers(value: unknown, path: string, required: boolean): ShapeProblem | undefined {
  if ((value === undefined || value === null) && !required) return undefined;
  if (!Array.isArray(value)) return { path, expected: 'a list of containers', got: describe(value) };
  for (let i = 0; i < value.length; i++) {
    const c: unknown = value[i];
    if (!isMapping(c))
      return { path: `${path}[${i}]`, expected: 'a container (a mapping with a name)', got: describe(c) };
    if (typeof c.name !== 'string')
      return { path: `${path}[${i}].name`, expected: 'a string', got: describe(c.name) };
    const ports = c.ports;
    if (ports === undefined || ports === null) continue;
    if (!Array.isArray(ports))
      return { path: `${path}[${i}].ports`, expected: 'a list of ports', got: describe(ports) };
    for (let j = 0; j < ports.length; j++) {
      const p: unknown = ports[j];
      if (!isMapping(p))
        return {
          path: portPath(path, i, j),
          expected: 'a port (a mapping with containerPort)',
          got: describe(p),
        };
      if (!Number.isInteger(p.containerPort))
        return {
          path: `${portPath(path, i, j)}.containerPort`,
          expected: 'an integer',
          got: describe(p.containerPort),
        };
      if (!isOptionalString(p.name))
        return { path: `${portPath(path, i, j)}.name`, expected: 'a string', got: describe(p.name) };
    }
  }
  return undefined;
}

/** The first field of `pod` whose type the injector cannot work with, or undefined. */
export function podShapeProblem(pod: unknown): ShapeProblem | undefined {
  if (!isMapping(pod))
    return { path: '', expected: 'a pod (a mapping with metadata and spec)', got: describe(pod) };
  const metadata = pod.metadata;
  if (metadata !== undefined && metadata !== null) {
    if (!isMapping(metadata)) return { path: 'metadata', expected: 'a mapping', got: describe(metadata) };
    const problem =
      optionalString(metadata.name, 'metadata.name') ??
      optionalString(metadata.generateName, 'metadata.generateName') ??
      optionalString(metadata.namespace, 'metadata.namespace') ??
      stringMap(metadata.labels, 'metadata.labels', 'label names to string values') ??
      stringMap(metadata.annotations, 'metadata.annotations', 'annotation names to string values');
    if (problem) return problem;
  }
  const spec = pod.spec;
  if (!isMapping(spec))
    return { path: 'spec', expected: 'a pod spec (a mapping with containers)', got: describe(spec) };
  const problem =
    containers(spec.containers, 'spec.containers', true) ??
    containers(spec.initContainers, 'spec.initContainers', false);
  if (problem) return problem;
  const volumes = spec.volumes;
  if (volumes === undefined || volumes === null) return undefined;
  if (!Array.isArray(volumes))
    return { path: 'spec.volumes', expected: 'a list of volumes', got: describe(volumes) };
  for (let i = 0; i < volumes.length; i++) {
    const v: unknown = volumes[i];
    if (!isMapping(v))
      return { path: `spec.volumes[${i}]`, expected: 'a volume (a mapping with a name)', got: describe(v) };
    if (typeof v.name !== 'string')
      return { path: `spec.volumes[${i}].name`, expected: 'a string', got: describe(v.name) };
  }
  return undefined;
}

/** "spec.containers: expected a list of containers, got a string", under `root` ("request.object"). */
export function shapeMessage(problem: ShapeProblem, root: string): string {
  const path = problem.path === '' ? root : root === '' ? problem.path : `${root}.${problem.path}`;
  return `${path || 'the document'}: expected ${problem.expected}, got ${problem.got}`;
}
