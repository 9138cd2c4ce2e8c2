// Offline injection into manifest files (like `istioctl kube-inject`): find the pod template of each
// workload in a multi-document YAML stream, run the same core as the webhook, and re-emit YAML.
// Documents of other kinds, and pods that are not injected, pass through unchanged.
import fastJsonPatch from 'fast-json-patch';
import { parseAllDocuments } from 'yaml';
import type { InjectorConfig } from './core/config.ts';
import { injectPod, rejectionMessage, type InjectionResult } from './core/inject.ts';
import type { Pod } from './core/k8s.ts';

/** Where each workload kind keeps the pod it creates. */
export const POD_TEMPLATE_PATHS: Record<string, string[]> = {
  Pod: [],
  Deployment: ['spec', 'template'],
  StatefulSet: ['spec', 'template'],
  DaemonSet: ['spec', 'template'],
  ReplicaSet: ['spec', 'template'],
  ReplicationController: ['spec', 'template'],
  Job: ['spec', 'template'],
  CronJob: ['spec', 'jobTemplate', 'spec', 'template'],
  PodTemplate: ['template'],
};

export interface PodReport {
  /** "Deployment default/web" */
  subject: string;
  result: InjectionResult;
}

export interface ManifestResult {
  output: string;
  reports: PodReport[];
  /** Rejections, each worded as the webhook words its denial. */
  errors: string[];
}

export interface ManifestOptions {
  config: InjectorConfig;
  /** Treat every pod as being in a namespace labelled flipt.io/inject=enabled. */
  namespaceEnabled: boolean;
}

interface Workload {
  kind?: unknown;
  metadata?: { name?: unknown; namespace?: unknown };
  items?: unknown;
  [key: string]: unknown;
}

function getPath(object: unknown, path: (string | number)[]): unknown {
  let current = object;
  for (const key of path) {
    if (typeof current !== 'object' || current === null) return undefined;
    current = (current as Record<string | number, unknown>)[key];
  }
  return current;
}

interface Edit {
  path: (string | number)[];
  value: unknown;
}

/**
 * Injects into one object (recursing into a List's items) and returns the edits to make: the new
 * metadata and spec of each injected pod template. Editing the parsed document in place, rather than
 * re-emitting it, keeps comments and formatting elsewhere in the document.
 */
function injectObject(
  object: Workload,
  at: (string | number)[],
  options: ManifestOptions,
  reports: PodReport[],
  errors: string[],
): Edit[] {
  if (object.kind === 'List' && Array.isArray(object.items)) {
    return object.items.flatMap((item: unknown, i) =>
      typeof item === 'object' && item !== null
        ? injectObject(item as Workload, [...at, 'items', i], options, reports, errors)
        : [],
    );
  }
  const path = typeof object.kind === 'string' ? POD_TEMPLATE_PATHS[object.kind] : undefined;
  if (!path) return [];
  const template = getPath(object, path);
  if (typeof template !== 'object' || template === null) return [];

  const namespace = typeof object.metadata?.namespace === 'string' ? object.metadata.namespace : undefined;
  const name = typeof object.metadata?.name === 'string' ? object.metadata.name : '<unnamed>';
  const subject = `${String(object.kind)} ${namespace ?? '<default namespace>'}/${name}`;
  const result = injectPod(template as Pod, {
    config: options.config,
    namespace,
    namespaceEnabled: options.namespaceEnabled,
  });
  reports.push({ subject, result });
  if (result.outcome === 'rejected') {
    errors.push(rejectionMessage(subject, result.errors));
    return [];
  }
  if (result.outcome !== 'injected' || result.patch.length === 0) return [];

  const { newDocument } = fastJsonPatch.applyPatch(structuredClone(template), result.patch, true, false);
  const injected = newDocument as Pod;
  return [
    { path: [...at, ...path, 'metadata'], value: injected.metadata },
    { path: [...at, ...path, 'spec'], value: injected.spec },
  ];
}

/** Injects into every pod template in a YAML stream. Throws only when the text is not YAML. */
export function injectManifests(text: string, options: ManifestOptions): ManifestResult {
  const documents = parseAllDocuments(text);
  if (!Array.isArray(documents)) throw new Error('the input is not a YAML stream');
  const reports: PodReport[] = [];
  const errors: string[] = [];
  const out: string[] = [];
  for (const [index, doc] of documents.entries()) {
    if (doc.errors.length > 0) {
      throw new Error(`document ${index + 1} is not valid YAML: ${doc.errors[0]?.message ?? 'parse error'}`);
    }
    const object = doc.toJS() as unknown;
    if (object === null || object === undefined) continue;
    const edits =
      typeof object === 'object' && !Array.isArray(object)
        ? injectObject(object as Workload, [], options, reports, errors)
        : [];
    for (const edit of edits)
      doc.setIn(edit.path, doc.createNode(edit.value, { aliasDuplicateObjects: false }));
    out.push(doc.toString());
  }
  // Each document is re-emitted without its own "---"; one separator goes between documents.
  const bodies = out.map((d) => d.replace(/^---[^\n]*\n/, '').replace(/\n*$/, '\n'));
  return { output: bodies.join('---\n'), reports, errors };
}
