// A real control plane for the end-to-end suites, modelled on controller-runtime's envtest
// (pkg/internal/testing/controlplane): etcd, then kube-apiserver, both on free loopback ports in a
// temporary directory, with a throw-away serving CA, service-account signing keys, a static admin
// token and a kubeconfig. No kubelet, scheduler or kube-controller-manager: pods stay Pending, which
// is all admission needs, and the harness creates what those controllers would (see kube.ts).
//
// Debugging: FLIPT_E2E_KEEP=1 keeps the directory (logs, audit log, kubeconfig, certificates) after
// the run; FLIPT_E2E_APISERVER_ARGS adds kube-apiserver flags (e.g. "--v=6"). See docs/e2e.md.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import {
  freePort,
  KEEP_ENV_VAR,
  keepRequested,
  releaseDir,
  serverBinary,
  startProcess,
  tempDir,
  trackDir,
  waitFor,
  type ManagedProcess,
  type TeardownHost,
} from '../../support/process.ts';
import { createCa, issueServingCert } from '../../../src/tls.ts';
import { ensureServiceAccount } from './kube.ts';

/** Environment variable that keeps the control plane's directory for inspection. */
export const keepEnvVar = KEEP_ENV_VAR;
/** Environment variable with extra kube-apiserver flags, separated by whitespace. */
export const apiServerArgsEnvVar = 'FLIPT_E2E_APISERVER_ARGS';

/** The Service CIDR; the first address is the `kubernetes` Service's ClusterIP. */
const serviceClusterIpRange = '10.0.0.0/24';

export interface ControlPlaneOptions {
  /** Extra kube-apiserver flags, after the defaults (a repeated flag's last value wins). */
  apiServerArgs?: string[];
  /** Prefix of the temporary directory's name. */
  name?: string;
}

/** One entry of the API server's audit log (only the fields the tests read). */
export interface AuditEvent {
  verb: string;
  stage: string;
  objectRef?: { resource?: string; namespace?: string; name?: string };
  responseStatus?: { code?: number };
  annotations?: Record<string, string>;
}

/** One call of a mutating webhook, from the audit annotations the API server writes. */
export interface WebhookInvocation {
  /** 0 for the first pass, 1 for a reinvocation (reinvocationPolicy IfNeeded). */
  round: number;
  index: number;
  configuration: string;
  webhook: string;
  mutated: boolean;
}

/**
 * The mutating webhook calls recorded for one request, in order: the API server annotates the
 * audit event with mutation.webhook.admission.k8s.io/round_R_index_I for every webhook it called.
 */
export function webhookInvocations(event: AuditEvent): WebhookInvocation[] {
  const calls: WebhookInvocation[] = [];
  for (const [key, value] of Object.entries(event.annotations ?? {})) {
    const match = /^mutation\.webhook\.admission\.k8s\.io\/round_(\d+)_index_(\d+)$/.exec(key);
    if (!match) continue;
    const parsed = JSON.parse(value) as { configuration: string; webhook: string; mutated: boolean };
    calls.push({ round: Number(match[1]), index: Number(match[2]), ...parsed });
  }
  return calls.sort((a, b) => a.round - b.round || a.index - b.index);
}

export interface ControlPlane {
  /** The temporary directory holding data, certificates, logs and the kubeconfig. */
  readonly dir: string;
  /** https://127.0.0.1:PORT */
  readonly url: string;
  readonly etcdUrl: string;
  /** PEM of the CA that signed the API server's serving certificate. */
  readonly caCert: string;
  /**
   * Files kube-controller-manager needs (controller-manager.ts): that CA (its root-ca-file, published
   * to every namespace as kube-root-ca.crt) and the service-account signing key.
   */
  readonly pkiFiles: { readonly caCert: string; readonly serviceAccountKey: string };
  /** A kubeconfig file with cluster-admin (system:masters) rights, for kubectl and helm. */
  readonly kubeconfigPath: string;
  /** The same credentials for @kubernetes/client-node. */
  readonly kubeConfig: KubeConfig;
  readonly logs: { readonly etcd: string; readonly apiServer: string; readonly audit: string };
  /** Audit events so far (pod requests at Metadata level: includes webhook mutation annotations). */
  auditEvents(): Promise<AuditEvent[]>;
  /**
   * The completed audit event of a pod creation, waiting for it (the log is written just after the
   * response is sent).
   */
  podCreateEvent(namespace: string, name: string): Promise<AuditEvent>;
  /**
   * Stops kube-apiserver, then etcd, and removes the directory unless `keep` or FLIPT_E2E_KEEP is
   * set. Safe to call more than once.
   */
  stop(options?: { keep?: boolean }): Promise<void>;
}

/** GET over HTTPS trusting `ca`; resolves status and body. */
function httpsGet(url: string, ca: string, token: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca, headers: { authorization: `Bearer ${token}` }, timeout: 5_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/**
 * Starts a process on freshly chosen ports, choosing again when a port was taken in between
 * (freePort only says a port *was* free).
 */
async function startOnFreePorts(
  portCount: number,
  start: (ports: number[]) => Promise<ManagedProcess>,
): Promise<ManagedProcess> {
  for (let attempt = 1; ; attempt++) {
    const ports: number[] = [];
    while (ports.length < portCount) {
      const port = await freePort();
      if (!ports.includes(port)) ports.push(port);
    }
    try {
      return await start(ports);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (attempt >= 3 || !/address already in use/i.test(message)) throw err;
    }
  }
}

const auditPolicy = {
  apiVersion: 'audit.k8s.io/v1',
  kind: 'Policy',
  omitStages: ['RequestReceived'],
  rules: [
    // Metadata level carries the mutation.webhook.admission.k8s.io/round_N_index_M annotations, which
    // show which webhooks ran in which (re)invocation round.
    { level: 'Metadata', resources: [{ group: '', resources: ['pods'] }], verbs: ['create'] },
    { level: 'None' },
  ],
};

/** Starts etcd and kube-apiserver and waits until the API server is ready. */
export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const etcdBin = serverBinary('etcd');
  const apiServerBin = serverBinary('kube-apiserver');
  const tmp = await tempDir(options.name ?? 'flipt-e2e-apiserver');
  const dir = tmp.path;
  trackDir(dir);
  const logs = {
    etcd: join(dir, 'etcd.log'),
    apiServer: join(dir, 'kube-apiserver.log'),
    audit: join(dir, 'audit.log'),
  };
  let etcd: ManagedProcess | undefined;
  let apiServer: ManagedProcess | undefined;
  let stopped = false;

  const stop = async ({ keep = false }: { keep?: boolean } = {}) => {
    if (stopped) return;
    stopped = true;
    // The API server first: it would otherwise log etcd connection errors while shutting down.
    await apiServer?.stop(10_000);
    await etcd?.stop(5_000);
    releaseDir(dir);
    if (keep || keepRequested()) console.error(`e2e: kept control plane directory ${dir}`);
    else await tmp.remove();
  };

  try {
    // etcd: one member on loopback; unsafe-no-fsync because the data is thrown away anyway.
    const etcdDataDir = join(dir, 'etcd-data');
    let etcdUrl = '';
    etcd = await startOnFreePorts(2, async ([clientPort, peerPort]) => {
      etcdUrl = `http://127.0.0.1:${clientPort}`;
      const peerUrl = `http://127.0.0.1:${peerPort}`;
      return startProcess({
        name: 'etcd',
        command: etcdBin,
        args: [
          '--name=e2e',
          `--data-dir=${etcdDataDir}`,
          `--listen-client-urls=${etcdUrl}`,
          `--advertise-client-urls=${etcdUrl}`,
          `--listen-peer-urls=${peerUrl}`,
          `--initial-advertise-peer-urls=${peerUrl}`,
          `--initial-cluster=e2e=${peerUrl}`,
          '--unsafe-no-fsync=true',
          '--log-level=warn',
        ],
        logFile: logs.etcd,
        ready: async () => (await fetch(`${etcdUrl}/health`)).ok,
        readyTimeoutMs: 30_000,
      });
    });

    // Credentials: serving CA and certificate, service-account signing keys, a static admin token.
    const pki = join(dir, 'pki');
    await mkdir(pki);
    const ca = await createCa({ commonName: 'flipt-e2e-apiserver-ca', days: 1 });
    const serving = await issueServingCert(ca, {
      commonName: 'kube-apiserver',
      dnsNames: ['localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc'],
      ipAddresses: ['127.0.0.1', '10.0.0.1'],
    });
    const saKeys = generateKeyPairSync('rsa', {
      modulusLength: 2048,
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    });
    const token = randomBytes(24).toString('hex');
    const files = {
      ca: join(pki, 'ca.crt'),
      servingCert: join(pki, 'apiserver.crt'),
      servingKey: join(pki, 'apiserver.key'),
      saPub: join(pki, 'sa.pub'),
      saKey: join(pki, 'sa.key'),
      tokens: join(pki, 'tokens.csv'),
      auditPolicy: join(dir, 'audit-policy.yaml'),
    };
    await Promise.all([
      writeFile(files.ca, ca.cert),
      writeFile(files.servingCert, serving.cert),
      writeFile(files.servingKey, serving.key, { mode: 0o600 }),
      writeFile(files.saPub, saKeys.publicKey),
      writeFile(files.saKey, saKeys.privateKey, { mode: 0o600 }),
      // token,user,uid,"groups": system:masters is cluster-admin without any RBAC binding.
      writeFile(files.tokens, `${token},e2e-admin,e2e-admin,"system:masters"\n`, { mode: 0o600 }),
      writeFile(files.auditPolicy, stringify(auditPolicy)),
    ]);

    let url = '';
    const extraArgs = (process.env[apiServerArgsEnvVar] ?? '').split(/\s+/).filter(Boolean);
    apiServer = await startOnFreePorts(1, async ([port]) => {
      url = `https://127.0.0.1:${port}`;
      return startProcess({
        name: 'kube-apiserver',
        command: apiServerBin,
        args: [
          `--etcd-servers=${etcdUrl}`,
          `--bind-address=127.0.0.1`,
          `--advertise-address=127.0.0.1`,
          `--secure-port=${port}`,
          `--cert-dir=${pki}`,
          `--tls-cert-file=${files.servingCert}`,
          `--tls-private-key-file=${files.servingKey}`,
          `--token-auth-file=${files.tokens}`,
          '--authorization-mode=RBAC',
          `--service-account-issuer=https://kubernetes.default.svc.cluster.local`,
          `--service-account-key-file=${files.saPub}`,
          `--service-account-signing-key-file=${files.saKey}`,
          `--service-cluster-ip-range=${serviceClusterIpRange}`,
          // Test pods may ask for privileges (golden cases); admission, not a kubelet, judges them.
          '--allow-privileged=true',
          // Nothing serves the `kubernetes` Service's endpoints here; don't keep rewriting them.
          '--endpoint-reconciler-type=none',
          '--enable-priority-and-fairness=false',
          '--profiling=false',
          `--audit-policy-file=${files.auditPolicy}`,
          `--audit-log-path=${logs.audit}`,
          '--audit-log-format=json',
          '--v=1',
          ...(options.apiServerArgs ?? []),
          ...extraArgs,
        ],
        logFile: logs.apiServer,
        ready: async () => {
          const res = await httpsGet(`${url}/readyz`, ca.cert, token);
          return res.status === 200 && res.body.trim() === 'ok';
        },
        // A cold start on a busy 2-core machine (RBAC bootstrap, CRD/aggregator hooks) takes a while.
        readyTimeoutMs: 120_000,
      });
    });

    const kubeconfigPath = join(dir, 'kubeconfig');
    await writeFile(
      kubeconfigPath,
      stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [
          {
            name: 'e2e',
            cluster: { server: url, 'certificate-authority-data': Buffer.from(ca.cert).toString('base64') },
          },
        ],
        users: [{ name: 'e2e-admin', user: { token } }],
        contexts: [{ name: 'e2e', context: { cluster: 'e2e', user: 'e2e-admin' } }],
        'current-context': 'e2e',
      }),
      { mode: 0o600 },
    );
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(kubeconfigPath);

    // What kube-controller-manager would do for the namespaces the API server creates itself.
    for (const namespace of ['default', 'kube-system']) {
      await waitFor(
        `namespace ${namespace}`,
        async () => (await httpsGet(`${url}/api/v1/namespaces/${namespace}`, ca.cert, token)).status === 200,
        { timeoutMs: 30_000 },
      );
      await ensureServiceAccount(kubeConfig, namespace, 'default', ca.cert);
    }

    const auditEvents = async (): Promise<AuditEvent[]> => {
      const text = await readFile(logs.audit, 'utf8').catch(() => '');
      const events: AuditEvent[] = [];
      for (const line of text.split('\n')) {
        // The last line may still be being written.
        try {
          if (line.trim() !== '') events.push(JSON.parse(line) as AuditEvent);
        } catch {
          break;
        }
      }
      return events;
    };

    return {
      dir,
      url,
      etcdUrl,
      caCert: ca.cert,
      pkiFiles: { caCert: files.ca, serviceAccountKey: files.saKey },
      kubeconfigPath,
      kubeConfig,
      logs,
      auditEvents,
      async podCreateEvent(namespace, name) {
        let found: AuditEvent | undefined;
        await waitFor(
          `the audit event of creating pod ${namespace}/${name}`,
          async () => {
            found = (await auditEvents()).find(
              (e) =>
                e.verb === 'create' &&
                e.stage === 'ResponseComplete' &&
                e.objectRef?.resource === 'pods' &&
                e.objectRef.namespace === namespace &&
                e.objectRef.name === name,
            );
            return found !== undefined;
          },
          { timeoutMs: 10_000, intervalMs: 100 },
        );
        return found as AuditEvent;
      },
      stop,
    };
  } catch (err) {
    // Keep the logs of a start that failed: the error message only carries their last lines.
    await stop({ keep: true });
    throw err;
  }
}

/**
 * Starts a control plane for a tap test (or the file's top-level `t`) and stops it in teardown,
 * keeping its directory when the test failed.
 */
export async function useControlPlane(t: TeardownHost, options?: ControlPlaneOptions): Promise<ControlPlane> {
  const plane = await startControlPlane(options);
  t.teardown(() => plane.stop({ keep: !t.passing() }));
  return plane;
}
