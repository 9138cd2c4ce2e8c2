// Pure: how one namespace's rendered document is laid out as YAML documents. A Flipt v1.61.1 sidecar
// validates every document of the stream on its own (CUE, core/validation/validate.go), and its peak
// memory follows the largest document: measured, 1,000 flags in one document peak at 286 MB, in
// documents of 100 flags at 131 MB. Flipt merges documents of the same namespace
// (internal/storage/fs/snapshot.go, addDoc): the namespace's name and description come from its
// first document, segments accumulate by key, and a rule's segment references are resolved when
// its flag is added, against the segments seen so far. So each document carries the same
// namespace block and every segment its own flags use (a segment may appear in several documents,
// always identical), and the first also carries the segments no flag uses: each document
// validates and resolves on its own, whatever reads it, and the merged namespace is the same.
import type { ExportDocument } from './render.ts';
import type { JsonValue } from './yaml.ts';

type Obj = { [key: string]: JsonValue };

/** Segment keys named by a rendered rule or rollout (`segment: KEY`, `{keys}` or `{key}`). */
function segmentRefs(item: Obj, into: Set<string>): void {
  const segment = item['segment'];
  if (typeof segment === 'string') {
    into.add(segment);
  } else if (segment && typeof segment === 'object' && !Array.isArray(segment)) {
    const { key, keys } = segment;
    if (typeof key === 'string') into.add(key);
    if (Array.isArray(keys)) for (const k of keys) if (typeof k === 'string') into.add(k);
  }
}

/** Segment keys the flag's rules and rollouts use. */
export function segmentsUsedBy(flag: Obj): Set<string> {
  const used = new Set<string>();
  for (const field of ['rules', 'rollouts']) {
    const list = flag[field];
    if (Array.isArray(list)) for (const item of list) segmentRefs(item as Obj, used);
  }
  return used;
}

/**
 * Splits a namespace's document into documents of at most `flagsPerDocument` flags (0: no limit),
 * in flag order. Deterministic: the same document always gives the same split.
 */
export function splitDocument(doc: ExportDocument, flagsPerDocument: number): ExportDocument[] {
  if (flagsPerDocument <= 0 || doc.flags.length <= flagsPerDocument) return [doc];
  const chunks: ExportDocument[] = [];
  const usedAnywhere = new Set<string>();
  for (let start = 0; start < doc.flags.length; start += flagsPerDocument) {
    const flags = doc.flags.slice(start, start + flagsPerDocument);
    const used = new Set<string>();
    for (const flag of flags) for (const key of segmentsUsedBy(flag)) used.add(key);
    for (const key of used) usedAnywhere.add(key);
    chunks.push({ ...doc, flags, segments: doc.segments.filter((s) => used.has(s['key'] as string)) });
  }
  // Segments no flag uses still belong to the namespace: the first document keeps them, in order.
  const first = chunks[0] as ExportDocument;
  const firstKeys = new Set(first.segments.map((s) => s['key'] as string));
  first.segments = doc.segments.filter((s) => {
    const key = s['key'] as string;
    return firstKeys.has(key) || !usedAnywhere.has(key);
  });
  return chunks;
}
