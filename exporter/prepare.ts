// Pure: one namespace as read → its part of the object: rendered (render.ts, with the `lt`
// rewrite), laid out in documents of bounded size (layout.ts), checked against Flipt's schema
// (schema.ts) and written as YAML. The object is the namespaces' parts in key order, so watch mode
// can keep the part of a namespace that did not change and re-render only the others.
import type { NamespaceState } from './api.ts';
import { splitDocument } from './layout.ts';
import { renderNamespace, renderYaml, type ConstraintRewrite } from './render.ts';
import type { DocumentValidator } from './schema.ts';

export interface PreparedNamespace {
  key: string;
  /** This namespace's YAML documents, each starting with `---`. */
  yaml: string;
  documents: number;
  flags: number;
  segments: number;
  rewrites: ConstraintRewrite[];
}

export type PrepareResult =
  { ok: true; prepared: PreparedNamespace } | { ok: false; stage: 'render' | 'schema'; problems: string[] };

export interface PrepareOptions {
  /** Flags per YAML document; 0 for one document per namespace. */
  flagsPerDocument: number;
  /** Flipt's schema check; undefined skips it. */
  validate: DocumentValidator | undefined;
}

export function prepareNamespace(state: NamespaceState, options: PrepareOptions): PrepareResult {
  const rendered = renderNamespace(state);
  if (rendered.errors.length > 0) return { ok: false, stage: 'render', problems: rendered.errors };
  const documents = splitDocument(rendered.document, options.flagsPerDocument);
  if (options.validate) {
    // The same namespace-level problem shows in every document of the namespace: say it once.
    const problems = [...new Set(options.validate(documents))];
    if (problems.length > 0) return { ok: false, stage: 'schema', problems };
  }
  return {
    ok: true,
    prepared: {
      key: state.namespace.key,
      yaml: renderYaml(documents),
      documents: documents.length,
      flags: rendered.document.flags.length,
      segments: rendered.document.segments.length,
      rewrites: rendered.rewrites,
    },
  };
}
