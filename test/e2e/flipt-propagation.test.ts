// Changes and faults along the real data path (issue 7, scenarios 4, 5 and 6): a Flipt v1.61.1
// master (SQLite), our exporter's bin, a real MinIO and a Flipt v1.61.1 sidecar started as injected
// (poll interval 1 s through the flipt.io/poll-interval annotation). Every wait has a deadline.
import t, { type Test } from 'tap';
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { useMinio } from '../support/minio.ts';
import { freePort, waitFor } from '../support/process.ts';
import { exportTarget, resultLine, runExporter, startExporter } from './harness/exporter.ts';
import { ask, normalize, type Answer } from './harness/flipt-compare.ts';
import { FliptApi, seedMaster, type FlagSpec, type SeedSpec } from './harness/flipt-seed.ts';
import { startInjectedSidecar, useFliptMaster, useInjectedSidecar } from './harness/flipt.ts';

t.setTimeout(400_000);

/** How long a change may take to reach the sidecar: export every 1 s + poll every 1 s, on a busy machine. */
const PROPAGATION_DEADLINE_MS = 30_000;

const fillers: FlagSpec[] = Array.from({ length: 14 }, (_, i) => ({
  key: `filler-${i}`,
  name: `Filler ${i}`,
  type: 'BOOLEAN_FLAG_TYPE',
  enabled: i % 2 === 0,
}));
const spec: SeedSpec = {
  namespaces: [
    {
      key: 'default',
      name: 'Default',
      segments: [{ key: 'everyone', name: 'Everyone', matchType: 'ALL_MATCH_TYPE', constraints: [] }],
      flags: [
        { key: 'feature-a', name: 'Feature A', type: 'BOOLEAN_FLAG_TYPE', enabled: true },
        {
          key: 'checkout',
          name: 'Checkout',
          type: 'VARIANT_FLAG_TYPE',
          enabled: true,
          variants: [
            { key: 'v1', attachment: { version: 1 } },
            { key: 'v2', attachment: { version: 2 } },
          ],
          rules: [{ segments: ['everyone'], distributions: [{ variant: 'v1', rollout: 100 }] }],
        },
        ...fillers,
      ],
    },
    {
      key: 'team-b',
      name: 'Team B',
      segments: [],
      flags: [
        { key: 'b-one', name: 'B one', type: 'BOOLEAN_FLAG_TYPE', enabled: true },
        { key: 'b-two', name: 'B two', type: 'BOOLEAN_FLAG_TYPE', enabled: false },
      ],
    },
  ],
};

const BUCKET = 'flags';
const minio = await useMinio(t, { name: 'flipt-e2e-propagation-minio' });
await minio.createBucket(BUCKET);
const s3 = minio.client();
const master = await useFliptMaster(t);
await seedMaster(master.url, spec);
const api = new FliptApi(master.url);
const creds = minio.credentialsEnv();
const exportArgsFor = (bucket: string) => [
  ...exportTarget({ fliptUrl: master.url, bucket, endpoint: minio.endpoint }),
  '--timeout',
  '3s',
];
const exportArgs = exportArgsFor(BUCKET);

const first = await runExporter(exportArgs, creds);
if (first.code !== 0) throw new Error(`the first export failed: ${JSON.stringify(first.logs)}`);
const sidecar = await useInjectedSidecar(t, {
  s3Endpoint: minio.endpoint,
  bucket: BUCKET,
  accessKeyId: minio.rootUser,
  secretAccessKey: minio.rootPassword,
  annotations: { 'flipt.io/poll-interval': '1s' },
});

const evalBoolean = (url: string, namespaceKey: string, flagKey: string): Promise<Answer> =>
  ask(url, { path: '/evaluate/v1/boolean', body: { namespaceKey, flagKey, entityId: 'e1', context: {} } });
const evalVariant = (url: string, namespaceKey: string, flagKey: string): Promise<Answer> =>
  ask(url, { path: '/evaluate/v1/variant', body: { namespaceKey, flagKey, entityId: 'e1', context: {} } });

/** Polls the sidecar until `check` holds, with a deadline; returns how long it took. */
async function sidecarReaches(what: string, check: () => Promise<boolean>): Promise<number> {
  const started = Date.now();
  await waitFor(`the sidecar to serve ${what}`, check, {
    timeoutMs: PROPAGATION_DEADLINE_MS,
    intervalMs: 100,
  });
  return Date.now() - started;
}

async function objectEtag(): Promise<string | undefined> {
  return (await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'features.yml' }))).ETag;
}

/** The answers the sidecar gives for the flags these tests watch. */
async function snapshotAnswers(url: string): Promise<unknown> {
  return normalize(
    await Promise.all([
      evalBoolean(url, 'default', 'feature-a'),
      evalVariant(url, 'default', 'checkout'),
      evalBoolean(url, 'default', 'filler-1'),
    ]),
  );
}

const enabled = async (ns: string, flag: string) => {
  const a = await evalBoolean(sidecar.url, ns, flag);
  return a.status === 200 ? (a.body as { enabled: boolean }).enabled : undefined;
};
const variantKey = async (ns: string, flag: string) => {
  const a = await evalVariant(sidecar.url, ns, flag);
  return a.status === 200 ? (a.body as { variantKey: string }).variantKey : `HTTP ${a.status}`;
};

/** Count of sidecar log lines at warn or error, to wait for a new one. */
function sidecarProblems(): number {
  return sidecar
    .logs()
    .split('\n')
    .filter((l) => /"L":"(WARN|ERROR)"|"level":"(warn|error)"/i.test(l)).length;
}

t.test('propagation: watch-mode exporter + 1 s poll carry each kind of change', async (t) => {
  const port = await freePort();
  const exporter = startExporter(
    [...exportArgs, '--watch', '--interval', '1s', '--listen', `127.0.0.1:${port}`],
    creds,
  );
  t.teardown(() => exporter.stop());
  await exporter.waitForLog((l) => typeof l['result'] === 'string', 30_000);

  t.equal(await enabled('default', 'feature-a'), true, 'baseline: feature-a on');
  t.equal(await variantKey('default', 'checkout'), 'v1', 'baseline: checkout → v1');
  t.equal(await enabled('team-b', 'b-one'), true, 'baseline: team-b served');

  // A flag update.
  await api.put('/api/v1/namespaces/default/flags/feature-a', {
    key: 'feature-a',
    name: 'Feature A',
    enabled: false,
  });
  const updated = await sidecarReaches(
    'feature-a disabled',
    async () => (await enabled('default', 'feature-a')) === false,
  );
  t.pass(`a flag update reached the sidecar in ${updated} ms`);

  // A rule change: the distribution now points at v2.
  const flag = await api.get<{ variants: { id: string; key: string }[] }>(
    '/api/v1/namespaces/default/flags/checkout',
  );
  const v2 = flag.variants.find((v) => v.key === 'v2')?.id;
  const rules = await api.get<{ rules: { id: string; distributions: { id: string }[] }[] }>(
    '/api/v1/namespaces/default/flags/checkout/rules',
  );
  const rule = rules.rules[0]!;
  await api.put(
    `/api/v1/namespaces/default/flags/checkout/rules/${rule.id}/distributions/${rule.distributions[0]!.id}`,
    {
      variantId: v2,
      rollout: 100,
    },
  );
  const ruled = await sidecarReaches(
    'checkout → v2',
    async () => (await variantKey('default', 'checkout')) === 'v2',
  );
  t.pass(`a rule change reached the sidecar in ${ruled} ms`);

  // A deleted flag.
  await api.delete('/api/v1/namespaces/default/flags/filler-0');
  const deleted = await sidecarReaches(
    'filler-0 gone',
    async () => (await evalBoolean(sidecar.url, 'default', 'filler-0')).status === 404,
  );
  t.pass(`a deleted flag disappeared from the sidecar in ${deleted} ms`);

  // A deleted namespace (with its flags: force).
  await api.delete('/api/v1/namespaces/team-b?force=true');
  const gone = await sidecarReaches(
    'namespace team-b gone',
    async () => (await evalBoolean(sidecar.url, 'team-b', 'b-one')).status === 404,
  );
  t.pass(`a deleted namespace disappeared from the sidecar in ${gone} ms`);
  t.equal(await variantKey('default', 'checkout'), 'v2', 'the rest is still served');

  await exporter.stop();
  t.notOk(
    exporter.logs.some((l) => l['result'] === 'failed'),
    'no export failed along the way',
  );
});

t.test('master stopped: the export fails, the object stays, the sidecar keeps serving', async (t) => {
  const before = await snapshotAnswers(sidecar.url);
  const etag = await objectEtag();
  await master.stop();
  t.teardown(() => master.start());
  const run = await runExporter([...exportArgs, '--flipt-retries', '0'], creds);
  t.equal(run.code, 1);
  t.match(resultLine(run.logs), { result: 'failed', stage: 'flipt', msg: /reading the Flipt master failed/ });
  t.equal(await objectEtag(), etag, 'the object is unchanged');
  // Several polls later the sidecar still answers from the last good state.
  await new Promise((r) => setTimeout(r, 3_000));
  t.same(await snapshotAnswers(sidecar.url), before, 'the sidecar answers as before');
  await master.start();
  t.equal((await runExporter(exportArgs, creds)).code, 0, 'with the master back, the export works again');
});

t.test('MinIO stopped: the sidecar keeps serving, and catches up when MinIO returns', async (t) => {
  const before = await snapshotAnswers(sidecar.url);
  const problems = sidecarProblems();
  await minio.stop();
  t.teardown(() => minio.start());
  await waitFor('the sidecar to log a failed poll', async () => sidecarProblems() > problems, {
    timeoutMs: 20_000,
  });
  t.same(await snapshotAnswers(sidecar.url), before, 'still serving the last good state');
  t.match(sidecar.logs(), /getting file system from directory/, "Flipt's poll error is logged");

  // A change made while the store is down.
  await api.put('/api/v1/namespaces/default/flags/feature-a', {
    key: 'feature-a',
    name: 'Feature A',
    enabled: true,
  });
  await minio.start();
  const run = await runExporter(exportArgs, creds);
  t.equal(run.code, 0, JSON.stringify(run.logs));
  const took = await sidecarReaches(
    'feature-a enabled again',
    async () => (await enabled('default', 'feature-a')) === true,
  );
  t.pass(`after MinIO came back the sidecar caught up in ${took} ms`);
});

async function putByHand(t: Test, body: string) {
  const problems = sidecarProblems();
  const before = await snapshotAnswers(sidecar.url);
  await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'features.yml', Body: body }));
  await waitFor('the sidecar to log the refused object', async () => sidecarProblems() > problems, {
    timeoutMs: 20_000,
  });
  // Two more polls.
  await new Promise((r) => setTimeout(r, 2_500));
  t.same(await snapshotAnswers(sidecar.url), before, 'the sidecar keeps the last good snapshot');
}

t.test('an invalid object put in the bucket by hand: the sidecar keeps the last good snapshot', async (t) => {
  await t.test('not YAML', (t) => putByHand(t, 'flags: [ { key: "broken"\n'));
  await t.test("valid YAML that breaks Flipt's schema (an lt operator, as flipt export writes)", (t) =>
    putByHand(
      t,
      [
        'version: "1.4"',
        'namespace: default',
        'flags:',
        '  - key: feature-a',
        '    name: Feature A',
        '    type: BOOLEAN_FLAG_TYPE',
        '    enabled: false',
        'segments:',
        '  - key: young',
        '    name: Young',
        '    match_type: ALL_MATCH_TYPE',
        '    constraints:',
        '      - type: NUMBER_COMPARISON_TYPE',
        '        property: age',
        '        operator: lt',
        '        value: "30"',
        '',
      ].join('\n'),
    ),
  );
  const run = await runExporter(exportArgs, creds);
  t.match(resultLine(run.logs), { result: 'uploaded' }, 'the next export replaces the hand-made object');
  const out = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'features.yml' }));
  t.match(await out.Body?.transformToString('utf8'), /key: checkout/);
});

t.test(
  'empty-master guard: deleting every flag does not empty the bucket without --allow-shrink',
  async (t) => {
    const before = await snapshotAnswers(sidecar.url);
    const namespaces = await api.get<{ namespaces: { key: string }[] }>('/api/v1/namespaces');
    for (const { key: ns } of namespaces.namespaces) {
      const flags = await api.get<{ flags: { key: string }[] }>(`/api/v1/namespaces/${ns}/flags?limit=100`);
      for (const { key } of flags.flags) await api.delete(`/api/v1/namespaces/${ns}/flags/${key}`);
    }
    t.equal(
      (await api.get<{ flags: unknown[] }>('/api/v1/namespaces/default/flags')).flags.length,
      0,
      'the master has no flags left',
    );
    const etag = await objectEtag();
    const refused = await runExporter(exportArgs, creds);
    t.equal(refused.code, 1);
    t.match(resultLine(refused.logs), {
      stage: 'guard',
      msg: /export refused, s3:\/\/flags\/features\.yml left as it is: the export has no flags but the object in the bucket has \d+/,
    });
    t.equal(await objectEtag(), etag, 'the object is unchanged');
    await new Promise((r) => setTimeout(r, 2_000));
    t.same(await snapshotAnswers(sidecar.url), before, 'the sidecar still serves every flag');

    const allowed = await runExporter([...exportArgs, '--allow-shrink'], creds);
    t.equal(allowed.code, 0);
    t.match(resultLine(allowed.logs), { result: 'uploaded', flags: 0 });
    await sidecarReaches(
      'no flags',
      async () => (await evalVariant(sidecar.url, 'default', 'checkout')).status === 404,
    );
    t.pass('with --allow-shrink the empty state is exported and served');
  },
);

/** Starts a sidecar without waiting, then watches its startup probe and the process for `ms`. */
async function watchStartup(bucket: string, ms: number) {
  const started = await startInjectedSidecar({
    s3Endpoint: minio.endpoint,
    bucket,
    accessKeyId: minio.rootUser,
    secretAccessKey: minio.rootPassword,
    annotations: { 'flipt.io/poll-interval': '1s' },
    waitHealthy: false,
  });
  let exitCode: number | null | undefined;
  void started.exited.then((code) => (exitCode = code));
  let healthy = false;
  const deadline = Date.now() + ms;
  while (Date.now() < deadline && exitCode === undefined && !healthy) {
    try {
      // The kubelet's view: the injected startup probe (the export marker namespace).
      const answer = await fetch(`${started.url}${started.startupPath}`, {
        signal: AbortSignal.timeout(1_000),
      });
      await answer.body?.cancel();
      healthy = answer.status === 200;
    } catch {
      // not listening (yet)
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return { started, healthy, exitCode: () => exitCode };
}

t.test('a sidecar started on a bucket without an export', async (t) => {
  await t.test('a missing bucket: the process exits with a clear line, never ready', async (t) => {
    const { started, healthy, exitCode } = await watchStartup('no-such-bucket', 15_000);
    t.teardown(() => started.stop());
    const logs = started.logs();
    t.comment(`exit ${String(exitCode())}; the sidecar logged:\n${logs.trim()}`);
    t.notOk(healthy, 'the startup probe never succeeds');
    t.equal(exitCode(), 1, 'Flipt exits with status 1 (the kubelet restarts it, CrashLoopBackOff)');
    t.match(
      logs,
      /^Error: .*ListObjectsV2.*NoSuchBucket: The specified bucket does not exist$/m,
      'the line users see',
    );
  });

  await t.test('an empty bucket (exists, holds no export): the startup probe fails', async (t) => {
    await minio.createBucket('empty-bucket');
    const { started, healthy, exitCode } = await watchStartup('empty-bucket', 15_000);
    t.teardown(() => started.stop());
    t.equal(
      started.startupPath,
      '/api/v1/namespaces/flipt-export',
      'the injected probe asks for the export marker',
    );
    t.notOk(
      healthy,
      'the startup probe never succeeds (the kubelet restarts the container after 120 failures)',
    );
    t.equal(exitCode(), undefined, 'Flipt itself keeps running: it read the bucket, which is empty');
    // What the kubelet reports on each failed probe ("Startup probe failed: HTTP probe failed with
    // statuscode: 404"), and why: the marker namespace is not there.
    const probe = await fetch(`${started.url}${started.startupPath}`);
    t.equal(probe.status, 404);
    t.match(await probe.json(), { message: 'namespace "flipt-export" not found' });
    // /health alone would have passed: the reason the probe asks for the marker.
    t.equal((await fetch(`${started.url}/health`)).status, 200);
  });

  await t.test('the same sidecar starts once an export arrives', async (t) => {
    await minio.createBucket('late-bucket');
    const { started, healthy } = await watchStartup('late-bucket', 3_000);
    t.teardown(() => started.stop());
    t.notOk(healthy, 'not started on the empty bucket');
    const run = await runExporter(exportArgsFor('late-bucket'), creds);
    t.equal(run.code, 0, JSON.stringify(run.logs));
    await waitFor(
      'the startup probe to pass',
      async () => {
        const answer = await fetch(`${started.url}${started.startupPath}`);
        await answer.body?.cancel();
        return answer.status === 200;
      },
      { timeoutMs: 20_000, intervalMs: 500 },
    );
    t.pass('the startup probe passes after the first poll that sees the export');
  });
});
