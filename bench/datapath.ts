// The data path against real Flipt v1.61.1 processes (npm run bench:datapath):
//
//   latency   evaluation latency through the sidecar on localhost against the master (SQLite),
//             p50/p99 over BENCH_REQUESTS requests sequentially and with BENCH_CONCURRENCY in
//             flight, rounds alternating; and the master across a 10 ms round-trip link.
//             The link: this kernel has no sch_netem (`tc qdisc add … netem` answers "Specified
//             qdisc kind is unknown"; ip netns and veth work), so the delay is a STAND-IN: a
//             loopback TCP relay in this process that holds every chunk 5 ms in each direction.
//             It adds delay per chunk, not per packet, and no loss or jitter; its own relay cost
//             is measured by the same relay with 0 ms delay.
//   exporter  one full export by our exporter, `flipt export --all-namespaces --address <master>`
//             and `flipt export --all-namespaces` straight from the master's SQLite file (no writes
//             meanwhile), side by side in one run: wall time straight against the master,
//             requests to it (one more run each through a counting proxy, untimed), peak RSS
//             (/usr/bin/time); then our exporter in watch mode
//             with no changes: requests per tick.
//
//   DATAPATH_BENCH=latency,exporter (default both)
//   BENCH_FLAGS=100 (latency) BENCH_EXPORT_FLAGS=1000 (add 10000: ~2-3 minutes per round)
//   BENCH_REQUESTS=10000 BENCH_LINK_REQUESTS=2000 BENCH_CONCURRENCY=8 BENCH_ROUNDS=2
//   BENCH_EXPORT_ROUNDS=3 (1 for 10,000 flags is enough to see the ratios)
import { execFile } from 'node:child_process';
import { Agent, request } from 'node:http';
import { createConnection, createServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { startCountingProxy, startMinio, type MinioServer } from '../test/support/minio.ts';
import { tempDir } from '../test/support/process.ts';
import {
  envList,
  envNumber,
  exporterArgs,
  featuresYaml,
  fliptBinary,
  median,
  percentile,
  startExporterWatch,
  startSeededMaster,
  startSidecar,
  table,
} from './lab.ts';

const run = promisify(execFile);
const sections = new Set((process.env['DATAPATH_BENCH'] ?? 'latency,exporter').split(','));
const BUCKET = 'bench';

// ---------------------------------------------------------------------------------------------
// The delay relay (stand-in for netem, see above).

async function startDelayRelay(targetPort: number, oneWayMs: number) {
  const sockets = new Set<Socket>();
  const hold = (from: Socket, to: Socket) =>
    from.on('data', (chunk) => {
      // Same delay for every chunk: Node fires equal timers in order, so bytes stay in order.
      if (oneWayMs === 0) to.write(chunk);
      else setTimeout(() => to.writable && to.write(chunk), oneWayMs);
    });
  const server = createServer((client) => {
    const upstream = createConnection({ host: '127.0.0.1', port: targetPort });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.setNoDelay(true);
      s.on('error', () => undefined);
      s.on('close', () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    hold(client, upstream);
    hold(upstream, client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

// ---------------------------------------------------------------------------------------------
// Evaluation load: the same pseudo-random request sequence for every target.

function requestBodies(count: number, flags: number): string[] {
  let seed = 42;
  const next = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31);
  return Array.from({ length: count }, () => {
    let f = next() % flags;
    if (f % 3 === 2) f = (f + 1) % flags; // variant flags only (boolean ones are every third)
    return JSON.stringify({
      namespaceKey: 'default',
      flagKey: `flag-${String(f).padStart(5, '0')}`,
      entityId: `user-${next() % 100_000}`,
      context: { plan: `plan-${next() % 20}`, age: String(next() % 80) },
    });
  });
}

/** Sends every body to `url`/evaluate/v1/variant with `concurrency` in flight; latencies in ms. */
async function load(url: string, bodies: string[], concurrency: number): Promise<number[]> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const target = new URL('/evaluate/v1/variant', url);
  const latencies: number[] = new Array(bodies.length);
  let nextIndex = 0;
  const one = (body: string) =>
    new Promise<void>((resolve, reject) => {
      const req = request(
        target,
        {
          method: 'POST',
          agent,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        },
        (res) => {
          res.resume();
          res.on('end', () =>
            res.statusCode === 200 ? resolve() : reject(new Error(`${url} answered ${res.statusCode}`)),
          );
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  const worker = async () => {
    while (nextIndex < bodies.length) {
      const i = nextIndex++;
      const t0 = performance.now();
      await one(bodies[i] as string);
      latencies[i] = performance.now() - t0;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  agent.destroy();
  return latencies;
}

async function latency(minio: MinioServer): Promise<void> {
  const flags = envNumber('BENCH_FLAGS', 100);
  const requests = envNumber('BENCH_REQUESTS', 10_000);
  const linkRequests = envNumber('BENCH_LINK_REQUESTS', 2_000);
  const concurrency = envNumber('BENCH_CONCURRENCY', 8);
  const rounds = envNumber('BENCH_ROUNDS', 2);
  const master = await startSeededMaster(featuresYaml({ flags }));
  const stops: (() => Promise<void>)[] = [master.dispose];
  try {
    await run(
      process.execPath,
      exporterArgs({
        masterUrl: master.url,
        endpoint: minio.endpoint,
        bucket: BUCKET,
        prefix: 'latency',
        extra: ['--log-level', 'warn'],
      }),
      {
        env: {
          PATH: process.env['PATH'] ?? '',
          AWS_EC2_METADATA_DISABLED: 'true',
          ...minio.credentialsEnv(),
        },
      },
    );
    const sidecar = await startSidecar({
      endpoint: minio.endpoint,
      bucket: BUCKET,
      accessKeyId: minio.rootUser,
      secretAccessKey: minio.rootPassword,
      annotations: { 'flipt.io/log-level': 'warn', 'flipt.io/prefix': 'latency/' },
    });
    stops.push(sidecar.stop);
    const link = await startDelayRelay(master.port, 5);
    const relay0 = await startDelayRelay(master.port, 0);
    stops.push(link.close, relay0.close);
    console.log(
      `\n## Evaluation latency (${flags} flags, POST /evaluate/v1/variant, master and sidecar both at log level warn, ${rounds} rounds alternating)\n`,
    );
    const targets: [string, string, number][] = [
      ['sidecar, localhost', sidecar.url, requests],
      ['master, localhost', master.url, requests],
      ['master via relay, 0 ms (relay cost)', relay0.url, requests],
      ['master via 10 ms RTT link (stand-in)', link.url, linkRequests],
    ];
    const results = new Map<string, { seq: number[][]; conc: number[][] }>(
      targets.map(([n]) => [n, { seq: [], conc: [] }]),
    );
    for (let round = 0; round < rounds; round++) {
      for (const [name, url, count] of round % 2 === 0 ? targets : [...targets].reverse()) {
        const bodies = requestBodies(count, flags);
        await load(url, bodies.slice(0, 200), 1); // warm-up
        const r = results.get(name) as { seq: number[][]; conc: number[][] };
        r.seq.push(await load(url, bodies, 1));
        r.conc.push(await load(url, bodies, concurrency));
      }
    }
    const base = results.get('sidecar, localhost') as { seq: number[][]; conc: number[][] };
    const stat = (runs: number[][], p: number) => median(runs.map((l) => percentile(l, p)));
    const fmt = (ms: number) => `${ms.toFixed(ms < 10 ? 2 : 1)} ms`;
    console.log(
      table(
        [
          'target',
          'requests',
          'seq p50',
          'seq p99',
          `${concurrency} in flight p50`,
          `${concurrency} in flight p99`,
          'seq p50 vs sidecar',
        ],
        targets.map(([name, , count]) => {
          const r = results.get(name) as { seq: number[][]; conc: number[][] };
          return [
            name,
            String(count),
            fmt(stat(r.seq, 50)),
            fmt(stat(r.seq, 99)),
            fmt(stat(r.conc, 50)),
            fmt(stat(r.conc, 99)),
            `${(stat(r.seq, 50) / stat(base.seq, 50)).toFixed(1)}x`,
          ];
        }),
      ),
    );
    console.log(
      "(medians over rounds of each round's percentile; client in this process, same 2 shared cores)",
    );
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
  }
}

// ---------------------------------------------------------------------------------------------

interface Measured {
  wallS: number;
  rssMiB: number;
  requests: number;
}

/** Runs a command under /usr/bin/time: wall seconds and peak RSS of the command's process tree leader. */
async function timed(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ wallS: number; rssMiB: number }> {
  const { stderr } = await run('/usr/bin/time', ['-f', 'TIME %e %M', command, ...args], {
    env,
    maxBuffer: 256 * 1024 * 1024,
  });
  const match = /TIME ([\d.]+) (\d+)\s*$/.exec(stderr);
  if (!match) throw new Error(`no timing from ${command}: ${stderr.slice(-500)}`);
  return { wallS: Number(match[1]), rssMiB: Number(match[2]) / 1024 };
}

async function exporterCost(dir: string, minio: MinioServer): Promise<void> {
  const sizes = envList('BENCH_EXPORT_FLAGS', [1000]);
  const rounds = envNumber('BENCH_EXPORT_ROUNDS', 3);
  const env = {
    PATH: process.env['PATH'] ?? '',
    AWS_EC2_METADATA_DISABLED: 'true',
    ...minio.credentialsEnv(),
  };
  console.log(`\n## Exporter cost (one namespace, SQLite master, ${rounds} round(s) alternating, medians)\n`);
  const rows: string[][] = [];
  for (const flags of sizes) {
    const master = await startSeededMaster(featuresYaml({ flags }));
    const proxy = await startCountingProxy(master.port);
    try {
      // Timed straight against the master: a Node proxy in the path costs the tool that makes more
      // requests more (it inflated our ratio to 1.76x). Requests are counted in one extra run per
      // tool through the counting proxy, not timed.
      const kinds: [string, (address: string) => Promise<{ wallS: number; rssMiB: number }>][] = [
        [
          'our exporter',
          (address) =>
            timed(
              process.execPath,
              exporterArgs({
                masterUrl: address,
                endpoint: minio.endpoint,
                bucket: BUCKET,
                prefix: `export-${flags}`,
                extra: ['--log-level', 'warn', '--timeout', '120s', '--allow-shrink'],
              }),
              env,
            ),
        ],
        [
          'flipt export --address',
          (address) =>
            timed(
              fliptBinary(),
              ['export', '--all-namespaces', '--address', address, '-o', join(dir, `api-${flags}.yml`)],
              master.dbEnv,
            ),
        ],
        [
          'flipt export (direct DB)',
          () =>
            timed(
              fliptBinary(),
              ['export', '--all-namespaces', '-o', join(dir, `db-${flags}.yml`)],
              master.dbEnv,
            ),
        ],
      ];
      const requests = new Map<string, number>();
      for (const [kind, fn] of kinds) {
        proxy.reset();
        await fn(proxy.url);
        requests.set(kind, proxy.requests.length);
      }
      const results = new Map<string, Measured[]>(kinds.map(([k]) => [k, []]));
      for (let round = 0; round < rounds; round++) {
        for (const [kind, fn] of round % 2 === 0 ? kinds : [...kinds].reverse()) {
          const m = await fn(master.url);
          (results.get(kind) as Measured[]).push({ ...m, requests: requests.get(kind) ?? 0 });
          console.log(
            `  ${flags} flags, ${kind}: ${m.wallS.toFixed(2)} s, ${requests.get(kind)} requests, ${m.rssMiB.toFixed(0)} MB`,
          );
        }
      }
      const ours = median((results.get('our exporter') as Measured[]).map((m) => m.wallS));
      for (const [kind] of kinds) {
        const ms = results.get(kind) as Measured[];
        const wall = median(ms.map((m) => m.wallS));
        rows.push([
          String(flags),
          kind,
          `${wall.toFixed(2)} s (${Math.min(...ms.map((m) => m.wallS)).toFixed(2)}-${Math.max(...ms.map((m) => m.wallS)).toFixed(2)})`,
          `${(wall / ours).toFixed(2)}x`,
          String(median(ms.map((m) => m.requests))),
          `${median(ms.map((m) => m.rssMiB)).toFixed(0)} MB`,
        ]);
      }

      // Watch mode with nothing changing: what each tick costs the master.
      proxy.reset();
      const watch = await startExporterWatch({
        dir,
        masterUrl: proxy.url,
        endpoint: minio.endpoint,
        bucket: BUCKET,
        prefix: `watch-${flags}`,
        credentials: minio.credentialsEnv(),
        intervalS: 2,
        extra: ['--allow-shrink'],
      });
      const afterFirst = watch.lines().length;
      const firstRequests = proxy.requests.length;
      await sleep(12_000);
      const steady = watch
        .lines()
        .slice(afterFirst)
        .filter((l) => typeof l['result'] === 'string');
      const steadyRequests = proxy.requests.length - firstRequests;
      await watch.stop();
      const shapes = new Map<string, number>();
      for (const r of proxy.requests.slice(firstRequests)) {
        const shape = `${r.method} ${r.url.split('?')[0]?.replace(/\/flags\/[^/]+/, '/flags/{flag}')}`;
        shapes.set(shape, (shapes.get(shape) ?? 0) + 1);
      }
      console.log(
        `  ${flags} flags, watch mode, no changes: ${steady.length} ticks (${steady.map((l) => l['result']).join(', ')}), ` +
          `${steadyRequests} requests to the master = ${(steadyRequests / Math.max(steady.length, 1)).toFixed(1)} per tick`,
      );
      for (const [shape, count] of shapes)
        console.log(`    ${(count / Math.max(steady.length, 1)).toFixed(1)} per tick  ${shape}`);
    } finally {
      await proxy.close();
      await master.dispose();
    }
  }
  console.log(
    `\n${table(['flags', 'exporter', 'wall time (median, min-max)', 'vs ours', 'requests to the master', 'peak RSS'], rows)}`,
  );
  console.log('(peak RSS of the exporting process; our exporter is Node running the TypeScript source)');
}

// ---------------------------------------------------------------------------------------------

const dir = await tempDir('flipt-bench-datapath');
const minio = await startMinio({ name: 'flipt-bench-minio' });
try {
  await minio.createBucket(BUCKET);
  if (sections.has('latency')) await latency(minio);
  if (sections.has('exporter')) await exporterCost(dir.path, minio);
} finally {
  await minio.dispose();
  await dir.remove();
}
