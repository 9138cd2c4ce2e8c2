// The bucket cache against a real MinIO, served over real HTTP on loopback and read back with the
// AWS SDK (the Go SDK inside Flipt reads it in test/e2e/cache.test.ts): what it serves, what it asks
// of the bucket (counted by the loopback proxy in front of MinIO), and what it keeps when the bucket
// is unreachable, invalid or too large.
import t from 'tap';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import type { AddressInfo } from 'node:net';
import { createDocumentValidator } from '../../exporter/schema.ts';
import { createCacheMetrics } from '../../cache/metrics.ts';
import { buildCacheServer } from '../../cache/server.ts';
import { BucketCache } from '../../cache/state.ts';
import { startCountingProxy, useMinio } from '../support/minio.ts';

t.setTimeout(180_000);

const BUCKET = 'flags';
const PREFIX = 'team/';
const TOKEN = 'push-token-0123456789';
const doc = (flag: string, type = 'BOOLEAN_FLAG_TYPE') =>
  `version: "1.4"\nnamespace:\n  key: default\nflags:\n  - key: ${flag}\n    name: ${flag}\n    type: ${type}\n    enabled: true\n`;

const minio = await useMinio(t, { name: 'flipt-cache-unit-minio' });
await minio.createBucket(BUCKET);
const admin = minio.client();
const proxy = await startCountingProxy(minio.port);
t.teardown(() => proxy.close());

async function put(key: string, body: string) {
  await admin.send(
    new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body, ContentType: 'application/yaml' }),
  );
}

const metrics = createCacheMetrics({ processMetrics: false, confirmedAt: () => cache.confirmedAt });
const cache = new BucketCache({
  upstream: {
    client: minio.client(proxy.url),
    bucket: BUCKET,
    prefix: PREFIX,
    timeoutMs: 2_000,
    maxObjects: 4,
    maxObjectBytes: 64 * 1024,
    maxTotalBytes: 128 * 1024,
    onRequest: (op, result) => metrics.upstream(op, result),
  },
  validate: createDocumentValidator(),
  metrics,
  refreshDeadlineMs: 5_000,
});
const app = buildCacheServer({
  cache,
  bucket: BUCKET,
  prefix: PREFIX,
  metrics,
  refreshToken: TOKEN,
  pushWaitMs: 5_000,
});
await app.listen({ host: '127.0.0.1', port: 0 });
t.teardown(() => app.close());
const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
// What a sidecar holds in cache mode: placeholder keys the cache does not check.
const reader = new S3Client({
  endpoint: url,
  region: 'us-east-1',
  forcePathStyle: true,
  credentials: { accessKeyId: 'flipt-bucket-cache', secretAccessKey: 'not-a-secret' },
  maxAttempts: 1,
});
t.teardown(() => reader.destroy());

const metricText = async () => (await fetch(`${url}/metrics`)).text();

t.test('not ready and serving nothing until a first valid snapshot', async (t) => {
  t.equal((await fetch(`${url}/readyz`)).status, 503);
  t.equal((await fetch(`${url}/healthz`)).status, 200, 'alive all the same');
  const first = await cache.refresh('interval');
  t.match(first, { result: 'refused', problems: [/no flag document under the prefix "team\/"/] });
  const answer = await fetch(`${url}/${BUCKET}/${PREFIX}features.yml`);
  t.equal(answer.status, 503);
  t.match(await answer.text(), '<Code>ServiceUnavailable</Code>');
  await put(`${PREFIX}features.yml`, doc('a'));
  await put('elsewhere/features.yml', doc('not-served'));
  t.match(await cache.refresh('interval'), { result: 'updated', fetched: 1 });
  const ready = await fetch(`${url}/readyz`);
  t.equal(ready.status, 200);
  t.match(await ready.json(), { ready: true, objects: 1, flags: 1 });
});

t.test('the AWS SDK reads the prefix through the cache as from S3', async (t) => {
  const direct = await admin.send(new HeadObjectCommand({ Bucket: BUCKET, Key: `${PREFIX}features.yml` }));
  const list = await reader.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: PREFIX }));
  t.same(
    list.Contents?.map((o) => [o.Key, o.Size, o.ETag, o.LastModified?.toISOString()]),
    [[`${PREFIX}features.yml`, doc('a').length, direct.ETag, direct.LastModified?.toISOString()]],
  );
  t.equal(list.IsTruncated, false);
  const got = await reader.send(new GetObjectCommand({ Bucket: BUCKET, Key: `${PREFIX}features.yml` }));
  t.equal(await got.Body?.transformToString(), doc('a'));
  t.equal(got.ETag, direct.ETag);
  t.equal(got.ContentType, 'application/yaml');
  const head = await reader.send(new HeadObjectCommand({ Bucket: BUCKET, Key: `${PREFIX}features.yml` }));
  t.equal(head.ContentLength, doc('a').length);

  // What Flipt asks first on every poll: the index file, absent → NoSuchKey, which it maps to "not found".
  const missing = await reader
    .send(new GetObjectCommand({ Bucket: BUCKET, Key: `${PREFIX}.flipt.yml` }))
    .catch((e: unknown) => e);
  t.match(missing, { name: 'NoSuchKey', $metadata: { httpStatusCode: 404 } });
  const headMissing = await reader
    .send(new HeadObjectCommand({ Bucket: BUCKET, Key: `${PREFIX}.flipt.yml` }))
    .catch((e: unknown) => e);
  t.match(headMissing, { name: 'NotFound', $metadata: { httpStatusCode: 404 } });
  const otherBucket = await reader
    .send(new ListObjectsV2Command({ Bucket: 'other', Prefix: '' }))
    .catch((e: unknown) => e);
  t.match(otherBucket, { name: 'NoSuchBucket' });
  const outside = await reader
    .send(new GetObjectCommand({ Bucket: BUCKET, Key: 'elsewhere/features.yml' }))
    .catch((e: unknown) => e);
  t.match(outside, { name: 'AccessDenied', $metadata: { httpStatusCode: 403 } });
  const write = await reader
    .send(new PutObjectCommand({ Bucket: BUCKET, Key: `${PREFIX}x.yml`, Body: 'x' }))
    .catch((e: unknown) => e);
  t.match(write, { $metadata: { httpStatusCode: 405 } }, 'read-only');

  const conditional = await fetch(`${url}/${BUCKET}/${PREFIX}features.yml`, {
    headers: { 'if-none-match': direct.ETag as string },
  });
  t.equal(conditional.status, 304);
  t.match(await metricText(), /flipt_bucket_cache_requests_total\{kind="list"\} [1-9]/);
});

t.test(
  'an unchanged bucket costs one LIST per refresh; a change one LIST and one conditional GET',
  async (t) => {
    proxy.reset();
    for (let i = 0; i < 5; i++) t.match(await cache.refresh('interval'), { result: 'unchanged' });
    t.equal(proxy.requests.filter((r) => /^\/flags\/?\?list-type=2&/.test(r.url)).length, 5, 'five LISTs');
    t.equal(proxy.requests.length, 5, 'nothing else');
    proxy.reset();
    await put(`${PREFIX}features.yml`, `${doc('a')}---\n${doc('b').replace('key: default', 'key: other')}`);
    t.match(await cache.refresh('interval'), { result: 'updated', fetched: 1 });
    t.same(
      proxy.requests.map((r) => [r.method, r.url.split('?')[0]?.replace(/\/$/, ''), r.status]),
      [
        ['GET', `/${BUCKET}`, 200],
        ['GET', `/${BUCKET}/${PREFIX}features.yml`, 200],
      ],
    );
    const got = await reader.send(new GetObjectCommand({ Bucket: BUCKET, Key: `${PREFIX}features.yml` }));
    t.match(await got.Body?.transformToString(), 'key: other');
  },
);

t.test('an invalid or oversized upstream keeps the last good snapshot', async (t) => {
  const before = cache.snapshot;
  await put(`${PREFIX}features.yml`, doc('a', 'NOT_A_TYPE'));
  t.match(await cache.refresh('interval'), {
    result: 'refused',
    problems: [/team\/features\.yml: namespace default: \/flags\/0\/type must be one of/],
  });
  t.equal(cache.snapshot, before, 'the same snapshot is still served');
  await put(`${PREFIX}features.yml`, 'flags: [');
  t.match(await cache.refresh('interval'), { result: 'refused', problems: [/not valid YAML/] });
  await put(`${PREFIX}features.yml`, doc('a'));
  await put(`${PREFIX}big.features.yml`, `# ${'x'.repeat(70 * 1024)}\n${doc('big')}`);
  t.match(await cache.refresh('interval'), {
    result: 'refused',
    problems: [/big\.features\.yml: \d+ bytes, more than 65536/],
  });
  await admin.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: `${PREFIX}big.features.yml` }));
  for (const n of [1, 2, 3, 4]) await put(`${PREFIX}n${n}.txt`, 'x');
  t.match(await cache.refresh('interval'), { result: 'refused', problems: [/more than 4 objects/] });
  t.equal(cache.snapshot, before);
  const served = await reader.send(new GetObjectCommand({ Bucket: BUCKET, Key: `${PREFIX}features.yml` }));
  t.match(await served.Body?.transformToString(), 'key: other', 'the last good state');
  for (const n of [1, 2, 3, 4])
    await admin.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: `${PREFIX}n${n}.txt` }));
  t.match(await cache.refresh('interval'), { result: 'updated' });
  t.match(await metricText(), /flipt_bucket_cache_refreshes_total\{result="refused",trigger="interval"\} 5/);
});

t.test('MinIO down: the cache keeps serving, and catches up when it returns', async (t) => {
  const before = cache.snapshot;
  await minio.stop();
  const down = await cache.refresh('interval');
  t.match(down, { result: 'failed', message: /no answer from the store|ECONNREFUSED|socket/ });
  t.equal(cache.snapshot, before);
  const served = await reader.send(new GetObjectCommand({ Bucket: BUCKET, Key: `${PREFIX}features.yml` }));
  t.equal(await served.Body?.transformToString(), doc('a'));
  t.equal(
    (await fetch(`${url}/readyz`)).status,
    200,
    'still ready: serving the last good state is the point',
  );
  t.match(
    await metricText(),
    /flipt_bucket_cache_upstream_requests_total\{operation="ListObjectsV2",result="error"\} [1-9]/,
  );
  await minio.start();
  await put(`${PREFIX}features.yml`, doc('after-outage'));
  t.match(await cache.refresh('interval'), { result: 'updated' });
  const after = await reader.send(new GetObjectCommand({ Bucket: BUCKET, Key: `${PREFIX}features.yml` }));
  t.match(await after.Body?.transformToString(), 'after-outage');
});

t.test('push: authenticated, coalesced, and it refreshes at once', async (t) => {
  t.equal((await fetch(`${url}/-/refresh`, { method: 'POST' })).status, 401);
  const wrong = await fetch(`${url}/-/refresh`, {
    method: 'POST',
    headers: { authorization: 'Bearer nope' },
  });
  t.equal(wrong.status, 401);
  await put(`${PREFIX}features.yml`, doc('pushed'));
  const pushes = await Promise.all(
    [1, 2, 3].map(() =>
      fetch(`${url}/-/refresh`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } }),
    ),
  );
  const bodies = await Promise.all(pushes.map((p) => p.json() as Promise<{ result: string }>));
  t.same(
    pushes.map((p) => p.status),
    [200, 200, 200],
  );
  t.ok(
    bodies.some((b) => b.result === 'updated'),
    JSON.stringify(bodies),
  );
  const got = await reader.send(new GetObjectCommand({ Bucket: BUCKET, Key: `${PREFIX}features.yml` }));
  t.match(await got.Body?.transformToString(), 'pushed');
  const text = await metricText();
  const pushed = Number(
    /flipt_bucket_cache_refreshes_total\{result="(?:updated|unchanged)",trigger="push"\} (\d+)/.exec(
      text,
    )?.[1],
  );
  t.ok(
    pushed >= 1 && pushed <= 2,
    `three concurrent pushes ran ${pushed} refresh(es), at most one queued behind another`,
  );
  t.match(text, /flipt_bucket_cache_snapshot_info\{etag="[0-9a-f]{32}"\} 1/);

  const disabled = buildCacheServer({
    cache,
    bucket: BUCKET,
    prefix: PREFIX,
    metrics,
    refreshToken: undefined,
    pushWaitMs: 1,
  });
  const r = await disabled.inject({ method: 'POST', url: '/-/refresh' });
  t.equal(r.statusCode, 403);
  t.match(r.json(), { error: /push is disabled/ });
});
