// A real S3 server for the tests: MinIO (built by test/e2e/servers/build.sh) on a free loopback
// port with its data in a temporary directory, an admin S3 client for setting up and inspecting
// buckets, stop/start on the same port and data (to take the store down and bring it back), and a
// counting loopback HTTP proxy to put in front of it, so tests can count the requests that reach
// the server (MinIO itself keeps no per-test request count).
//
// FLIPT_E2E_KEEP=1 keeps the directory (data and minio.log) after the run.
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { createServer, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import {
  freePort,
  keepRequested,
  releaseDir,
  serverBinary,
  startProcess,
  tempDir,
  trackDir,
  type ManagedProcess,
  type TeardownHost,
} from './process.ts';

export interface MinioServer {
  /** Temporary directory with `data/` and `minio.log`. */
  readonly dir: string;
  /** http://127.0.0.1:PORT, the S3 API. */
  readonly endpoint: string;
  readonly port: number;
  readonly rootUser: string;
  readonly rootPassword: string;
  /** Environment variables that give the AWS default credential chain the root credentials. */
  credentialsEnv(): Record<string, string>;
  /** An S3 client with the root credentials (path-style, as MinIO needs). */
  client(endpoint?: string): S3Client;
  createBucket(name: string): Promise<void>;
  /** Stops the server; data and port stay reserved for start(). */
  stop(): Promise<void>;
  /** Starts it again on the same port with the same data. */
  start(): Promise<void>;
  readonly running: boolean;
  /** Last lines of the server's log. */
  tail(lines?: number): string;
  /** Stops the server and removes its directory (unless kept). */
  dispose(options?: { keep?: boolean }): Promise<void>;
}

export async function startMinio(options: { name?: string } = {}): Promise<MinioServer> {
  const binary = serverBinary('minio');
  const tmp = await tempDir(options.name ?? 'flipt-e2e-minio');
  trackDir(tmp.path);
  const dataDir = join(tmp.path, 'data');
  await mkdir(dataDir);
  const rootUser = 'e2e-admin';
  const rootPassword = randomBytes(12).toString('hex');
  let port = 0;
  let consolePort = 0;
  let proc: ManagedProcess | undefined;
  const clients: S3Client[] = [];

  const launch = async () => {
    proc = await startProcess({
      name: 'minio',
      command: binary,
      args: [
        'server',
        dataDir,
        '--address',
        `127.0.0.1:${port}`,
        '--console-address',
        `127.0.0.1:${consolePort}`,
        '--certs-dir',
        join(tmp.path, 'certs'),
        '--quiet',
      ],
      env: {
        PATH: process.env['PATH'] ?? '/usr/bin:/bin',
        HOME: tmp.path,
        MINIO_ROOT_USER: rootUser,
        MINIO_ROOT_PASSWORD: rootPassword,
        MINIO_UPDATE: 'off',
        MINIO_BROWSER: 'off',
      },
      logFile: join(tmp.path, 'minio.log'),
      ready: async () => (await fetch(`http://127.0.0.1:${port}/minio/health/live`)).ok,
      readyTimeoutMs: 60_000,
    });
  };

  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    do consolePort = await freePort();
    while (consolePort === port);
    try {
      await launch();
      break;
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (attempt >= 3 || !/address already in use|bind/i.test(message)) {
        trackDir(tmp.path, true);
        throw err;
      }
    }
  }

  const endpoint = `http://127.0.0.1:${port}`;
  const server: MinioServer = {
    dir: tmp.path,
    endpoint,
    port,
    rootUser,
    rootPassword,
    credentialsEnv: () => ({ AWS_ACCESS_KEY_ID: rootUser, AWS_SECRET_ACCESS_KEY: rootPassword }),
    client(target = endpoint) {
      const client = new S3Client({
        endpoint: target,
        region: 'us-east-1',
        forcePathStyle: true,
        credentials: { accessKeyId: rootUser, secretAccessKey: rootPassword },
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
      });
      clients.push(client);
      return client;
    },
    async createBucket(name) {
      await server.client().send(new CreateBucketCommand({ Bucket: name }));
    },
    async stop() {
      await proc?.stop(10_000);
      proc = undefined;
    },
    async start() {
      if (proc) return;
      await launch();
    },
    get running() {
      return proc !== undefined;
    },
    tail(lines) {
      return proc?.tail(lines) ?? '';
    },
    async dispose({ keep = false } = {}) {
      for (const c of clients) c.destroy();
      await server.stop();
      releaseDir(tmp.path);
      if (keep || keepRequested()) console.error(`e2e: kept MinIO directory ${tmp.path}`);
      else await tmp.remove();
    },
  };
  return server;
}

/** Starts MinIO for a tap test and disposes of it in teardown, keeping its directory on failure. */
export async function useMinio(t: TeardownHost, options?: { name?: string }): Promise<MinioServer> {
  const minio = await startMinio(options);
  t.teardown(() => minio.dispose({ keep: !t.passing() }));
  return minio;
}

export interface CountedRequest {
  method: string;
  /** Path and query as sent, e.g. `/bucket/features.yml`. */
  url: string;
  status: number | undefined;
}

export interface CountingProxy {
  /** http://127.0.0.1:PORT: use as the S3 endpoint instead of the server's. */
  readonly url: string;
  readonly requests: CountedRequest[];
  /** Requests with this method (and, when given, a URL starting with `prefix`). */
  count(method: string, prefix?: string): number;
  reset(): void;
  close(): Promise<void>;
}

/**
 * A counting loopback HTTP proxy: forwards every request unchanged (the Host header too, so S3
 * signatures stay valid) to `targetPort` and records method, URL and status. When the target is
 * down the client's connection is dropped, as the store itself would.
 */
export async function startCountingProxy(targetPort: number): Promise<CountingProxy> {
  const requests: CountedRequest[] = [];
  const server = createServer((req, res) => {
    const entry: CountedRequest = { method: req.method ?? 'GET', url: req.url ?? '/', status: undefined };
    requests.push(entry);
    const upstream = httpRequest(
      {
        host: '127.0.0.1',
        port: targetPort,
        method: req.method,
        path: req.url,
        headers: req.headers as IncomingHttpHeaders,
        agent: false,
      },
      (answer) => {
        entry.status = answer.statusCode;
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    requests,
    count: (method, prefix = '') =>
      requests.filter((r) => r.method === method && r.url.startsWith(prefix)).length,
    reset: () => void requests.splice(0),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
