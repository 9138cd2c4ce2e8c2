// The exporter's push to the bucket cache (exporter/notify.ts) against two real cache replicas
// (cache/server.ts over a real MinIO), each on its own loopback address and the same port, as the
// pods behind a headless Service are. The one stand-in, named as such: the resolver, which answers
// for the headless Service's name what cluster DNS would (both replicas' addresses); the system
// resolver itself is exercised with "localhost".
import t from 'tap';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { createCacheMetrics } from '../../cache/metrics.ts';
import { buildCacheServer } from '../../cache/server.ts';
import { BucketCache } from '../../cache/state.ts';
import { createDocumentValidator } from '../../exporter/schema.ts';
import {
  MAX_ADDRESSES,
  classify,
  createNotifier,
  createNotifyMetrics,
  parseNotifyUrl,
  systemResolve,
  type NotifyLogger,
  type Resolve,
} from '../../exporter/notify.ts';
import { parseConfig } from '../../exporter/config.ts';
import { freePort } from '../support/process.ts';
import { useMinio } from '../support/minio.ts';

t.setTimeout(180_000);

const BUCKET = 'flags';
const PREFIX = 'notify/';
const TOKEN = 'notify-token-0123456789';
const PEERS = 'flipt-bucket-cache-peers.flipt-system.svc.cluster.local';
const doc = (enabled: boolean) =>
  `version: "1.4"\nnamespace:\n  key: default\nflags:\n  - key: pushed\n    name: pushed\n    type: BOOLEAN_FLAG_TYPE\n    enabled: ${enabled}\n`;

function recordingLogger(): NotifyLogger & { lines: { level: string; obj: object; msg: string }[] } {
  const lines: { level: string; obj: object; msg: string }[] = [];
  return {
    lines,
    info: (obj, msg) => lines.push({ level: 'info', obj, msg }),
    warn: (obj, msg) => lines.push({ level: 'warn', obj, msg }),
  };
}

t.test('notify URLs: the cache path by default, no credentials, http(s) only', async (t) => {
  const href = (s: string) => {
    const r = parseNotifyUrl(s);
    return 'url' in r ? r.url.href : r.error;
  };
  t.equal(href('http://cache:8080'), 'http://cache:8080/-/refresh');
  t.equal(href('http://cache:8080/'), 'http://cache:8080/-/refresh');
  t.equal(href('https://cache.example/custom/refresh?x=1'), 'https://cache.example/custom/refresh?x=1');
  t.equal(href('http://[::1]:9/'), 'http://[::1]:9/-/refresh');
  t.match(href('ftp://cache'), /http\(s\) URL/);
  t.match(href('not a url'), /http\(s\) URL/);
  t.match(href('http://user:secret@cache:8080'), /must not carry credentials/);
  t.match(href('http://cache#x'), /fragment/);
});

t.test('answers: 200 with the refresh result and 202 succeed, the rest fail with a reason', async (t) => {
  t.match(classify(200, '{"result":"updated"}'), { result: 'updated' });
  t.match(classify(200, '{"result":"unchanged"}'), { result: 'unchanged' });
  t.match(classify(202, '{"result":"pending"}'), { result: 'pending' });
  t.match(classify(401, '{"error":"missing or wrong bearer token"}'), {
    result: 'unauthorized',
    message: /wrong bearer token.*FLIPT_CACHE_REFRESH_TOKEN/,
  });
  t.match(classify(403, '{"error":"push is disabled"}'), { result: 'unauthorized' });
  t.match(classify(502, '{"result":"refused","message":"invalid document"}'), {
    result: 'refused',
    message: /invalid document/,
  });
  t.match(classify(200, 'not json'), { result: 'http_error' });
  t.match(classify(404, '<html>'), { result: 'http_error', message: /HTTP 404/ });
});

t.test('configuration: repeatable or comma-separated URLs, the token never from a flag', async (t) => {
  const base = ['--flipt-url', 'http://flipt:8080', '--bucket', 'flags'];
  const run = (argv: string[], env: Record<string, string> = {}) => parseConfig([...base, ...argv], env);
  const urls = run(['--notify-url', 'http://a:8080', '--notify-url', 'http://b:8080,http://a:8080'], {
    FLIPT_EXPORTER_NOTIFY_TOKEN: TOKEN,
    FLIPT_EXPORTER_NOTIFY_URL: 'http://ignored:1',
  });
  t.match(urls, {
    kind: 'run',
    config: {
      notifyUrls: ['http://a:8080/-/refresh', 'http://b:8080/-/refresh'],
      notifyToken: TOKEN,
      notifyTimeoutMs: 5_000,
    },
  });
  t.match(
    run([], {
      FLIPT_EXPORTER_NOTIFY_URL: ' http://a:8080 , http://b:8080/x ',
      FLIPT_EXPORTER_NOTIFY_TOKEN_FILE: '/var/run/push/token',
      FLIPT_EXPORTER_NOTIFY_TIMEOUT: '750ms',
    }),
    {
      kind: 'run',
      config: {
        notifyUrls: ['http://a:8080/-/refresh', 'http://b:8080/x'],
        notifyTokenFile: '/var/run/push/token',
        notifyTimeoutMs: 750,
      },
    },
  );
  t.match(run([]), { kind: 'run', config: { notifyUrls: [], notifyToken: undefined } });
  const errors = (argv: string[], env: Record<string, string> = {}) => {
    const r = run(argv, env);
    return r.kind === 'invalid' ? r.errors.join('\n') : '';
  };
  t.match(errors(['--notify-token', TOKEN]), /never taken from a flag/);
  t.match(errors([`--notify-token=${TOKEN}`]), /never taken from a flag/);
  t.match(errors(['--notify-url', 'http://a:8080']), /needs a token/);
  t.match(errors(['--notify-url', 'http://a:8080'], { FLIPT_EXPORTER_NOTIFY_TOKEN: 'short' }), /at least 16/);
  t.match(
    errors(['--notify-url', 'http://a:8080', '--notify-token-file', '/t'], {
      FLIPT_EXPORTER_NOTIFY_TOKEN: TOKEN,
    }),
    /set one of the two/,
  );
  t.match(
    errors(['--notify-url', 'ftp://a'], { FLIPT_EXPORTER_NOTIFY_TOKEN: TOKEN }),
    /--notify-url: expected/,
  );
  t.match(
    errors(['--notify-url', 'http://a:1', '--notify-timeout', '10'], { FLIPT_EXPORTER_NOTIFY_TOKEN: TOKEN }),
    /--notify-timeout/,
  );
  const many = Array.from({ length: 17 }, (_, i) => `http://c${i}:8080`).join(',');
  t.match(errors(['--notify-url', many], { FLIPT_EXPORTER_NOTIFY_TOKEN: TOKEN }), /at most 16/);
  const tokenOnly = run([], { FLIPT_EXPORTER_NOTIFY_TOKEN: TOKEN });
  t.match(tokenOnly.kind === 'run' && tokenOnly.warnings.join('\n'), /no --notify-url/);
});

t.test('the system resolver answers every record of a name', async (t) => {
  const records = await systemResolve('localhost', AbortSignal.timeout(5_000));
  t.ok(
    records.some((r) => r.address === '127.0.0.1' || r.address === '::1'),
    JSON.stringify(records),
  );
  await t.rejects(systemResolve('no-such-name.invalid', AbortSignal.timeout(5_000)));
});

// Two real replicas of the cache over a real MinIO, on 127.0.0.2 and 127.0.0.3, the same port.
const minio = await useMinio(t, { name: 'flipt-notify-unit-minio' });
await minio.createBucket(BUCKET);
const admin = minio.client();
const put = (enabled: boolean) =>
  admin.send(new PutObjectCommand({ Bucket: BUCKET, Key: `${PREFIX}features.yml`, Body: doc(enabled) }));
await put(false);

const port = await freePort();
const replicas = await Promise.all(
  ['127.0.0.2', '127.0.0.3'].map(async (host) => {
    const metrics = createCacheMetrics({ processMetrics: false, confirmedAt: () => cache.confirmedAt });
    const cache: BucketCache = new BucketCache({
      upstream: {
        client: minio.client(),
        bucket: BUCKET,
        prefix: PREFIX,
        timeoutMs: 2_000,
        maxObjects: 10,
        maxObjectBytes: 64 * 1024,
        maxTotalBytes: 128 * 1024,
        onRequest: (op, result) => metrics.upstream(op, result),
      },
      validate: createDocumentValidator(),
      metrics,
      refreshDeadlineMs: 5_000,
    });
    // No interval loop: only the push (and this first refresh) changes what a replica serves.
    await cache.refresh('interval');
    const app = buildCacheServer({
      cache,
      bucket: BUCKET,
      prefix: PREFIX,
      metrics,
      refreshToken: TOKEN,
      pushWaitMs: 5_000,
    });
    await app.listen({ host, port });
    t.teardown(() => app.close());
    const served = async () =>
      (await (await fetch(`http://${host}:${port}/${BUCKET}/${PREFIX}features.yml`)).text()).includes(
        'enabled: true',
      );
    return { host, app, served, metrics: () => metrics.registry.metrics() };
  }),
);

/** The headless Service's DNS as cluster DNS answers it (stand-in), and nothing else. */
const headless: Resolve = async (host) => {
  if (host !== PEERS) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
  return replicas.map((r) => ({ address: r.host, family: 4 as const }));
};

t.test('one push per address of the headless name reaches every replica', async (t) => {
  t.same(await Promise.all(replicas.map((r) => r.served())), [false, false], 'both serve the old state');
  await put(true);
  const registry = new Registry();
  const logger = recordingLogger();
  const notifier = createNotifier({
    urls: [new URL(`http://${PEERS}:${port}/-/refresh`)],
    token: async () => `${TOKEN}\n`,
    timeoutMs: 5_000,
    logger,
    metrics: createNotifyMetrics(registry),
    resolve: headless,
  });
  const outcomes = await notifier.notify('s3://flags/notify/features.yml');
  t.same(
    outcomes.map((o) => [o.address, o.result, o.ok]),
    [
      ['127.0.0.2', 'updated', true],
      ['127.0.0.3', 'updated', true],
    ],
  );
  t.same(
    await Promise.all(replicas.map((r) => r.served())),
    [true, true],
    'both serve the new state at once',
  );
  for (const r of replicas)
    t.match(await r.metrics(), /flipt_bucket_cache_refreshes_total\{result="updated",trigger="push"\} 1/);
  t.match(await registry.metrics(), /flipt_exporter_notify_pushes_total\{result="updated"\} 2/);
  t.match(logger.lines, [{ level: 'info', msg: /cache push sent to 2 address/ }]);

  // Again, nothing changed in between: both answer "unchanged", still a success.
  const again = await notifier.notify('s3://flags/notify/features.yml');
  t.same(
    again.map((o) => o.result),
    ['unchanged', 'unchanged'],
  );
});

t.test('failures are reported per address, counted, bounded and never thrown', async (t) => {
  // A port that accepts and never answers: the request's timeout ends the wait.
  const silent = new Set<Socket>();
  const blackhole = createServer((s) => silent.add(s));
  await new Promise<void>((done) => blackhole.listen(0, '127.0.0.1', done));
  t.teardown(() => {
    for (const s of silent) s.destroy();
    blackhole.close();
  });
  const silentPort = (blackhole.address() as AddressInfo).port;
  const closedPort = await freePort();
  const registry = new Registry();
  const logger = recordingLogger();
  const started = performance.now();
  const outcomes = await createNotifier({
    urls: [
      new URL(`http://${PEERS}:${port}/-/refresh`),
      new URL(`http://127.0.0.1:${closedPort}/-/refresh`),
      new URL(`http://127.0.0.1:${silentPort}/-/refresh`),
      new URL('http://not-a-peer.invalid:8080/-/refresh'),
    ],
    token: async () => 'wrong-token-0123456789',
    timeoutMs: 1_000,
    logger,
    metrics: createNotifyMetrics(registry),
    resolve: headless,
  }).notify('s3://flags/notify/features.yml');
  const elapsed = performance.now() - started;
  t.same(
    outcomes.map((o) => [o.address, o.result]),
    [
      ['127.0.0.2', 'unauthorized'],
      ['127.0.0.3', 'unauthorized'],
      ['127.0.0.1', 'unreachable'],
      ['127.0.0.1', 'timeout'],
      [undefined, 'dns_error'],
    ],
  );
  t.ok(
    outcomes.every((o) => !o.ok),
    'all failed',
  );
  t.ok(elapsed < 10_000, `bounded by the timeout, not by the silent server (${Math.round(elapsed)} ms)`);
  const text = await registry.metrics();
  t.match(text, /flipt_exporter_notify_pushes_total\{result="unauthorized"\} 2/);
  t.match(text, /flipt_exporter_notify_pushes_total\{result="unreachable"\} 1/);
  t.match(text, /flipt_exporter_notify_pushes_total\{result="timeout"\} 1/);
  t.match(text, /flipt_exporter_notify_pushes_total\{result="dns_error"\} 1/);
  t.match(logger.lines, [{ level: 'warn', msg: /failed for 5 of 5 address.*refresh interval/ }]);
});

t.test('a name with more addresses than the bound is pushed to the first ones only', async (t) => {
  const closedPort = await freePort();
  const logger = recordingLogger();
  const many: Resolve = async () =>
    Array.from({ length: MAX_ADDRESSES + 6 }, (_, i) => ({
      address: `127.0.1.${i + 1}`,
      family: 4 as const,
    }));
  const outcomes = await createNotifier({
    urls: [new URL(`http://many.test:${closedPort}`)],
    token: async () => TOKEN,
    timeoutMs: 2_000,
    logger,
    resolve: many,
  }).notify('s3://flags/x');
  t.equal(outcomes.length, MAX_ADDRESSES);
  t.match(logger.lines[0], { level: 'warn', msg: new RegExp(`more than ${MAX_ADDRESSES} addresses`) });
});

t.test('the token file is re-read before each push; an unusable token sends nothing', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'notify-token-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'token');
  const registry = new Registry();
  const notifier = createNotifier({
    urls: [new URL(`http://${PEERS}:${port}/-/refresh`)],
    token: () => import('node:fs/promises').then((fs) => fs.readFile(file, 'utf8')),
    timeoutMs: 5_000,
    logger: recordingLogger(),
    metrics: createNotifyMetrics(registry),
    resolve: headless,
  });
  t.same(
    (await notifier.notify('x')).map((o) => o.result),
    ['unauthorized'],
    'missing file',
  );
  await writeFile(file, 'short');
  t.match(await notifier.notify('x'), [{ result: 'unauthorized', message: /shorter than 16/ }]);
  await writeFile(file, `${TOKEN}\n`);
  const rotated = await notifier.notify('x');
  t.same(
    rotated.map((o) => o.ok),
    [true, true],
    `a rotated Secret applies without a restart: ${JSON.stringify(rotated)}`,
  );
});
