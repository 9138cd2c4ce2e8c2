// Benchmark of one export (npm run bench:exporter): export time and peak memory for 1,000, 5,000
// and 10,000 flags.
//
// The master is a replaying loopback server in this process (test/exporter/flipt-replay.ts:
// synthetic data of realistic shape in Flipt v1.61.1's API format, paged like Flipt at its maximum
// page size of 100), the bucket a real MinIO when test/e2e/servers/build.sh has built it (else an
// in-memory store, and the output says so). Each export runs in a fresh child process running the
// exporter's own runExport(), so its memory is measured alone: peak RSS from the kernel
// (getrusage maxrss) and peak V8 heap sampled every 5 ms, each also as growth over the child's
// baseline after start-up.
//
// This measures the exporter's own cost (CPU, memory) with the master's cost taken out. Against a
// real Flipt v1.61.1 master, side by side with `flipt export --address` and the direct-database
// export, see `npm run bench:datapath` (exporter part).
//
//   node bench/exporter.ts [--sizes 1000,5000,10000] [--runs 3] [--concurrency 8] [--no-minio]
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runExport } from '../exporter/export.ts';
import { createFliptClient } from '../exporter/flipt-client.ts';
import { createS3Store, type ObjectStore } from '../exporter/s3.ts';
import { createDocumentValidator } from '../exporter/schema.ts';
import { startReplayMaster, syntheticData } from '../test/exporter/flipt-replay.ts';
import { startMinio, type MinioServer } from '../test/support/minio.ts';
import { serverBinDir } from '../test/support/process.ts';

interface ChildResult {
  status: string;
  message?: string;
  flags: number;
  namespaces: number;
  bytes: number;
  requests: number;
  durationMs: number;
  baselineRss: number;
  peakRss: number;
  baselineHeap: number;
  peakHeap: number;
}

const NAMESPACES = 4;
const MiB = 1024 * 1024;

/** The measured side: one export in this (child) process, printed as one JSON line. */
async function child(): Promise<void> {
  const { values } = parseArgs({
    options: {
      child: { type: 'boolean' },
      url: { type: 'string' },
      endpoint: { type: 'string' },
      bucket: { type: 'string' },
      key: { type: 'string' },
      concurrency: { type: 'string' },
    },
  });
  const concurrency = Number(values.concurrency ?? '8');
  const flipt = createFliptClient({
    baseUrl: values.url as string,
    timeoutMs: 30_000,
    retries: 2,
    maxSockets: concurrency + 2,
  });
  let store: ObjectStore;
  if (values.endpoint) {
    store = createS3Store({
      bucket: values.bucket as string,
      key: values.key as string,
      endpoint: values.endpoint,
      pathStyle: true,
      timeoutMs: 30_000,
      retries: 3,
      baseMs: 250,
      maxMs: 2_000,
    });
  } else {
    let object: Uint8Array | undefined;
    store = {
      location: 'memory',
      head: async () => undefined,
      get: async () => object,
      put: async (body) => {
        object = Uint8Array.from(body);
      },
      destroy: () => undefined,
    };
  }
  const validate = createDocumentValidator();
  // Baseline after start-up (modules loaded, schema compiled): what an idle exporter holds.
  const baseline = process.memoryUsage();
  let peakHeap = baseline.heapUsed;
  const sampler = setInterval(() => {
    peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed);
  }, 5);
  const outcome = await runExport(
    { flipt, store, validate },
    { concurrency, flagsPerDocument: 100, shrink: { allowShrink: true, maxShrink: 1 } },
  );
  clearInterval(sampler);
  peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed);
  store.destroy();
  flipt.close();
  const result: ChildResult = {
    status: outcome.status,
    ...(outcome.status === 'failed' ? { message: outcome.message } : {}),
    flags: outcome.status === 'failed' ? 0 : outcome.flags,
    namespaces: outcome.status === 'failed' ? 0 : outcome.namespaces,
    bytes: outcome.status === 'failed' ? 0 : outcome.bytes,
    requests: outcome.fliptRequests,
    durationMs: outcome.durationMs,
    baselineRss: baseline.rss,
    peakRss: process.resourceUsage().maxRSS * 1024,
    baselineHeap: baseline.heapUsed,
    peakHeap,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

function runChild(args: string[], env: Record<string, string>): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [import.meta.filename, '--child', ...args], {
      env: { PATH: process.env['PATH'] ?? '', AWS_EC2_METADATA_DISABLED: 'true', ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    proc.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    proc.once('close', (code) => {
      try {
        if (code !== 0) throw new Error(`benchmark child exited with ${code}`);
        resolve(JSON.parse(out.trim().split('\n').at(-1) as string) as ChildResult);
      } catch (err) {
        reject(err);
      }
    });
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const mib = (bytes: number) => (bytes / MiB).toFixed(1);

async function parent(): Promise<void> {
  const { values } = parseArgs({
    options: {
      sizes: { type: 'string', default: '1000,5000,10000' },
      runs: { type: 'string', default: '3' },
      concurrency: { type: 'string', default: '8' },
      minio: { type: 'boolean', default: true },
    },
    allowNegative: true,
  });
  const sizes = (values.sizes as string).split(',').map(Number);
  const runs = Number(values.runs);
  const concurrency = values.concurrency as string;

  let minio: MinioServer | undefined;
  const minioBuilt = existsSync(join(serverBinDir(), 'minio'));
  if (values.minio && minioBuilt) {
    minio = await startMinio({ name: 'flipt-bench-minio' });
    await minio.createBucket('bench');
  }
  const target = minio
    ? `MinIO at ${minio.endpoint} (one PUT per export)`
    : 'an in-memory store (MinIO not used)';
  console.log(
    `flipt-exporter benchmark: Node ${process.version}, ${runs} runs per size, concurrency ${concurrency}`,
  );
  console.log(
    `master: replaying loopback server (synthetic Flipt v1.61.1 API answers, pages of 100); bucket: ${target}`,
  );
  console.log('each export runs in a fresh process; times and memory are of that process only\n');

  const rows: { size: number; results: ChildResult[] }[] = [];
  try {
    for (const size of sizes) {
      const master = await startReplayMaster({ data: syntheticData(size, NAMESPACES) });
      const results: ChildResult[] = [];
      for (let run = 0; run < runs; run++) {
        const args = ['--url', master.url, '--concurrency', concurrency];
        if (minio)
          args.push(
            '--endpoint',
            minio.endpoint,
            '--bucket',
            'bench',
            '--key',
            `run-${size}-${run}/features.yml`,
          );
        const result = await runChild(args, minio ? minio.credentialsEnv() : {});
        if (result.status !== 'uploaded')
          throw new Error(`export of ${size} flags: ${result.status} ${result.message ?? ''}`);
        results.push(result);
      }
      await master.close();
      rows.push({ size, results });
    }
  } finally {
    await minio?.dispose();
  }

  const header = [
    'flags',
    'requests',
    'object',
    'export time (median, min-max)',
    'peak RSS',
    'RSS growth',
    'peak heap',
    'heap growth',
  ];
  const lines = rows.map(({ size, results }) => {
    const times = results.map((r) => r.durationMs);
    const r0 = results[0] as ChildResult;
    return [
      String(size),
      String(r0.requests),
      `${mib(r0.bytes)} MiB`,
      `${(median(times) / 1000).toFixed(2)} s (${(Math.min(...times) / 1000).toFixed(2)}-${(Math.max(...times) / 1000).toFixed(2)})`,
      `${mib(median(results.map((r) => r.peakRss)))} MiB`,
      `${mib(median(results.map((r) => r.peakRss - r.baselineRss)))} MiB`,
      `${mib(median(results.map((r) => r.peakHeap)))} MiB`,
      `${mib(median(results.map((r) => r.peakHeap - r.baselineHeap)))} MiB`,
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] as string).length)));
  const fmt = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] as number)).join(' | ')} |`;
  console.log(fmt(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const l of lines) console.log(fmt(l));

  if (rows.length >= 2) {
    // Least-squares line through (flags, growth): linear memory means the points sit on it.
    const fit = (value: (r: ChildResult) => number) => {
      const points = rows.map((r) => [r.size, median(r.results.map(value))] as const);
      const n = points.length;
      const mx = points.reduce((a, [x]) => a + x, 0) / n;
      const my = points.reduce((a, [, y]) => a + y, 0) / n;
      const slope =
        points.reduce((a, [x, y]) => a + (x - mx) * (y - my), 0) /
        points.reduce((a, [x]) => a + (x - mx) ** 2, 0);
      const intercept = my - slope * mx;
      const worst = Math.max(...points.map(([x, y]) => Math.abs(y - (intercept + slope * x)) / y));
      return (
        `${(slope / 1024).toFixed(1)} KiB per flag + ${mib(intercept)} MiB` +
        (n > 2 ? `, points within ${(worst * 100).toFixed(0)}% of the line` : '')
      );
    };
    const first = rows[0] as { size: number; results: ChildResult[] };
    const last = rows.at(-1) as { size: number; results: ChildResult[] };
    const bytesRatio = (last.results[0] as ChildResult).bytes / (first.results[0] as ChildResult).bytes;
    console.log(
      `\nmemory against size (${last.size / first.size}x the flags, ${bytesRatio.toFixed(1)}x the object):\n` +
        `  heap growth ~ ${fit((r) => r.peakHeap - r.baselineHeap)}\n` +
        `  RSS growth  ~ ${fit((r) => r.peakRss - r.baselineRss)}`,
    );
  }
  console.log(
    '\nThe master here is a replay; against a real Flipt v1.61.1 master and `flipt export`, run npm run bench:datapath.',
  );
}

if (process.argv.includes('--child')) await child();
else await parent();
