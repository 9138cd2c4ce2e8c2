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

/** A pod, or a workload's pod template, found in a manifest. */
export interface PodTemplateRef {
  /** Path of the pod (template) inside the document. */
  path: (string | number)[];
  template: Pod;
  /** The workload's namespace, when the manifest names one. */
  namespace: string | undefined;
  /** "Deployment shop/web", for messages. */
  subject: string;
}

/** Every pod and pod template in a decoded document, recursing into a List's items. */
export function findPodTemplates(object: unknown, at: (string | number)[] = []): PodTemplateRef[] {
  if (typeof object !== 'object' || object === null || Array.isArray(object)) return [];
  const workload = object as Workload;
  if (workload.kind === 'List' && Array.isArray(workload.items)) {
    return workload.items.flatMap((item: unknown, i) => findPodTemplates(item, [...at, 'items', i]));
  }
  const path = typeof workload.kind === 'string' ? POD_TEMPLATE_PATHS[workload.kind] : undefined;
  const template = path ? getPath(workload, path) : undefined;
  if (!path || typeof template !== 'object' || template === null) return [];
  const namespace =
    typeof workload.metadata?.namespace === 'string' ? workload.metadata.namespace : undefined;
  const name = typeof workload.metadata?.name === 'string' ? workload.metadata.name : '<unnamed>';
  return [
    {
      path: [...at, ...path],
      template: template as Pod,
      namespace,
      subject: `${String(workload.kind)} ${namespace ?? '<default namespace>'}/${name}`,
    },
  ];
}

interface Edit {
  path: (string | number)[];
  value: unknown;
}

/**
 * The edits that inject one pod template: its new metadata and spec. Editing the parsed document in
 * place, rather than re-emitting it, keeps comments and formatting elsewhere in the document.
 */
function injectTemplate(
  ref: PodTemplateRef,
  options: ManifestOptions,
  reports: PodReport[],
  errors: string[],
): Edit[] {
  const result = injectPod(ref.template, {
    config: options.config,
    namespace: ref.namespace,
    namespaceEnabled: options.namespaceEnabled,
  });
  reports.push({ subject: ref.subject, result });
  if (result.outcome === 'rejected') {
    errors.push(rejectionMessage(ref.subject, result.errors));
    return [];
  }
  if (result.outcome !== 'injected' || result.patch.length === 0) return [];
  const { newDocument } = fastJsonPatch.applyPatch(structuredClone(ref.template), result.patch, true, false);
  const injected = newDocument as Pod;
  return [
    { path: [...ref.path, 'metadata'], value: injected.metadata },
    { path: [...ref.path, 'spec'], value: injected.spec },
  ];
}

/** Injects into every pod template in a YAML stream. Throws only when the text is not YAML. */
export function injectManifests(text: string, options: ManifestOptions): ManifestResult {
  const documents = parseAllDocuments(text);
  if (!Array.isArray(documents)) throw new Error('the input is not a YAML stream');
  const reports: PodReport[] = [];
  const errors: string[] = [];
  const out: string[] = [];
  // Documents partition the text; leading comments belong to the span before a document's range.
  let previousEnd = 0;
  for (const [index, doc] of documents.entries()) {
    const start = previousEnd;
    previousEnd = doc.range[2];
    if (doc.errors.length > 0) {
      throw new Error(`document ${index + 1} is not valid YAML: ${doc.errors[0]?.message ?? 'parse error'}`);
    }
    const object = doc.toJS() as unknown;
    if (object === null || object === undefined) continue;
    const edits = findPodTemplates(object).flatMap((ref) => injectTemplate(ref, options, reports, errors));
    if (edits.length === 0) {
      // Untouched documents are copied byte for byte.
      out.push(text.slice(start, doc.range[2]));
      continue;
    }
    for (const edit of edits)
      doc.setIn(edit.path, doc.createNode(edit.value, { aliasDuplicateObjects: false }));
    out.push(doc.toString());
  }
  // Each document is re-emitted without its own "---"; one separator goes between documents.
  const bodies = out.map((d) => d.replace(/^---[^\n]*\n/, '').replace(/\n*$/, '\n'));
  return { output: bodies.join('---\n'), reports, errors };
}
