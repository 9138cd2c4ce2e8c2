// Flipt v1.61.1 sidecars on OCI storage against the same sidecars on S3, directly and through the
// bucket cache (issue 13, "what the cache does not fix"): idle CPU per pod at 2 s and 30 s polls
// with 1,000 flags, requests per poll, and propagation. The input for a later fleet mode.
//
// Everything is real and on loopback: MinIO, the bucket cache (cache/main.ts), the CNCF
// distribution registry (test/e2e/servers/registry, `build.sh registry`), the bundle made and
// pushed by the real `flipt bundle build` / `flipt bundle push`, and the sidecars started from the
// injector's own output (bench/lab.ts) with only the storage variables changed for OCI:
//   FLIPT_STORAGE_TYPE=oci, FLIPT_STORAGE_OCI_REPOSITORY=http://127.0.0.1:PORT/flipt/NAME:latest,
//   FLIPT_STORAGE_OCI_POLL_INTERVAL, and XDG_CONFIG_HOME / FLIPT_STORAGE_OCI_BUNDLES_DIRECTORY in the
//   emptyDir (Flipt makes its bundle directory at start, and the root filesystem is read-only).
// Each registry and each bucket sits behind a counting loopback proxy, so requests per poll are
// counted, not assumed.
//
//   BENCH_PARTS=oci npm run bench:cache
//   BENCH_OCI_FLAGS=1000 BENCH_OCI_WINDOW=62 BENCH_OCI_ROUNDS=2 BENCH_OCI_CHANGES=6
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { markerYaml } from '../exporter/marker.ts';
import { createNotifier } from '../exporter/notify.ts';
import { DEFAULT_MARKER_NAMESPACE } from '../common/export-marker.ts';
import { startCountingProxy, startMinio, type CountingProxy } from '../test/support/minio.ts';
import { freePort, serverBinary, tempDir } from '../test/support/process.ts';
import {
  envNumber,
  featuresYaml,
  median,
  percentile,
  procSample,
  startSidecar,
  table,
  type Sidecar,
} from './lab.ts';

const run = promisify(execFile);
const root = resolve(import.meta.dirname, '..');
const node = resolve(root, 'node_modules', '.bin', 'node');
const BUCKET = 'bench';
const TOKEN = 'oci-bench-push-token-0123456789';
/** The injected sidecar's emptyDir (the harness maps it to a directory of its own). */
const STATE = '/var/run/flipt';

type Storage = 's3' | 'cache' | 'oci';
interface Case {
  storage: Storage;
  interval: number;
  /** S3 prefix or OCI repository name. */
  name: string;
  sidecar: Sidecar;
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check().catch(() => false)) return;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function startRegistry(dir: string): Promise<{ port: number; child: ChildProcess }> {
  const port = await freePort();
  const config = join(dir, 'registry.yml');
  await writeFile(
    config,
    [
      'version: 0.1',
      'log:',
      '  level: error',
      '  accesslog:',
      '    disabled: true',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${join(dir, 'data')}`,
      'http:',
      `  addr: 127.0.0.1:${port}`,
      '',
    ].join('\n'),
  );
  const child = spawn(serverBinary('registry'), ['serve', config], {
    // No OpenTelemetry export (by default it posts traces to localhost:4318 every few seconds).
    env: {
      PATH: process.env['PATH'] ?? '/usr/bin:/bin',
      OTEL_TRACES_EXPORTER: 'none',
      OTEL_SDK_DISABLED: 'true',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  await waitFor('the registry', async () => (await fetch(`http://127.0.0.1:${port}/v2/`)).ok);
  return { port, child };
}

/** `flipt bundle build` of one directory, then `flipt bundle push` to the registry: what a publisher runs. */
async function publishBundle(work: string, name: string, yaml: string, registry: string): Promise<number> {
  const src = join(work, 'src', name);
  await mkdir(src, { recursive: true });
  await writeFile(join(src, 'features.yml'), yaml);
  const env = {
    PATH: process.env['PATH'] ?? '/usr/bin:/bin',
    HOME: work,
    XDG_CONFIG_HOME: join(work, 'config'),
  };
  const started = performance.now();
  await run(serverBinary('flipt'), ['bundle', 'build', `${name}:v`], { cwd: src, env });
  await run(
    serverBinary('flipt'),
    ['bundle', 'push', `${name}:v`, `http://${registry}/flipt/${name}:latest`],
    {
      cwd: src,
      env,
    },
  );
  return performance.now() - started;
}

const state = (flags: number, enabled: boolean) =>
  featuresYaml({ flags, flagsPerDocument: 100 }) +
  // The flag propagation is timed on, then the marker the injected startup probe waits for.
  `---\nversion: "1.4"\nnamespace:\n  key: default\nflags:\n  - key: oci-bench-prop\n    name: oci-bench-prop\n    type: BOOLEAN_FLAG_TYPE\n    enabled: ${enabled}\n` +
  markerYaml(DEFAULT_MARKER_NAMESPACE);

async function enabledOf(url: string): Promise<boolean | undefined> {
  const r = await fetch(`${url}/evaluate/v1/boolean`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ namespaceKey: 'default', flagKey: 'oci-bench-prop', entityId: 'e', context: {} }),
    signal: AbortSignal.timeout(5_000),
  });
  return r.ok ? ((await r.json()) as { enabled: boolean }).enabled : undefined;
}

export async function ociComparison(): Promise<void> {
  const FLAGS = envNumber('BENCH_OCI_FLAGS', 1000);
  const WINDOW = envNumber('BENCH_OCI_WINDOW', 62);
  const ROUNDS = envNumber('BENCH_OCI_ROUNDS', 2);
  const CHANGES = envNumber('BENCH_OCI_CHANGES', 6);
  const INTERVALS = [2, 30];
  const tmp = await tempDir('flipt-bench-oci');
  const stops: (() => Promise<unknown> | void)[] = [];
  try {
    const minio = await startMinio({ name: 'flipt-bench-oci-minio' });
    stops.push(() => minio.dispose());
    await minio.createBucket(BUCKET);
    const admin = minio.client();
    const s3Proxy = await startCountingProxy(minio.port);
    stops.push(() => s3Proxy.close());
    const registry = await startRegistry(tmp.path);
    stops.push(async () => {
      registry.child.kill('SIGTERM');
      await once(registry.child, 'exit');
    });
    const ociProxy: CountingProxy = await startCountingProxy(registry.port);
    stops.push(() => ociProxy.close());
    const ociHost = new URL(ociProxy.url).host;

    // One S3 prefix / OCI repository per sidecar, so each one's requests are counted apart.
    const put = (prefix: string, enabled: boolean) =>
      admin.send(
        new PutObjectCommand({ Bucket: BUCKET, Key: `${prefix}features.yml`, Body: state(FLAGS, enabled) }),
      );
    for (const interval of INTERVALS) {
      await put(`s3-p${interval}/`, false);
      await put(`cache-p${interval}/`, false);
      await publishBundle(tmp.path, `oci-p${interval}`, state(FLAGS, false), ociHost);
    }

    // The bucket cache (one replica: its cost is not what is measured here) serving the "cache-*" prefixes.
    const caches: { prefix: string; url: string; child: ChildProcess }[] = [];
    for (const interval of INTERVALS) {
      const port = await freePort();
      const child = spawn(node, [join(root, 'cache', 'main.ts')], {
        env: {
          PATH: process.env['PATH'] ?? '/usr/bin:/bin',
          ...minio.credentialsEnv(),
          AWS_EC2_METADATA_DISABLED: 'true',
          FLIPT_CACHE_BUCKET: BUCKET,
          FLIPT_CACHE_PREFIX: `cache-p${interval}/`,
          FLIPT_CACHE_ENDPOINT: minio.endpoint,
          FLIPT_CACHE_LISTEN: `127.0.0.1:${port}`,
          FLIPT_CACHE_INTERVAL: '2s',
          FLIPT_CACHE_REFRESH_TOKEN: TOKEN,
          FLIPT_CACHE_LOG_LEVEL: 'warn',
        },
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      const url = `http://127.0.0.1:${port}`;
      stops.push(async () => {
        child.kill('SIGTERM');
        await once(child, 'exit');
      });
      await waitFor('the bucket cache', async () => (await fetch(`${url}/readyz`)).ok);
      caches.push({ prefix: `cache-p${interval}/`, url, child });
    }

    const cases: Case[] = [];
    stops.push(() => Promise.all(cases.map((c) => c.sidecar.stop())));
    for (const interval of INTERVALS) {
      const annotations = { 'flipt.io/poll-interval': `${interval}s`, 'flipt.io/log-level': 'warn' };
      const common = { bucket: BUCKET, accessKeyId: minio.rootUser, secretAccessKey: minio.rootPassword };
      cases.push({
        storage: 's3',
        interval,
        name: `s3-p${interval}/`,
        sidecar: await startSidecar({
          ...common,
          endpoint: s3Proxy.url,
          annotations: { ...annotations, 'flipt.io/prefix': `s3-p${interval}/` },
        }),
      });
      const cache = caches.find((c) => c.prefix === `cache-p${interval}/`);
      cases.push({
        storage: 'cache',
        interval,
        name: `cache-p${interval}/`,
        sidecar: await startSidecar({
          ...common,
          endpoint: cache?.url ?? '',
          annotations: { ...annotations, 'flipt.io/prefix': `cache-p${interval}/` },
        }),
      });
      cases.push({
        storage: 'oci',
        interval,
        name: `oci-p${interval}`,
        sidecar: await startSidecar({
          ...common,
          endpoint: s3Proxy.url,
          annotations,
          extraEnv: {
            FLIPT_STORAGE_TYPE: 'oci',
            FLIPT_STORAGE_OCI_REPOSITORY: `http://${ociHost}/flipt/oci-p${interval}:latest`,
            FLIPT_STORAGE_OCI_POLL_INTERVAL: `${interval}s`,
            FLIPT_STORAGE_OCI_BUNDLES_DIRECTORY: `${STATE}/bundles`,
            XDG_CONFIG_HOME: STATE,
          },
        }),
      });
    }
    for (const c of cases) {
      const answer = await enabledOf(c.sidecar.url);
      if (answer !== false)
        throw new Error(`${c.storage} p${c.interval}: the sidecar answers ${String(answer)}`);
    }

    // Idle CPU: every sidecar side by side, CPU seconds from /proc over the window, rounds.
    await sleep(3_000);
    // Polls actually made (a loaded machine stretches a 1,000-flag rebuild past a 2 s interval):
    // S3, each poll starts with GET .flipt.yml; the cache counts the LISTs it served; OCI, each poll
    // resolves the tag (one manifest request). Requests: everything the sidecar sent its store.
    const cacheList = async (c: Case) => {
      const cache = caches.find((x) => x.prefix === c.name);
      const text = await (await fetch(`${cache?.url}/metrics`)).text();
      return Number(
        /^flipt_bucket_cache_requests_total\{kind="list"\} (\S+)$/m.exec(text)?.[1] ?? Number.NaN,
      );
    };
    const count = async (c: Case): Promise<{ polls: number; requests: number }> => {
      if (c.storage === 'oci') {
        const mine = ociProxy.requests.filter((r) => r.url.startsWith(`/v2/flipt/${c.name}/`));
        return {
          polls: mine.filter((r) => r.url.endsWith('/manifests/latest')).length,
          requests: mine.length,
        };
      }
      if (c.storage === 's3') {
        const mine = s3Proxy.requests.filter((r) => r.url.includes(c.name.replace(/\/$/, '')));
        return {
          polls: mine.filter((r) => r.url.startsWith(`/${BUCKET}/${c.name}.flipt.yml`)).length,
          requests: mine.length,
        };
      }
      const polls = await cacheList(c);
      return { polls, requests: polls * 3 };
    };
    interface Sample {
      millicores: number;
      polls: number;
      expected: number;
      cpuPerPollMs: number;
      requestsPerPoll: number;
    }
    const samples = new Map<Case, Sample[]>(cases.map((c) => [c, []]));
    for (let round = 0; round < ROUNDS; round++) {
      const before = await Promise.all(
        cases.map(async (c) => ({
          cpu: procSample(c.sidecar.pid)?.cpuSeconds ?? Number.NaN,
          ...(await count(c)),
        })),
      );
      const t0 = performance.now();
      await sleep(WINDOW * 1000);
      const seconds = (performance.now() - t0) / 1000;
      for (const [i, c] of cases.entries()) {
        const b = before[i] as { cpu: number; polls: number; requests: number };
        const cpu = (procSample(c.sidecar.pid)?.cpuSeconds ?? Number.NaN) - b.cpu;
        const now = await count(c);
        const polls = now.polls - b.polls;
        samples.get(c)?.push({
          millicores: (cpu / seconds) * 1000,
          polls,
          expected: seconds / c.interval,
          cpuPerPollMs: polls > 0 ? (cpu / polls) * 1000 : Number.NaN,
          requestsPerPoll: polls > 0 ? (now.requests - b.requests) / polls : Number.NaN,
        });
      }
      console.error(`oci bench: CPU round ${round + 1}/${ROUNDS} done (load ${loadavg()[0]?.toFixed(1)})`);
    }

    const label: Record<Storage, string> = {
      s3: 'S3 (MinIO) direct',
      cache: 'S3 through the bucket cache',
      oci: 'OCI (distribution registry)',
    };
    console.log(
      `\n## Flipt v1.61.1 sidecar: object storage vs OCI, ${FLAGS.toLocaleString('en-US')} flags (documents of 100), ` +
        `idle, ${WINDOW} s x ${ROUNDS} rounds side by side, medians\n`,
    );
    const m = (c: Case, f: (s: Sample) => number) => median((samples.get(c) ?? []).map(f));
    console.log(
      table(
        [
          'storage',
          'poll',
          'polls made / scheduled',
          'CPU per pod, measured (millicores)',
          'CPU per poll (ms)',
          'CPU per pod polling on schedule (millicores)',
          'requests per poll',
        ],
        cases.map((c) => [
          label[c.storage],
          `${c.interval} s`,
          `${m(c, (s) => s.polls).toFixed(0)} / ${m(c, (s) => s.expected).toFixed(0)}`,
          m(c, (s) => s.millicores).toFixed(1),
          m(c, (s) => s.cpuPerPollMs).toFixed(1),
          (m(c, (s) => s.cpuPerPollMs) / c.interval).toFixed(1),
          m(c, (s) => s.requestsPerPoll).toFixed(1),
        ]),
      ),
    );
    console.log(
      `(load average ${loadavg()
        .map((x) => x.toFixed(1))
        .join(' ')} at the end: on a loaded machine a 1,000-flag rebuild can take longer than a 2 s ` +
        'interval, so fewer polls are made than scheduled; "on schedule" = CPU per poll / interval.)',
    );

    // Propagation at a 2 s poll: publish → the sidecar answers the new value.
    const propagation = new Map<Storage, number[]>([
      ['s3', []],
      ['cache', []],
      ['oci', []],
    ]);
    const publishMs: number[] = [];
    const push = createNotifier({
      urls: [new URL(`${caches.find((c) => c.prefix === 'cache-p2/')?.url}/-/refresh`)],
      token: async () => TOKEN,
      timeoutMs: 5_000,
      logger: { info: () => undefined, warn: (o, m) => console.error(m, o) },
    });
    for (let i = 0; i < CHANGES; i++) {
      const enabled = i % 2 === 0;
      for (const storage of ['s3', 'cache', 'oci'] as const) {
        const c = cases.find((x) => x.storage === storage && x.interval === 2) as Case;
        // A random phase against the poll, as a real change has.
        await sleep(Math.random() * 2_000);
        if (storage === 'oci') {
          // The bundle is built and pushed first; the clock starts once it is in the registry.
          publishMs.push(await publishBundle(tmp.path, c.name, state(FLAGS, enabled), ociHost));
        } else {
          await put(c.name, enabled);
          if (storage === 'cache') await push.notify(`s3://${BUCKET}/${c.name}features.yml`);
        }
        const started = performance.now();
        // Bounded; a change not seen in time is recorded as such (Infinity) and the run goes on.
        const arrived = await waitFor(
          `${storage}: enabled=${enabled}`,
          async () => (await enabledOf(c.sidecar.url)) === enabled,
          180_000,
        ).then(
          () => true,
          () => false,
        );
        propagation.get(storage)?.push(arrived ? performance.now() - started : Number.POSITIVE_INFINITY);
        // The next change starts from the state this one set.
        if (!arrived)
          await waitFor(
            `${storage} to settle`,
            async () => (await enabledOf(c.sidecar.url)) === enabled,
            180_000,
          );
        console.error(
          `oci bench: change ${i + 1}/${CHANGES} ${storage}: ${((performance.now() - started) / 1000).toFixed(2)} s`,
        );
      }
    }

    const fmt = (xs: number[]) =>
      `p50 ${(percentile(xs, 50) / 1000).toFixed(2)} s, p95 ${(percentile(xs, 95) / 1000).toFixed(2)} s, max ${(Math.max(...xs) / 1000).toFixed(2)} s`;
    console.log(
      `\n## Propagation at a 2 s poll (${CHANGES} changes each; from the publish done to the sidecar's answer)\n`,
    );
    console.log(`S3 direct (PUT done):                   ${fmt(propagation.get('s3') ?? [])}`);
    console.log(`through the cache (PUT + push done):    ${fmt(propagation.get('cache') ?? [])}`);
    console.log(`OCI (bundle pushed):                    ${fmt(propagation.get('oci') ?? [])}`);
    console.log(
      `OCI publish itself (flipt bundle build + push): p50 ${(median(publishMs) / 1000).toFixed(2)} s`,
    );
  } finally {
    for (const stop of stops.reverse()) await Promise.resolve(stop()).catch(() => undefined);
    await tmp.remove().catch(() => undefined);
  }
}
