// The document layout: a namespace split into documents of at most N flags must load in Flipt as
// the same namespace. The merge below follows Flipt v1.61.1's loader (internal/storage/fs/
// snapshot.go, addDoc): documents in order, the namespace block from the first, segments
// accumulated by key, and each rule's or rollout's segments resolved when its flag is added.
import t from 'tap';
import { parseAllDocuments } from 'yaml';
import { segmentsUsedBy, splitDocument } from '../../exporter/layout.ts';
import { buildDocuments, renderYaml, type ExportDocument } from '../../exporter/render.ts';
import { createDocumentValidator } from '../../exporter/schema.ts';
import { loadFixture, stateOf, syntheticData, type MasterData } from './flipt-replay.ts';

type Obj = Record<string, unknown>;

function documentOf(data: MasterData): ExportDocument {
  const built = buildDocuments(stateOf(data));
  if (!built.ok) throw new Error(built.errors.join('; '));
  return built.documents[0] as ExportDocument;
}

/** Flipt's merge of one namespace's documents; throws where Flipt's loader would. */
function fliptMerge(documents: ExportDocument[]): { namespace: unknown; flags: Obj[]; segments: Obj[] } {
  const segments = new Map<string, Obj>();
  const flags = new Map<string, Obj>();
  for (const doc of documents) {
    for (const s of doc.segments) segments.set(s['key'] as string, s);
    for (const f of doc.flags) {
      for (const key of segmentsUsedBy(f)) {
        if (!segments.has(key)) throw new Error(`flag ${String(f['key'])} references unknown segment ${key}`);
      }
      flags.set(f['key'] as string, f);
    }
  }
  return { namespace: documents[0]?.namespace, flags: [...flags.values()], segments: [...segments.values()] };
}

function withUnusedSegment(data: MasterData): MasterData {
  const segments = data.segments['default'] as Obj[];
  segments.push({ ...(segments[0] as Obj), key: 'aaa-unused', name: 'Nobody uses me' });
  segments.push({ ...(segments[0] as Obj), key: 'zzz-unused', name: 'Nor me' });
  return data;
}

t.test('a namespace split in documents of N flags loads as the same namespace', async (t) => {
  const validate = createDocumentValidator();
  const whole = documentOf(withUnusedSegment(syntheticData(250, 1)));
  for (const n of [1, 7, 50, 100, 249, 250]) {
    const docs = splitDocument(whole, n);
    t.equal(docs.length, Math.ceil(250 / n), `${n} per document: ${docs.length} documents`);
    t.ok(docs.every((d) => d.flags.length <= n));
    t.same(validate(docs), [], `${n} per document: every document passes Flipt's schema`);
    for (const [i, d] of docs.entries()) {
      t.same(d.namespace, whole.namespace, `document ${i + 1} carries the same namespace block`);
      const own = new Set(d.segments.map((s) => s['key']));
      for (const f of d.flags)
        for (const key of segmentsUsedBy(f)) t.ok(own.has(key), `document ${i + 1} has ${key} itself`);
    }
    const merged = fliptMerge(docs);
    t.same(merged.flags, whole.flags, `${n} per document: the same flags in the same order`);
    t.same(
      [...merged.segments].sort((a, b) => String(a['key']).localeCompare(String(b['key']))),
      [...whole.segments].sort((a, b) => String(a['key']).localeCompare(String(b['key']))),
      `${n} per document: the same segments`,
    );
    const keys = docs[0]?.segments.map((s) => s['key']) ?? [];
    t.ok(keys.includes('aaa-unused') && keys.includes('zzz-unused'), 'unused segments in the first');
  }
});

t.test('the split is deterministic, and none happens below the limit or with 0', async (t) => {
  const whole = documentOf(syntheticData(120, 1));
  t.equal(
    renderYaml(splitDocument(whole, 50)),
    renderYaml(splitDocument(documentOf(syntheticData(120, 1)), 50)),
  );
  t.same(splitDocument(whole, 0), [whole]);
  t.same(splitDocument(whole, 120), [whole]);
  const empty = documentOf(syntheticData(0, 1));
  t.same(splitDocument(empty, 10), [empty], 'a namespace without flags keeps its one document');
});

t.test('the fixture (multi-segment rules, rollouts on several segments) splits cleanly', async (t) => {
  const whole = documentOf(loadFixture());
  const docs = splitDocument(whole, 1);
  t.equal(docs.length, whole.flags.length);
  t.same(fliptMerge(docs).flags, whole.flags);
  // The YAML stream parses back to the same documents.
  const parsed = parseAllDocuments(renderYaml(docs)).map((d) => d.toJS() as unknown);
  t.same(parsed, JSON.parse(JSON.stringify(docs)));
});
