// The `lt` constraint with real servers (issue 7, scenario 3). Flipt v1.61.1's document schema spells
// "less than" `le`, so a master with an `lt` NUMBER or DATETIME constraint exports (with its own
// `flipt export`) a file that its own `flipt validate` refuses and no sidecar can load. Our exporter
// writes the exactly equivalent `lte` instead: the next float64 below the number, or one nanosecond
// before the instant. Proven here on boundary values (equal, just below, just above; integers and
// fractions; instants written in several time zones): the sidecar answers like the master.
import t from 'tap';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { parseAllDocuments } from 'yaml';
import { useMinio } from '../support/minio.ts';
import { tempDir } from '../support/process.ts';
import { exportTarget, resultLine, runExporter } from './harness/exporter.ts';
import { ask, compareServers, type Question } from './harness/flipt-compare.ts';
import {
  boundaryValues,
  FliptApi,
  formatRfc3339Ns,
  nextFloat64Down,
  nextFloat64Up,
  parseRfc3339Ns,
  seedMaster,
  type ConstraintSpec,
  type NamespaceSpec,
  type SeedSpec,
} from './harness/flipt-seed.ts';
import { runFliptCli, useFliptMaster, useInjectedSidecar } from './harness/flipt.ts';

t.setTimeout(300_000);

const NUMBERS = ['30', '0', '-5', '0.1', '2.5', '-0.75', '1e-7', '1e21', '9007199254740993', '123456.789'];
const DATETIMES = [
  '2024-06-01T12:00:00+02:00',
  '2024-11-03T01:30:00-04:00',
  '2025-01-01T00:00:00Z',
  '2024-12-31T23:59:59+05:45',
  '1999-12-31T19:00:00-05:00',
  '2024-03-10T02:30:00-08:00',
  '2024-02-29',
];

const constraints: ConstraintSpec[] = [
  ...NUMBERS.map((value) => ({
    type: 'NUMBER_COMPARISON_TYPE' as const,
    property: 'n',
    operator: 'lt',
    value,
  })),
  ...DATETIMES.map((value) => ({
    type: 'DATETIME_COMPARISON_TYPE' as const,
    property: 'd',
    operator: 'lt',
    value,
  })),
];
const segKey = (i: number) => `lt-${i}`;
const ns: NamespaceSpec = {
  key: 'default',
  name: 'Default',
  segments: [
    ...constraints.map((c, i) => ({
      key: segKey(i),
      name: `${c.type} lt ${c.value}`,
      matchType: 'ALL_MATCH_TYPE' as const,
      constraints: [c],
    })),
    {
      key: 'lt-any',
      name: 'ANY of an lt number and an lt datetime',
      matchType: 'ANY_MATCH_TYPE',
      constraints: [
        { type: 'NUMBER_COMPARISON_TYPE', property: 'n', operator: 'lt', value: '2.5' },
        {
          type: 'DATETIME_COMPARISON_TYPE',
          property: 'd',
          operator: 'lt',
          value: '2024-06-01T12:00:00+02:00',
        },
      ],
    },
  ],
  flags: [
    ...constraints.map((c, i) => ({
      key: `lt-flag-${i}`,
      name: `Boolean on ${c.type} lt ${c.value}`,
      type: 'BOOLEAN_FLAG_TYPE' as const,
      enabled: false,
      rollouts: [{ segment: { keys: [segKey(i)], value: true } }],
    })),
    {
      key: 'lt-variant',
      name: 'Variant flag on lt segments',
      type: 'VARIANT_FLAG_TYPE',
      enabled: true,
      variants: [
        { key: 'below', attachment: { below: true } },
        { key: 'either', attachment: ['either'] },
      ],
      rules: [
        {
          segments: [segKey(0), segKey(NUMBERS.length)],
          operator: 'AND_SEGMENT_OPERATOR',
          distributions: [{ variant: 'below', rollout: 100 }],
        },
        { segments: ['lt-any'], distributions: [{ variant: 'either', rollout: 100 }] },
      ],
    },
  ],
};
const spec: SeedSpec = { namespaces: [ns] };

const BUCKET = 'flags';
const minio = await useMinio(t, { name: 'flipt-e2e-lt-minio' });
await minio.createBucket(BUCKET);
const master = await useFliptMaster(t);
await seedMaster(master.url, spec);

// What the master stored (datetimes are normalised to UTC whole seconds on the way in).
const api = new FliptApi(master.url);
const stored = await api.get<{
  segments: { key: string; constraints: { property: string; value: string }[] }[];
}>('/api/v1/namespaces/default/segments?limit=100');
const storedValues = stored.segments.flatMap((s) =>
  s.constraints.map((c) => ({ property: c.property, value: c.value })),
);

const exported = await runExporter(
  exportTarget({ fliptUrl: master.url, bucket: BUCKET, endpoint: minio.endpoint }),
  minio.credentialsEnv(),
);
const body = await (async () => {
  try {
    const out = await minio.client().send(new GetObjectCommand({ Bucket: BUCKET, Key: 'features.yml' }));
    return (await out.Body?.transformToString('utf8')) ?? '';
  } catch {
    return '';
  }
})();

// Every server starts before the first t.test: tap ends the root test (and runs its teardowns) once
// its queued subtests are done, even while top-level code still awaits. Without a good export the
// sidecar starts on an empty bucket (and the comparison below fails).
const sidecar = await useInjectedSidecar(t, {
  s3Endpoint: minio.endpoint,
  bucket: BUCKET,
  accessKeyId: minio.rootUser,
  secretAccessKey: minio.rootPassword,
});

t.test("upstream defect, with the real binary: flipt export's own output fails flipt validate", async (t) => {
  const work = await tempDir('flipt-e2e-lt-upstream');
  t.teardown(() => work.remove());
  const exported = await runFliptCli(['export', '--address', master.url], { cwd: work.path });
  t.equal(exported.code, 0, exported.stderr);
  t.match(exported.stdout, /operator: lt\b/, 'flipt export writes lt');
  await writeFile(join(work.path, 'upstream.features.yml'), exported.stdout);
  const validated = await runFliptCli(['validate', 'upstream.features.yml'], { cwd: work.path });
  t.not(validated.code, 0, 'and its own validate refuses it');
});

t.test('our exporter writes each lt as the exactly equivalent lte', async (t) => {
  t.equal(exported.code, 0, `the export succeeds\n${exported.logs.map((l) => JSON.stringify(l)).join('\n')}`);
  t.match(resultLine(exported.logs), { result: 'uploaded' });
  t.ok(
    exported.logs.some((l) => /\blt\b/.test(String(l.msg)) && l.level !== 'error'),
    'a log line names the rewrite',
  );
  const docs = parseAllDocuments(body).map(
    (d) => d.toJS() as { segments?: { constraints?: { operator: string; value: string }[] }[] },
  );
  const written = docs.flatMap((d) => (d.segments ?? []).flatMap((s) => s.constraints ?? []));
  t.notOk(
    written.some((c) => c.operator === 'lt'),
    'no lt left in the object',
  );
  const lte = written.filter((c) => c.operator === 'lte').map((c) => c.value);
  t.ok(lte.includes(String(nextFloat64Down(30))), `lt 30 → lte ${nextFloat64Down(30)}`);
  t.ok(lte.includes(String(nextFloat64Down(0.1))), `lt 0.1 → lte ${nextFloat64Down(0.1)}`);
  t.ok(
    lte.includes('2024-06-01T09:59:59.999999999Z'),
    'lt 2024-06-01T12:00:00+02:00 → lte 09:59:59.999999999Z',
  );

  const work = await tempDir('flipt-e2e-lt-validate');
  t.teardown(() => work.remove());
  await mkdir(join(work.path, 'b'));
  await writeFile(join(work.path, 'b', 'features.yml'), body);
  const validated = await runFliptCli(['validate', 'b/features.yml'], { cwd: work.path });
  t.equal(validated.code, 0, `flipt validate accepts it\n${validated.stdout}${validated.stderr}`);
});

t.test('boundary values: the sidecar answers exactly like the master', async (t) => {
  if (exported.code !== 0) {
    t.fail('no export to load: the exporter refused the lt constraints (see the test above)');
    return;
  }
  // Values around what the master stored, plus the stored instants written in other zones.
  const nValues = new Set<string>();
  const dValues = new Set<string>();
  for (const { property, value } of storedValues) {
    const type = property === 'n' ? 'NUMBER_COMPARISON_TYPE' : 'DATETIME_COMPARISON_TYPE';
    const values = boundaryValues({ type, property, operator: 'lt', value });
    for (const v of values) (property === 'n' ? nValues : dValues).add(v);
    if (property === 'd') {
      const instant = parseRfc3339Ns(value);
      if (instant !== undefined) {
        for (const zone of [0, 345, -300, 120, -240]) {
          for (const delta of [-2n, -1n, 0n, 1n]) dValues.add(formatRfc3339Ns(instant + delta, zone));
        }
      }
    } else {
      const x = Number(value);
      for (const y of [nextFloat64Down(nextFloat64Down(x)), nextFloat64Down(x), x]) nValues.add(String(y));
    }
  }
  const nList = [...nValues];
  const dList = [...dValues];
  const contexts: Record<string, string>[] = [];
  for (const n of nList) contexts.push({ n });
  for (const d of dList) contexts.push({ d });
  for (let i = 0; i < Math.max(nList.length, dList.length); i++) {
    contexts.push({ n: nList[i % nList.length] as string, d: dList[(i * 7) % dList.length] as string });
  }
  const questions: Question[] = [];
  contexts.forEach((context, i) => {
    const entityId = `entity-${i}`;
    for (const flag of ns.flags) {
      questions.push({
        path: flag.type === 'VARIANT_FLAG_TYPE' ? '/evaluate/v1/variant' : '/evaluate/v1/boolean',
        body: { namespaceKey: 'default', flagKey: flag.key, entityId, context },
      });
    }
  });
  const comparison = await compareServers(master.url, sidecar.url, questions, {
    withoutAttachment: new Set(),
    concurrency: 6,
  });
  t.comment(
    `${contexts.length} contexts, ${comparison.questions} questions: ${JSON.stringify(comparison.outcomes)}`,
  );
  t.equal(comparison.differences, 0, `no answer differs\n${comparison.examples.join('\n')}`);
  for (let i = 0; i < constraints.length; i++) {
    const seen = [...(comparison.perFlag.get(`default/lt-flag-${i}`) ?? [])];
    t.ok(
      seen.some((o) => o.startsWith('MATCH_EVALUATION_REASON enabled=true')) &&
        seen.some((o) => o.startsWith('DEFAULT_EVALUATION_REASON enabled=false')),
      `lt ${constraints[i]!.value}: both sides of the boundary evaluated`,
    );
  }

  // The boundary itself, on both servers: just below matches, equal and just above do not.
  for (let i = 0; i < constraints.length; i++) {
    const c = constraints[i]!;
    const storedValue = stored.segments.find((x) => x.key === segKey(i))?.constraints[0]?.value ?? '';
    let below: string, equal: string, above: string;
    if (c.type === 'NUMBER_COMPARISON_TYPE') {
      const x = Number(storedValue);
      [below, equal, above] = [String(nextFloat64Down(x)), storedValue, String(nextFloat64Up(x))];
    } else {
      const instant = parseRfc3339Ns(storedValue) as bigint;
      [below, equal, above] = [
        formatRfc3339Ns(instant - 1n, 330),
        formatRfc3339Ns(instant, -480),
        formatRfc3339Ns(instant + 1n),
      ];
    }
    for (const [value, expected] of [
      [below, true],
      [equal, false],
      [above, false],
    ] as const) {
      const q: Question = {
        path: '/evaluate/v1/boolean',
        body: {
          namespaceKey: 'default',
          flagKey: `lt-flag-${i}`,
          entityId: 'boundary',
          context: { [c.property]: value },
        },
      };
      const [m, s] = await Promise.all([ask(master.url, q), ask(sidecar.url, q)]);
      t.same(
        [(m.body as { enabled?: boolean }).enabled, (s.body as { enabled?: boolean }).enabled],
        [expected, expected],
        `lt ${storedValue}: ${value} → ${expected} on master and sidecar`,
      );
    }
  }
});
