// Per-pod overrides: the flipt.io/* annotations, one validator per key, every error returned at
// once. An invalid or unknown annotation rejects the pod rather than being silently ignored.
import type { InjectorConfig } from './config.ts';
import {
  BOOLEAN,
  BUCKET,
  DURATION,
  ENDPOINT,
  IMAGE,
  LOG_LEVEL,
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

/** Levenshtein distance, for "did you mean" on a mistyped annotation. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current[j] = Math.min((previous[j] as number) + 1, (current[j - 1] as number) + 1, substitution);
    }
    previous = current;
  }
  return previous[b.length] as number;
}

function closest(key: string, known: string[]): string | undefined {
  const [best] = known.map((k) => ({ k, d: editDistance(key, k) })).sort((x, y) => x.d - y.d);
  return best && best.d <= 3 ? best.k : undefined;
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
  const errors: string[] = [];
  // Known keys in table order, then unknown ones sorted: the same errors in the same order whatever
  // order the pod lists its annotations in (the API server hands webhooks sorted maps, a file need not).
  const ours = Object.keys(annotations).filter(
    (key) => key.startsWith(ANNOTATION_PREFIX) && key !== STATUS_ANNOTATION,
  );
  const known = Object.keys(ANNOTATIONS).filter((key) => ours.includes(key));
  const unknown = ours.filter((key) => !(key in ANNOTATIONS)).sort();
  for (const key of [...known, ...unknown]) {
    const value = annotations[key] as string;
    const spec = ANNOTATIONS[key];
    if (!spec) {
      const suggestion = closest(key, Object.keys(ANNOTATIONS));
      const hint =
        key === INJECT_LABEL
          ? ` (${INJECT_LABEL} is a label, not an annotation: set it under metadata.labels)`
          : `${suggestion ? ` (did you mean ${suggestion}?)` : ''}; known annotations: ${Object.keys(ANNOTATIONS).join(', ')}`;
      errors.push(`annotation ${key} is not recognised${hint}`);
      continue;
    }
    const problem = checkFormat(spec.format, value);
    if (problem) {
      errors.push(
        `annotation ${key}: invalid value ${JSON.stringify(value)}${detailSuffix(problem)}; allowed: ${spec.format.allowed}`,
      );
      continue;
    }
    spec.apply(settings, value);
  }
  if (errors.length > 0) return { ok: false, errors };

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
