// The bucket cache alone (issue 13): how many sidecar polls per second one replica serves on one
// core, its memory with 10,000 flags, and the fleet cost table redone with the cache.
//
// A poll is what Flipt v1.61.1 sends each interval (counted in bench/sidecar.ts):
//   GET {prefix}.flipt.yml → 404, LIST the prefix, GET {prefix}features.yml.
// autocannon replays that sequence on every connection, unsigned (the cache checks no signature).
// Baseline, in the same run and on the same core: MinIO serving the same three requests from a
// bucket with an anonymous read policy. The server under test is pinned to core 0 (taskset), this
// process (the load generator) to the other cores; rounds alternate and medians are reported.
//
//   BENCH_DURATION=10 BENCH_CONNECTIONS=32 BENCH_ROUNDS=3 BENCH_FLAGS=100,10000 npm run bench:cache
import autocannon from 'autocannon';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { resolve } from 'node:path';
import { PutBucketPolicyCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { createNotifier } from '../exporter/notify.ts';
import { ociComparison } from './oci-storage.ts';
import { startMinio } from '../test/support/minio.ts';
import { freePort } from '../test/support/process.ts';
import { envList, envNumber, featuresYaml, median, mib, percentile, procSample, table } from './lab.ts';
import { PRICE_PER_1000, fleetCost } from './s3-cost.ts';

const DURATION = envNumber('BENCH_DURATION', 10);
const CONNECTIONS = envNumber('BENCH_CONNECTIONS', 32);
const ROUNDS = envNumber('BENCH_ROUNDS', 3);
const FLAG_COUNTS = envList('BENCH_FLAGS', [100, 10_000]);
const CHANGES = envNumber('BENCH_CHANGES', 10);
// polls, propagation or both (default); oci: Flipt sidecars on OCI storage against S3 and the cache
// (bench/oci-storage.ts, several minutes; not in the default).
const PARTS = new Set((process.env['BENCH_PARTS'] ?? 'polls,propagation').split(','));
const PUSH_TOKEN = 'bench-push-token-0123456789';
const BUCKET = 'flags';
const root = resolve(import.meta.dirname, '..');
const node = resolve(root, 'node_modules', '.bin', 'node');

function hasTaskset(): boolean {
  try {
    execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const PIN = hasTaskset();
// The load generator stays off core 0, the server's.
if (PIN) execFileSync('taskset', ['-a', '-p', '-c', '1-1023', String(process.pid)], { stdio: 'ignore' });
const pin = (pid: number) => {
  if (PIN) execFileSync('taskset', ['-a', '-p', '-c', '0', String(pid)], { stdio: 'ignore' });
};

interface Round {
  pollsPerS: number;
  p99: number;
  errors: number;
  wrongStatus: number;
  serverCpuShare: number;
}

async function poll(url: string, prefix: string): Promise<Round & { pid?: number }> {
  const requests = [
    { method: 'GET', path: `/${BUCKET}/${prefix}.flipt.yml` },
    { method: 'GET', path: `/${BUCKET}?list-type=2&max-keys=1000&prefix=${encodeURIComponent(prefix)}` },
    { method: 'GET', path: `/${BUCKET}/${prefix}features.yml` },
  ] as autocannon.Request[];
  const run = (duration: number) =>
    autocannon({ url, connections: CONNECTIONS, duration, requests } as autocannon.Options);
  await run(2);
  const result = await run(DURATION);
  const perKind = result.statusCodeStats as Record<string, { count: number } | undefined>;
  const ok = perKind['200']?.count ?? 0;
  const notFound = perKind['404']?.count ?? 0;
  return {
    pollsPerS: result.requests.total / 3 / result.duration,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts,
    // Per poll: two 200s and one 404, nothing else.
    wrongStatus: Math.abs(ok - 2 * notFound) > 3 * CONNECTIONS ? 1 : 0,
    serverCpuShare: 0,
  };
}

async function measure(url: string, pid: number, prefix: string): Promise<Round> {
  const before = procSample(pid)?.cpuSeconds ?? 0;
  const started = performance.now();
  const r = await poll(url, prefix);
  const seconds = (performance.now() - started) / 1000;
  r.serverCpuShare = ((procSample(pid)?.cpuSeconds ?? 0) - before) / seconds;
  return r;
}

async function startCache(
  endpoint: string,
  creds: Record<string, string>,
  prefix: string,
  extra: Record<string, string> = {},
) {
  const port = await freePort();
  const child: ChildProcess = spawn(node, [resolve(root, 'cache', 'main.ts')], {
    cwd: root,
    env: {
      PATH: process.env['PATH'],
      AWS_EC2_METADATA_DISABLED: 'true',
      ...creds,
      FLIPT_CACHE_BUCKET: BUCKET,
      FLIPT_CACHE_PREFIX: prefix,
      FLIPT_CACHE_ENDPOINT: endpoint,
      FLIPT_CACHE_LISTEN: `127.0.0.1:${port}`,
      FLIPT_CACHE_INTERVAL: '5s',
      FLIPT_CACHE_LOG_LEVEL: 'warn',
      ...extra,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 300; i++) {
    const ok = await fetch(`${url}/readyz`)
      .then((r) => r.ok)
      .catch(() => false);
    if (ok) return { child, url, pid: child.pid as number };
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error('the cache did not become ready');
}

const minio = await startMinio({ name: 'flipt-bench-cache-minio' });
const admin = minio.client();
await minio.createBucket(BUCKET);
// The baseline serves the same requests unsigned: an anonymous read policy on the bucket.
await admin.send(
  new PutBucketPolicyCommand({
    Bucket: BUCKET,
    Policy: JSON.stringify({
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Allow',
          Principal: { AWS: ['*'] },
          Action: ['s3:GetObject'],
          Resource: [`arn:aws:s3:::${BUCKET}/*`],
        },
        {
          Effect: 'Allow',
          Principal: { AWS: ['*'] },
          Action: ['s3:ListBucket'],
          Resource: [`arn:aws:s3:::${BUCKET}`],
        },
      ],
    }),
  }),
);
const minioPid = Number(
  execFileSync('pgrep', ['-n', '-f', '--', `address 127.0.0.1:${minio.port}`])
    .toString()
    .trim(),
);
pin(minioPid);

interface Row {
  flags: number;
  bytes: number;
  cache: Round[];
  minio: Round[];
  rssIdle: number;
  rssLoaded: number;
  hwm: number;
}
const rows: Row[] = [];
const propagationMs: Record<'interval' | 'push', number[]> = { interval: [], push: [] };
try {
  for (const flags of PARTS.has('polls') ? FLAG_COUNTS : []) {
    const prefix = `f${flags}/`;
    // The exporter's layout: one object, documents of at most 100 flags.
    const body = featuresYaml({ flags, flagsPerDocument: 100 });
    await admin.send(new PutObjectCommand({ Bucket: BUCKET, Key: `${prefix}features.yml`, Body: body }));
    const cache = await startCache(minio.endpoint, minio.credentialsEnv(), prefix);
    pin(cache.pid);
    await new Promise((r) => setTimeout(r, 1_000));
    const row: Row = {
      flags,
      bytes: Buffer.byteLength(body),
      cache: [],
      minio: [],
      rssIdle: procSample(cache.pid)?.rssBytes ?? 0,
      rssLoaded: 0,
      hwm: 0,
    };
    for (let round = 0; round < ROUNDS; round++) {
      row.cache.push(await measure(cache.url, cache.pid, prefix));
      row.minio.push(await measure(minio.endpoint, minioPid, prefix));
      console.error(
        `${flags} flags, round ${round + 1}: cache ${row.cache.at(-1)?.pollsPerS.toFixed(0)} polls/s, MinIO ${row.minio.at(-1)?.pollsPerS.toFixed(0)} polls/s`,
      );
    }
    const sample = procSample(cache.pid);
    row.rssLoaded = sample?.rssBytes ?? 0;
    row.hwm = sample?.hwmBytes ?? 0;
    rows.push(row);
    cache.child.kill('SIGTERM');
    await once(cache.child, 'exit');
  }
  if (PARTS.has('propagation')) await propagation();
} finally {
  await minio.dispose();
}

// Upload → the cache serves the new object: with the refresh interval alone (2 s) and with the
// exporter's push (exporter/notify.ts) right after the upload. The sidecar's own poll comes on top (its interval, on average half).
async function propagation() {
  const prefix = 'prop/';
  const key = `${prefix}features.yml`;
  const base = featuresYaml({ flags: 100, flagsPerDocument: 100 });
  await admin.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: base }));
  const cache = await startCache(minio.endpoint, minio.credentialsEnv(), prefix, {
    FLIPT_CACHE_INTERVAL: '2s',
    FLIPT_CACHE_REFRESH_TOKEN: PUSH_TOKEN,
  });
  // The exporter's own push code (exporter/notify.ts, what --notify-url runs after an upload).
  const exporterPush = createNotifier({
    urls: [new URL(`${cache.url}/-/refresh`)],
    token: async () => PUSH_TOKEN,
    timeoutMs: 5_000,
    logger: { info: () => undefined, warn: (o, m) => console.error(m, o) },
  });
  try {
    for (let i = 0; i < CHANGES * 2; i++) {
      const mode = i % 2 === 0 ? 'interval' : 'push';
      // A random phase against the refresh loop, as a real upload has.
      await new Promise((r) => setTimeout(r, Math.random() * 2_000));
      const put = await admin.send(
        new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: `${base}# change ${i}\n` }),
      );
      const started = performance.now();
      if (mode === 'push') {
        const [pushed] = await exporterPush.notify(`s3://${BUCKET}/${key}`);
        if (!pushed?.ok) throw new Error(`the exporter's push failed: ${JSON.stringify(pushed)}`);
      }
      for (let tries = 0; tries < 1_000; tries++) {
        const head = await fetch(`${cache.url}/${BUCKET}/${key}`, { method: 'HEAD' });
        if (head.headers.get('etag') === put.ETag) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      propagationMs[mode].push(performance.now() - started);
    }
  } finally {
    cache.child.kill('SIGTERM');
    await once(cache.child, 'exit');
  }
}

const m = (rs: Round[], f: (r: Round) => number) => median(rs.map(f));
// Polls per second of server CPU: what one fully used core serves, even when the load generator
// (on the other core of a small machine) cannot saturate the server.
const perCpu = (rs: Round[]) => m(rs, (x) => x.pollsPerS / Math.max(x.serverCpuShare, 0.01));
if (rows.length > 0) {
  console.log(
    `\n## Bucket cache: polls per second on one core (${PIN ? 'server pinned to core 0' : 'not pinned: taskset missing'}), ` +
      `${CONNECTIONS} connections, ${DURATION} s x ${ROUNDS} rounds, medians\n`,
  );
  console.log(
    table(
      [
        'flags',
        'object',
        'cache polls/s',
        'cache CPU',
        'cache polls per CPU-s',
        'cache p99',
        'MinIO polls/s',
        'MinIO polls per CPU-s',
        'ratio per CPU-s',
        'cache RSS idle / loaded / peak',
      ],
      rows.map((r) => [
        r.flags.toLocaleString('en-US'),
        `${(r.bytes / 1024).toFixed(0)} KiB`,
        m(r.cache, (x) => x.pollsPerS).toFixed(0),
        `${(m(r.cache, (x) => x.serverCpuShare) * 100).toFixed(0)} %`,
        perCpu(r.cache).toFixed(0),
        `${m(r.cache, (x) => x.p99)} ms`,
        m(r.minio, (x) => x.pollsPerS).toFixed(0),
        perCpu(r.minio).toFixed(0),
        `${(perCpu(r.cache) / perCpu(r.minio)).toFixed(1)}x`,
        `${mib(r.rssIdle)} / ${mib(r.rssLoaded)} / ${mib(r.hwm)} MiB`,
      ]),
    ),
  );
  const problems = rows
    .flatMap((r) => [...r.cache, ...r.minio])
    .filter((x) => x.errors > 0 || x.wrongStatus > 0);
  if (problems.length > 0)
    console.log(`\nWARNING: ${problems.length} round(s) with errors or unexpected statuses`);

  // The cost table with the cache: the bucket sees REPLICAS x one LIST per refresh interval, plus one
  // GET per replica per change; sidecars' polls land on the cache. Replicas needed: the fleet's polls
  // per second over what one replica served above (the larger state), with 50 % headroom, at least 2.
  const REPLICAS_MIN = 2;
  const REFRESH_S = 5;
  // Sized on the polls one core serves, measured on the largest state.
  const perReplica = perCpu((rows.at(-1) as Row).cache);
  const noCachePoll = { get: 2, list: 1 };
  const listPerDay = (replicas: number) => (replicas * 86_400) / REFRESH_S;
  const cacheDollars = (replicas: number) => (listPerDay(replicas) * PRICE_PER_1000.list) / 1000;
  const costRows: string[][] = [];
  for (const pods of [1_000, 10_000]) {
    for (const interval of [2, 30, 60]) {
      const direct = fleetCost(noCachePoll, pods, interval);
      const replicas = Math.max(REPLICAS_MIN, Math.ceil((pods / interval / perReplica) * 1.5));
      costRows.push([
        pods.toLocaleString('en-US'),
        `${interval} s`,
        `$${direct.dollarsPerDay.toFixed(direct.dollarsPerDay < 10 ? 2 : 0)}`,
        `${(direct.getPerS + direct.listPerS).toFixed(0)}`,
        String(replicas),
        `$${cacheDollars(replicas).toFixed(2)}`,
        `${(replicas / REFRESH_S).toFixed(1)}`,
      ]);
    }
  }
  console.log(
    `\n## S3 cost per day, without and with the cache (S3 Standard: GET $0.0004/1,000, LIST $0.005/1,000; ` +
      `cache refresh ${REFRESH_S} s; replicas for ${(rows.at(-1) as Row).flags.toLocaleString('en-US')} flags at ${perReplica.toFixed(0)} polls per CPU-second each (one core per replica), +50 %)\n`,
  );
  console.log(
    table(
      [
        'pods',
        'poll',
        'without: $/day',
        'without: S3 req/s',
        'cache replicas',
        'with: $/day',
        'with: S3 req/s',
      ],
      costRows,
    ),
  );
  console.log(
    '\nWith the cache the S3 bill is replicas x 86,400 / refresh LISTs a day (plus one GET per replica per change): ' +
      'independent of pods and poll interval. What it does not change: each sidecar still rebuilds its whole snapshot every poll.',
  );
}

if (PARTS.has('propagation')) {
  const fmt = (xs: number[]) =>
    `p50 ${(median(xs) / 1000).toFixed(2)} s, p95 ${(percentile(xs, 95) / 1000).toFixed(2)} s, max ${(Math.max(...xs) / 1000).toFixed(2)} s`;
  console.log(`\n## Upload → cache serves it (refresh interval 2 s), ${CHANGES} changes each\n`);
  console.log(`without push: ${fmt(propagationMs.interval)}`);
  console.log(`with push:    ${fmt(propagationMs.push)}`);
  console.log('A sidecar polling every P seconds adds up to P (P/2 on average) to either.');
}

if (PARTS.has('oci')) await ociComparison();
