// npm run bench:webhook — sustained load on POST /mutate with a realistic AdmissionReview (a
// 3-container pod from a ReplicaSet), and in the same run the same load on a bare Fastify HTTPS route
// that returns a constant "allowed" answer. Each server is its own process (its peak RSS is read from
// /proc); autocannon drives the load from this process. Rounds alternate so that machine noise hits
// both alike; the medians are reported, with the ratio to the baseline.
//
//   BENCH_DURATION=10 BENCH_CONNECTIONS=16 BENCH_ROUNDS=3 npm run bench:webhook
//   BENCH_PROFILE=DIR writes a CPU profile of the injector process into DIR.
//   BENCH_NODE_FLAGS sets the V8 flags of both servers (default: the production setting
//   --max-semi-space-size=4, a smaller young generation, see README "Resource use"; "" for Node's defaults).
import autocannon from 'autocannon';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { generateCertificates } from '../src/tls.ts';

const DURATION = Number(process.env.BENCH_DURATION ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const NODE_FLAGS = (process.env.BENCH_NODE_FLAGS ?? '--max-semi-space-size=4').split(' ').filter(Boolean);
const root = resolve(import.meta.dirname, '..');

const review = {
  apiVersion: 'admission.k8s.io/v1',
  kind: 'AdmissionReview',
  request: {
    uid: '705ab4f5-6393-11e8-b7cc-42010a800002',
    kind: { group: '', version: 'v1', kind: 'Pod' },
    resource: { group: '', version: 'v1', resource: 'pods' },
    namespace: 'shop',
    operation: 'CREATE',
    userInfo: {
      username: 'system:serviceaccount:kube-system:replicaset-controller',
      groups: ['system:serviceaccounts'],
    },
    dryRun: false,
    object: {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        generateName: 'checkout-7d9f8c6b5-',
        namespace: 'shop',
        labels: { app: 'checkout', tier: 'web', 'pod-template-hash': '7d9f8c6b5', 'flipt.io/inject': 'true' },
        annotations: {
          'flipt.io/poll-interval': '10s',
          'prometheus.io/scrape': 'true',
          'prometheus.io/port': '9100',
        },
        ownerReferences: [
          {
            apiVersion: 'apps/v1',
            kind: 'ReplicaSet',
            name: 'checkout-7d9f8c6b5',
            uid: 'b2f4c1d2-1',
            controller: true,
            blockOwnerDeletion: true,
          },
        ],
      },
      spec: {
        serviceAccountName: 'checkout',
        securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
        containers: ['app', 'worker', 'metrics'].map((name, i) => ({
          name,
          image: `ghcr.io/example/checkout-${name}:4.2.${i}`,
          ports:
            name === 'metrics'
              ? [{ name: 'metrics', containerPort: 9100 }]
              : [{ name: `${name}-http`, containerPort: 3000 + i }],
          env: Array.from({ length: 8 }, (_, j) => ({
            name: `${name.toUpperCase()}_SETTING_${j}`,
            value: `value-${j}`,
          })),
          resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '1', memory: '512Mi' } },
          volumeMounts: [
            { name: 'config', mountPath: '/etc/checkout' },
            {
              name: 'kube-api-access-abcde',
              mountPath: '/var/run/secrets/kubernetes.io/serviceaccount',
              readOnly: true,
            },
          ],
          readinessProbe: { httpGet: { path: '/ready', port: 3000 + i }, periodSeconds: 5 },
          securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
        })),
        volumes: [
          { name: 'config', configMap: { name: 'checkout' } },
          {
            name: 'kube-api-access-abcde',
            projected: { sources: [{ serviceAccountToken: { path: 'token', expirationSeconds: 3607 } }] },
          },
        ],
      },
    },
  },
};

interface Server {
  child: ChildProcess;
  url: string;
}

async function startServer(args: string[]): Promise<Server> {
  // Logs go to a pipe that is drained and discarded, as a log collector would.
  const child = spawn(process.execPath, [...NODE_FLAGS, ...args], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let output = '';
  const url = await new Promise<string>((resolveUrl, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /"url":"(https:\/\/127\.0\.0\.1:\d+)"/.exec(output);
      if (match) {
        // From here on the logs are only drained, never looked at.
        child.stdout?.off('data', onData);
        child.stdout?.resume();
        resolveUrl(match[1] as string);
      }
    };
    child.stdout?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code}`)));
  });
  return { child, url };
}

function peakRssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = Number(/VmHWM:\s+(\d+)\s+kB/.exec(status)?.[1] ?? 0);
  return kib / 1024;
}

interface Measurement {
  requestsPerSecond: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
  /** Server CPU time per request (user + system), in microseconds. */
  serverCpuUsPerRequest: number;
  /** Share of one core the load generator (this process) used. */
  clientCpuShare: number;
}

/** utime + stime of a process, in microseconds (from /proc; clock ticks are 100 Hz on Linux). */
function cpuMicros(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

async function load(url: string, ca: string, pid: number): Promise<Measurement> {
  // Warm up first, then measure server and client CPU over the measured run only.
  await autocannon({
    url: `${url}/mutate`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(review),
    connections: CONNECTIONS,
    duration: 2,
    tlsOptions: { ca },
  } as autocannon.Options);
  const serverBefore = cpuMicros(pid);
  const clientBefore = process.cpuUsage();
  const result = await autocannon({
    url: `${url}/mutate`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(review),
    connections: CONNECTIONS,
    duration: DURATION,
    tlsOptions: { ca },
  } as autocannon.Options);
  const client = process.cpuUsage(clientBefore);
  const serverCpu = cpuMicros(pid) - serverBefore;
  return {
    serverCpuUsPerRequest: serverCpu / Math.max(result.requests.total, 1),
    clientCpuShare: (client.user + client.system) / (result.duration * 1e6),
    requestsPerSecond: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
  };
}

const median = (values: number[]) =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;

// Both servers run compiled JavaScript, as the container image does (type stripping at start-up
// would add to the peak RSS of both). The build goes inside the repository to resolve node_modules.
const build = join(root, 'node_modules', '.cache', 'flipt-bench-build');
await rm(build, { recursive: true, force: true });
execFileSync(process.execPath, [
  join(root, 'node_modules', 'typescript', 'bin', 'tsc'),
  '-p',
  join(root, 'tsconfig.bench.json'),
  '--outDir',
  build,
]);

const dir = await mkdtemp(join(tmpdir(), 'flipt-bench-'));
const certs = await generateCertificates({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
await writeFile(join(dir, 'tls.crt'), certs.cert);
await writeFile(join(dir, 'tls.key'), certs.key);
const tls = [join(dir, 'tls.crt'), join(dir, 'tls.key')];

const targets = {
  baseline: await startServer([join(build, 'bench', 'baseline-server.js'), ...tls]),
  injector: await startServer([
    ...(process.env.BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : []),
    join(build, 'src', 'cli.js'),
    'serve',
    '--tls-cert',
    tls[0] as string,
    '--tls-key',
    tls[1] as string,
    '--host',
    '127.0.0.1',
    '--port',
    '0',
  ]),
};

const runs: Record<keyof typeof targets, Measurement[]> = { baseline: [], injector: [] };
console.log(
  `webhook benchmark: ${ROUNDS} rounds x ${DURATION}s, ${CONNECTIONS} connections, body ${JSON.stringify(review).length} bytes, node flags: ${NODE_FLAGS.join(' ') || '(defaults)'}`,
);
for (let round = 1; round <= ROUNDS; round++) {
  for (const name of round % 2 === 1
    ? (['baseline', 'injector'] as const)
    : (['injector', 'baseline'] as const)) {
    const m = await load(targets[name].url, certs.caCert, targets[name].child.pid as number);
    runs[name].push(m);
    console.log(
      `  round ${round} ${name.padEnd(8)} ${m.requestsPerSecond.toFixed(0).padStart(6)} req/s  p50 ${m.p50} ms  p99 ${m.p99} ms  server CPU ${m.serverCpuUsPerRequest.toFixed(0)} µs/req  client CPU ${(100 * m.clientCpuShare).toFixed(0)}%  errors ${m.errors}  non-2xx ${m.non2xx}`,
    );
  }
}

const summary = Object.fromEntries(
  (Object.keys(targets) as (keyof typeof targets)[]).map((name) => [
    name,
    {
      requestsPerSecond: median(runs[name].map((m) => m.requestsPerSecond)),
      p50: median(runs[name].map((m) => m.p50)),
      p99: median(runs[name].map((m) => m.p99)),
      cpuUs: median(runs[name].map((m) => m.serverCpuUsPerRequest)),
      peakRssMiB: peakRssMiB(targets[name].child.pid as number),
      errors: runs[name].reduce((n, m) => n + m.errors + m.non2xx, 0),
    },
  ]),
) as Record<
  keyof typeof targets,
  { requestsPerSecond: number; p50: number; p99: number; cpuUs: number; peakRssMiB: number; errors: number }
>;

for (const server of Object.values(targets)) server.child.kill('SIGTERM');
await rm(dir, { recursive: true, force: true });
await rm(build, { recursive: true, force: true });

const { baseline, injector } = summary;
const throughputRatio = injector.requestsPerSecond / baseline.requestsPerSecond;
const p99Ratio = injector.p99 / Math.max(baseline.p99, 1);
console.log('\n| server | req/s (median) | p50 ms | p99 ms | server CPU µs/req | peak RSS MiB |');
console.log('|---|---|---|---|---|---|');
for (const [name, s] of Object.entries(summary)) {
  console.log(
    `| ${name} | ${s.requestsPerSecond.toFixed(0)} | ${s.p50} | ${s.p99} | ${s.cpuUs.toFixed(0)} | ${s.peakRssMiB.toFixed(1)} |`,
  );
}
console.log(`\nthroughput ratio injector/baseline: ${throughputRatio.toFixed(2)} (target >= 0.80)`);
console.log(
  `p99 ratio injector/baseline: ${p99Ratio.toFixed(2)} (target <= 2.00; baseline p99 floored at 1 ms)`,
);
console.log(`injector peak RSS: ${injector.peakRssMiB.toFixed(1)} MiB (target < 150)`);
const failed = injector.errors + baseline.errors > 0;
if (failed)
  console.log(`errors or non-2xx answers: injector ${injector.errors}, baseline ${baseline.errors}`);
process.exitCode = failed ? 1 : 0;
