// Per-pod overrides: the flipt.io/* annotations, one validator per key, every error returned at
// once. An invalid or unknown annotation rejects the pod rather than being silently ignored.
import type { InjectorConfig } from './config-schema.ts';
import {
  BOOLEAN,
  BUCKET,
  DURATION,
  ENDPOINT,
  IMAGE,
  LOG_LEVEL,
  MARKER_NAMESPACE,
  PORT,
  PREFIX,
  PULL_POLICY,
  QUANTITY,
  REGION,
  SECRET_NAME,
  checkFormat,
  detailSuffix,
  parseQuantity,
  type Format,
} from './formats.ts';
import { clip, MAX_PROBLEMS, ProblemList, quote, SmallestStrings } from './bounded.ts';
import { closestKey } from './suggest.ts';

export const ANNOTATION_PREFIX = 'flipt.io/';
export const INJECT_LABEL = 'flipt.io/inject';
export const STATUS_ANNOTATION = 'flipt.io/status';

/** What one pod's sidecar is built from: the config's defaults with the pod's annotations applied. */
export type SidecarSettings = Omit<InjectorConfig, 'injector'>;

interface AnnotationSpec {
  format: Format;
  description: string;
  apply: (settings: SidecarSettings, value: string) => void;
}

/** Every per-pod annotation, in the order README documents them. */
export const ANNOTATIONS: Record<string, AnnotationSpec> = {
  'flipt.io/bucket': {
    format: BUCKET,
    description: 'S3 bucket to read flag state from',
    apply: (s, v) => void (s.storage.bucket = v),
  },
  'flipt.io/prefix': {
    format: PREFIX,
    description: 'key prefix inside the bucket',
    apply: (s, v) => void (s.storage.prefix = v),
  },
  'flipt.io/region': {
    format: REGION,
    description: 'S3 region',
    apply: (s, v) => void (s.storage.region = v),
  },
  'flipt.io/endpoint': {
    format: ENDPOINT,
    description: 'S3-compatible endpoint ("" for AWS S3)',
    apply: (s, v) => void (s.storage.endpoint = v),
  },
  'flipt.io/poll-interval': {
    format: DURATION,
    description: 'how often the sidecar re-reads the bucket',
    apply: (s, v) => void (s.storage.pollInterval = v),
  },
  'flipt.io/marker-namespace': {
    format: MARKER_NAMESPACE,
    description: 'export marker namespace the startup probe waits for ("" for /health only)',
    apply: (s, v) => void (s.storage.markerNamespace = v),
  },
  'flipt.io/credentials-secret': {
    format: SECRET_NAME,
    description: 'Secret with the S3 keys ("" for the ambient AWS chain)',
    apply: (s, v) => void (s.credentials.secretName = v),
  },
  'flipt.io/image': {
    format: IMAGE,
    description: 'Flipt image',
    apply: (s, v) => void (s.sidecar.image = v),
  },
  'flipt.io/image-pull-policy': {
    format: PULL_POLICY,
    description: 'image pull policy',
    apply: (s, v) => void (s.sidecar.imagePullPolicy = v as SidecarSettings['sidecar']['imagePullPolicy']),
  },
  'flipt.io/native-sidecar': {
    format: BOOLEAN,
    description: 'native sidecar (init container) or classic container',
    apply: (s, v) => void (s.sidecar.nativeSidecar = v === 'true'),
  },
  'flipt.io/log-level': {
    format: LOG_LEVEL,
    description: 'Flipt log level',
    apply: (s, v) => void (s.sidecar.logLevel = v as SidecarSettings['sidecar']['logLevel']),
  },
  'flipt.io/http-port': {
    format: PORT,
    description: 'Flipt HTTP port',
    apply: (s, v) => void (s.sidecar.httpPort = Number(v)),
  },
  'flipt.io/grpc-port': {
    format: PORT,
    description: 'Flipt gRPC port',
    apply: (s, v) => void (s.sidecar.grpcPort = Number(v)),
  },
  'flipt.io/cpu-request': {
    format: QUANTITY,
    description: 'sidecar CPU request',
    apply: (s, v) => void (s.sidecar.resources.requests.cpu = v),
  },
  'flipt.io/cpu-limit': {
    format: QUANTITY,
    description: 'sidecar CPU limit',
    apply: (s, v) => void (s.sidecar.resources.limits.cpu = v),
  },
  'flipt.io/memory-request': {
    format: QUANTITY,
    description: 'sidecar memory request',
    apply: (s, v) => void (s.sidecar.resources.requests.memory = v),
  },
  'flipt.io/memory-limit': {
    format: QUANTITY,
    description: 'sidecar memory limit',
    apply: (s, v) => void (s.sidecar.resources.limits.memory = v),
  },
};

/** Where to find the known annotations: said once per refusal, not after every unknown key. */
export const ANNOTATIONS_POINTER =
  'the flipt.io/* annotations are listed under "Per-pod annotations" in the flipt-sidecar-injector README';

function unknownKeyProblem(key: string): string {
  if (key === INJECT_LABEL)
    return `annotation ${key} is not recognised (${INJECT_LABEL} is a label, not an annotation: set it under metadata.labels)`;
  const suggestion = closestKey(key, Object.keys(ANNOTATIONS));
  return `annotation ${clip(key)} is not recognised${suggestion ? ` (did you mean ${suggestion}?)` : ''}`;
}

export type SettingsResult = { ok: true; settings: SidecarSettings } | { ok: false; errors: string[] };

// A copy deep enough for the annotation setters to write into (structuredClone is several times slower
// and this runs for every admitted pod).
function sidecarDefaults({ sidecar, storage, credentials }: InjectorConfig): SidecarSettings {
  const { requests, limits } = sidecar.resources;
  return {
    sidecar: { ...sidecar, resources: { requests: { ...requests }, limits: { ...limits } } },
    storage: { ...storage },
    credentials: { ...credentials },
  };
}

/** Where a setting came from, for messages: the annotation when the pod set it, else the config field. */
function source(annotations: Record<string, string>, annotation: string, configField: string): string {
  return annotation in annotations ? `annotation ${annotation}` : `config ${configField}`;
}

/**
 * The sidecar settings for a pod: config defaults, overridden by the pod's flipt.io/* annotations.
 * Returns every invalid or unknown annotation, and every conflict between the resulting values.
 */
export function resolveSettings(
  config: InjectorConfig,
  annotations: Record<string, string> = {},
): SettingsResult {
  const settings = sidecarDefaults(config);
  // One pass over the pod's keys. Known keys are checked in table order, then unknown ones sorted:
  // the same errors in the same order whatever order the pod lists its annotations in (the API
  // server hands webhooks sorted maps, a file need not). Only the first MAX_PROBLEMS unknown keys
  // are kept (and counted beyond), so a pod with thousands of them costs one linear pass.
  const unknown = new SmallestStrings(MAX_PROBLEMS);
  for (const key in annotations) {
    if (key.startsWith(ANNOTATION_PREFIX) && key !== STATUS_ANNOTATION && !Object.hasOwn(ANNOTATIONS, key))
      unknown.add(key);
  }
  const problems = new ProblemList(MAX_PROBLEMS);
  for (const [key, spec] of Object.entries(ANNOTATIONS)) {
    if (!Object.hasOwn(annotations, key)) continue;
    const value = annotations[key] as string;
    const problem = checkFormat(spec.format, value);
    if (problem) {
      problems.add(
        () =>
          `annotation ${key}: invalid value ${quote(value)}${detailSuffix(problem)}; allowed: ${spec.format.allowed}`,
      );
      continue;
    }
    spec.apply(settings, value);
  }
  for (const key of unknown.items) problems.add(() => unknownKeyProblem(key));
  // Counted, not examined: the unknown keys past the first MAX_PROBLEMS.
  problems.addUnexamined(unknown.count - unknown.items.length);
  if (problems.count > 0) {
    const errors = problems.list();
    const typos = unknown.count - (unknown.items.includes(INJECT_LABEL) ? 1 : 0);
    if (typos > 0) errors.push(ANNOTATIONS_POINTER);
    return { ok: false, errors };
  }
  const errors: string[] = [];

  const { httpPort, grpcPort, resources } = settings.sidecar;
  if (httpPort === grpcPort) {
    errors.push(
      `${source(annotations, 'flipt.io/http-port', 'sidecar.httpPort')} and ${source(annotations, 'flipt.io/grpc-port', 'sidecar.grpcPort')}: the HTTP and gRPC ports must differ (both are ${httpPort})`,
    );
  }
  for (const resource of ['cpu', 'memory'] as const) {
    const request = resources.requests[resource];
    const limit = resources.limits[resource];
    if ((parseQuantity(request) as number) > (parseQuantity(limit) as number)) {
      errors.push(
        `${source(annotations, `flipt.io/${resource}-request`, `sidecar.resources.requests.${resource}`)}: the ${resource} request ${request} exceeds the ${resource} limit ${limit} (${source(annotations, `flipt.io/${resource}-limit`, `sidecar.resources.limits.${resource}`)}); allowed: a request no larger than the limit`,
      );
    }
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, settings };
}
