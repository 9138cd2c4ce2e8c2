// S3 error handling without a server: which failures are retried, how long the backoff is, and
// what the message tells an operator. The real-server behaviour (MinIO) is in
// test/e2e/exporter-s3.test.ts.
import t from 'tap';
import { createHash } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import {
  buildS3Client,
  classifyS3Error,
  createS3Store,
  S3StoreError,
  withRetry,
  type RetryInfo,
} from '../../exporter/s3.ts';

const where = ['PutObject', 's3://flags/features.yml'] as const;

function sdkError(name: string, status?: number, message = 'x'): Error {
  return Object.assign(new Error(message), {
    name,
    $metadata: status === undefined ? {} : { httpStatusCode: status },
  });
}

t.test('permanent errors say what to check and are not retried', async (t) => {
  const cases: [Error, RegExp][] = [
    [
      sdkError('NoSuchBucket', 404, 'The specified bucket does not exist'),
      /PutObject s3:\/\/flags\/features\.yml: the bucket does not exist/,
    ],
    [
      sdkError('InvalidAccessKeyId', 403),
      /access denied .*check the credentials the AWS default chain finds/,
    ],
    [sdkError('SignatureDoesNotMatch', 403), /access denied/],
    [sdkError('Forbidden', 403), /access denied/],
    [
      sdkError('CredentialsProviderError', undefined, 'Could not load credentials from any providers'),
      /access denied/,
    ],
    [sdkError('PermanentRedirect', 301), /wrong region or endpoint/],
    [sdkError('InvalidArgument', 400), /HTTP 400 InvalidArgument: x/],
    [
      new Error('Region is missing'),
      /the S3 client failed \(Region is missing\); set --region or AWS_REGION/,
    ],
  ];
  for (const [err, expected] of cases) {
    const c = classifyS3Error(err, ...where);
    t.match(c.message, expected, err.message);
    t.equal(c.retryable, false, `${err.name} ${err.message} is not retried`);
  }
});

t.test('transient errors are retried', async (t) => {
  const econn = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9000'), {
    code: 'ECONNREFUSED',
    $metadata: {},
  });
  for (const err of [
    econn,
    sdkError('TimeoutError'),
    sdkError('InternalError', 500),
    sdkError('SlowDown', 503),
    sdkError('TooManyRequests', 429),
  ]) {
    t.equal(classifyS3Error(err, ...where).retryable, true, err.name);
  }
  t.match(
    classifyS3Error(econn, ...where).message,
    /no answer from the store \(ECONNREFUSED: connect ECONNREFUSED/,
  );
});

t.test('backoff doubles up to the cap, with jitter, and gives up after the retries', async (t) => {
  const delays: number[] = [];
  let calls = 0;
  const err = await withRetry(
    'PutObject',
    async () => {
      calls++;
      throw new S3StoreError('PutObject: no answer', true);
    },
    { retries: 5, baseMs: 250, maxMs: 2_000, random: () => 1, wait: async (ms) => (delays.push(ms), true) },
  ).catch((e: unknown) => e);
  t.equal(calls, 6, 'one try and five retries');
  t.same(delays, [250, 500, 1_000, 2_000, 2_000]);
  t.match((err as Error).message, /no answer/);

  const jittered: number[] = [];
  await withRetry(
    'HeadObject',
    async () => {
      if (jittered.length < 2) throw new S3StoreError('x', true);
      return 'ok';
    },
    { retries: 3, baseMs: 100, maxMs: 1_000, random: () => 0, wait: async (ms) => (jittered.push(ms), true) },
  );
  t.same(jittered, [50, 100], 'jitter takes up to half off');
});

t.test('a permanent error is thrown at once, a success returns', async (t) => {
  let calls = 0;
  const err = await withRetry(
    'PutObject',
    async () => {
      calls++;
      throw new S3StoreError('denied', false);
    },
    { retries: 5, baseMs: 1, maxMs: 1 },
  ).catch((e: unknown) => e);
  t.equal(calls, 1);
  t.match((err as Error).message, 'denied');
  t.equal(await withRetry('x', async () => 42, { retries: 0, baseMs: 1, maxMs: 1 }), 42);
});

t.test('the client: path-style and WHEN_REQUIRED checksums for a custom endpoint, one attempt', async (t) => {
  const minio = buildS3Client({ endpoint: 'http://127.0.0.1:9000', pathStyle: true, timeoutMs: 2_000 });
  t.teardown(() => minio.destroy());
  t.equal(minio.config.forcePathStyle, true);
  t.equal(await minio.config.region(), 'us-east-1', 'a region to sign with, as MinIO accepts any');
  t.equal(await minio.config.requestChecksumCalculation(), 'WHEN_REQUIRED');
  t.equal(await minio.config.responseChecksumValidation(), 'WHEN_REQUIRED');
  t.equal(await minio.config.maxAttempts(), 1, 'retries are the exporter’s own');

  const aws = buildS3Client({ region: 'eu-west-1', pathStyle: false, timeoutMs: 2_000 });
  t.teardown(() => aws.destroy());
  t.equal(aws.config.forcePathStyle, false);
  t.equal(await aws.config.region(), 'eu-west-1');
  t.equal(await aws.config.requestChecksumCalculation(), 'WHEN_SUPPORTED', 'AWS keeps its default checksums');
});

/** A stand-in S3Client: answers each command with the next scripted result. */
function scriptedClient(
  script: ((command: { constructor: { name: string }; input: Record<string, unknown> }) => unknown)[],
) {
  const sent: { name: string; input: Record<string, unknown> }[] = [];
  const client = {
    send: async (command: { constructor: { name: string }; input: Record<string, unknown> }) => {
      sent.push({ name: command.constructor.name, input: command.input });
      const step = script.shift();
      if (!step) throw new Error('unexpected request');
      return step(command);
    },
    destroy: () => t.fail('an injected client is not destroyed by the store'),
  };
  return { client: client as unknown as S3Client, sent };
}

const storeOptions = {
  bucket: 'flags',
  key: 'prod/features.yml',
  pathStyle: true,
  timeoutMs: 1_000,
  retries: 2,
  baseMs: 1,
  maxMs: 1,
};

t.test('the store: HEAD, missing object, GET, one PUT with Content-MD5 and metadata', async (t) => {
  const body = Buffer.from('---\nversion: "1.4"\n');
  const { client, sent } = scriptedClient([
    () => ({ Metadata: { sha256: 'abc', flags: '3' }, ETag: '"e"', ContentLength: 10 }),
    () => {
      throw sdkError('NotFound', 404);
    },
    () => ({ Body: { transformToByteArray: async () => Uint8Array.from(body) } }),
    () => {
      throw sdkError('NoSuchKey', 404);
    },
    () => ({}),
  ]);
  const store = createS3Store({ ...storeOptions, client });
  t.equal(store.location, 's3://flags/prod/features.yml');
  t.same(await store.head(), { metadata: { sha256: 'abc', flags: '3' }, etag: '"e"', size: 10 });
  t.equal(await store.head(), undefined, 'a 404 on HEAD is "no object"');
  t.same(Buffer.from((await store.get()) as Uint8Array), body);
  t.equal(await store.get(), undefined);
  await store.put(body, { sha256: 'def' });
  store.destroy();
  const put = sent.at(-1);
  t.equal(put?.name, 'PutObjectCommand');
  t.match(put?.input, {
    Bucket: 'flags',
    Key: 'prod/features.yml',
    ContentLength: body.byteLength,
    ContentMD5: createHash('md5').update(body).digest('base64'),
    ContentType: 'application/yaml',
    Metadata: { sha256: 'def' },
  });
  t.same(
    sent.map((s) => s.name),
    ['HeadObjectCommand', 'HeadObjectCommand', 'GetObjectCommand', 'GetObjectCommand', 'PutObjectCommand'],
  );
});

t.test(
  'the store retries a transient failure and reports each retry; a missing bucket is not "no object"',
  async (t) => {
    const retries: RetryInfo[] = [];
    const { client, sent } = scriptedClient([
      () => {
        throw sdkError('ServiceUnavailable', 503);
      },
      () => {
        throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
      },
      () => ({}),
      () => {
        throw sdkError('NoSuchBucket', 404);
      },
    ]);
    const store = createS3Store({ ...storeOptions, client, onRetry: (info) => retries.push(info) });
    await store.put(Buffer.from('x'), {});
    t.equal(sent.length, 3, 'two retries, then success');
    t.same(
      retries.map((r) => [r.operation, r.attempt]),
      [
        ['PutObject', 1],
        ['PutObject', 2],
      ],
    );
    const err = await store.head().catch((e: unknown) => e);
    t.match(
      (err as Error).message,
      /HeadObject s3:\/\/flags\/prod\/features\.yml: the bucket does not exist/,
    );
  },
);
