// KUBELET STAND-IN: a mock at a boundary that cannot run here. A real kubelet needs a container
// runtime (containerd, cgroups, network plugins) and would run the project's images, which cannot be
// built here (no registry for base images). Everything above the kubelet is real: the API server's
// admission, and kube-controller-manager's Deployment, ReplicaSet, Job, CronJob, EndpointSlice,
// namespace and garbage-collector controllers, which compute their statuses from the pod statuses
// this stand-in reports.
//
// What it fakes, and nothing more:
// - one Node, `kubelet-standin`, reported Ready (the EndpointSlice controller skips pods whose node
//   does not exist), with no addresses, taints or heartbeats;
// - the scheduler's one decision: every unbound pod is bound to that Node (pods/binding), whatever
//   it asks for (resources, affinity, PersistentVolumeClaims that no provisioner binds here);
// - the kubelet's status reports: a pod with restartPolicy Always is Running with every container
//   (and native-sidecar init container) started and Ready, regular init containers Completed, and a
//   pod IP; a pod with restartPolicy Never or OnFailure (Job pods) exits 0 at once and is Succeeded.
//   Probes are not run: a Ready pod means "admitted and scheduled", not "its program works";
// - the kubelet's final delete of a terminating pod on its node (grace period 0), without which a
//   bound pod stays Terminating forever and namespaces never finish deleting.
//
// Pod IPs are data only, never dialled: nothing here routes to them and no test connects to them.
// They come from TEST-NET-1 (192.0.2.0/24, RFC 5737, reserved for documentation) because Pod and
// EndpointSlice validation refuse loopback addresses.
import {
  CoreV1Api,
  type KubeConfig,
  type V1Container,
  type V1ContainerStatus,
  type V1Pod,
  type V1PodCondition,
  type V1PodStatus,
} from '@kubernetes/client-node';
import { appendFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { statusCode } from './kube.ts';

export const STANDIN_NODE_NAME = 'kubelet-standin';
/** The first three octets of the stand-in's pod IPs: TEST-NET-1 (RFC 5737). */
export const STANDIN_POD_NETWORK = '192.0.2';

export interface KubeletStandInOptions {
  /** Where it logs what it did (one line per binding, status report and final delete). */
  logFile?: string;
  /** How often it lists pods; default 250 ms. */
  intervalMs?: number;
}

export interface KubeletStandIn {
  readonly nodeName: string;
  /** The last error of a pass over the pods (retried on the next pass), if any. */
  lastError(): Error | undefined;
  /** Number of passes over the pods so far. */
  passes(): number;
  stop(): Promise<void>;
}

/** A pod the kubelet runs to completion (Job pods) rather than keeping running. */
export function runsToCompletion(pod: V1Pod): boolean {
  const policy = pod.spec?.restartPolicy ?? 'Always';
  return policy === 'Never' || policy === 'OnFailure';
}

function isSidecar(container: V1Container): boolean {
  return container.restartPolicy === 'Always';
}

function condition(type: string, status: boolean, now: Date, reason?: string): V1PodCondition {
  return { type, status: status ? 'True' : 'False', lastTransitionTime: now, ...(reason ? { reason } : {}) };
}

function runningStatus(pod: V1Pod, container: V1Container, now: Date): V1ContainerStatus {
  return {
    name: container.name,
    image: container.image ?? '',
    imageID: '',
    containerID: `standin://${pod.metadata?.uid ?? ''}/${container.name}`,
    ready: true,
    started: true,
    restartCount: 0,
    state: { running: { startedAt: now } },
  };
}

function completedStatus(pod: V1Pod, container: V1Container, now: Date, ready: boolean): V1ContainerStatus {
  return {
    name: container.name,
    image: container.image ?? '',
    imageID: '',
    containerID: `standin://${pod.metadata?.uid ?? ''}/${container.name}`,
    ready,
    started: false,
    restartCount: 0,
    state: { terminated: { exitCode: 0, reason: 'Completed', startedAt: now, finishedAt: now } },
  };
}

/** Whether the pod already shows the status the stand-in reports for it. */
export function alreadyReported(pod: V1Pod): boolean {
  const status = pod.status ?? {};
  // A finished pod is never reported again (a terminal phase is final).
  if (status.phase === 'Succeeded' || status.phase === 'Failed') return true;
  const containers = pod.spec?.containers ?? [];
  const initContainers = pod.spec?.initContainers ?? [];
  if ((status.containerStatuses ?? []).length !== containers.length) return false;
  if ((status.initContainerStatuses ?? []).length !== initContainers.length) return false;
  if (runsToCompletion(pod)) return false;
  const ready = status.conditions?.find((c) => c.type === 'Ready');
  return status.phase === 'Running' && ready?.status === 'True' && status.podIP !== undefined;
}

/**
 * The status a kubelet would report for `pod` once its containers run (or ran to completion),
 * keeping what it already has (start time, PodScheduled, QoS class, IP). Pure: `podIP` and `now`
 * are inputs.
 */
export function reportedStatus(pod: V1Pod, podIP: string, now: Date): V1PodStatus {
  const previous = pod.status ?? {};
  const scheduled =
    previous.conditions?.find((c) => c.type === 'PodScheduled') ?? condition('PodScheduled', true, now);
  const containers = pod.spec?.containers ?? [];
  const initContainers = pod.spec?.initContainers ?? [];
  const base: V1PodStatus = {
    ...previous,
    podIP,
    podIPs: [{ ip: podIP }],
    startTime: previous.startTime ?? now,
    observedGeneration: pod.metadata?.generation,
  };
  if (runsToCompletion(pod)) {
    return {
      ...base,
      phase: 'Succeeded',
      conditions: [
        condition('PodReadyToStartContainers', false, now),
        condition('Initialized', true, now, 'PodCompleted'),
        condition('Ready', false, now, 'PodCompleted'),
        condition('ContainersReady', false, now, 'PodCompleted'),
        scheduled,
      ],
      // Sidecars are stopped once the main containers are done; regular init containers finished first.
      initContainerStatuses: initContainers.map((c) => completedStatus(pod, c, now, !isSidecar(c))),
      containerStatuses: containers.map((c) => completedStatus(pod, c, now, false)),
    };
  }
  return {
    ...base,
    phase: 'Running',
    conditions: [
      condition('PodReadyToStartContainers', true, now),
      condition('Initialized', true, now),
      condition('Ready', true, now),
      condition('ContainersReady', true, now),
      scheduled,
    ],
    initContainerStatuses: initContainers.map((c) =>
      isSidecar(c) ? runningStatus(pod, c, now) : completedStatus(pod, c, now, true),
    ),
    containerStatuses: containers.map((c) => runningStatus(pod, c, now)),
  };
}

/** The lowest TEST-NET-1 host address no live pod uses, or undefined when all 254 are taken. */
export function nextPodIP(inUse: ReadonlySet<string>): string | undefined {
  for (let host = 1; host <= 254; host++) {
    const ip = `${STANDIN_POD_NETWORK}.${host}`;
    if (!inUse.has(ip)) return ip;
  }
  return undefined;
}

function podKey(pod: V1Pod): string {
  return `${pod.metadata?.namespace ?? ''}/${pod.metadata?.name ?? ''}`;
}

/** Creates the stand-in's Node and starts reporting for every pod in the cluster. */
export async function startKubeletStandIn(
  kubeConfig: KubeConfig,
  options: KubeletStandInOptions = {},
): Promise<KubeletStandIn> {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const nodeName = STANDIN_NODE_NAME;
  const intervalMs = options.intervalMs ?? 250;
  const log = (message: string) => {
    if (options.logFile) appendFileSync(options.logFile, `${new Date().toISOString()} ${message}\n`);
  };

  // The Node, Ready. Its status is a subresource: written separately after the create.
  try {
    await core.createNode({
      body: {
        metadata: {
          name: nodeName,
          labels: {
            'kubernetes.io/hostname': nodeName,
            'kubernetes.io/os': 'linux',
            'kubernetes.io/arch': 'amd64',
          },
        },
      },
    });
  } catch (err) {
    if (statusCode(err) !== 409) throw err;
  }
  // kube-controller-manager's ttl controller annotates a new Node at once: a conflict means "read
  // again", a few times at most.
  for (let attempt = 1; ; attempt++) {
    const node = await core.readNode({ name: nodeName });
    const now = new Date();
    node.status = {
      ...node.status,
      capacity: { cpu: '64', memory: '256Gi', pods: '250', 'ephemeral-storage': '1Ti' },
      allocatable: { cpu: '64', memory: '256Gi', pods: '250', 'ephemeral-storage': '1Ti' },
      conditions: [
        {
          type: 'Ready',
          status: 'True',
          reason: 'KubeletStandIn',
          message: 'kubelet stand-in (test/e2e/harness/kubelet-standin.ts): no containers run',
          lastHeartbeatTime: now,
          lastTransitionTime: now,
        },
      ],
    };
    try {
      await core.replaceNodeStatus({ name: nodeName, body: node });
      break;
    } catch (err) {
      if (statusCode(err) !== 409 || attempt >= 5) throw err;
    }
  }
  log(`node ${nodeName} registered`);

  const ipByUid = new Map<string, string>();
  let lastError: Error | undefined;
  let passes = 0;

  const pass = async () => {
    const pods = (await core.listPodForAllNamespaces()).items;
    // Addresses held by live pods; a finished or deleted pod's address is free again.
    const inUse = new Set<string>();
    const live = new Set<string>();
    for (const pod of pods) {
      const uid = pod.metadata?.uid ?? '';
      live.add(uid);
      const ip = pod.status?.podIP ?? ipByUid.get(uid);
      const terminal = pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';
      if (ip !== undefined && !terminal) inUse.add(ip);
    }
    for (const uid of ipByUid.keys()) if (!live.has(uid)) ipByUid.delete(uid);

    for (const pod of pods) {
      const namespace = pod.metadata?.namespace ?? '';
      const name = pod.metadata?.name ?? '';
      const uid = pod.metadata?.uid ?? '';
      try {
        if (pod.metadata?.deletionTimestamp) {
          // The kubelet's final delete after stopping the containers. Unbound pods the API server
          // deletes itself; pods held by finalizers stay until their owner removes them.
          if (pod.spec?.nodeName === nodeName && pod.metadata.deletionGracePeriodSeconds !== 0) {
            await core.deleteNamespacedPod({ namespace, name, gracePeriodSeconds: 0 });
            log(`deleted ${podKey(pod)}`);
          }
          continue;
        }
        if (!pod.spec?.nodeName) {
          await core.createNamespacedPodBinding({
            namespace,
            name,
            body: { metadata: { name }, target: { apiVersion: 'v1', kind: 'Node', name: nodeName } },
          });
          log(`bound ${podKey(pod)} to ${nodeName}`);
          continue; // reported on the next pass, from the bound object
        }
        if (pod.spec.nodeName !== nodeName || alreadyReported(pod)) continue;
        let ip = pod.status?.podIP ?? ipByUid.get(uid);
        if (ip === undefined) {
          ip = nextPodIP(inUse);
          if (ip === undefined)
            throw new Error(`no free pod IP in ${STANDIN_POD_NETWORK}.0/24 (254 live pods)`);
          inUse.add(ip);
          ipByUid.set(uid, ip);
        }
        const status = reportedStatus(pod, ip, new Date());
        await core.replaceNamespacedPodStatus({ namespace, name, body: { ...pod, status } });
        log(`${podKey(pod)} ${status.phase} ip=${ip}`);
      } catch (err) {
        // A pod that changed (409) or vanished (404) meanwhile is handled on the next pass.
        const code = statusCode(err);
        if (code !== 409 && code !== 404) throw err;
      }
    }
  };

  const stopping = new AbortController();
  const loop = (async () => {
    while (!stopping.signal.aborted) {
      try {
        await pass();
        lastError = undefined;
      } catch (err) {
        lastError = err instanceof Error ? err : new Error(String(err));
        log(`pass failed: ${lastError.message}`);
      }
      passes++;
      await sleep(intervalMs, undefined, { signal: stopping.signal }).catch(() => undefined);
    }
  })();

  let stopped = false;
  return {
    nodeName,
    lastError: () => lastError,
    passes: () => passes,
    async stop() {
      if (stopped) return;
      stopped = true;
      stopping.abort();
      await loop;
    },
  };
}
