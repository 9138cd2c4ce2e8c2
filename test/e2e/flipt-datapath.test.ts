// The data path with real servers only (issue 7, scenarios 1 and 2): a Flipt v1.61.1 master
// (database storage, SQLite) seeded through its REST API → one run of our exporter's bin → a real
// MinIO → a Flipt v1.61.1 sidecar started with the environment the injector really injects, as the
// injected uid/gid with only the emptyDir writable (test/e2e/harness/flipt.ts). The sidecar must
// answer every evaluation exactly like the master, and Flipt's own tools must accept what we wrote.
//
// Known upstream divergence, normalised in exactly one form (test/e2e/harness/flipt-compare.ts):
// Flipt v1.61.1's declarative loader answers variantAttachment "null" for a variant without an
// attachment, where the database master answers "" (internal/storage/fs/snapshot.go json.Marshal()s
// the absent value). The suite asserts that this case occurs and that nothing else differs.
import { DEFAULT_MARKER_NAMESPACE } from '../../common/export-marker.ts';
import t from 'tap';
import { readFileSync, readlinkSync, statSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { parseAllDocuments } from 'yaml';
import { useMinio } from '../support/minio.ts';
import { tempDir } from '../support/process.ts';
import { exportTarget, resultLine, runExporter } from './harness/exporter.ts';
import { compareServers, evaluationQuestions } from './harness/flipt-compare.ts';
import {
  evaluationPairs,
  flagsOf,
  formatRfc3339Ns,
  nextFloat64Down,
  parseRfc3339Ns,
  seedMaster,
  standardSeed,
  variantsWithoutAttachment,
} from './harness/flipt-seed.ts';
import { runFliptCli, useFliptMaster, useInjectedSidecar } from './harness/flipt.ts';

// Seeding ~60 flags, one export, two Flipt processes and ~140,000 evaluations on a shared machine.
t.setTimeout(590_000);

const BUCKET = 'flags';
const minio = await useMinio(t, { name: 'flipt-e2e-datapath-minio' });
await minio.createBucket(BUCKET);
const master = await useFliptMaster(t);
const spec = standardSeed();
await seedMaster(master.url, spec);
const allFlags = flagsOf(spec);
const s3 = minio.client();

const exportArgs = [
  ...exportTarget({ fliptUrl: master.url, bucket: BUCKET, endpoint: minio.endpoint }),
  '--timeout',
  '10s',
];
const exported = await runExporter(exportArgs, minio.credentialsEnv());

// Every server starts before the first t.test: tap ends the root test (and runs its teardowns) once
// its queued subtests are done, even while top-level code still awaits.
const sidecar = await useInjectedSidecar(t, {
  s3Endpoint: minio.endpoint,
  bucket: BUCKET,
  accessKeyId: minio.rootUser,
  secretAccessKey: minio.rootPassword,
});

async function objectText(key = 'features.yml'): Promise<string> {
  const out = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return (await out.Body?.transformToString('utf8')) ?? '';
}

t.test('the exporter copies the seeded master into the bucket', async (t) => {
  t.equal(exported.code, 0, JSON.stringify(exported.logs));
  t.match(resultLine(exported.logs), {
    result: 'uploaded',
    namespaces: spec.namespaces.length,
    flags: allFlags.length,
    segments: spec.namespaces.reduce((n, ns) => n + ns.segments.length, 0),
  });
});

t.test('the sidecar runs with the injected environment, uid/gid and read-only filesystem', async (t) => {
  const injected = sidecar.injectedEnv;
  t.equal(injected['FLIPT_STORAGE_TYPE'], 'object');
  t.equal(injected['FLIPT_STORAGE_OBJECT_S3_BUCKET'], BUCKET);
  t.equal(injected['AWS_ACCESS_KEY_ID'], minio.rootUser, 'Secret reference resolved');
  const changed = Object.keys(sidecar.env)
    .filter((k) => sidecar.env[k] !== injected[k])
    .sort();
  t.same(
    changed,
    [
      'FLIPT_META_STATE_DIRECTORY',
      'FLIPT_SERVER_GRPC_PORT',
      'FLIPT_SERVER_HOST',
      'FLIPT_SERVER_HTTP_PORT',
      'FLIPT_STORAGE_OBJECT_S3_ENDPOINT',
      'TMPDIR',
    ],
    'only the endpoint, the ports (on loopback) and the emptyDir path differ from the injected env',
  );
  t.equal(injected['FLIPT_META_STATE_DIRECTORY'], '/var/run/flipt');
  t.equal(injected['TMPDIR'], '/var/run/flipt');
  t.equal(sidecar.env['TMPDIR'], sidecar.env['FLIPT_META_STATE_DIRECTORY'], 'both point at the state dir');

  const status = readFileSync(`/proc/${sidecar.pid}/status`, 'utf8');
  t.match(status, /^Name:\s+flipt$/m, 'the process is Flipt itself');
  t.match(status, /^Uid:\s+100\s+100\s+100\s+100$/m, 'runs as uid 100');
  t.match(status, /^Gid:\s+1000\s+1000\s+1000\s+1000$/m, 'runs as gid 1000');
  t.match(status, /^Groups:\s*$/m, 'no supplementary groups');
  t.match(status, /^CapEff:\s+0+$/m, 'no capabilities');
  t.match(status, /^NoNewPrivs:\s+1$/m, 'no privilege escalation');
  const mounts = readFileSync(`/proc/${sidecar.pid}/mountinfo`, 'utf8')
    .trim()
    .split('\n')
    .map((line) => {
      const f = line.split(' ');
      return { point: f[4] as string, options: (f[5] as string).split(',') };
    });
  const stateDir = sidecar.env['FLIPT_META_STATE_DIRECTORY'] as string;
  // Where a path has stacked mounts (/dev/shm here), the last one listed is the visible one.
  const visible = new Map(mounts.map((m) => [m.point, m.options]));
  const writable = [...visible].filter(([, options]) => options.includes('rw')).map(([point]) => point);
  t.same(writable, [stateDir], 'the state directory is the only writable mount');
  t.ok(
    mounts.some((m) => m.point === '/' && m.options.includes('ro')),
    'the root filesystem is read-only',
  );
  const cwd = readlinkSync(`/proc/${sidecar.pid}/cwd`);
  t.equal(cwd, join(sidecar.dir, 'home'), 'cwd is the HOME the harness gives it');
  const home = statSync(cwd);
  t.same([home.uid, home.mode & 0o777], [0, 0o555], 'HOME and cwd: root-owned, read-only');
});

t.test('equivalence: every flag, ≥ 1,000 (entity, context) pairs, variant/boolean/batch', async (t) => {
  t.setTimeout(560_000);
  const pairs = evaluationPairs(spec, 1_000);
  t.ok(pairs.length >= 1_000, `${pairs.length} pairs`);
  const questions = evaluationQuestions(allFlags, pairs, ({ entityId, context }) => [
    { namespaceKey: 'default', flagKey: 'no-such-flag', entityId, context },
    { namespaceKey: 'no-such-namespace', flagKey: 'checkout-theme', entityId, context },
  ]);
  // Error answers too: the other endpoint for each flag, and unknown flags, for a few pairs.
  for (const { entityId, context } of pairs.slice(0, 10)) {
    for (const { namespace, flag } of allFlags) {
      questions.push({
        path: flag.type === 'VARIANT_FLAG_TYPE' ? '/evaluate/v1/boolean' : '/evaluate/v1/variant',
        body: { namespaceKey: namespace, flagKey: flag.key, entityId, context },
      });
    }
    questions.push({
      path: '/evaluate/v1/variant',
      body: { namespaceKey: 'empty-ns', flagKey: 'checkout-theme', entityId, context },
    });
  }

  const started = performance.now();
  const comparison = await compareServers(master.url, sidecar.url, questions, {
    withoutAttachment: variantsWithoutAttachment(spec),
    concurrency: 8,
  });
  t.comment(
    `compared ${comparison.questions} questions, ${comparison.evaluations} evaluations in ${Math.round((performance.now() - started) / 1000)} s`,
  );
  t.comment(`master outcomes: ${JSON.stringify(comparison.outcomes)}`);
  t.equal(comparison.differences, 0, `no answer differs\n${comparison.examples.join('\n')}`);
  t.ok(
    comparison.evaluations >= pairs.length * allFlags.length * 2,
    'every flag, every pair, single and batch',
  );

  // The known divergence happened, and only for variants seeded without an attachment.
  t.ok(
    comparison.nullAttachment > 0,
    `the "null" attachment divergence was seen ${comparison.nullAttachment} times`,
  );
  const without = variantsWithoutAttachment(spec);
  t.ok(
    [...comparison.nullAttachmentVariants].every((v) => without.has(v)),
    `only variants without attachment: ${[...comparison.nullAttachmentVariants].join(', ')}`,
  );

  // The pairs reach every constraint: each single-operator segment matched for some pair (its key
  // in segmentKeys), and each flag built on them answered differently for different pairs.
  const outcomes = Object.keys(comparison.outcomes);
  for (const segment of spec.namespaces[0]!.segments.filter((s) => s.key.startsWith('op-'))) {
    t.ok(
      outcomes.some((o) => o.startsWith('MATCH_EVALUATION_REASON') && o.includes(`[${segment.key}]`)),
      `${segment.key} matched some pair`,
    );
  }
  for (const { namespace, flag } of allFlags.filter((f) => f.flag.key.startsWith('bool-ops-'))) {
    const seen = comparison.perFlag.get(`${namespace}/${flag.key}`) ?? new Set();
    t.ok(seen.size >= 2, `${flag.key}: the pairs get different answers (${[...seen].join('; ')})`);
  }
  for (const reason of [
    'MATCH_EVALUATION_REASON',
    'DEFAULT_EVALUATION_REASON',
    'FLAG_DISABLED_EVALUATION_REASON',
  ]) {
    t.ok(
      Object.keys(comparison.outcomes).some((o) => o.startsWith(reason)),
      `some answers have reason ${reason}`,
    );
  }
});

t.test("Flipt's own checks: flipt validate, and flipt export describes the same state", async (t) => {
  const work = await tempDir('flipt-e2e-validate');
  t.teardown(() => work.remove());
  const body = await objectText();
  await mkdir(join(work.path, 'bucket'));
  await writeFile(join(work.path, 'bucket', 'features.yml'), body);
  // A relative path: v1.61.1's validate fails with "invalid argument" on an absolute one.
  const validated = await runFliptCli(['validate', 'bucket/features.yml'], { cwd: work.path });
  t.equal(
    validated.code,
    0,
    `flipt validate accepts the exported object\n${validated.stdout}${validated.stderr}`,
  );

  const fliptExport = await runFliptCli(['export', '--all-namespaces', '--address', master.url], {
    cwd: work.path,
  });
  t.equal(fliptExport.code, 0, fliptExport.stderr);
  const { [DEFAULT_MARKER_NAMESPACE]: marker, ...ours } = byNamespace(body);
  const theirs = byNamespace(fliptExport.stdout);
  // Ours ends with the export marker (common/export-marker.ts), a namespace without flags.
  t.match(marker, { namespace: { key: DEFAULT_MARKER_NAMESPACE }, flags: [], segments: [] });
  t.same(Object.keys(ours).sort(), Object.keys(theirs).sort(), 'the same namespaces');
  for (const ns of Object.keys(theirs)) {
    t.same(comparable(ours[ns]), comparable(theirs[ns]), `namespace ${ns}: the same flags and segments`);
  }
});

type Doc = Record<string, unknown>;

function byNamespace(text: string): Record<string, Doc> {
  const out: Record<string, Doc> = {};
  for (const d of parseAllDocuments(text)) {
    const doc = d.toJS() as Doc | null;
    if (!doc) continue;
    const ns = doc['namespace'];
    const key = typeof ns === 'string' ? ns : ((ns as { key?: string } | undefined)?.key ?? 'default');
    out[key] = doc;
  }
  return out;
}

/**
 * A document in a form both writers agree on. Only these documented differences are normalised:
 * 1. flags and segments are sorted by key (Flipt's export keeps creation order, ours sorts; a
 *    sidecar merges by key, so their order carries no meaning); rules, rollouts, distributions and
 *    constraints keep their order (rank and bucketing depend on it);
 * 2. an absent field equals its zero value where Flipt's structs say omitempty and its loader reads
 *    the zero value: description "", metadata {}, default false, value false, empty lists;
 * 3. one segment may be written as a key or as a one-key list, and an absent segment operator is
 *    OR_SEGMENT_OPERATOR (Flipt's loader default);
 * 4. `lt` (what flipt export writes, and v1.61.1's schema refuses) equals our `lte` of the next
 *    float64 below, or one nanosecond before the instant (scenario 3, flipt-lt.test.ts);
 * 5. an absent `version` is "1.4" (flipt export writes it in its first document only).
 */
function comparable(doc: Doc | undefined): unknown {
  if (!doc) return undefined;
  const clean = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(clean);
    if (!v || typeof v !== 'object') return v;
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      if (k !== 'attachment') {
        if (x === '' || x === null || x === undefined || x === false) continue;
        if (Array.isArray(x) && x.length === 0) continue;
        if (typeof x === 'object' && !Array.isArray(x) && Object.keys(x).length === 0) continue;
      }
      out[k] = k === 'attachment' ? x : clean(x);
    }
    return out;
  };
  const segmentRef = (seg: unknown): unknown => {
    if (typeof seg === 'string') return { keys: [seg], operator: 'OR_SEGMENT_OPERATOR' };
    const s = { ...(seg as Record<string, unknown>) };
    const keys = s['keys'] ?? (s['key'] === undefined ? [] : [s['key']]);
    delete s['key'];
    return { ...s, keys, operator: s['operator'] ?? 'OR_SEGMENT_OPERATOR' };
  };
  const flags = ((doc['flags'] as Doc[] | undefined) ?? []).map((f) => ({
    ...f,
    rules: ((f['rules'] as Doc[] | undefined) ?? []).map((r) => ({
      ...r,
      segment: segmentRef(r['segment']),
    })),
    rollouts: ((f['rollouts'] as Doc[] | undefined) ?? []).map((r) =>
      r['segment'] === undefined ? r : { ...r, segment: segmentRef(r['segment']) },
    ),
  }));
  const segments = ((doc['segments'] as Doc[] | undefined) ?? []).map((s) => ({
    ...s,
    constraints: ((s['constraints'] as Doc[] | undefined) ?? []).map(ltAsLte),
  }));
  const byKey = (list: Doc[]) => [...list].sort((a, b) => String(a['key']).localeCompare(String(b['key'])));
  const ns = doc['namespace'];
  return clean({
    // flipt export writes `version` in its first document only; absent means "1.4" (flipt.cue).
    version: doc['version'] ?? '1.4',
    namespace: typeof ns === 'string' ? { key: ns } : ns,
    flags: byKey(flags),
    segments: byKey(segments),
  });
}

function ltAsLte(c: Doc): Doc {
  if (c['operator'] !== 'lt') return c;
  const value = String(c['value']);
  if (c['type'] === 'NUMBER_COMPARISON_TYPE') {
    return { ...c, operator: 'lte', value: String(nextFloat64Down(Number(value))) };
  }
  const instant = parseRfc3339Ns(value);
  if (c['type'] === 'DATETIME_COMPARISON_TYPE' && instant !== undefined) {
    return { ...c, operator: 'lte', value: formatRfc3339Ns(instant - 1n) };
  }
  return c;
}
