// The flipt-sidecar container and its scratch volume, built from resolved settings. Everything the
// sidecar needs travels as env vars (Flipt reads FLIPT_* with dots as underscores), credentials only
// by Secret reference.
import type { SidecarSettings } from './settings.ts';
import { markerProbePath } from '../../common/export-marker.ts';
import { parseQuantity } from './formats.ts';
import type { Container, EnvVar, Volume } from './k8s.ts';

export const SIDECAR_NAME = 'flipt-sidecar';
export const VOLUME_NAME = 'flipt-sidecar-data';
export const HTTP_PORT_NAME = 'flipt-http';
export const GRPC_PORT_NAME = 'flipt-grpc';
/** Writable scratch space: Flipt's state file, and TMPDIR, under a read-only root filesystem. */
export const STATE_DIR = '/var/run/flipt';

export interface SidecarParts {
  container: Container;
  volume: Volume;
}

function storageEnv({ storage }: SidecarSettings): EnvVar[] {
  const env: EnvVar[] = [
    { name: 'FLIPT_STORAGE_TYPE', value: 'object' },
    { name: 'FLIPT_STORAGE_OBJECT_TYPE', value: 's3' },
    { name: 'FLIPT_STORAGE_OBJECT_S3_BUCKET', value: storage.bucket },
  ];
  if (storage.prefix) env.push({ name: 'FLIPT_STORAGE_OBJECT_S3_PREFIX', value: storage.prefix });
  env.push({ name: 'FLIPT_STORAGE_OBJECT_S3_REGION', value: storage.region });
  // Cache mode: the same bucket and prefix, served by the flipt-bucket-cache Service.
  const endpoint = storage.mode === 'cache' ? storage.cacheEndpoint : storage.endpoint;
  if (endpoint) {
    env.push(
      { name: 'FLIPT_STORAGE_OBJECT_S3_ENDPOINT', value: endpoint },
      // S3-compatible stores (MinIO) do not all support the AWS SDK's default checksums.
      { name: 'AWS_REQUEST_CHECKSUM_CALCULATION', value: 'when_required' },
      { name: 'AWS_RESPONSE_CHECKSUM_VALIDATION', value: 'when_required' },
    );
  }
  env.push({ name: 'FLIPT_STORAGE_OBJECT_S3_POLL_INTERVAL', value: storage.pollInterval });
  return env;
}

/**
 * Cache mode: no Secret. Flipt's AWS SDK (aws-sdk-go-v2) refuses to send a request without some
 * credentials, and with none in the environment it walks its chain to the EC2 metadata endpoint.
 * The cache does not check signatures, so fixed placeholders, public on purpose, satisfy the SDK.
 */
export const CACHE_MODE_PLACEHOLDER_CREDENTIALS: readonly EnvVar[] = [
  { name: 'AWS_ACCESS_KEY_ID', value: 'flipt-bucket-cache' },
  { name: 'AWS_SECRET_ACCESS_KEY', value: 'not-a-secret' },
  { name: 'AWS_EC2_METADATA_DISABLED', value: 'true' },
];

function credentialsEnv({ credentials, storage }: SidecarSettings): EnvVar[] {
  if (storage.mode === 'cache') return CACHE_MODE_PLACEHOLDER_CREDENTIALS.map((e) => ({ ...e }));
  // No Secret: the AWS SDK inside Flipt uses its default chain (IRSA, workload identity, instance role).
  if (!credentials.secretName) return [];
  const fromSecret = (name: string, key: string): EnvVar => ({
    name,
    valueFrom: { secretKeyRef: { name: credentials.secretName, key } },
  });
  return [
    fromSecret('AWS_ACCESS_KEY_ID', credentials.accessKeyIdKey),
    fromSecret('AWS_SECRET_ACCESS_KEY', credentials.secretAccessKeyKey),
  ];
}

/**
 * Share of the memory limit given to Go as its soft limit (GOMEMLIMIT). Flipt's peaks are garbage
 * from rebuilding the snapshot on every poll; a soft limit below the container's limit makes Go
 * collect before the kernel kills, and the rest of the limit covers what Go does not count (the
 * binary's mapped pages). Measured in bench/sidecar.ts, see README "Sizing the sidecar".
 */
export const GOMEMLIMIT_SHARE = 0.8;

/** GOMEMLIMIT for a memory limit quantity, in whole MiB (Go's syntax: `102MiB`). */
export function goMemLimit(memoryLimit: string): string | undefined {
  const bytes = parseQuantity(memoryLimit);
  if (bytes === undefined || !Number.isFinite(bytes) || bytes <= 0) return undefined;
  const mib = Math.floor((bytes * GOMEMLIMIT_SHARE) / (1024 * 1024));
  return mib >= 1 ? `${mib}MiB` : undefined;
}

function serverEnv({ sidecar }: SidecarSettings): EnvVar[] {
  // Follows the limit (flipt.io/memory-limit included) unless extraEnv sets its own.
  const limit = sidecar.extraEnv.some((e) => e.name === 'GOMEMLIMIT')
    ? undefined
    : goMemLimit(sidecar.resources.limits.memory);
  return [
    { name: 'FLIPT_SERVER_HTTP_PORT', value: String(sidecar.httpPort) },
    { name: 'FLIPT_SERVER_GRPC_PORT', value: String(sidecar.grpcPort) },
    { name: 'FLIPT_LOG_LEVEL', value: sidecar.logLevel },
    { name: 'FLIPT_LOG_ENCODING', value: 'json' },
    { name: 'FLIPT_META_TELEMETRY_ENABLED', value: 'false' },
    { name: 'FLIPT_META_CHECK_FOR_UPDATES', value: 'false' },
    { name: 'FLIPT_META_STATE_DIRECTORY', value: STATE_DIR },
    { name: 'TMPDIR', value: STATE_DIR },
    ...(limit ? [{ name: 'GOMEMLIMIT', value: limit }] : []),
  ];
}

/** The sidecar container and volume for these settings. Pure: same settings, same objects. */
export function buildSidecar(settings: SidecarSettings): SidecarParts {
  const { sidecar } = settings;
  const health = () => ({ httpGet: { path: '/health', port: HTTP_PORT_NAME } });
  const container: Container = {
    name: SIDECAR_NAME,
    image: sidecar.image,
    imagePullPolicy: sidecar.imagePullPolicy,
    // A native sidecar: started before the app containers, stopped after them, never blocks a Job.
    ...(sidecar.nativeSidecar ? { restartPolicy: 'Always' } : {}),
    ports: [
      { name: HTTP_PORT_NAME, containerPort: sidecar.httpPort, protocol: 'TCP' },
      { name: GRPC_PORT_NAME, containerPort: sidecar.grpcPort, protocol: 'TCP' },
    ],
    env: [...storageEnv(settings), ...credentialsEnv(settings), ...serverEnv(settings), ...sidecar.extraEnv],
    resources: {
      requests: { cpu: sidecar.resources.requests.cpu, memory: sidecar.resources.requests.memory },
      limits: { cpu: sidecar.resources.limits.cpu, memory: sidecar.resources.limits.memory },
    },
    volumeMounts: [{ name: VOLUME_NAME, mountPath: STATE_DIR }],
    // Flipt refuses to start until its first read of the bucket succeeds, but then answers /health
    // even on an empty bucket; the marker namespace exists only once an export is loaded. With a
    // native sidecar the startup probe holds the app containers back until then (up to 2 minutes).
    startupProbe: {
      httpGet: {
        path: settings.storage.markerNamespace
          ? markerProbePath(settings.storage.markerNamespace)
          : '/health',
        port: HTTP_PORT_NAME,
      },
      periodSeconds: 1,
      timeoutSeconds: 2,
      failureThreshold: 120,
    },
    readinessProbe: { ...health(), periodSeconds: 5, timeoutSeconds: 2, failureThreshold: 3 },
    securityContext: {
      runAsNonRoot: true,
      // The image's user is the non-numeric "flipt"; the kubelet needs a number to verify non-root.
      runAsUser: sidecar.runAsUser,
      runAsGroup: sidecar.runAsGroup,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
  };
  const volume: Volume = { name: VOLUME_NAME, emptyDir: { sizeLimit: '64Mi' } };
  return { container, volume };
}
