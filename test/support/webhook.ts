// A real webhook server for tests: HTTPS on a loopback port with a CA and serving certificate made by
// selfsigned, and a client that trusts only that CA.
import { request as httpsRequest, Agent } from 'node:https';
import type { InjectorConfig } from '../../src/core/config.ts';
import type { Pod } from '../../src/core/k8s.ts';
import { startInjectorServer, type InjectorServer } from '../../src/server.ts';
import { generateCertificates, type CertificateSet } from '../../src/tls.ts';

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
