// The bucket cache as the suites run it: `node cache/main.ts` (what the `flipt-bucket-cache` bin
// runs) as a child process on a loopback port, configured only by its FLIPT_CACHE_* environment,
// and a minimal stand-in for a Kubernetes Service in front of several replicas.
//
// The Service stand-in (named as such): a loopback TCP proxy that, like kube-proxy, balances
// connections, not requests: each new client connection goes to the next backend in round-robin
// order among the backends whose /readyz answers 200 (probed every 500 ms, as the Endpoints
// controller drops a pod whose readiness probe fails or that is gone). A connection already open to
// a backend that dies is reset, as it would be in a cluster. What it does not emulate: iptables'
// random choice (round-robin here, so tests spread load evenly) and the seconds an Endpoints update
// takes to reach every node.
import { createServer, connect, type Server, type Socket } from 'node:net';
import { mkdir } from 'node:fs/promises';
import { resolve, join } from 'node:path';
import {
  freePort,
  keepRequested,
  releaseDir,
  startProcess,
  tempDir,
  trackDir,
  type ManagedProcess,
} from '../../support/process.ts';

const repoRoot = resolve(import.meta.dirname, '..', '..', '..');
const mainTs = resolve(repoRoot, 'cache', 'main.ts');
const localNode = resolve(repoRoot, 'node_modules', '.bin', 'node');

export interface BucketCacheProcess {
  /** http://127.0.0.1:PORT: the S3 endpoint for sidecars, and /readyz, /metrics, /-/refresh. */
  readonly url: string;
  readonly port: number;
  readonly logFile: string;
  /** The process's pid (node itself). */
  readonly pid: number;
  tail(lines?: number): string;
  /** A metric's value summed over the series matching every label given. */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  refresh(token: string): Promise<{ status: number; body: unknown }>;
  /** SIGKILL: a crashed replica, no graceful shutdown. */
  kill(): Promise<void>;
  stop(): Promise<void>;
}

export interface BucketCacheOptions {
  /** The real bucket's endpoint (MinIO, or a counting proxy in front of it). */
  endpoint: string;
  bucket: string;
  prefix?: string;
  credentials: Record<string, string>;
  interval?: string;
  refreshToken?: string;
  /** Wait for /readyz 200 (default true); otherwise only for the port to answer. */
  waitReady?: boolean;
  extraEnv?: Record<string, string>;
}

export async function startBucketCache(opts: BucketCacheOptions): Promise<BucketCacheProcess> {
  const tmp = await tempDir('flipt-e2e-bucket-cache');
  trackDir(tmp.path);
  const home = join(tmp.path, 'home');
  await mkdir(home);
  const logFile = join(tmp.path, 'cache.log');
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const proc: ManagedProcess = await startProcess({
    name: 'flipt-bucket-cache',
    command: localNode,
    args: [mainTs],
    cwd: repoRoot,
    env: {
      PATH: process.env['PATH'] ?? '/usr/bin:/bin',
      HOME: home,
      AWS_EC2_METADATA_DISABLED: 'true',
      ...opts.credentials,
      FLIPT_CACHE_BUCKET: opts.bucket,
      FLIPT_CACHE_PREFIX: opts.prefix ?? '',
      FLIPT_CACHE_ENDPOINT: opts.endpoint,
      FLIPT_CACHE_LISTEN: `127.0.0.1:${port}`,
      FLIPT_CACHE_INTERVAL: opts.interval ?? '1s',
      FLIPT_CACHE_TIMEOUT: '3s',
      ...(opts.refreshToken ? { FLIPT_CACHE_REFRESH_TOKEN: opts.refreshToken } : {}),
      ...opts.extraEnv,
    },
    logFile,
    ready: async () => {
      const r = await fetch(`${url}/readyz`);
      return opts.waitReady === false ? r.status === 200 || r.status === 503 : r.ok;
    },
    readyTimeoutMs: 60_000,
  });
  let stopped = false;
  const finish = async (how: () => void | Promise<void>) => {
    if (stopped) return;
    stopped = true;
    await how();
    await proc.stop(5_000);
    releaseDir(tmp.path);
    if (keepRequested()) console.error(`e2e: kept bucket cache directory ${tmp.path}`);
    else await tmp.remove();
  };
  return {
    url,
    port,
    logFile,
    pid: proc.child.pid ?? -1,
    tail: (lines) => proc.tail(lines),
    async metric(name, labels = {}) {
      const text = await (await fetch(`${url}/metrics`)).text();
      let sum = 0;
      for (const line of text.split('\n')) {
        const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/.exec(line);
        if (!m || m[1] !== name) continue;
        const set = m[2] ?? '';
        if (Object.entries(labels).every(([k, v]) => set.includes(`${k}="${v}"`))) sum += Number(m[3]);
      }
      return sum;
    },
    async refresh(token) {
      const r = await fetch(`${url}/-/refresh`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}` },
      });
      return { status: r.status, body: await r.json() };
    },
    kill: () =>
      finish(async () => {
        const exited = new Promise<void>((done) => proc.child.once('exit', () => done()));
        proc.child.kill('SIGKILL');
        await exited;
      }),
    stop: () => finish(() => undefined),
  };
}

export interface ServiceStandIn {
  /** http://127.0.0.1:PORT */
  readonly url: string;
  /** Connections accepted, by backend URL. */
  readonly connections: Map<string, number>;
  /** Connections dropped because no backend was ready or connecting failed. */
  readonly dropped: number;
  close(): Promise<void>;
}

/** The Service stand-in described at the top of this file. */
export async function startServiceStandIn(
  backends: readonly { url: string; port: number }[],
): Promise<ServiceStandIn> {
  const ready = new Set<string>();
  const connections = new Map<string, number>(backends.map((b) => [b.url, 0]));
  let dropped = 0;
  let next = 0;
  const probe = async () => {
    await Promise.all(
      backends.map(async (b) => {
        try {
          const r = await fetch(`${b.url}/readyz`, { signal: AbortSignal.timeout(400) });
          if (r.ok) ready.add(b.url);
          else ready.delete(b.url);
        } catch {
          ready.delete(b.url);
        }
      }),
    );
  };
  await probe();
  const timer = setInterval(() => void probe(), 500);
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    sockets.add(client);
    client.once('close', () => sockets.delete(client));
    const live = backends.filter((b) => ready.has(b.url));
    if (live.length === 0) {
      dropped++;
      client.destroy();
      return;
    }
    const backend = live[next++ % live.length] as { url: string; port: number };
    connections.set(backend.url, (connections.get(backend.url) ?? 0) + 1);
    const upstream = connect({ host: '127.0.0.1', port: backend.port });
    sockets.add(upstream);
    upstream.once('close', () => sockets.delete(upstream));
    upstream.once('error', () => {
      dropped++;
      client.destroy();
    });
    client.once('error', () => upstream.destroy());
    // A reset on one side resets the other, as a dead pod's connections are.
    upstream.once('close', () => client.destroy());
    client.once('close', () => upstream.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    connections,
    get dropped() {
      return dropped;
    },
    close: () =>
      new Promise<void>((done) => {
        clearInterval(timer);
        for (const s of sockets) s.destroy();
        server.close(() => done());
      }),
  };
}
