// The exporter's bin in watch mode against a real Flipt v1.61.1 master (SQLite, token required)
// and a real MinIO: change detection with the evaluation snapshot ETag. An unchanged tick costs the
// master one namespace list and one 304 per namespace; a change re-reads only its namespace; a
// deleted flag or namespace leaves the object; an `lt` constraint is written as its exact `lte`,
// which `flipt validate` accepts; a namespace is written as documents of at most
// --flags-per-document flags. No stand-in: every server here is real.
import t from 'tap';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { tempDir } from '../support/process.ts';
import { useMinio } from '../support/minio.ts';
import { exportTarget, startExporter, type LogLine } from './harness/exporter.ts';
import { FliptApi, seedMaster, type FlagSpec, type SeedSpec } from './harness/flipt-seed.ts';
import { runFliptCli, useFliptMaster } from './harness/flipt.ts';

t.setTimeout(300_000);

const TOKEN = 'watch-token';
const BUCKET = 'watched';
const minio = await useMinio(t, { name: 'flipt-e2e-exporter-watch-minio' });
await minio.createBucket(BUCKET);
const master = await useFliptMaster(t, { token: TOKEN });
const api = new FliptApi(master.url, TOKEN);
const home = await tempDir('flipt-e2e-exporter-watch');
t.teardown(() => home.remove());

function flag(key: string, segment: string): FlagSpec {
  return {
    key,
    name: `Flag ${key}`,
    type: 'VARIANT_FLAG_TYPE',
    enabled: true,
    variants: [{ key: 'on', attachment: { n: 1 } }, { key: 'off' }],
    rules: [{ segments: [segment], distributions: [{ variant: 'on', rollout: 100 }] }],
  };
}

const seed: SeedSpec = {
  namespaces: ['default', 'team-a', 'team-b'].map((ns) => ({
    key: ns,
    name: ns === 'default' ? 'Default' : `Team ${ns}`,
    segments: [
      {
        key: 'young',
        name: 'Younger than 30',
        matchType: 'ALL_MATCH_TYPE',
        constraints: [{ type: 'NUMBER_COMPARISON_TYPE', property: 'age', operator: 'lt', value: '30' }],
      },
      {
        key: 'early',
        name: 'Signed up before 2025',
        matchType: 'ALL_MATCH_TYPE',
        constraints: [
          {
            type: 'DATETIME_COMPARISON_TYPE',
            property: 'signed_up',
            operator: 'lt',
            value: '2025-01-01T00:00:00+01:00',
          },
        ],
      },
    ],
    flags: Array.from({ length: 5 }, (_, i) => flag(`flag-${i}`, i % 2 === 0 ? 'young' : 'early')),
  })),
};
await seedMaster(master.url, seed, TOKEN);

const exporter = startExporter(
  [
    ...exportTarget({ fliptUrl: master.url, bucket: BUCKET, endpoint: minio.endpoint }),
    '--watch',
    '--interval',
    '1s',
    '--listen',
    '127.0.0.1:0',
    '--flags-per-document',
    '2',
  ],
  { ...minio.credentialsEnv(), FLIPT_EXPORTER_FLIPT_TOKEN: TOKEN },
  home.path,
);
t.teardown(() => exporter.stop());

let seen = 0;
/** The next export result line after the ones already looked at. */
async function nextResult(match: (l: LogLine) => boolean = () => true): Promise<LogLine> {
  for (;;) {
    const line = await exporter.waitForLog((l) => {
      const index = exporter.logs.indexOf(l);
      return typeof l['result'] === 'string' && index >= seen;
    }, 60_000);
    seen = exporter.logs.indexOf(line) + 1;
    if (line['result'] === 'failed') throw new Error(`export failed: ${String(line['msg'])}`);
    if (match(line)) return line;
  }
}

async function objectText(): Promise<string> {
  const got = await minio.client().send(new GetObjectCommand({ Bucket: BUCKET, Key: 'features.yml' }));
  return (await got.Body?.transformToString('utf8')) ?? '';
}

t.test(
  'first tick reads every namespace; lt is written as its exact lte and passes flipt validate',
  async (t) => {
    const first = await nextResult();
    t.match(first, {
      result: 'uploaded',
      namespaces: 3,
      flags: 15,
      namespacesRead: 3,
      rewrittenConstraints: 6,
    });
    // 5 flags in documents of 2: 3 documents per namespace.
    t.equal(first['documents'], 9);
    const text = await objectText();
    t.notMatch(text, /operator: lt\n/);
    t.match(text, /operator: lte\n\s+value: "29\.999999999999996"/);
    t.match(text, /operator: lte\n\s+value: "2024-12-31T22:59:59\.999999999Z"/);
    const rewriteLog = exporter.logs.find(
      (l) => typeof l['msg'] === 'string' && l['msg'].includes('"lt" constraint'),
    );
    t.ok(rewriteLog, 'the rewrite is logged');
    // Each document stands alone: parse them one by one.
    for (const doc of parseAllDocuments(text)) t.same(doc.errors, []);
    const dir = await tempDir('flipt-e2e-exporter-watch-validate');
    t.teardown(() => dir.remove());
    await writeFile(join(dir.path, 'features.yml'), text);
    const validated = await runFliptCli(['validate', 'features.yml'], { cwd: dir.path });
    t.equal(validated.code, 0, `flipt validate: ${validated.stdout}${validated.stderr}`);
  },
);

t.test('an unchanged tick costs one namespace list and one 304 per namespace', async (t) => {
  for (let i = 0; i < 3; i++) {
    const line = await nextResult();
    t.match(line, { result: 'unchanged', namespacesRead: 0, fliptRequests: 4 });
  }
});

t.test('a change re-reads only its namespace', async (t) => {
  const current = await api.get<Record<string, unknown>>('/api/v1/namespaces/team-b/flags/flag-3');
  await api.put('/api/v1/namespaces/team-b/flags/flag-3', {
    key: 'flag-3',
    name: 'Renamed while watched',
    description: current['description'],
    enabled: false,
  });
  const line = await nextResult((l) => l['result'] === 'uploaded');
  t.match(line, { namespacesRead: 1, flags: 15 });
  const text = await objectText();
  t.match(text, /name: Renamed while watched\n\s+type: VARIANT_FLAG_TYPE\n\s+enabled: false/);
  t.match(await nextResult(), { result: 'unchanged', namespacesRead: 0 });
});

t.test('a rule change, a deleted flag and a deleted namespace reach the object', async (t) => {
  const rules = await api.get<{ rules: { id: string }[] }>('/api/v1/namespaces/team-a/flags/flag-0/rules');
  await api.delete(`/api/v1/namespaces/team-a/flags/flag-0/rules/${rules.rules[0]?.id ?? ''}`);
  t.match(await nextResult((l) => l['result'] === 'uploaded'), { namespacesRead: 1 });
  const teamA = parseAllDocuments(await objectText())
    .map((d) => d.toJS() as { namespace: { key: string }; flags: { key: string; rules?: unknown[] }[] })
    .filter((d) => d.namespace.key === 'team-a')
    .flatMap((d) => d.flags);
  t.equal(teamA.find((f) => f.key === 'flag-0')?.rules, undefined, 'flag-0 has no rule left');

  await api.delete('/api/v1/namespaces/default/flags/flag-4');
  t.match(await nextResult((l) => l['result'] === 'uploaded'), { namespacesRead: 1, flags: 14 });

  // Emptied in two steps, each within the shrink guard's 25 %, then removed.
  const teamB = (seed.namespaces[2]?.flags ?? []).map((f) => f.key);
  for (const key of teamB.slice(0, 2)) await api.delete(`/api/v1/namespaces/team-b/flags/${key}`);
  t.match(await nextResult((l) => l['result'] === 'uploaded'), { namespacesRead: 1, flags: 12 });
  for (const key of teamB.slice(2)) await api.delete(`/api/v1/namespaces/team-b/flags/${key}`);
  t.match(await nextResult((l) => l['result'] === 'uploaded'), { namespacesRead: 1, flags: 9 });
  for (const s of ['young', 'early']) await api.delete(`/api/v1/namespaces/team-b/segments/${s}`);
  await api.delete('/api/v1/namespaces/team-b');
  t.match(await nextResult((l) => l['result'] === 'uploaded' && l['namespaces'] === 2), {
    namespacesRead: 0,
    flags: 9,
  });
  t.notMatch(await objectText(), /team-b/);
});
