// What one injected sidecar costs (npm run bench:sidecar): the real Flipt v1.61.1 started with the
// injector's own environment (bench/lab.ts), reading a real MinIO.
//
//   memory    RSS peak (VmHWM) and steady (median RSS after start-up) by flag count, with one
//             document per namespace or documents of N flags (the exporter's --flags-per-document),
//             with and without GOMEMLIMIT; poll 2 s so every sample window holds ~10 rebuilds.
//   cpu       idle CPU per pod (millicores = CPU seconds from /proc/PID/stat over a window) by poll
//             interval and flag count; the sidecars run side by side (CPU time is what each did,
//             whatever else runs; the window must hold several polls of the slowest interval).
//   loglevel  evaluations/s and log lines at info / warn / error, rounds alternating.
//   s3        exactly which requests one sidecar makes per poll, through a recording loopback proxy
//             in front of MinIO, and the fleet cost model built from them (bench/s3-cost.ts).
//   profile   where memory goes: Flipt's pprof (FLIPT_DIAGNOSTICS_PROFILING_ENABLED) read with
//             `go tool pprof -top` (needs Go on PATH), allocation space over a window of polls.
//
// Environment (defaults keep a run to a few minutes):
//   SIDECAR_BENCH=memory,cpu,loglevel,s3,profile    sections to run (default: all but profile)
//   BENCH_FLAGS=100,1000          flag counts (add 10000 for the big case; about 1-2 minutes more each)
//   BENCH_LAYOUTS=0,100           0 = one document per namespace, N = documents of N flags
//   BENCH_GOMEMLIMIT=off,injected GOMEMLIMIT in the memory section: off, what the injector derives
//                                 from the memory limit (BENCH_MEMORY_LIMIT sets flipt.io/memory-limit), or a value
//   BENCH_MEMORY_WINDOW=20        seconds sampled per memory case
//   BENCH_CPU_INTERVALS=2,30,60   poll intervals (s); BENCH_CPU_WINDOW=125 seconds measured
//   BENCH_CPU_FLAGS=100,1000      flag counts in the CPU section
//   BENCH_LOAD_DURATION=5 BENCH_ROUNDS=3 BENCH_CONNECTIONS=8   log-level load
import { markerYaml } from '../exporter/marker.ts';
import { DEFAULT_MARKER_NAMESPACE } from '../common/export-marker.ts';
import autocannon from 'autocannon';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import {
  startCountingProxy,
  startMinio,
  type CountingProxy,
  type MinioServer,
} from '../test/support/minio.ts';
import { tempDir } from '../test/support/process.ts';
import {
  envList,
  envNumber,
  featuresYaml,
  median,
  mib,
  procSample,
  startSidecar,
  table,
  type Sidecar,
} from './lab.ts';
import { costReport, type PollRequests } from './s3-cost.ts';

const run = promisify(execFile);
const BUCKET = 'bench';
const sections = new Set((process.env['SIDECAR_BENCH'] ?? 'memory,cpu,loglevel,s3').split(','));
const FLAGS = envList('BENCH_FLAGS', [100, 1000]);
const LAYOUTS = (process.env['BENCH_LAYOUTS'] ?? '0,100').split(',').map(Number);
const GOMEMLIMITS = (process.env['BENCH_GOMEMLIMIT'] ?? 'off,injected').split(',');

interface Lab {
  dir: string;
  minio: MinioServer;
  /** Every sidecar reads through this recording proxy, so polls are counted, not assumed. */
  proxy: CountingProxy;
  objects: Map<string, string>;
}

/** Polls a sidecar reading `prefix` has started so far (each begins by reading the index file). */
const pollsOf = (lab: Lab, prefix: string) => lab.proxy.count('GET', `/${BUCKET}/${prefix}.flipt.yml`);

const layoutName = (perDoc: number) => (perDoc === 0 ? 'one document' : `documents of ${perDoc}`);

/** Puts the synthetic state under its own prefix (once) and returns the prefix. */
async function stateAt(lab: Lab, flags: number, perDoc: number, tag = ''): Promise<string> {
  const prefix = `f${flags}-d${perDoc}${tag}/`;
  if (!lab.objects.has(prefix)) {
    const body = featuresYaml({ flags, ...(perDoc > 0 ? { flagsPerDocument: perDoc } : {}) });
    await lab.minio.client().send(
      new PutObjectCommand({
        Bucket: BUCKET,
        Key: `${prefix}features.yml`,
        // As the exporter writes it: the marker the injected startup probe waits for.
        Body: body + markerYaml(DEFAULT_MARKER_NAMESPACE),
      }),
    );
    lab.objects.set(prefix, body);
  }
  return prefix;
}

function sidecarFor(
  lab: Lab,
  prefix: string,
  annotations: Record<string, string>,
  extraEnv: Record<string, string> = {},
  endpoint = lab.proxy.url,
): Promise<Sidecar> {
  return startSidecar({
    endpoint,
    bucket: BUCKET,
    accessKeyId: lab.minio.rootUser,
    secretAccessKey: lab.minio.rootPassword,
    annotations: { 'flipt.io/prefix': prefix, ...annotations },
    extraEnv,
  });
}

// ---------------------------------------------------------------------------------------------

async function memory(lab: Lab): Promise<void> {
  const window = envNumber('BENCH_MEMORY_WINDOW', 20);
  console.log(`\n## Sidecar memory (poll 2 s, ${window} s sampled every 100 ms after start-up)\n`);
  const rows: string[][] = [];
  for (const flags of FLAGS) {
    for (const perDoc of LAYOUTS) {
      const prefix = await stateAt(lab, flags, perDoc);
      for (const limit of GOMEMLIMITS) {
        const started = Date.now();
        // 'off' goes through extraEnv, which replaces the injected value; 'injected' is the default.
        const extra: Record<string, string> = limit === 'injected' ? {} : { GOMEMLIMIT: limit };
        const annotations: Record<string, string> = { 'flipt.io/poll-interval': '2s' };
        if (process.env['BENCH_MEMORY_LIMIT'])
          annotations['flipt.io/memory-limit'] = process.env['BENCH_MEMORY_LIMIT'];
        const sidecar = await sidecarFor(lab, prefix, annotations, extra);
        const effective = sidecar.env['GOMEMLIMIT'] ?? 'unset';
        const startupMs = Date.now() - started;
        const anon: number[] = [];
        const file: number[] = [];
        const polls0 = pollsOf(lab, prefix);
        const end = Date.now() + window * 1000;
        while (Date.now() < end) {
          const s = procSample(sidecar.pid);
          if (s) {
            anon.push(s.anonBytes);
            file.push(s.fileBytes);
          }
          await sleep(100);
        }
        const hwm = procSample(sidecar.pid)?.hwmBytes ?? Number.NaN;
        const polls = pollsOf(lab, prefix) - polls0;
        await sidecar.stop();
        const row = [
          String(flags),
          layoutName(perDoc),
          limit === 'injected' ? `${effective} (injected)` : effective,
          `${(lab.objects.get(prefix)?.length ?? 0) / 1024 > 1024 ? `${((lab.objects.get(prefix)?.length ?? 0) / 1024 / 1024).toFixed(1)} MiB` : `${((lab.objects.get(prefix)?.length ?? 0) / 1024).toFixed(0)} KiB`}`,
          `${mib(Math.max(...anon))} MB`,
          `${mib(median(anon.slice(Math.floor(anon.length / 2))))} MB`,
          `${mib(Math.max(...file))} MB`,
          `${mib(hwm)} MB`,
          `${(startupMs / 1000).toFixed(1)} s`,
          String(polls),
        ];
        rows.push(row);
        console.log(`  ${row.join(', ')}`);
      }
    }
  }
  console.log(
    `\n${table(['flags', 'layout', 'GOMEMLIMIT', 'object', 'peak anon', 'steady anon', 'file-backed', 'peak RSS (VmHWM)', 'start-up', 'polls in window'], rows)}`,
  );
  console.log(
    '(MB = MiB. anon = RssAnon sampled every 100 ms (Go heap, stacks: what a memory limit must hold); ' +
      'file-backed = RssFile, the mapped binary (page cache, reclaimable); VmHWM = peak of both. ' +
      'Start-up includes process start and the first full read of the bucket.)',
  );
}

// ---------------------------------------------------------------------------------------------

async function cpu(lab: Lab): Promise<void> {
  const intervals = envList('BENCH_CPU_INTERVALS', [2, 30, 60]);
  const flagCounts = envList('BENCH_CPU_FLAGS', [100, 1000]);
  const perDocs = LAYOUTS;
  const window = envNumber('BENCH_CPU_WINDOW', 125);
  console.log(
    `\n## Idle CPU per sidecar (${window} s window, no evaluations; all cases side by side on this 2-core machine)\n`,
  );
  const cases: { flags: number; interval: number; perDoc: number; prefix: string; sidecar: Sidecar }[] = [];
  try {
    for (const flags of flagCounts) {
      for (const perDoc of perDocs) {
        for (const interval of intervals) {
          // One prefix per sidecar, so the proxy counts each one's polls.
          const prefix = await stateAt(lab, flags, perDoc, `-p${interval}`);
          const sidecar = await sidecarFor(lab, prefix, {
            'flipt.io/poll-interval': `${interval}s`,
            'flipt.io/log-level': 'warn',
          });
          cases.push({ flags, interval, perDoc, prefix, sidecar });
        }
      }
    }
    await sleep(3_000); // past the start-up read
    const before = cases.map((c) => ({
      cpu: procSample(c.sidecar.pid)?.cpuSeconds ?? Number.NaN,
      polls: pollsOf(lab, c.prefix),
    }));
    const t0 = performance.now();
    await sleep(window * 1000);
    const elapsed = (performance.now() - t0) / 1000;
    const after = cases.map((c) => ({ sample: procSample(c.sidecar.pid), polls: pollsOf(lab, c.prefix) }));
    const rows = cases.map((c, i) => {
      const b = before[i] as { cpu: number; polls: number };
      const a = after[i] as { sample: ReturnType<typeof procSample>; polls: number };
      const used = (a.sample?.cpuSeconds ?? Number.NaN) - b.cpu;
      const polls = a.polls - b.polls;
      // CPU per poll is robust to a loaded machine (a poll that runs late still costs the same);
      // millicores at the nominal interval follow from it. The measured rate is shown beside it.
      const perPoll = polls > 0 ? used / polls : Number.NaN;
      return [
        String(c.flags),
        layoutName(c.perDoc),
        `${c.interval} s`,
        String(polls),
        `${(perPoll * 1000).toFixed(0)} ms`,
        `${((perPoll / c.interval) * 1000).toFixed(1)} m`,
        `${((used / elapsed) * 1000).toFixed(1)} m`,
        `${mib(a.sample?.rssBytes ?? Number.NaN)} MB`,
      ];
    });
    console.log(
      table(
        [
          'flags',
          'layout',
          'poll',
          'polls seen',
          'CPU per poll',
          'millicores at this interval',
          'millicores measured',
          'RSS at end',
        ],
        rows,
      ),
    );
    console.log(
      '(millicores at this interval = CPU per poll / interval: what a pod pays when polls run on time; ' +
        '"measured" is lower when a loaded machine delays polls. Idle time between polls is included in both.)',
    );
  } finally {
    await Promise.all(cases.map((c) => c.sidecar.stop()));
  }
}

// ---------------------------------------------------------------------------------------------

async function logLevel(lab: Lab): Promise<void> {
  const duration = envNumber('BENCH_LOAD_DURATION', 5);
  const rounds = envNumber('BENCH_ROUNDS', 3);
  const connections = envNumber('BENCH_CONNECTIONS', 8);
  const levels = ['info', 'warn', 'error'];
  const prefix = await stateAt(lab, 100, 0);
  console.log(
    `\n## Sidecar log level (100 flags; ${duration} s of POST /evaluate/v1/variant, ${connections} connections, ${rounds} rounds alternating)\n`,
  );
  const results = new Map<string, { rps: number[]; lines: number[]; p99: number[] }>(
    levels.map((l) => [l, { rps: [], lines: [], p99: [] }]),
  );
  for (let round = 0; round < rounds; round++) {
    for (const level of round % 2 === 0 ? levels : [...levels].reverse()) {
      const sidecar = await sidecarFor(lab, prefix, { 'flipt.io/log-level': level });
      const lines = () => sidecar.logs().split('\n').length - 1;
      const body = JSON.stringify({
        namespaceKey: 'default',
        flagKey: 'flag-00001',
        entityId: 'user-1',
        context: { plan: 'plan-1', age: '30' },
      });
      const load = (seconds: number) =>
        autocannon({
          url: `${sidecar.url}/evaluate/v1/variant`,
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
          connections,
          duration: seconds,
        } as autocannon.Options);
      await load(1); // warm-up
      const before = lines();
      const result = await load(duration);
      await sleep(200);
      const logged = lines() - before;
      await sidecar.stop();
      if (result.non2xx + result.errors > 0)
        throw new Error(`log level ${level}: ${result.non2xx} non-2xx, ${result.errors} errors`);
      const r = results.get(level) as { rps: number[]; lines: number[]; p99: number[] };
      r.rps.push(result.requests.total / duration);
      r.lines.push(logged / duration);
      r.p99.push(result.latency.p99);
    }
  }
  const base = median(results.get('info')?.rps ?? []);
  console.log(
    table(
      ['level', 'evaluations/s (median)', 'vs info', 'log lines/s', 'p99 (ms)'],
      levels.map((level) => {
        const r = results.get(level) as { rps: number[]; lines: number[]; p99: number[] };
        return [
          level,
          median(r.rps).toFixed(0),
          `${(median(r.rps) / base).toFixed(2)}x`,
          median(r.lines).toFixed(0),
          String(median(r.p99)),
        ];
      }),
    ),
  );
}

// ---------------------------------------------------------------------------------------------

async function s3Requests(lab: Lab): Promise<void> {
  console.log('\n## S3 requests per poll (one sidecar, poll 2 s, recording proxy in front of MinIO)\n');
  const proxy = await startCountingProxy(lab.minio.port);
  let perPoll: PollRequests = { get: 0, list: 0 };
  try {
    for (const [flags, perDoc] of [
      [1000, 0],
      [1000, 100],
    ] as const) {
      const prefix = await stateAt(lab, flags, perDoc);
      const sidecar = await sidecarFor(lab, prefix, { 'flipt.io/poll-interval': '2s' }, {}, proxy.url);
      await sleep(1_000);
      proxy.reset();
      await sleep(20_500);
      const seen = [...proxy.requests];
      await sidecar.stop();
      // A poll starts with the index file read, so those mark the polls.
      const polls = seen.filter((r) => r.url.includes('.flipt.yml')).length;
      const shapes = new Map<string, number>();
      for (const r of seen) {
        // Query values vary (continuation tokens, none here); keep the parameter names.
        const [path, query = ''] = r.url.split('?');
        const names = query
          .split('&')
          .filter(Boolean)
          .map((p) => p.split('=')[0])
          .join('&');
        const shape = `${r.method} ${path}${names ? `?${names}` : ''} -> ${r.status ?? '?'}`;
        shapes.set(shape, (shapes.get(shape) ?? 0) + 1);
      }
      console.log(`${flags} flags, ${layoutName(perDoc)}: ${seen.length} requests in ${polls} polls`);
      for (const [shape, count] of shapes) console.log(`  ${(count / polls).toFixed(2)} per poll  ${shape}`);
      const lists = seen.filter((r) => /[?&]list-type=2/.test(r.url)).length;
      const gets = seen.filter((r) => r.method === 'GET' || r.method === 'HEAD').length - lists;
      perPoll = { get: gets / polls, list: lists / polls };
      const conditional = 'none of them conditional (the proxy sees no 304: each GET returns the object)';
      console.log(
        `  => ${perPoll.get.toFixed(2)} GET + ${perPoll.list.toFixed(2)} LIST per poll; ${conditional}\n`,
      );
    }
  } finally {
    await proxy.close();
  }
  console.log(costReport(perPoll));
}

// ---------------------------------------------------------------------------------------------

async function profile(lab: Lab): Promise<void> {
  const flags = FLAGS.at(-1) as number;
  console.log(`\n## Where the memory goes (${flags} flags, poll 2 s, pprof over 20 s)\n`);
  for (const perDoc of LAYOUTS) {
    const prefix = await stateAt(lab, flags, perDoc);
    const sidecar = await sidecarFor(
      lab,
      prefix,
      { 'flipt.io/poll-interval': '2s', 'flipt.io/log-level': 'warn' },
      { FLIPT_DIAGNOSTICS_PROFILING_ENABLED: 'true' },
    );
    const file = join(lab.dir, `allocs-${flags}-${perDoc}.pb.gz`);
    try {
      await sleep(20_000);
      const answer = await fetch(`${sidecar.url}/debug/pprof/allocs`);
      if (!answer.ok) throw new Error(`pprof answered ${answer.status}`);
      await writeFile(file, new Uint8Array(await answer.arrayBuffer()));
      const { stdout } = await run(
        'go',
        ['tool', 'pprof', '-top', '-cum', '-sample_index=alloc_space', '-nodecount=25', file],
        {
          maxBuffer: 16 * 1024 * 1024,
        },
      );
      console.log(
        `${layoutName(perDoc)}: cumulative allocation by function (whole run, start-up included)\n${stdout}`,
      );
    } finally {
      await sidecar.stop();
    }
  }
}

// ---------------------------------------------------------------------------------------------

const dir = await tempDir('flipt-bench-sidecar');
const minio = await startMinio({ name: 'flipt-bench-minio' });
const proxy = await startCountingProxy(minio.port);
try {
  await minio.createBucket(BUCKET);
  const lab: Lab = { dir: dir.path, minio, proxy, objects: new Map() };
  console.log(
    `Flipt v1.61.1 sidecar benchmark: the injector's env, MinIO on loopback, ${process.env['SIDECAR_BENCH'] ?? 'memory,cpu,loglevel,s3'}`,
  );
  if (sections.has('s3')) await s3Requests(lab);
  if (sections.has('memory')) await memory(lab);
  if (sections.has('loglevel')) await logLevel(lab);
  if (sections.has('cpu')) await cpu(lab);
  if (sections.has('profile')) await profile(lab);
} finally {
  await proxy.close();
  await minio.dispose();
  await dir.remove();
}
