// The exporter's bin (`node exporter/main.ts`, what `flipt-exporter` runs) against real servers:
// MinIO built by test/e2e/servers/build.sh, behind a counting loopback HTTP proxy so PUTs are
// counted as they reach the server, and a real Flipt v1.61.1 master (SQLite, token authentication
// required) seeded through its REST API with the state of test/exporter/fixtures/flipt-v1.61.1-api.json.
//
// Replayed answers (test/exporter/flipt-replay.ts) remain in ONE test only, for a fault a real
// master cannot be made to produce: an HTTP 503 on one request in the middle of an export. Every
// other test talks to the real master (a stopped master, an empty master and changes are real).
// The round trip through a real sidecar is in flipt-datapath.test.ts and flipt-propagation.test.ts.
import { DEFAULT_MARKER_NAMESPACE } from '../../common/export-marker.ts';
import t, { type Test } from 'tap';
import { createHash } from 'node:crypto';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { parseAllDocuments } from 'yaml';
import { createDocumentValidator } from '../../exporter/schema.ts';
import { loadFixture, startReplayMaster } from '../exporter/flipt-replay.ts';
import { freePort, tempDir, waitFor } from '../support/process.ts';
import { startCountingProxy, useMinio } from '../support/minio.ts';
import { exportTarget, startExporter as startExporterBin, type LogLine } from './harness/exporter.ts';
import { FliptApi, seedFromApiData, seedMaster } from './harness/flipt-seed.ts';
import { useFliptMaster } from './harness/flipt.ts';

const validate = createDocumentValidator();
// MinIO restarts, master restarts and a dozen exporter processes: well past tap's 30 s default.
t.setTimeout(300_000);

const TOKEN = 'master-token';
const minio = await useMinio(t, { name: 'flipt-e2e-exporter-minio' });
const proxy = await startCountingProxy(minio.port);
t.teardown(() => proxy.close());
const master = await useFliptMaster(t, { token: TOKEN });
await seedMaster(master.url, seedFromApiData(loadFixture()), TOKEN);
const api = new FliptApi(master.url, TOKEN);
const home = await tempDir('flipt-e2e-exporter-home');
t.teardown(() => home.remove());
const s3 = minio.client();
const BUCKET = 'flags';
await minio.createBucket(BUCKET);

/** Changes some fields of a flag on the master (a PUT must carry every field it keeps). */
async function updateFlag(ns: string, key: string, change: Record<string, unknown>): Promise<void> {
  const flag = await api.get<Record<string, unknown>>(`/api/v1/namespaces/${ns}/flags/${key}`);
  const defaultVariant = flag['defaultVariant'] as { id?: string } | null;
  await api.put(`/api/v1/namespaces/${ns}/flags/${key}`, {
    key,
    name: flag['name'],
    description: flag['description'],
    enabled: flag['enabled'],
    metadata: flag['metadata'] ?? {},
    ...(defaultVariant?.id ? { defaultVariantId: defaultVariant.id } : {}),
    ...change,
  });
}

/** Starts the exporter's bin with only the environment given (no AWS_* from this process). */
function startExporter(args: string[], env: Record<string, string> = {}) {
  return startExporterBin(args, { FLIPT_EXPORTER_FLIPT_TOKEN: TOKEN, ...env }, home.path);
}

const baseArgs = (endpoint = proxy.url, fliptUrl = master.url) => [
  ...exportTarget({ fliptUrl, bucket: BUCKET, endpoint }),
  '--timeout',
  '5s',
];

async function runExporter(args: string[], env: Record<string, string> = minio.credentialsEnv()) {
  return startExporter(args, env).done;
}

/** The one result line each run logs. */
function result(logs: LogLine[]): LogLine {
  const line = logs.find((l) => typeof l['result'] === 'string');
  if (!line) throw new Error(`no result line in ${JSON.stringify(logs)}`);
  return line;
}

async function getObject(key = 'features.yml') {
  const out = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  const body = Buffer.from(await (out.Body?.transformToByteArray() ?? Promise.resolve(new Uint8Array())));
  return { body, metadata: out.Metadata ?? {}, etag: out.ETag };
}

/** The stored object as a sidecar reads it, checked against Flipt's document rules. */
async function storedDocuments(t: Test, key = 'features.yml') {
  const { body } = await getObject(key);
  const docs = parseAllDocuments(body.toString('utf8')).map((d) => d.toJS() as Record<string, unknown>);
  t.same(validate(docs), [], `s3://${BUCKET}/${key} passes Flipt's document schema`);
  return { body: body.toString('utf8'), docs };
}

const KEY_PATH = `/${BUCKET}/features.yml`;

t.test('uploads the export in one PUT; the object is what a sidecar can read', async (t) => {
  proxy.reset();
  const run = await runExporter(baseArgs());
  t.equal(run.code, 0, run.stderr);
  t.match(result(run.logs), {
    level: 'info',
    result: 'uploaded',
    namespaces: 3,
    flags: 7,
    segments: 5,
    msg: 'export uploaded',
  });
  t.equal(proxy.count('PUT', KEY_PATH), 1, 'one PUT reached MinIO');
  t.equal(proxy.count('POST'), 0, 'no multipart upload');

  const object = await getObject();
  t.equal(object.metadata['sha256'], createHash('sha256').update(object.body).digest('hex'));
  t.equal(object.metadata['flags'], '7');
  const { docs } = await storedDocuments(t);
  const namespaces = docs.map((d) => (d['namespace'] as { key: string }).key);
  t.same(
    namespaces,
    [...namespaces.slice(0, 3).sort(), DEFAULT_MARKER_NAMESPACE],
    'one document per namespace, sorted, then the export marker',
  );
  t.equal(namespaces.length, 4);
  t.ok(
    run.logs.every((l) => l.level !== 'not-json'),
    'every log line is JSON',
  );
  const anonymous = await fetch(`${master.url}/api/v1/namespaces`);
  t.equal(anonymous.status, 401, 'the master refuses requests without the token');
  await anonymous.body?.cancel();
  t.pass('so the export sent the token from the environment');
});

t.test('an unchanged export makes no PUT (counted at the proxy in front of MinIO)', async (t) => {
  const before = await getObject();
  proxy.reset();
  const run = await runExporter(baseArgs());
  t.equal(run.code, 0);
  t.match(result(run.logs), { result: 'unchanged', msg: 'export unchanged, nothing uploaded' });
  t.equal(proxy.count('PUT'), 0, '0 PUTs reached MinIO');
  t.equal(proxy.count('HEAD', KEY_PATH), 1, 'one HEAD to compare the hash');
  t.equal(proxy.count('GET', KEY_PATH), 0, 'no download');
  t.equal((await getObject()).etag, before.etag, 'the object is untouched');
});

t.test('a change on the master is uploaded', async (t) => {
  await updateFlag('production', 'checkout-v2', { enabled: false });
  t.teardown(() => updateFlag('production', 'checkout-v2', { enabled: true }));
  proxy.reset();
  const run = await runExporter(baseArgs());
  t.equal(run.code, 0);
  t.match(result(run.logs), { result: 'uploaded', previousFlags: 7, flags: 7 });
  t.equal(proxy.count('PUT', KEY_PATH), 1);
  t.match(
    (await storedDocuments(t)).body,
    /key: checkout-v2\n {4}name: Checkout v2\n {4}type: VARIANT_FLAG_TYPE\n {4}enabled: false/,
  );
});

t.test('--prefix puts the object under the prefix, with the slash added', async (t) => {
  const run = await runExporter([...baseArgs(), '--prefix', 'team-a', '--key', 'all.features.yml']);
  t.equal(run.code, 0, JSON.stringify(run.logs));
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'team-a/' }));
  t.same(
    listed.Contents?.map((c) => c.Key),
    ['team-a/all.features.yml'],
  );
  t.match(result(run.logs), { object: 's3://flags/team-a/all.features.yml' });
  await storedDocuments(t, 'team-a/all.features.yml');
});

t.test('credential errors fail at once with what to check, the object untouched', async (t) => {
  const before = await getObject();
  proxy.reset();
  const wrong = await runExporter(baseArgs(), {
    AWS_ACCESS_KEY_ID: minio.rootUser,
    AWS_SECRET_ACCESS_KEY: 'not-the-secret',
  });
  t.equal(wrong.code, 1);
  t.match(result(wrong.logs), {
    level: 'error',
    result: 'failed',
    stage: 's3',
    msg: /HeadObject s3:\/\/flags\/features\.yml: access denied \(HTTP 403.*check the credentials the AWS default chain finds/,
  });
  t.equal(proxy.requests.length, 1, 'not retried: one request');

  const unknownKey = await runExporter(baseArgs(), {
    AWS_ACCESS_KEY_ID: 'nobody',
    AWS_SECRET_ACCESS_KEY: 'nothing-at-all',
  });
  t.equal(unknownKey.code, 1);
  t.match(result(unknownKey.logs), { stage: 's3', msg: /access denied/ });

  const none = await runExporter(baseArgs(), {});
  t.equal(none.code, 1);
  t.match(result(none.logs), {
    stage: 's3',
    msg: /access denied .*Could not load credentials from any providers/,
  });
  t.equal((await getObject()).etag, before.etag, 'the object is untouched');
});

t.test('a missing bucket is reported as such', async (t) => {
  proxy.reset();
  const run = await runExporter([...baseArgs(), '--bucket', 'no-such-bucket']);
  t.equal(run.code, 1);
  t.match(result(run.logs), {
    stage: 's3',
    msg: /PutObject s3:\/\/no-such-bucket\/features\.yml: the bucket does not exist \(HTTP 404 NoSuchBucket/,
  });
  t.equal(proxy.count('PUT'), 1, 'the PUT was tried once, not retried');
});

t.test(
  'a master error mid-export writes nothing (replayed master: a fault the real one cannot produce)',
  async (t) => {
    const before = await getObject();
    // Replayed answers, the only ones in this file: a real master does not answer 503 on one
    // request of an export on demand. The replay serves the same fixture the real master was seeded with.
    const replay = await startReplayMaster({ data: loadFixture(), token: TOKEN });
    t.teardown(() => replay.close());
    replay.handler = (r, normal) =>
      r.path.endsWith('/flags/greeting/rules')
        ? { status: 503, body: '{"code":14,"message":"unavailable"}' }
        : normal();
    proxy.reset();
    const run = await runExporter([...baseArgs(proxy.url, replay.url), '--flipt-retries', '1']);
    t.equal(run.code, 1);
    t.match(result(run.logs), {
      stage: 'flipt',
      msg: /reading the Flipt master failed: GET .*\/flags\/greeting\/rules\?limit=100: HTTP 503: unavailable/,
    });
    t.equal(proxy.requests.length, 0, 'the bucket is not touched');
    t.equal((await getObject()).etag, before.etag);
  },
);

t.test('a master that came up empty does not empty the bucket, unless --allow-shrink', async (t) => {
  const before = await getObject();
  // A second real master, freshly started: no flags at all (what a master on a lost database shows).
  const empty = await useFliptMaster(t, { token: TOKEN });
  proxy.reset();
  const refused = await runExporter(baseArgs(proxy.url, empty.url));
  t.equal(refused.code, 1);
  t.match(result(refused.logs), {
    stage: 'guard',
    msg: /export refused, s3:\/\/flags\/features\.yml left as it is: the export has no flags but the object in the bucket has 7/,
  });
  t.equal(proxy.count('PUT'), 0);
  t.equal((await getObject()).etag, before.etag);

  const allowed = await runExporter([...baseArgs(proxy.url, empty.url), '--allow-shrink']);
  t.equal(allowed.code, 0);
  t.match(result(allowed.logs), { result: 'uploaded', flags: 0, previousFlags: 7 });

  const restored = await runExporter(baseArgs());
  t.match(result(restored.logs), { result: 'uploaded', flags: 7, previousFlags: 0 });
});

t.test('S3 down: retried with backoff, then reported', async (t) => {
  await minio.stop();
  t.teardown(() => minio.start());
  const run = await runExporter([...baseArgs(minio.endpoint), '--s3-retries', '2']);
  t.equal(run.code, 1);
  const retries = run.logs.filter((l) => l.msg?.startsWith('S3 request failed, retrying'));
  t.equal(retries.length, 2, 'two retries');
  t.match(retries[0], { level: 'warn', operation: 'HeadObject', attempt: 1 });
  t.match(result(run.logs), {
    stage: 's3',
    msg: /HeadObject s3:\/\/flags\/features\.yml: no answer from the store \(.*ECONNREFUSED/,
  });
});

t.test('S3 down and back: the export waits it out and uploads', async (t) => {
  if (!minio.running) await minio.start();
  await updateFlag('default', 'new-checkout', { description: 'changed while S3 was down' });
  await minio.stop();
  const exporter = startExporter([...baseArgs(minio.endpoint), '--s3-retries', '8'], minio.credentialsEnv());
  await exporter.waitForLog((l) => l.msg?.startsWith('S3 request failed, retrying') === true);
  t.pass('the first attempt failed and is being retried');
  await minio.start();
  const run = await exporter.done;
  t.equal(run.code, 0, JSON.stringify(run.logs));
  t.match(result(run.logs), { result: 'uploaded' });
  t.ok(run.logs.filter((l) => l.msg?.startsWith('S3 request failed')).length >= 1);
  t.match((await storedDocuments(t)).body, /changed while S3 was down/);
});

t.test('watch mode: exports every interval, serves /healthz and /metrics, stops on SIGTERM', async (t) => {
  const port = await freePort();
  const exporter = startExporter(
    [...baseArgs(), '--watch', '--interval', '1s', '--listen', `127.0.0.1:${port}`],
    minio.credentialsEnv(),
  );
  t.teardown(() => {
    if (exporter.child.exitCode === null) exporter.child.kill('SIGKILL');
  });
  const base = `http://127.0.0.1:${port}`;
  await waitFor(
    'the watch server to report a good export',
    async () => (await fetch(`${base}/healthz`)).status === 200,
    {
      timeoutMs: 30_000,
    },
  );
  t.match(await (await fetch(`${base}/healthz`)).json(), { status: 'ok', consecutiveFailures: 0 });
  await waitFor(
    'a second export that finds the object unchanged',
    async () => /^flipt_exporter_unchanged_total [1-9]/m.test(await (await fetch(`${base}/metrics`)).text()),
    { timeoutMs: 20_000 },
  );

  await updateFlag('production', 'ops-flag', { enabled: false });
  t.teardown(() => updateFlag('production', 'ops-flag', { enabled: true }));
  await waitFor(
    'the change to reach the bucket',
    async () =>
      /key: ops-flag\n {4}name: Ops flag\n {4}type: BOOLEAN_FLAG_TYPE\n {4}enabled: false/.test(
        (await getObject()).body.toString('utf8'),
      ),
    { timeoutMs: 20_000, intervalMs: 250 },
  );
  t.pass('a change on the master reached the bucket without a restart');

  // The real master stopped: the next exports fail until it is back on the same port.
  await master.stop();
  await waitFor(
    'a failed export to show on /healthz',
    async () => (await fetch(`${base}/healthz`)).status === 503,
    {
      timeoutMs: 20_000,
    },
  );
  await master.start();
  const metrics = await (await fetch(`${base}/metrics`)).text();
  for (const name of [
    'flipt_exporter_exports_total',
    'flipt_exporter_uploads_total',
    'flipt_exporter_unchanged_total',
    'flipt_exporter_failures_total{stage="flipt"}',
    'flipt_exporter_export_duration_seconds_count',
    'flipt_exporter_last_success_timestamp_seconds',
  ]) {
    t.match(metrics, new RegExp(`^${name.replace(/[{}]/g, '\\$&')} [1-9]`, 'm'), `${name} counted`);
  }
  t.match(metrics, /^flipt_exporter_uploads_total [1-9]/m);

  exporter.child.kill('SIGTERM');
  const run = await exporter.done;
  t.equal(run.code, 0, 'SIGTERM ends the loop cleanly');
  t.match(run.logs.at(-1), { msg: 'stopped' });
  await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'features.yml' }));
});
