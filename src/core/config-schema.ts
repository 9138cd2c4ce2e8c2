// The injector's configuration as one JSON Schema (TypeBox): it gives the TypeScript type, the
// defaults, and the schema the Helm chart's values.schema.json reuses. Plain JSON Schema (Ajv strict
// accepts it): what each field allows, in words for error messages, is kept beside the schema in
// ALLOWED_TEXT rather than in a keyword of our own.
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

/** What a field allows, in words, by its schema object (read when a value fails validation). */
export const ALLOWED_TEXT = new WeakMap<TSchema, string>();

function describedAs<T extends TSchema>(schema: T, allowed: string): T {
  ALLOWED_TEXT.set(schema, allowed);
  return schema;
}

/** A string field in a given format. */
function formatted(format: Format, defaultValue: string, description: string) {
  return describedAs(
    Type.String({ pattern: format.pattern, default: defaultValue, description }),
    format.allowed,
  );
}

function enumOf<const T extends string[]>(values: T, defaultValue: T[number], description: string) {
  return describedAs(
    Type.Union(
      values.map((v) => Type.Literal(v)),
      { default: defaultValue, description },
    ),
    `one of ${values.join(', ')}`,
  );
}

const port = (defaultValue: number, description: string) =>
  describedAs(Type.Integer({ minimum: 1, maximum: 65535, default: defaultValue, description }), PORT.allowed);

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
        nativeSidecar: describedAs(
          Type.Boolean({
            default: true,
            description:
              'inject as a native sidecar (init container with restartPolicy Always; Kubernetes >= 1.29) instead of a regular container',
          }),
          BOOLEAN.allowed,
        ),
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
  // No root default: JSON Schema ignores one there (Ajv strict refuses it); parseConfig starts from {}.
  { additionalProperties: false },
);

export type InjectorConfig = Static<typeof INJECTOR_CONFIG_SCHEMA>;
