// The injector's configuration: one schema gives the TypeScript type, the defaults, validation with
// messages that name the field, and the JSON Schema the Helm chart's values can reuse.
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import {
  BOOLEAN,
  BUCKET,
  DURATION,
  ENDPOINT,
  IMAGE,
  MARKER_NAMESPACE,
  PORT,
  PREFIX,
  QUANTITY,
  REGION,
  SECRET_KEY,
  SECRET_NAME,
  checkFormat,
  detailSuffix,
  type Format,
} from './formats.ts';
import { resolveSettings } from './annotations.ts';
import { DEFAULT_MARKER_NAMESPACE } from './export-marker.ts';

/** A string field in a given format; `allowed` travels in the schema to word error messages. */
function formatted(format: Format, defaultValue: string, description: string) {
  return Type.String({
    pattern: format.pattern,
    default: defaultValue,
    description,
    allowed: format.allowed,
  });
}

function enumOf<const T extends string[]>(values: T, defaultValue: T[number], description: string) {
  return Type.Union(
    values.map((v) => Type.Literal(v)),
    { default: defaultValue, description, allowed: `one of ${values.join(', ')}` },
  );
}

const port = (defaultValue: number, description: string) =>
  Type.Integer({ minimum: 1, maximum: 65535, default: defaultValue, description, allowed: PORT.allowed });

const resourcePair = (cpu: string, memory: string) =>
  Type.Object(
    {
      cpu: formatted(QUANTITY, cpu, 'CPU quantity'),
      memory: formatted(QUANTITY, memory, 'memory quantity'),
    },
    { additionalProperties: false, default: {} },
  );

const section = <T extends Parameters<typeof Type.Object>[0]>(properties: T, description: string) =>
  Type.Object(properties, { additionalProperties: false, default: {}, description });

export const INJECTOR_CONFIG_SCHEMA = Type.Object(
  {
    sidecar: section(
      {
        image: formatted(
          IMAGE,
          'docker.flipt.io/flipt/flipt:v1.61.1',
          'Flipt 1.x image (2.x has no S3 storage)',
        ),
        imagePullPolicy: enumOf(['Always', 'IfNotPresent', 'Never'], 'IfNotPresent', 'image pull policy'),
        nativeSidecar: Type.Boolean({
          default: true,
          description:
            'inject as a native sidecar (init container with restartPolicy Always; Kubernetes >= 1.29) instead of a regular container',
          allowed: BOOLEAN.allowed,
        }),
        // warn: at info Flipt logs every evaluation; failed polls are logged at warn, so error would hide them.
        logLevel: enumOf(['debug', 'info', 'warn', 'error'], 'warn', 'Flipt log level'),
        httpPort: port(8080, 'Flipt HTTP port (REST API, /health)'),
        grpcPort: port(9000, 'Flipt gRPC port'),
        runAsUser: Type.Integer({
          minimum: 1,
          default: 100,
          description: 'numeric uid (the Flipt image user "flipt" is uid 100)',
        }),
        runAsGroup: Type.Integer({ minimum: 1, default: 1000, description: 'numeric gid (group "flipt")' }),
        // Measured with the real v1.61.1 sidecar (bench/sidecar.ts, README "Sizing the sidecar"):
        // anonymous memory ~40-55 MB steady at 100-1,000 flags; the peak while a poll rebuilds
        // 1,000 flags is ~85 MB in documents of 100 and ~210 MB in one document. The limit holds
        // both; the request is the steady state (the binary's mapped pages are page cache shared
        // by the pods of a node, not per pod). GOMEMLIMIT follows the limit (sidecar.ts).
        resources: section(
          {
            requests: resourcePair('25m', '64Mi'),
            limits: resourcePair('500m', '256Mi'),
          },
          'sidecar resource requests and limits',
        ),
        extraEnv: Type.Array(
          Type.Object(
            { name: Type.String({ pattern: '^[-._a-zA-Z][-._a-zA-Z0-9]*$' }), value: Type.String() },
            { additionalProperties: false },
          ),
          { default: [], description: 'extra environment variables for the sidecar' },
        ),
      },
      'the injected flipt-sidecar container',
    ),
    storage: section(
      {
        bucket: formatted(BUCKET, 'flipt', 'S3 bucket holding the exported flag state'),
        prefix: formatted(PREFIX, '', 'key prefix inside the bucket, e.g. "flags/"'),
        region: formatted(REGION, 'us-east-1', 'S3 region (us-east-1 suits MinIO)'),
        endpoint: formatted(
          ENDPOINT,
          'http://minio.flipt-system.svc.cluster.local:9000',
          'S3-compatible endpoint; empty for AWS S3',
        ),
        pollInterval: formatted(DURATION, '30s', 'how often the sidecar re-reads the bucket'),
        mode: enumOf(
          ['s3', 'cache'],
          's3',
          '"s3": sidecars read the bucket with the credentials Secret; "cache": they read the flipt-bucket-cache Service (cacheEndpoint) and carry no credentials',
        ),
        cacheEndpoint: formatted(
          ENDPOINT,
          'http://flipt-bucket-cache.flipt-system.svc.cluster.local:8080',
          'the flipt-bucket-cache Service, used when mode is "cache"',
        ),
        markerNamespace: formatted(
          MARKER_NAMESPACE,
          DEFAULT_MARKER_NAMESPACE,
          'namespace the exporter writes into every export; the startup probe waits for it, so a sidecar on an empty bucket never starts ("" probes /health only, for buckets written by something else)',
        ),
      },
      'where the sidecar reads flag state from',
    ),
    credentials: section(
      {
        secretName: formatted(
          SECRET_NAME,
          'flipt-s3-credentials',
          'Secret in the pod namespace with the S3 keys; "" uses the ambient AWS chain (IRSA, workload identity)',
        ),
        accessKeyIdKey: formatted(SECRET_KEY, 'AWS_ACCESS_KEY_ID', 'Secret key holding the access key id'),
        secretAccessKeyKey: formatted(
          SECRET_KEY,
          'AWS_SECRET_ACCESS_KEY',
          'Secret key holding the secret access key',
        ),
      },
      'S3 credentials, by reference only',
    ),
    injector: section(
      {
        namespace: Type.String({
          default: 'flipt-system',
          description: "the injector's own namespace (never injected); POD_NAMESPACE overrides",
        }),
        logLevel: enumOf(
          ['trace', 'debug', 'info', 'warn', 'error', 'fatal'],
          'info',
          "the injector's log level",
        ),
      },
      'the injector process itself',
    ),
  },
  { additionalProperties: false, default: {} },
);

export type InjectorConfig = Static<typeof INJECTOR_CONFIG_SCHEMA>;

export type ConfigResult = { ok: true; config: InjectorConfig } | { ok: false; errors: string[] };

/** The configuration with every default, as used with no config file. */
export function defaultConfig(): InjectorConfig {
  const result = parseConfig({});
  if (!result.ok) throw new Error(`built-in defaults are invalid: ${result.errors.join('; ')}`);
  return result.config;
}

/** Field path in the dotted form users write in YAML: /sidecar/httpPort → sidecar.httpPort. */
function fieldName(path: string): string {
  return path.replace(/^\//, '').replaceAll('/', '.') || '(top level)';
}

/**
 * Validates a parsed config document (YAML/JSON already decoded; `undefined` or `null` means an
 * empty file), fills defaults, and returns every problem at once, each naming its field.
 */
export function parseConfig(input: unknown): ConfigResult {
  const raw = input === undefined || input === null ? {} : Value.Clone(input);
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    return {
      ok: false,
      errors: ['(top level): expected a mapping of sections (sidecar, storage, credentials, injector)'],
    };
  }
  const withDefaults = Value.Default(INJECTOR_CONFIG_SCHEMA, raw);
  const errors: string[] = [];
  for (const error of Value.Errors(INJECTOR_CONFIG_SCHEMA, withDefaults)) {
    const allowed = (error.schema as TSchema & { allowed?: string }).allowed;
    const unexpected = error.message === 'Unexpected property';
    const got = unexpected ? '' : ` (got ${JSON.stringify(error.value)})`;
    errors.push(
      `${fieldName(error.path)}: ${unexpected ? 'unknown field' : allowed ? `must be ${allowed}` : error.message.toLowerCase()}${got}`,
    );
  }
  if (errors.length > 0) return { ok: false, errors: [...new Set(errors)] };
  const config = withDefaults as InjectorConfig;
  errors.push(...crossFieldErrors(config));
  return errors.length > 0 ? { ok: false, errors } : { ok: true, config };
}

// What a JSON Schema pattern cannot say (a minimum duration, a length), and conflicts between
// fields, which resolveSettings reports exactly as it does for a pod with no annotations.
function crossFieldErrors(config: InjectorConfig): string[] {
  const errors: string[] = [];
  const checks: [string, Format, string][] = [
    ['storage.pollInterval', DURATION, config.storage.pollInterval],
    ['credentials.secretName', SECRET_NAME, config.credentials.secretName],
  ];
  for (const [field, format, value] of checks) {
    const problem = checkFormat(format, value);
    if (problem) {
      errors.push(
        `${field}: must be ${format.allowed} (got ${JSON.stringify(value)}${detailSuffix(problem)})`,
      );
    }
  }
  if (config.storage.mode === 'cache' && config.storage.cacheEndpoint === '') {
    errors.push('storage.cacheEndpoint: must be the bucket cache URL when storage.mode is "cache" (got "")');
  }
  const resolved = resolveSettings(config);
  if (!resolved.ok) errors.push(...resolved.errors);
  return errors;
}

/**
 * Environment overrides (applied over the config file, before validation), so a Deployment can
 * change a default without editing the ConfigMap. Values are strings, converted per field.
 */
export const CONFIG_ENV_OVERRIDES: Record<
  string,
  { path: [string, string]; type: 'string' | 'integer' | 'boolean' }
> = {
  FLIPT_INJECTOR_IMAGE: { path: ['sidecar', 'image'], type: 'string' },
  FLIPT_INJECTOR_IMAGE_PULL_POLICY: { path: ['sidecar', 'imagePullPolicy'], type: 'string' },
  FLIPT_INJECTOR_NATIVE_SIDECAR: { path: ['sidecar', 'nativeSidecar'], type: 'boolean' },
  FLIPT_INJECTOR_SIDECAR_LOG_LEVEL: { path: ['sidecar', 'logLevel'], type: 'string' },
  FLIPT_INJECTOR_HTTP_PORT: { path: ['sidecar', 'httpPort'], type: 'integer' },
  FLIPT_INJECTOR_GRPC_PORT: { path: ['sidecar', 'grpcPort'], type: 'integer' },
  FLIPT_INJECTOR_BUCKET: { path: ['storage', 'bucket'], type: 'string' },
  FLIPT_INJECTOR_PREFIX: { path: ['storage', 'prefix'], type: 'string' },
  FLIPT_INJECTOR_REGION: { path: ['storage', 'region'], type: 'string' },
  FLIPT_INJECTOR_ENDPOINT: { path: ['storage', 'endpoint'], type: 'string' },
  FLIPT_INJECTOR_POLL_INTERVAL: { path: ['storage', 'pollInterval'], type: 'string' },
  FLIPT_INJECTOR_STORAGE_MODE: { path: ['storage', 'mode'], type: 'string' },
  FLIPT_INJECTOR_CACHE_ENDPOINT: { path: ['storage', 'cacheEndpoint'], type: 'string' },
  FLIPT_INJECTOR_MARKER_NAMESPACE: { path: ['storage', 'markerNamespace'], type: 'string' },
  FLIPT_INJECTOR_CREDENTIALS_SECRET: { path: ['credentials', 'secretName'], type: 'string' },
  FLIPT_INJECTOR_LOG_LEVEL: { path: ['injector', 'logLevel'], type: 'string' },
  POD_NAMESPACE: { path: ['injector', 'namespace'], type: 'string' },
};

/** Merges environment overrides into a raw config document; unparsable values are left as text so validation names them. */
export function applyEnvOverrides(raw: unknown, env: Record<string, string | undefined>): unknown {
  const base = raw === undefined || raw === null ? {} : Value.Clone(raw);
  if (typeof base !== 'object' || Array.isArray(base)) return base;
  const doc = base as Record<string, Record<string, unknown>>;
  for (const [name, { path, type }] of Object.entries(CONFIG_ENV_OVERRIDES)) {
    const text = env[name];
    if (text === undefined) continue;
    const [sectionName, field] = path;
    const target = (doc[sectionName] ??= {});
    if (typeof target !== 'object' || target === null) continue;
    let value: unknown = text;
    if (type === 'integer' && /^-?\d+$/.test(text)) value = Number(text);
    if (type === 'boolean' && (text === 'true' || text === 'false')) value = text === 'true';
    target[field] = value;
  }
  return doc;
}
