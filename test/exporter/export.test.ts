// One export run end to end on the exporter's side: a replaying master (fixtures written from Flipt
// v1.61.1's REST API definitions; Flipt cannot be built on this machine) and an in-memory object
// store that counts requests. The same behaviours against a real S3 server (MinIO) are in
// test/e2e/exporter-s3.test.ts.
import t, { type Test } from 'tap';
import { createHash } from 'node:crypto';
import { parseAllDocuments } from 'yaml';
import { countFlagsInBody, runExport, type ExportOutcome } from '../../exporter/export.ts';
import { createFliptClient } from '../../exporter/flipt-client.ts';
import { createDocumentValidator } from '../../exporter/schema.ts';
import { loadFixture, startReplayMaster, syntheticData, type MasterData } from './flipt-replay.ts';
import { MemoryStore } from './memory-store.ts';

const validate = createDocumentValidator();

async function setup(t: { teardown(fn: () => unknown): void }, data: MasterData) {
  const master = await startReplayMaster({ data });
  t.teardown(() => master.close());
  const store = new MemoryStore();
  const flipt = createFliptClient({ baseUrl: master.url, timeoutMs: 2_000, retries: 0 });
  const run = (
    options: {
      allowShrink?: boolean;
      maxShrink?: number;
      namespaces?: string[];
      markerNamespace?: string;
    } = {},
  ) =>
    runExport(
      { flipt, store, validate },
      {
        concurrency: 4,
        flagsPerDocument: 100,
        markerNamespace: options.markerNamespace,
        namespaces: options.namespaces,
        shrink: { allowShrink: options.allowShrink ?? false, maxShrink: options.maxShrink ?? 0.25 },
      },
    );
  return { master, store, run };
}

function flagsIn(store: MemoryStore): number {
  return parseAllDocuments(store.text()).reduce(
    (n, d) => n + (d.toJS() as { flags: unknown[] }).flags.length,
    0,
  );
}

function assertFailed(t: Test, outcome: ExportOutcome, stage: string, message: RegExp): void {
  t.equal(outcome.status, 'failed');
  if (outcome.status === 'failed') {
    t.equal(outcome.stage, stage);
    t.match(outcome.message, message);
  }
}

t.test('uploads, skips an unchanged export without a PUT, uploads a change', async (t) => {
  const { master, store, run } = await setup(t, loadFixture());
  const first = await run();
  t.match(first, { status: 'uploaded', namespaces: 3, flags: 7, segments: 5, previousFlags: undefined });
  t.equal(store.puts, 1);
  const docs = parseAllDocuments(store.text()).map((d) => d.toJS());
  t.same(validate(docs), [], "the uploaded object passes Flipt's document schema");
  t.equal(
    store.object?.metadata['sha256'],
    createHash('sha256')
      .update(store.object?.body ?? '')
      .digest('hex'),
  );
  t.match(store.object?.metadata, {
    flags: '7',
    segments: '5',
    namespaces: '3',
    format: 'flipt-declarative-1.4',
  });

  const second = await run();
  t.match(second, { status: 'unchanged', flags: 7 });
  t.equal(store.puts, 1, 'no PUT when nothing changed');
  t.equal(store.gets, 0, 'the hash in the metadata was enough');

  (master.data.flags['production']?.[0] as Record<string, unknown>)['enabled'] = false;
  const third = await run();
  t.match(third, { status: 'uploaded', previousFlags: 7 });
  t.equal(store.puts, 2);
  t.match(
    store.text(),
    /key: checkout-v2\n {4}name: Checkout v2\n {4}type: VARIANT_FLAG_TYPE\n {4}enabled: false/,
  );
});

t.test('a failed read from the master writes nothing', async (t) => {
  const { master, store, run } = await setup(t, syntheticData(90, 1));
  await run();
  const before = store.text();
  master.data = syntheticData(95, 1);
  master.handler = (r, normal) =>
    r.path.endsWith('/flag-00042/rules') ? { status: 502, body: 'bad gateway' } : normal();
  const outcome = await run();
  assertFailed(
    t,
    outcome,
    'flipt',
    /reading the Flipt master failed: GET .*flag-00042\/rules\?limit=100: HTTP 502: bad gateway/,
  );
  t.equal(store.puts, 1, 'no PUT');
  t.equal(store.text(), before, 'the previous object stays');
});

t.test('a state that cannot be exported writes nothing', async (t) => {
  const { master, store, run } = await setup(t, loadFixture());
  const rule = master.data.rules['default/new-checkout']?.[0] as Record<string, unknown>;
  (rule['distributions'] as Record<string, unknown>[])[0]!['variantId'] = 'deleted-variant';
  assertFailed(t, await run(), 'render', /references unknown variant id "deleted-variant"/);
  t.equal(store.puts, 0);
  t.equal(store.heads, 0, 'the bucket is not even asked');
});

t.test("'lt' (which Flipt v1.61.1 sidecars cannot read) is uploaded as its exact 'lte'", async (t) => {
  const { master, store, run } = await setup(t, loadFixture());
  const constraints = (name: number) =>
    (master.data.segments['default']?.[name] as Record<string, unknown>)['constraints'] as Record<
      string,
      unknown
    >[];
  constraints(1)[1]!['operator'] = 'lt'; // NUMBER 18
  constraints(2)[1]!['operator'] = 'lt'; // DATETIME 2025-01-01T00:00:00Z
  const outcome = await run();
  t.match(outcome, { status: 'uploaded' });
  if (outcome.status !== 'uploaded') return;
  t.same(
    outcome.rewrites.map((r) => `${r.segment} ${r.property}: ${r.from} → ${r.to}`),
    [
      'beta-users age: lt 18 → lte 17.999999999999996',
      'eu-users signed_up: lt 2025-01-01T00:00:00Z → lte 2024-12-31T23:59:59.999999999Z',
    ],
  );
  const text = store.text();
  t.match(text, /operator: lte\n\s+value: "17\.999999999999996"/);
  t.match(text, /operator: lte\n\s+value: "2024-12-31T23:59:59\.999999999Z"/);
  t.notMatch(text, /operator: lt\n/);
});

t.test("an 'lt' that cannot be rewritten exactly is refused, naming the segment", async (t) => {
  const { master, store, run } = await setup(t, loadFixture());
  const c = (
    (master.data.segments['default']?.[1] as Record<string, unknown>)['constraints'] as Record<
      string,
      unknown
    >[]
  )[1]!;
  c['operator'] = 'lt';
  c['value'] = 'eighteen';
  assertFailed(
    t,
    await run(),
    'render',
    /namespace default segment beta-users constraint 2 \(age lt\): Flipt v1\.61\.1 sidecars cannot read "lt" and it cannot be rewritten exactly: its value "eighteen" is not a finite decimal number/,
  );
  t.equal(store.puts, 0);
});

t.test("an export Flipt's schema refuses is not uploaded", async (t) => {
  const { master, store, run } = await setup(t, loadFixture());
  const seg = master.data.segments['default']?.[1] as Record<string, unknown>;
  // `le` is what v1.61.1's schema wants for less-than, but no master writes it: its evaluator and
  // the schema of every other Flipt do not know it. A type the schema lacks shows the check works.
  (seg['constraints'] as Record<string, unknown>[])[1]!['operator'] = 'isnotempty';
  const outcome = await run();
  assertFailed(
    t,
    outcome,
    'schema',
    /every sidecar would refuse it: namespace default: \/segments\/0\/constraints\/1\/operator must be one of eq, neq, present, notpresent, le, lte/,
  );
  t.equal(store.puts, 0);
});

t.test('the empty-export guard keeps the bucket when the master comes up empty', async (t) => {
  const { master, store, run } = await setup(t, syntheticData(120, 2));
  t.match(await run(), { status: 'uploaded', flags: 120 });
  const good = store.text();

  master.data = syntheticData(0, 2);
  const refused = await run();
  assertFailed(
    t,
    refused,
    'guard',
    /export refused, s3:\/\/memory\/features\.yml left as it is: the export has no flags but the object in the bucket has 120/,
  );
  t.equal(store.puts, 1);
  t.equal(store.text(), good);

  master.data = syntheticData(80, 2);
  assertFailed(
    t,
    await run(),
    'guard',
    /would remove 40 of the 120 flags in the bucket \(33\.3%, more than the allowed 25\.0%\)/,
  );
  t.match(await run({ maxShrink: 0.5 }), { status: 'uploaded', flags: 80, previousFlags: 120 });

  master.data = syntheticData(0, 2);
  t.match(await run({ allowShrink: true }), { status: 'uploaded', flags: 0, previousFlags: 80 });
  t.equal(flagsIn(store), 0);
});

t.test('an object written by someone else is compared and counted by its content', async (t) => {
  const { store, run } = await setup(t, syntheticData(40, 1));
  await run();
  const body = store.object?.body as Uint8Array;
  // Same bytes, no metadata (e.g. copied in by hand): unchanged, found by hashing the body.
  store.object = { body, metadata: {} };
  t.match(await run(), { status: 'unchanged' });
  t.equal(store.gets, 1);
  t.equal(store.puts, 1);

  // A foreign file with more flags: counted from its documents, so the guard still applies.
  const foreign = `---\nnamespace: default\nflags:\n${Array.from({ length: 200 }, (_, i) => `  - key: f${i}\n    name: F\n`).join('')}`;
  store.object = { body: Buffer.from(foreign), metadata: {} };
  assertFailed(t, await run(), 'guard', /would remove 160 of the 200 flags/);
  t.equal(countFlagsInBody(Buffer.from('not: [valid')), undefined, 'unreadable content counts as unknown');
});

t.test('an S3 failure is reported with the stage', async (t) => {
  const { store, run } = await setup(t, loadFixture());
  store.failPuts = true;
  assertFailed(t, await run(), 's3', /PutObject s3:\/\/memory\/features\.yml: HTTP 503 SlowDown/);
  t.equal(store.object, undefined);
});

t.test('chosen namespaces only', async (t) => {
  const { store, run } = await setup(t, loadFixture());
  t.match(await run({ namespaces: ['production'] }), { status: 'uploaded', namespaces: 1, flags: 2 });
  t.match(store.text(), /^---\nversion: "1\.4"\nnamespace:\n {2}key: production\n/);
});

t.test('request count of one export: lists plus one call per flag', async (t) => {
  const { master, run } = await setup(t, syntheticData(250, 1));
  const outcome = await run();
  // 1 namespaces page + 3 flag pages + 1 segment page + 250 per-flag calls.
  t.match(outcome, { status: 'uploaded', fliptRequests: 255 });
  t.equal(master.requests.length, 255);
});

t.test(
  'the export marker: a last document without flags, counted nowhere; a master namespace with its key is refused',
  async (t) => {
    const { store, run } = await setup(t, loadFixture());
    const outcome = await run({ markerNamespace: 'flipt-export' });
    t.match(outcome, { status: 'uploaded', namespaces: 3, flags: 7 });
    const docs = parseAllDocuments(store.text()).map((d) => d.toJS() as Record<string, unknown>);
    t.same(validate(docs), [], "the marker passes Flipt's document schema");
    const last = docs.at(-1) as { namespace: { key: string }; flags: unknown[]; segments: unknown[] };
    t.equal(last.namespace.key, 'flipt-export');
    t.same([last.flags, last.segments], [[], []]);
    t.equal(docs.filter((d) => (d['namespace'] as { key: string }).key === 'flipt-export').length, 1);
    t.equal(store.object?.metadata['namespaces'], '3', "metadata counts the master's namespaces only");
    t.equal(countFlagsInBody(store.object?.body ?? new Uint8Array()), 7);

    const clash = await run({ markerNamespace: 'production' });
    assertFailed(
      t,
      clash,
      'render',
      /the master has a namespace production, which is the export marker's key/,
    );
    t.equal(store.puts, 1, 'nothing written');
  },
);
