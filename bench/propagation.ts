// Propagation (npm run bench:propagation): the time from a change on a real Flipt v1.61.1 master
// until an injected sidecar serves it, through our exporter in watch mode and a real MinIO.
//
// The chain: master (SQLite, seeded by `flipt import`) → exporter (--watch, tick every E s) → one
// S3 object → sidecar (the injector's env, poll every P s). Each change flips `enabled` of a
// boolean probe flag through the master's REST API; the clock starts when the master has answered
// the update and stops when the sidecar's /evaluate/v1/boolean answers the new value (probed every
// 25 ms). Between changes a random pause of 0 to max(E, P) s puts each change at a random phase
// of both loops, as real edits are.
//
// The model (how the seed design's cadence is computed, not measured): a change waits for the
// exporter's next tick, A ~ U(0, E), then for the sidecar's next poll after the upload,
// B ~ U(0, P), independent and uniform because the loops' phases are unrelated; plus a constant c
// for the work itself (export, upload, the sidecar's rebuild, probe granularity). c is taken from
// this run: mean(measured) - (E + P) / 2. The distribution of A + B + c has a closed form
// (a trapezoid); it is checked against the measurement at E = P = 2 s and then evaluated for the
// seed design's one-minute CronJob and one-minute poll, where a CronJob tick also pays a fresh
// process (measured here: one-shot export wall time minus a watch tick's export time), and the
// Kubernetes Job pod's scheduling and start-up, which this machine cannot measure (not included).
//
//   npm run bench:propagation
//   PROPAGATION_FLAGS=10000 PROPAGATION_CHANGES=20 npm run bench:propagation
//   PROPAGATION_INTERVAL=2 (exporter and sidecar, seconds) PROPAGATION_NAMESPACES=1
import { execFile } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { startMinio } from '../test/support/minio.ts';
import { tempDir } from '../test/support/process.ts';
import {
  envNumber,
  exporterArgs,
  featuresYaml,
  percentile,
  startExporterWatch,
  startSeededMaster,
  startSidecar,
  table,
} from './lab.ts';

const run = promisify(execFile);
const FLAGS = envNumber('PROPAGATION_FLAGS', 100);
const CHANGES = envNumber('PROPAGATION_CHANGES', 24);
const INTERVAL = envNumber('PROPAGATION_INTERVAL', 2);
const NAMESPACES = envNumber('PROPAGATION_NAMESPACES', 1);
const BUCKET = 'bench';
const PROBE = 'propagation-probe';

/** Quantile q of U(0,a) + U(0,b) (a trapezoid distribution). */
export function uniformSumQuantile(a: number, b: number, q: number): number {
  const [lo, hi] = a <= b ? [a, b] : [b, a];
  if (lo === 0) return q * hi;
  const first = lo / (2 * hi); // F at x = lo
  if (q <= first) return Math.sqrt(2 * lo * hi * q);
  if (q <= 1 - first) return (2 * hi * q + lo) / 2;
  return lo + hi - Math.sqrt(2 * lo * hi * (1 - q));
}

const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

async function main(): Promise<void> {
  const dir = await tempDir('flipt-bench-propagation');
  const minio = await startMinio({ name: 'flipt-bench-minio' });
  const stops: (() => Promise<void>)[] = [];
  try {
    await minio.createBucket(BUCKET);
    console.log(
      `Propagation: ${FLAGS} flags in ${NAMESPACES} namespace(s), exporter --watch --interval ${INTERVAL}s, sidecar poll ${INTERVAL}s, ${CHANGES} changes`,
    );
    const master = await startSeededMaster(featuresYaml({ flags: FLAGS, namespaces: NAMESPACES }));
    stops.push(master.dispose);
    const created = await fetch(`${master.url}/api/v1/namespaces/default/flags`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        key: PROBE,
        name: 'Propagation probe',
        type: 'BOOLEAN_FLAG_TYPE',
        enabled: false,
      }),
    });
    if (!created.ok) throw new Error(`creating the probe flag: ${created.status} ${await created.text()}`);

    // A one-shot export first: its wall time is what a CronJob tick's process pays.
    const oneShotStart = performance.now();
    await run(
      process.execPath,
      exporterArgs({
        masterUrl: master.url,
        endpoint: minio.endpoint,
        bucket: BUCKET,
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
    const oneShotMs = performance.now() - oneShotStart;

    const exporter = await startExporterWatch({
      dir: dir.path,
      masterUrl: master.url,
      endpoint: minio.endpoint,
      bucket: BUCKET,
      credentials: minio.credentialsEnv(),
      intervalS: INTERVAL,
    });
    stops.push(exporter.stop);
    const sidecar = await startSidecar({
      endpoint: minio.endpoint,
      bucket: BUCKET,
      accessKeyId: minio.rootUser,
      secretAccessKey: minio.rootPassword,
      annotations: { 'flipt.io/poll-interval': `${INTERVAL}s`, 'flipt.io/log-level': 'warn' },
    });
    stops.push(sidecar.stop);

    const served = async (): Promise<boolean | undefined> => {
      const answer = await fetch(`${sidecar.url}/evaluate/v1/boolean`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ namespaceKey: 'default', flagKey: PROBE, entityId: 'probe', context: {} }),
      });
      if (!answer.ok) return undefined; // not exported yet
      return ((await answer.json()) as { enabled: boolean }).enabled;
    };
    const waitServed = async (value: boolean, timeoutMs: number) => {
      const deadline = performance.now() + timeoutMs;
      while (performance.now() < deadline) {
        if ((await served()) === value) return performance.now();
        await sleep(25);
      }
      throw new Error(`the sidecar did not serve enabled=${value} within ${timeoutMs} ms`);
    };
    await waitServed(false, 120_000);

    const latencies: number[] = [];
    let enabled = false;
    for (let i = 0; i < CHANGES; i++) {
      await sleep(Math.random() * INTERVAL * 1000);
      enabled = !enabled;
      const answer = await fetch(`${master.url}/api/v1/namespaces/default/flags/${PROBE}`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ key: PROBE, name: 'Propagation probe', enabled }),
      });
      if (!answer.ok) throw new Error(`updating the probe flag: ${answer.status} ${await answer.text()}`);
      const t0 = performance.now();
      const seen = await waitServed(enabled, 120_000 + 10 * INTERVAL * 1000);
      latencies.push(seen - t0);
      process.stdout.write(`  change ${i + 1}: ${s(seen - t0)}\n`);
    }

    // The exporter's own account of each tick.
    const ticks = exporter.lines().filter((l) => l['result'] === 'uploaded' || l['result'] === 'unchanged');
    const uploaded = ticks.filter((l) => l['result'] === 'uploaded');
    const tickMs = percentile(
      uploaded.map((l) => Number(l['durationMs'])),
      50,
    );
    const requests = ticks.map((l) => Number(l['fliptRequests']));
    const unchangedRequests = ticks
      .filter((l) => l['result'] === 'unchanged')
      .map((l) => Number(l['fliptRequests']));

    const mean = latencies.reduce((a, b) => a + b, 0) / latencies.length;
    const E = INTERVAL * 1000;
    const P = INTERVAL * 1000;
    const c = mean - (E + P) / 2;
    const model = (e: number, p: number, constant: number, q: number) =>
      uniformSumQuantile(e, p, q) + constant;
    console.log('\nMeasured (exporter watch mode + sidecar poll, real processes):\n');
    console.log(
      table(
        ['cadence', 'p50', 'p95', 'max', 'how'],
        [
          [
            `exporter ${INTERVAL} s + poll ${INTERVAL} s`,
            s(percentile(latencies, 50)),
            s(percentile(latencies, 95)),
            s(Math.max(...latencies)),
            `measured, ${latencies.length} changes`,
          ],
          [
            `exporter ${INTERVAL} s + poll ${INTERVAL} s`,
            s(model(E, P, c, 0.5)),
            s(model(E, P, c, 0.95)),
            s(E + P + c),
            `model, c = ${s(c)}`,
          ],
          [
            'CronJob 1 min + poll 1 min (seed design)',
            s(model(60_000, 60_000, c + Math.max(0, oneShotMs - tickMs), 0.5)),
            s(model(60_000, 60_000, c + Math.max(0, oneShotMs - tickMs), 0.95)),
            s(120_000 + c + Math.max(0, oneShotMs - tickMs)),
            'model (+ process start; + Job pod start-up, not measured here)',
          ],
          [
            'exporter 2 s + poll 30 s',
            s(model(2_000, 30_000, c, 0.5)),
            s(model(2_000, 30_000, c, 0.95)),
            s(32_000 + c),
            'model',
          ],
        ],
      ),
    );
    console.log(
      `\nExporter: ${ticks.length} ticks (${uploaded.length} uploaded), a changed tick's export took ${s(tickMs)} (median); ` +
        `requests to the master per tick: median ${percentile(requests, 50)}, unchanged ticks ${unchangedRequests.length > 0 ? percentile(unchangedRequests, 50) : 'n/a'}; ` +
        `one-shot export (fresh process, as a CronJob tick) ${s(oneShotMs)}.`,
    );
    console.log(`Target p95 < 6 s: ${percentile(latencies, 95) < 6_000 ? 'met' : 'NOT met'}.`);
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    await minio.dispose();
    await dir.remove();
  }
}

await main();
