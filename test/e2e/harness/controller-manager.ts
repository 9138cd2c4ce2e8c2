// The real kube-controller-manager (built by test/e2e/servers/build.sh from the same k8s.io/kubernetes
// version as kube-apiserver) against a harness control plane, so Deployments, ReplicaSets, Jobs,
// CronJobs, EndpointSlices, ServiceAccounts, namespace deletion and garbage collection are the real
// controllers' work. With the kubelet stand-in (kubelet-standin.ts) this is a small cluster:
// `useCluster(t)` starts all three and stops them in reverse order.
//
// Debugging: FLIPT_E2E_CONTROLLER_MANAGER_ARGS adds flags (e.g. "--v=4"); the log is
// kube-controller-manager.log in the control plane's directory (kept for failed tests).
import { request } from 'node:https';
import { join } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { generateCertificates } from '../../../src/tls.ts';
import {
  freePort,
  serverBinary,
  startProcess,
  waitFor,
  type ManagedProcess,
  type TeardownHost,
} from '../../support/process.ts';
import { useControlPlane, type ControlPlane, type ControlPlaneOptions } from './apiserver.ts';
import { startKubeletStandIn, type KubeletStandIn, type KubeletStandInOptions } from './kubelet-standin.ts';

/** Environment variable with extra kube-controller-manager flags, separated by whitespace. */
export const controllerManagerArgsEnvVar = 'FLIPT_E2E_CONTROLLER_MANAGER_ARGS';

/**
 * Controllers turned off, on top of those kube-controller-manager leaves off by default (bootstrap
 * signer, token cleaner, node IPAM without --allocate-node-cidrs):
 * - node-lifecycle-controller: the stand-in's Node sends no heartbeats (no Lease renewals), so this
 *   controller would mark it unreachable, mark its pods NotReady and taint it for eviction.
 */
export const DISABLED_CONTROLLERS = ['node-lifecycle-controller'] as const;

export interface ControllerManagerOptions {
  /** Extra flags, after the defaults (a repeated flag's last value wins). */
  args?: string[];
}

export interface ControllerManager {
  /** https://127.0.0.1:PORT, its secure port (healthz, metrics). */
  readonly url: string;
  readonly logFile: string;
  /** Throws, with the last lines of its log, if the process has exited. */
  assertRunning(): void;
  /** Stops the process. Safe to call more than once. */
  stop(): Promise<void>;
}

function httpsGet(url: string, ca: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca, timeout: 5_000 }, (res) => {
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
 * Starts kube-controller-manager against `plane` with its admin kubeconfig and waits until its
 * /healthz answers ok. Its files (log, serving certificate) live in the plane's directory.
 */
export async function startControllerManager(
  plane: ControlPlane,
  options: ControllerManagerOptions = {},
): Promise<ControllerManager> {
  const binary = serverBinary('kube-controller-manager');
  const logFile = join(plane.dir, 'kube-controller-manager.log');
  // Its own serving certificate from a throw-away CA, so the health check verifies TLS for real.
  const serving = await generateCertificates({
    ipAddresses: ['127.0.0.1'],
    dnsNames: ['localhost'],
    days: 1,
  });
  const certFile = join(plane.dir, 'pki', 'controller-manager.crt');
  const keyFile = join(plane.dir, 'pki', 'controller-manager.key');
  await writeFile(certFile, serving.cert);
  await writeFile(keyFile, serving.key, { mode: 0o600 });
  const extraArgs = (process.env[controllerManagerArgsEnvVar] ?? '').split(/\s+/).filter(Boolean);

  let proc: ManagedProcess | undefined;
  let url = '';
  for (let attempt = 1; proc === undefined; attempt++) {
    const port = await freePort();
    url = `https://127.0.0.1:${port}`;
    try {
      proc = await startProcess({
        name: 'kube-controller-manager',
        command: binary,
        args: [
          `--kubeconfig=${plane.kubeconfigPath}`,
          // The same credentials check callers of its secure port (TokenReview, SubjectAccessReview).
          `--authentication-kubeconfig=${plane.kubeconfigPath}`,
          `--authorization-kubeconfig=${plane.kubeconfigPath}`,
          '--leader-elect=false',
          `--controllers=*,${DISABLED_CONTROLLERS.map((c) => `-${c}`).join(',')}`,
          // The serviceaccount-token controller signs with the API server's key; the
          // root-ca-certificate-publisher writes this CA into every namespace as kube-root-ca.crt.
          `--service-account-private-key-file=${plane.pkiFiles.serviceAccountKey}`,
          `--root-ca-file=${plane.pkiFiles.caCert}`,
          // Every controller acts as the admin user: no per-controller ServiceAccounts to bootstrap.
          '--use-service-account-credentials=false',
          '--bind-address=127.0.0.1',
          `--secure-port=${port}`,
          `--tls-cert-file=${certFile}`,
          `--tls-private-key-file=${keyFile}`,
          '--profiling=false',
          '--v=1',
          ...(options.args ?? []),
          ...extraArgs,
        ],
        logFile,
        ready: async () => {
          const res = await httpsGet(`${url}/healthz`, serving.caCert);
          return res.status === 200 && res.body.trim() === 'ok';
        },
        readyTimeoutMs: 90_000,
      });
    } catch (err) {
      // freePort only says the port *was* free: choose again when it was taken in between.
      const message = err instanceof Error ? err.message : String(err);
      if (attempt >= 3 || !/address already in use/i.test(message)) throw err;
    }
  }
  const started = proc;
  let stopped = false;
  return {
    url,
    logFile,
    assertRunning() {
      const { exitCode, signalCode } = started.child;
      if (!stopped && (exitCode !== null || signalCode !== null)) {
        throw new Error(
          `kube-controller-manager exited (code ${exitCode ?? 'null'}, signal ${signalCode ?? 'null'})\n` +
            `--- last lines of ${logFile} ---\n${started.tail()}`,
        );
      }
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await started.stop(10_000);
    },
  };
}

/** A control plane with its controller manager and kubelet stand-in. */
export interface Cluster {
  readonly plane: ControlPlane;
  readonly controllerManager: ControllerManager;
  readonly kubelet: KubeletStandIn;
  /**
   * waitFor (test/support/process.ts) that also checks, every round, that kube-controller-manager
   * still runs: a crash is then named in the timeout's message with the last lines of its log.
   */
  waitFor(
    what: string,
    probe: () => Promise<boolean>,
    options?: { timeoutMs?: number; intervalMs?: number },
  ): Promise<void>;
}

export interface ClusterOptions extends ControlPlaneOptions {
  controllerManager?: ControllerManagerOptions;
  kubelet?: KubeletStandInOptions;
}

/**
 * Starts etcd + kube-apiserver, kube-controller-manager and the kubelet stand-in for a tap test and
 * stops them in reverse order in teardown (the control plane's directory is kept when the test
 * failed). A start that fails stops what already runs.
 */
export async function useCluster(t: TeardownHost, options: ClusterOptions = {}): Promise<Cluster> {
  // Teardown functions run in the order they were added, and useControlPlane adds the plane's
  // stop: wrap it so the stand-in and the controller manager stop first, while the API server they
  // talk to still runs (no shutdown noise in their logs).
  const running: { controllerManager?: ControllerManager; kubelet?: KubeletStandIn } = {};
  const host: TeardownHost = {
    teardown: (fn) =>
      t.teardown(async () => {
        await running.kubelet?.stop();
        await running.controllerManager?.stop();
        await fn();
      }),
    passing: () => t.passing(),
  };
  const plane = await useControlPlane(host, options);
  const controllerManager = await startControllerManager(plane, options.controllerManager);
  running.controllerManager = controllerManager;
  const kubelet = await startKubeletStandIn(plane.kubeConfig, {
    logFile: join(plane.dir, 'kubelet-standin.log'),
    ...options.kubelet,
  });
  running.kubelet = kubelet;
  return {
    plane,
    controllerManager,
    kubelet,
    waitFor: (what, probe, waitOptions) =>
      waitFor(
        what,
        async () => {
          controllerManager.assertRunning();
          return probe();
        },
        waitOptions,
      ),
  };
}
