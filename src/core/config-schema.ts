// The settings table: every injector setting once, as one node of a JSON Schema (TypeBox) tree,
// with what it allows in words, and, where it has them, its per-pod annotation and its environment
// override. Everything else is derived from it: the TypeScript type, the defaults, the schema the
// Helm chart's values.schema.json reuses (plain JSON Schema, Ajv strict accepts it), the annotation
// validators (annotations.ts), the env overrides (config.ts) and the README tables' tests. The
// table's metadata sits beside the schema (SETTING_META), never in a keyword of our own.
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { DEFAULT_MARKER_NAMESPACE } from '../../common/export-marker.ts';
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
  type Format,
} from './formats.ts';

/** A setting's row, beyond its schema: its words, and the other doors that can set it. */
export interface SettingMeta {
  /** What is allowed, in words (error messages); without it, the validator's own message. */
  allowed?: string;
  /** How a text value (annotation, environment variable) is checked. */
  format?: Format;
  /** How a text value becomes the field's type. */
  coerce?: 'string' | 'integer' | 'boolean';
  /** The pod annotation that overrides the setting for one pod, and its README wording. */
  annotation?: { key: string; description: string };
  /** The environment variable that overrides the config file. */
  env?: string;
}

export const SETTING_META = new WeakMap<TSchema, SettingMeta>();

type Doors = Pick<SettingMeta, 'annotation' | 'env'>;
const annotated = (key: string, description: string, env?: string): Doors => ({
  annotation: { key, description },
  ...(env ? { env } : {}),
});

function setting<T extends TSchema>(schema: T, meta: SettingMeta): T {
  SETTING_META.set(schema, meta);
  return schema;
}

/** A string field in a given format. */
function formatted(format: Format, defaultValue: string, description: string, doors: Doors = {}) {
  return setting(Type.String({ pattern: format.pattern, default: defaultValue, description }), {
    allowed: format.allowed,
    format,
    coerce: 'string',
    ...doors,
  });
}

function enumOf<const T extends string[]>(
  values: T,
  defaultValue: T[number],
  description: string,
  doors: Doors = {},
) {
  const allowed = `one of ${values.join(', ')}`;
  return setting(
    Type.Union(
      values.map((v) => Type.Literal(v)),
      { default: defaultValue, description },
    ),
    { allowed, format: { pattern: `^(${values.join('|')})$`, allowed }, coerce: 'string', ...doors },
  );
}

const port = (defaultValue: number, description: string, doors: Doors = {}) =>
  setting(Type.Integer({ minimum: 1, maximum: 65535, default: defaultValue, description }), {
    allowed: PORT.allowed,
    format: PORT,
    coerce: 'integer',
    ...doors,
  });

const flag = (defaultValue: boolean, description: string, doors: Doors = {}) =>
  setting(Type.Boolean({ default: defaultValue, description }), {
    allowed: BOOLEAN.allowed,
    format: BOOLEAN,
    coerce: 'boolean',
    ...doors,
  });

const section = <T extends Parameters<typeof Type.Object>[0]>(properties: T, description: string) =>
  Type.Object(properties, { additionalProperties: false, default: {}, description });

const quantity = (defaultValue: string, description: string, annotation: string) =>
  formatted(QUANTITY, defaultValue, description, annotated(annotation, `sidecar ${description}`));

// Sections in the order annotation problems are reported (storage first, then the container).
export const INJECTOR_CONFIG_SCHEMA = Type.Object(
  {
    storage: section(
      {
        bucket: formatted(
          BUCKET,
          'flipt',
          'S3 bucket holding the exported flag state',
          annotated('flipt.io/bucket', 'S3 bucket to read flag state from', 'FLIPT_INJECTOR_BUCKET'),
        ),
        prefix: formatted(
          PREFIX,
          '',
          'key prefix inside the bucket, e.g. "flags/"',
          annotated('flipt.io/prefix', 'key prefix inside the bucket', 'FLIPT_INJECTOR_PREFIX'),
        ),
        region: formatted(
          REGION,
          'us-east-1',
          'S3 region (us-east-1 suits MinIO)',
          annotated('flipt.io/region', 'S3 region', 'FLIPT_INJECTOR_REGION'),
        ),
        endpoint: formatted(
          ENDPOINT,
          'http://minio.flipt-system.svc.cluster.local:9000',
          'S3-compatible endpoint; empty for AWS S3',
          annotated('flipt.io/endpoint', 'S3-compatible endpoint ("" for AWS S3)', 'FLIPT_INJECTOR_ENDPOINT'),
        ),
        pollInterval: formatted(
          DURATION,
          '30s',
          'how often the sidecar re-reads the bucket',
          annotated(
            'flipt.io/poll-interval',
            'how often the sidecar re-reads the bucket',
            'FLIPT_INJECTOR_POLL_INTERVAL',
          ),
        ),
        mode: enumOf(
          ['s3', 'cache'],
          's3',
          '"s3": sidecars read the bucket with the credentials Secret; "cache": they read the flipt-bucket-cache Service (cacheEndpoint) and carry no credentials',
          { env: 'FLIPT_INJECTOR_STORAGE_MODE' },
        ),
        cacheEndpoint: formatted(
          ENDPOINT,
          'http://flipt-bucket-cache.flipt-system.svc.cluster.local:8080',
          'the flipt-bucket-cache Service, used when mode is "cache"',
          { env: 'FLIPT_INJECTOR_CACHE_ENDPOINT' },
        ),
        markerNamespace: formatted(
          MARKER_NAMESPACE,
          DEFAULT_MARKER_NAMESPACE,
          'namespace the exporter writes into every export; the startup probe waits for it, so a sidecar on an empty bucket never starts ("" probes /health only, for buckets written by something else)',
          annotated(
            'flipt.io/marker-namespace',
            'export marker namespace the startup probe waits for ("" for /health only)',
            'FLIPT_INJECTOR_MARKER_NAMESPACE',
          ),
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
          annotated(
            'flipt.io/credentials-secret',
            'Secret with the S3 keys ("" for the ambient AWS chain)',
            'FLIPT_INJECTOR_CREDENTIALS_SECRET',
          ),
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
    sidecar: section(
      {
        image: formatted(
          IMAGE,
          'docker.flipt.io/flipt/flipt:v1.61.1',
          'Flipt 1.x image (2.x has no S3 storage)',
          annotated('flipt.io/image', 'Flipt image', 'FLIPT_INJECTOR_IMAGE'),
        ),
        imagePullPolicy: enumOf(
          ['Always', 'IfNotPresent', 'Never'],
          'IfNotPresent',
          'image pull policy',
          annotated('flipt.io/image-pull-policy', 'image pull policy', 'FLIPT_INJECTOR_IMAGE_PULL_POLICY'),
        ),
        nativeSidecar: flag(
          true,
          'inject as a native sidecar (init container with restartPolicy Always; Kubernetes >= 1.29) instead of a regular container',
          annotated(
            'flipt.io/native-sidecar',
            'native sidecar (init container) or classic container',
            'FLIPT_INJECTOR_NATIVE_SIDECAR',
          ),
        ),
        // warn: at info Flipt logs every evaluation; failed polls are logged at warn, so error would hide them.
        logLevel: enumOf(
          ['debug', 'info', 'warn', 'error'],
          'warn',
          'Flipt log level',
          annotated('flipt.io/log-level', 'Flipt log level', 'FLIPT_INJECTOR_SIDECAR_LOG_LEVEL'),
        ),
        httpPort: port(
          8080,
          'Flipt HTTP port (REST API, /health)',
          annotated('flipt.io/http-port', 'Flipt HTTP port', 'FLIPT_INJECTOR_HTTP_PORT'),
        ),
        grpcPort: port(
          9000,
          'Flipt gRPC port',
          annotated('flipt.io/grpc-port', 'Flipt gRPC port', 'FLIPT_INJECTOR_GRPC_PORT'),
        ),
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
            requests: Type.Object(
              {
                cpu: quantity('25m', 'CPU request', 'flipt.io/cpu-request'),
                memory: quantity('64Mi', 'memory request', 'flipt.io/memory-request'),
              },
              { additionalProperties: false, default: {} },
            ),
            limits: Type.Object(
              {
                cpu: quantity('500m', 'CPU limit', 'flipt.io/cpu-limit'),
                memory: quantity('256Mi', 'memory limit', 'flipt.io/memory-limit'),
              },
              { additionalProperties: false, default: {} },
            ),
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
    injector: section(
      {
        namespace: setting(
          Type.String({
            default: 'flipt-system',
            description: "the injector's own namespace (never injected); POD_NAMESPACE overrides",
          }),
          { coerce: 'string', env: 'POD_NAMESPACE' },
        ),
        logLevel: enumOf(
          ['trace', 'debug', 'info', 'warn', 'error', 'fatal'],
          'info',
          "the injector's log level",
          { env: 'FLIPT_INJECTOR_LOG_LEVEL' },
        ),
      },
      'the injector process itself',
    ),
  },
  // No root default: JSON Schema ignores one there (Ajv strict refuses it); parseConfig starts from {}.
  { additionalProperties: false },
);

export type InjectorConfig = Static<typeof INJECTOR_CONFIG_SCHEMA>;

/** One row of the table: a setting's path in the config, its schema and its metadata. */
export interface SettingRow {
  path: readonly string[];
  schema: TSchema;
  meta: SettingMeta;
}

function rowsOf(schema: TSchema, path: string[], into: SettingRow[]): SettingRow[] {
  const meta = SETTING_META.get(schema);
  if (meta) into.push({ path, schema, meta });
  const properties = (schema as { properties?: Record<string, TSchema> }).properties;
  if (properties) for (const [key, child] of Object.entries(properties)) rowsOf(child, [...path, key], into);
  return into;
}

/** Every setting with metadata, in schema order. */
export const SETTING_ROWS: readonly SettingRow[] = rowsOf(INJECTOR_CONFIG_SCHEMA, [], []);
