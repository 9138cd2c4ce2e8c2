// A real webhook server for tests: HTTPS on a loopback port with a CA and serving certificate made by
// selfsigned, and a client that trusts only that CA.
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { request as httpsRequest, Agent } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InjectorConfig } from '../../src/core/config.ts';
import type { Pod } from '../../src/core/k8s.ts';
import { startInjectorServer, type InjectorServer } from '../../src/server.ts';
import { generateCertificates, type CertificateSet } from '../../src/tls.ts';
import { spawnCli } from './cli.ts';

export interface TestWebhook {
  server: InjectorServer;
  certs: CertificateSet;
  agent: Agent;
  post(path: string, body: string | object): Promise<HttpAnswer>;
  get(path: string): Promise<HttpAnswer>;
  close(): Promise<void>;
}

export interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json(): unknown;
}

let certificates: Promise<CertificateSet> | undefined;

/** One CA and serving certificate per test process (EC key generation is cheap, but not free). */
export function testCertificates(): Promise<CertificateSet> {
  certificates ??= generateCertificates({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], days: 1 });
  return certificates;
}

export function httpsCall(
  url: string,
  options: { method: string; body?: string; agent: Agent; headers?: Record<string, string> },
): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      url,
      {
        method: options.method,
        agent: options.agent,
        headers: {
          ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
          ...options.headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text,
            json: () => JSON.parse(text) as unknown,
          });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

export async function startTestWebhook(config: InjectorConfig): Promise<TestWebhook> {
  const certs = await testCertificates();
  const server = await startInjectorServer({
    config,
    tls: { cert: certs.cert, key: certs.key },
    host: '127.0.0.1',
    port: 0,
    logLevel: false,
  });
  // Trust only our CA: the system trust store plays no part.
  const agent = new Agent({ ca: certs.caCert, keepAlive: true });
  return {
    server,
    certs,
    agent,
    post: (path, body) =>
      httpsCall(`${server.url}${path}`, {
        method: 'POST',
        agent,
        body: typeof body === 'string' ? body : JSON.stringify(body),
      }),
    get: (path) => httpsCall(`${server.url}${path}`, { method: 'GET', agent }),
    close: async () => {
      agent.destroy();
      await server.close();
    },
  };
}

let uidCounter = 0;

/** An AdmissionReview for creating `pod` in `namespace`, as the API server sends it. */
export function admissionReview(pod: Pod, namespace: string, extra: Record<string, unknown> = {}) {
  uidCounter += 1;
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: `00000000-0000-4000-8000-${String(uidCounter).padStart(12, '0')}`,
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      requestKind: { group: '', version: 'v1', kind: 'Pod' },
      requestResource: { group: '', version: 'v1', resource: 'pods' },
      ...(pod.metadata?.name ? { name: pod.metadata.name } : {}),
      namespace,
      operation: 'CREATE',
      userInfo: {
        username: 'system:serviceaccount:kube-system:replicaset-controller',
        groups: ['system:serviceaccounts'],
      },
      object: pod,
      oldObject: null,
      dryRun: false,
      options: { apiVersion: 'meta.k8s.io/v1', kind: 'CreateOptions' },
      ...extra,
    },
  };
}

export interface ServeProcess {
  child: ChildProcess;
  url: string;
  exited: Promise<number | null>;
  output(): string;
}

/** `flipt-injector serve` as a real child process on a loopback port. */
export async function spawnServe(
  options: { args?: string[]; env?: NodeJS.ProcessEnv } = {},
): Promise<ServeProcess> {
  const certs = await testCertificates();
  const dir = await mkdtemp(join(tmpdir(), 'flipt-serve-'));
  await writeFile(join(dir, 'tls.crt'), certs.cert);
  await writeFile(join(dir, 'tls.key'), certs.key);
  const tls = ['--tls-cert', join(dir, 'tls.crt'), '--tls-key', join(dir, 'tls.key')];
  const { child, exited, out, err } = spawnCli(
    ['serve', ...tls, '--port', '0', '--host', '127.0.0.1', ...(options.args ?? [])],
    options.env,
  );
  const output = () => out() + err();
  const deadline = Date.now() + 30_000;
  let url: string | undefined;
  while (!url && Date.now() < deadline && child.exitCode === null) {
    url = /"url":"(https:\/\/127\.0\.0\.1:\d+)"/.exec(out())?.[1];
    if (!url) await new Promise((r) => setTimeout(r, 50));
  }
  if (!url) {
    child.kill('SIGKILL');
    throw new Error(`flipt-injector serve did not start:\n${output()}`);
  }
  return { child, url, exited, output };
}
