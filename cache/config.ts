// Environment (FLIPT_CACHE_*) → one validated CacheConfig, or every problem at once, each naming
// its variable. Pure: env is passed in. One TypeBox schema gives the type, the bounds and the
// defaults. S3 credentials for the cache's own reads come only from the AWS default chain.
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { parseGoDuration } from '../common/go-duration.ts';
import { parseListen, parseSize } from '../common/options.ts';
import { RESERVED_NAMES } from './reserved.ts';

export const ENV_PREFIX = 'FLIPT_CACHE_';

export const CACHE_CONFIG_SCHEMA = Type.Object(
  {
    bucket: Type.String({ pattern: '^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$' }),
    prefix: Type.String({ pattern: '^(?:[^/].*/)?$' }),
    endpoint: Type.Optional(Type.String({ pattern: '^https?://' })),
    region: Type.Optional(Type.String({ minLength: 1 })),
    pathStyle: Type.Boolean(),
    host: Type.String(),
    port: Type.Integer({ minimum: 0, maximum: 65535 }),
    intervalMs: Type.Integer({ minimum: 500, maximum: 3_600_000 }),
    timeoutMs: Type.Integer({ minimum: 100, maximum: 300_000 }),
    maxObjects: Type.Integer({ minimum: 1, maximum: 100_000 }),
    maxObjectBytes: Type.Integer({ minimum: 1, maximum: 1024 ** 3 }),
    maxTotalBytes: Type.Integer({ minimum: 1, maximum: 4 * 1024 ** 3 }),
    refreshToken: Type.Optional(Type.String({ minLength: 16 })),
    pushWaitMs: Type.Integer({ minimum: 0, maximum: 300_000 }),
    logLevel: Type.Union(
      ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
    ),
    schemaCheck: Type.Boolean(),
  },
  { additionalProperties: false },
);

export type CacheConfig = Static<typeof CACHE_CONFIG_SCHEMA>;

interface EnvSpec {
  env: string;
  field: keyof CacheConfig | 'listen';
  help: string;
  default?: string;
  kind: 'string' | 'duration' | 'size' | 'integer' | 'boolean' | 'listen';
  /** What the value must be, for the error message. */
  allowed: string;
}

/** Every setting, its environment variable and default: the one table usage text and docs share. */
export const ENV: readonly EnvSpec[] = [
  {
    env: 'BUCKET',
    field: 'bucket',
    kind: 'string',
    help: 'the bucket to serve (required)',
    allowed: 'a valid S3 bucket name',
  },
  {
    env: 'PREFIX',
    field: 'prefix',
    kind: 'string',
    help: 'key prefix served, e.g. flags/ (a missing trailing / is added)',
    default: '',
    allowed: 'a key prefix not starting with /',
  },
  {
    env: 'ENDPOINT',
    field: 'endpoint',
    kind: 'string',
    help: 'S3-compatible endpoint of the real bucket (AWS S3 when unset)',
    allowed: 'an http(s) URL',
  },
  {
    env: 'REGION',
    field: 'region',
    kind: 'string',
    help: 'S3 region (else the AWS chain; us-east-1 with an endpoint)',
    allowed: 'a region name',
  },
  {
    env: 'PATH_STYLE',
    field: 'pathStyle',
    kind: 'boolean',
    help: 'path-style addressing of the real bucket',
    default: 'on when ENDPOINT is set',
    allowed: 'true or false',
  },
  {
    env: 'LISTEN',
    field: 'listen',
    kind: 'listen',
    help: 'address of the S3 API, /healthz, /readyz, /metrics and /-/refresh',
    default: '0.0.0.0:8080',
    allowed: 'PORT or HOST:PORT',
  },
  {
    env: 'INTERVAL',
    field: 'intervalMs',
    kind: 'duration',
    help: 'time between refreshes from the bucket',
    default: '5s',
    allowed: 'a duration from 500ms to 1h',
  },
  {
    env: 'TIMEOUT',
    field: 'timeoutMs',
    kind: 'duration',
    help: 'per-request timeout to the bucket',
    default: '10s',
    allowed: 'a duration from 100ms to 5m',
  },
  {
    env: 'MAX_OBJECTS',
    field: 'maxObjects',
    kind: 'integer',
    help: 'objects under the prefix at most (more: the state is refused)',
    default: '1000',
    allowed: 'a whole number from 1 to 100000',
  },
  {
    env: 'MAX_OBJECT_BYTES',
    field: 'maxObjectBytes',
    kind: 'size',
    help: 'size of one object at most',
    default: '64MiB',
    allowed: 'a size such as 64MiB, at most 1GiB',
  },
  {
    env: 'MAX_TOTAL_BYTES',
    field: 'maxTotalBytes',
    kind: 'size',
    help: 'size of every object together at most',
    default: '256MiB',
    allowed: 'a size such as 256MiB, at most 4GiB',
  },
  {
    env: 'REFRESH_TOKEN',
    field: 'refreshToken',
    kind: 'string',
    help: 'bearer token for POST /-/refresh (the push); unset disables it',
    allowed: 'at least 16 characters',
  },
  {
    env: 'PUSH_WAIT',
    field: 'pushWaitMs',
    kind: 'duration',
    help: 'longest a push waits for its refresh before answering 202',
    default: '10s',
    allowed: 'a duration up to 5m',
  },
  {
    env: 'LOG_LEVEL',
    field: 'logLevel',
    kind: 'string',
    help: 'fatal, error, warn, info, debug, trace or silent',
    default: 'info',
    allowed: 'fatal, error, warn, info, debug, trace or silent',
  },
  {
    env: 'SKIP_SCHEMA_CHECK',
    field: 'schemaCheck',
    kind: 'boolean',
    help: "serve what Flipt v1.61.1's schema would refuse (for newer sidecars)",
    default: 'false',
    allowed: 'true or false',
  },
];

export type CacheParseResult =
  | { kind: 'run'; config: CacheConfig }
  | { kind: 'help' }
  | { kind: 'version' }
  | { kind: 'invalid'; errors: string[] };

function parseBool(text: string): boolean | undefined {
  const t = text.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(t)) return true;
  if (['0', 'false', 'no', 'off'].includes(t)) return false;
  return undefined;
}

export function usage(): string {
  const lines = [
    'Usage: flipt-bucket-cache [--help] [--version]',
    '',
    'Configured by environment variables:',
  ];
  for (const e of ENV) {
    lines.push(
      `  ${ENV_PREFIX}${e.env}`,
      `      ${e.help}${e.default !== undefined ? ` (default: ${e.default || '""'})` : ''}`,
    );
  }
  lines.push('', 'S3 credentials for reading the bucket come only from the AWS default chain.');
  return `${lines.join('\n')}\n`;
}

export function parseCacheConfig(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): CacheParseResult {
  if (argv.includes('--help') || argv.includes('-h')) return { kind: 'help' };
  if (argv.includes('--version')) return { kind: 'version' };
  const errors: string[] = [];
  if (argv.length > 0)
    errors.push(`unexpected arguments ${JSON.stringify(argv)}: configure with ${ENV_PREFIX}* variables`);
  const raw: Record<string, unknown> = {};
  const sourceOf = new Map<string, EnvSpec>();
  for (const spec of ENV) {
    sourceOf.set(spec.field, spec);
    const text = env[ENV_PREFIX + spec.env]?.trim();
    const value = text === undefined || text === '' ? spec.default : text;
    const bad = () =>
      errors.push(`${ENV_PREFIX}${spec.env}: must be ${spec.allowed} (got ${JSON.stringify(value)})`);
    if (value === undefined) continue;
    switch (spec.kind) {
      case 'string':
        raw[spec.field] = value;
        break;
      case 'duration': {
        const ms = parseGoDuration(value);
        if (ms === undefined) bad();
        else raw[spec.field] = Math.round(ms);
        break;
      }
      case 'size': {
        const bytes = parseSize(value);
        if (bytes === undefined) bad();
        else raw[spec.field] = bytes;
        break;
      }
      case 'integer':
        if (!/^\d+$/.test(value)) bad();
        else raw[spec.field] = Number(value);
        break;
      case 'boolean': {
        if (spec.field === 'pathStyle' && text === undefined) break;
        const b = parseBool(value);
        if (b === undefined) bad();
        else raw[spec.field] = spec.field === 'schemaCheck' ? !b : b;
        break;
      }
      case 'listen': {
        const l = parseListen(value);
        if (!l) bad();
        else Object.assign(raw, l);
        break;
      }
    }
  }
  raw['pathStyle'] ??= raw['endpoint'] !== undefined;
  if (typeof raw['prefix'] === 'string' && raw['prefix'] !== '' && !raw['prefix'].endsWith('/'))
    raw['prefix'] += '/';
  if (raw['bucket'] === undefined) errors.push(`${ENV_PREFIX}BUCKET is required`);
  else if (RESERVED_NAMES.includes(raw['bucket'] as string)) {
    errors.push(
      `${ENV_PREFIX}BUCKET: "${String(raw['bucket'])}" collides with the cache's own paths; serve another bucket name`,
    );
  }
  if (errors.length === 0) {
    for (const e of Value.Errors(CACHE_CONFIG_SCHEMA, raw)) {
      const field = e.path.replace(/^\//, '');
      const spec =
        sourceOf.get(field) ?? (field === 'host' || field === 'port' ? sourceOf.get('listen') : undefined);
      errors.push(
        spec
          ? `${ENV_PREFIX}${spec.env}: must be ${spec.allowed} (got ${JSON.stringify(e.value)})`
          : `${field}: ${e.message}`,
      );
    }
  }
  if (errors.length > 0) return { kind: 'invalid', errors: [...new Set(errors)] };
  return { kind: 'run', config: raw as CacheConfig };
}
