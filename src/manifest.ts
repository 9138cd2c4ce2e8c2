// Offline injection into manifest files (like `istioctl kube-inject`): find the pod template of each
// workload in a multi-document YAML stream, run the same core as the webhook, and re-emit YAML.
// Documents of other kinds, and pods that are not injected, pass through unchanged. Documents are
// handled one at a time (src/yaml-stream.ts); what is kept across them is their output text and a
// one-line report per pod template.
import fastJsonPatch from 'fast-json-patch';
import { isAlias, isCollection, isNode, visit, type Document, type Node } from 'yaml';
import { clip, ProblemList } from './core/bounded.ts';
import type { InjectorConfig } from './core/config.ts';
import { injectPod } from './core/inject.ts';
import { rejectionMessage } from './core/refusal.ts';
import type { Pod } from './core/k8s.ts';
import { podShapeProblem, shapeMessage } from './core/pod-shape.ts';
import { MAX_NESTING, yamlDocuments } from './yaml-stream.ts';

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

/** Refusals printed for one stream; the rest are counted. */
export const MAX_LISTED_REFUSALS = 100;

/** What happened to one pod template, in words (`check` prints it). */
export interface PodReport {
  /** "Deployment default/web" */
  subject: string;
  verb: 'inject' | 'already injected' | 'skip' | 'reject';
  /** Reason code: a decision reason, a refusal reason, or `malformed`. */
  reason: string;
  detail: string;
}

export interface ManifestResult {
  output: string;
  reports: PodReport[];
  /** Refusals, each worded as the webhook words its denial. */
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

/**
 * Every pod and pod template in a decoded document, recursing into a List's items. The template is
 * returned whatever its shape (the caller checks it); only a workload whose template path does not
 * exist at all has none. Lists nest at most MAX_NESTING deep, like the documents they come from.
 */
export function findPodTemplates(object: unknown, at: (string | number)[] = []): PodTemplateRef[] {
  if (typeof object !== 'object' || object === null || Array.isArray(object)) return [];
  const workload = object as Workload;
  if (workload.kind === 'List' && Array.isArray(workload.items)) {
    if (at.length > MAX_NESTING) return [];
    return workload.items.flatMap((item: unknown, i) => findPodTemplates(item, [...at, 'items', i]));
  }
  const path = typeof workload.kind === 'string' ? POD_TEMPLATE_PATHS[workload.kind] : undefined;
  if (!path) return [];
  const template = getPath(workload, path);
  // A Pod is its own template; a workload without its template field is not one we can inject.
  if (path.length > 0 && (template === undefined || template === null)) return [];
  const namespace =
    typeof workload.metadata?.namespace === 'string' ? workload.metadata.namespace : undefined;
  const name = typeof workload.metadata?.name === 'string' ? clip(workload.metadata.name, 253) : '<unnamed>';
  return [
    {
      path: [...at, ...path],
      template: template as Pod,
      namespace,
      subject: `${String(workload.kind)} ${namespace === undefined ? '<default namespace>' : clip(namespace, 253)}/${name}`,
    },
  ];
}

/** "items[2].spec.template" */
export function formatPath(path: (string | number)[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

/**
 * Why the template at `path` cannot be edited in place, if it cannot: it is reached through a YAML
 * alias, or it (or something in it) is anchored, so that replacing it would change, or break, the
 * other place that shares it.
 */
function sharedNodeProblem(doc: Document.Parsed, path: (string | number)[]): string | undefined {
  let node: unknown = doc.contents;
  for (const [i, key] of path.entries()) {
    if (isAlias(node))
      return `${formatPath(path.slice(0, i)) || 'the document'} is a YAML alias (*${node.source})`;
    node = isCollection(node) ? node.get(key, true) : undefined;
  }
  if (isAlias(node)) return `the pod template is a YAML alias (*${node.source})`;
  let problem: string | undefined;
  if (isNode(node)) {
    visit(node as Node, (_key, child) => {
      if (isNode(child) && child.anchor) {
        problem = `the pod template defines a YAML anchor (&${child.anchor}) that may be used elsewhere`;
        return visit.BREAK;
      }
      if (isAlias(child)) {
        problem = `the pod template uses a YAML alias (*${child.source})`;
        return visit.BREAK;
      }
      return undefined;
    });
  }
  return problem;
}

interface Edit {
  path: (string | number)[];
  value: unknown;
}

/** Injects one pod template: its report, and the edits (new metadata and spec) when it changes. */
function injectTemplate(
  ref: PodTemplateRef,
  number: number,
  doc: Document.Parsed,
  options: ManifestOptions,
): { report: PodReport; error?: string; edits: Edit[] } {
  // The same shape check as the webhook's, so a user sees which field is wrong, not a library's dump.
  const shape = podShapeProblem(ref.template);
  if (shape) {
    const detail = `document ${number}, ${shapeMessage(shape, formatPath(ref.path))}`;
    return {
      report: { subject: ref.subject, verb: 'reject', reason: 'malformed', detail },
      error: rejectionMessage(ref.subject, [detail]),
      edits: [],
    };
  }
  const result = injectPod(ref.template, {
    config: options.config,
    namespace: ref.namespace,
    namespaceEnabled: options.namespaceEnabled,
  });
  if (result.outcome === 'rejected') {
    return {
      report: {
        subject: ref.subject,
        verb: 'reject',
        reason: result.reason,
        detail: result.errors.join('; '),
      },
      error: rejectionMessage(ref.subject, result.errors),
      edits: [],
    };
  }
  if (result.outcome === 'skipped') {
    return {
      report: {
        subject: ref.subject,
        verb: 'skip',
        reason: result.decision.reason,
        detail: result.decision.message,
      },
      edits: [],
    };
  }
  const report: PodReport = {
    subject: ref.subject,
    verb: result.changed ? 'inject' : 'already injected',
    reason: result.decision.reason,
    detail: result.decision.message,
  };
  if (!result.changed) return { report, edits: [] };
  const shared = sharedNodeProblem(doc, ref.path);
  if (shared) {
    const detail = `document ${number}, ${formatPath(ref.path) || 'the document'}: ${shared}; write the pod template out in full so that it can be injected`;
    return {
      report: { ...report, verb: 'reject', reason: 'malformed', detail },
      error: rejectionMessage(ref.subject, [detail]),
      edits: [],
    };
  }
  const { newDocument } = fastJsonPatch.applyPatch(structuredClone(ref.template), result.patch, true, false);
  const injected = newDocument as Pod;
  return {
    report,
    edits: [
      { path: [...ref.path, 'metadata'], value: injected.metadata },
      { path: [...ref.path, 'spec'], value: injected.spec },
    ],
  };
}

/** A document's text without its own "---" line and with exactly one final newline. */
function documentBody(text: string): string {
  return text.replace(/^---[^\n]*\n/, '').replace(/\n*$/, '\n');
}

/**
 * Injects into every pod template in a YAML stream, one document at a time. Throws (ManifestError or
 * Error) only when the text is not YAML or nests too deep. The output is the documents joined by
 * "---", each re-emitted without its own separator line.
 */
export function injectManifests(
  text: string,
  options: ManifestOptions,
  write?: (chunk: string) => void,
): ManifestResult {
  const reports: PodReport[] = [];
  // A stream of 20,000 refused pods prints the first MAX_LISTED_REFUSALS and a count of the rest.
  const errors = new ProblemList(MAX_LISTED_REFUSALS);
  // Without a `write`, the output is collected and returned; with one, each document is handed to it
  // as soon as it is done (nothing after the first refusal), and the output kept is empty.
  const out: string[] = [];
  let written = 0;
  const emit = (body: string) => {
    if (!write) return void out.push(body);
    write(written++ === 0 ? body : `---\n${body}`);
  };
  // Documents partition the text; leading comments belong to the span before a document's range.
  let previousEnd = 0;
  for (const { number, doc } of yamlDocuments(text)) {
    const start = previousEnd;
    previousEnd = doc.range[2];
    if (doc.errors.length > 0) {
      throw new Error(`document ${number} is not valid YAML: ${doc.errors[0]?.message ?? 'parse error'}`);
    }
    const object = doc.toJS() as unknown;
    if (object === null || object === undefined) continue;
    const edits: Edit[] = [];
    for (const ref of findPodTemplates(object)) {
      const done = injectTemplate(ref, number, doc, options);
      reports.push(done.report);
      if (done.error !== undefined) errors.add(done.error);
      edits.push(...done.edits);
    }
    // Once something is refused nothing is written, so the output need not be kept either.
    if (errors.count > 0) continue;
    // Each document is emitted without its own "---"; one separator goes between documents.
    if (edits.length === 0) {
      // Untouched documents are copied byte for byte.
      emit(documentBody(text.slice(start, doc.range[2])));
      continue;
    }
    for (const edit of edits)
      doc.setIn(edit.path, doc.createNode(edit.value, { aliasDuplicateObjects: false }));
    emit(documentBody(doc.toString()));
  }
  return { output: errors.count > 0 ? '' : out.join('---\n'), reports, errors: errors.list() };
}
