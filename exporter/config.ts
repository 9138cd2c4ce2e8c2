// Command line and environment → one validated ExporterConfig, or every problem at once. Flags win
// over environment variables (FLIPT_EXPORTER_*), which win over defaults. Pure: argv and env are
// passed in. S3 credentials are deliberately not configurable here: they come only from the AWS
// default chain (environment, profile, web identity, instance role), never from a flag.
import { parseArgs } from 'node:util';
import { MIN_TOKEN_LENGTH, parseNotifyUrl } from './notify.ts';
import { parseGoDuration } from '../common/go-duration.ts';
import { isS3BucketName } from '../common/s3-bucket.ts';
import { parseListen, parseSize, type ListenAddress } from '../common/options.ts';
import { DEFAULT_MARKER_NAMESPACE, MARKER_NAMESPACE_OR_NONE_PATTERN } from '../common/export-marker.ts';

export interface ExporterConfig {
  fliptUrl: string;
  fliptToken: string | undefined;
  bucket: string;
  prefix: string;
  key: string;
  /** prefix + key: the object the exporter writes. */
  objectKey: string;
  endpoint: string | undefined;
  region: string | undefined;
  pathStyle: boolean;
  /** Namespace keys to export; undefined = every namespace. */
  namespaces: string[] | undefined;
  watch: boolean;
  intervalMs: number;
  allowShrink: boolean;
  maxShrink: number;
  timeoutMs: number;
  concurrency: number;
  s3Retries: number;
  fliptRetries: number;
  listen: ListenAddress;
  logLevel: string;
  schemaCheck: boolean;
  /** Flags per YAML document; 0: one document per namespace. */
  flagsPerDocument: number;
  /** The export marker namespace written after the master's namespaces; "" writes none. */
  markerNamespace: string;
  /** The whole run (a watch tick) must end within this. */
  deadlineMs: number;
  /** Pages of one list read at most. */
  maxPages: number;
  /** Bytes of one master answer read at most. */
  maxResponseBytes: number;
  /** Bucket cache push endpoints (exporter/notify.ts); empty: no push. */
  notifyUrls: string[];
  /** The push's bearer token from FLIPT_EXPORTER_NOTIFY_TOKEN (never a flag). */
  notifyToken: string | undefined;
  /** A file holding the push token (a mounted Secret), re-read before each push. */
  notifyTokenFile: string | undefined;
  /** Per name lookup and per push request. */
  notifyTimeoutMs: number;
}

export type ParseResult =
  | { kind: 'run'; config: ExporterConfig; warnings: string[] }
  | { kind: 'help' }
  | { kind: 'version' }
  | { kind: 'invalid'; errors: string[] };

type Kind = 'string' | 'boolean';

interface OptionSpec {
  name: string;
  type: Kind;
  env: string;
  help: string;
  default?: string;
  /** Repeatable flag (the environment variable takes a comma-separated list). */
  multiple?: boolean;
}

export const ENV_PREFIX = 'FLIPT_EXPORTER_';

/** Every option, its environment variable and its default: the one table usage text and docs share. */
export const OPTIONS: readonly OptionSpec[] = [
  { name: 'flipt-url', type: 'string', env: 'FLIPT_URL', help: 'base URL of the Flipt master (required)' },
  {
    name: 'flipt-token',
    type: 'string',
    env: 'FLIPT_TOKEN',
    help: 'bearer token for the master (prefer the environment variable: flags show in ps)',
  },
  { name: 'bucket', type: 'string', env: 'BUCKET', help: 'S3 bucket to write to (required)' },
  {
    name: 'prefix',
    type: 'string',
    env: 'PREFIX',
    help: 'key prefix, e.g. flags/ (a missing trailing / is added)',
    default: '',
  },
  { name: 'key', type: 'string', env: 'KEY', help: 'object name under the prefix', default: 'features.yml' },
  {
    name: 'endpoint',
    type: 'string',
    env: 'ENDPOINT',
    help: 'S3-compatible endpoint, e.g. http://minio:9000 (AWS S3 when unset)',
  },
  {
    name: 'region',
    type: 'string',
    env: 'REGION',
    help: 'S3 region (else the AWS chain: AWS_REGION, profile; us-east-1 with --endpoint)',
  },
  {
    name: 'path-style',
    type: 'boolean',
    env: 'PATH_STYLE',
    help: 'path-style addressing (--no-path-style to turn off)',
    default: 'on when --endpoint is set',
  },
  {
    name: 'namespaces',
    type: 'string',
    env: 'NAMESPACES',
    help: 'comma-separated namespace keys',
    default: 'all',
  },
  {
    name: 'watch',
    type: 'boolean',
    env: 'WATCH',
    help: 'keep exporting every --interval and serve /healthz, /metrics',
    default: 'false',
  },
  {
    name: 'interval',
    type: 'string',
    env: 'INTERVAL',
    help: 'time between exports in watch mode (Go duration)',
    default: '30s',
  },
  {
    name: 'allow-shrink',
    type: 'boolean',
    env: 'ALLOW_SHRINK',
    help: 'allow an export that removes every flag or more than --max-shrink of them',
    default: 'false',
  },
  {
    name: 'max-shrink',
    type: 'string',
    env: 'MAX_SHRINK',
    help: 'largest share of flags one export may remove (0-1 or N%)',
    default: '0.25',
  },
  {
    name: 'timeout',
    type: 'string',
    env: 'TIMEOUT',
    help: 'per-request timeout for the master and the bucket',
    default: '10s',
  },
  {
    name: 'concurrency',
    type: 'string',
    env: 'CONCURRENCY',
    help: 'per-flag requests to the master in flight at once (more only adds contention on a SQLite master)',
    default: '2',
  },
  {
    name: 'deadline',
    type: 'string',
    env: 'DEADLINE',
    help: 'the whole run (in watch mode each tick) fails, writing nothing, if it takes longer',
    default: '5m',
  },
  {
    name: 'max-pages',
    type: 'string',
    env: 'MAX_PAGES',
    help: 'pages of one list (100 items each) read at most before the run fails',
    default: '1000',
  },
  {
    name: 'max-response-size',
    type: 'string',
    env: 'MAX_RESPONSE_SIZE',
    help: 'largest answer read from the master (bytes, or with KiB, MiB, GiB)',
    default: '64MiB',
  },
  {
    name: 'flags-per-document',
    type: 'string',
    env: 'FLAGS_PER_DOCUMENT',
    help: "flags per YAML document of a namespace, bounding each sidecar's peak memory (0: no limit)",
    default: '100',
  },
  {
    name: 'marker-namespace',
    type: 'string',
    env: 'MARKER_NAMESPACE',
    help: 'namespace without flags written into every export, which the injected startup probe waits for ("" for none)',
    default: DEFAULT_MARKER_NAMESPACE,
  },
  {
    name: 's3-retries',
    type: 'string',
    env: 'S3_RETRIES',
    help: 'retries of a failed S3 request (backoff 0.25s doubling, up to 8s)',
    default: '5',
  },
  {
    name: 'flipt-retries',
    type: 'string',
    env: 'FLIPT_RETRIES',
    help: 'retries of a master request after no answer, 429, 502, 503 or 504',
    default: '2',
  },
  {
    name: 'listen',
    type: 'string',
    env: 'LISTEN',
    help: 'address for /healthz and /metrics in watch mode',
    default: ':9090',
  },
  {
    name: 'log-level',
    type: 'string',
    env: 'LOG_LEVEL',
    help: 'fatal, error, warn, info, debug or trace',
    default: 'info',
  },
  {
    name: 'notify-url',
    type: 'string',
    env: 'NOTIFY_URL',
    multiple: true,
    help: 'bucket cache to push a refresh to after an upload that changed the object, e.g. the headless http://flipt-bucket-cache-peers.flipt-system.svc:8080 (every address of the name is pushed; repeatable or comma-separated; needs the token)',
  },
  {
    name: 'notify-token-file',
    type: 'string',
    env: 'NOTIFY_TOKEN_FILE',
    help: "file holding the push's bearer token (a mounted Secret), re-read before each push; or set FLIPT_EXPORTER_NOTIFY_TOKEN",
  },
  {
    name: 'notify-timeout',
    type: 'string',
    env: 'NOTIFY_TIMEOUT',
    help: 'per name lookup and per push request; a failed push is logged and counted, never retried and never fails the export',
    default: '5s',
  },
  {
    name: 'skip-schema-check',
    type: 'boolean',
    env: 'SKIP_SCHEMA_CHECK',
    help: "upload even what Flipt v1.61.1's schema would refuse (for newer sidecars)",
    default: 'false',
  },
];

const LOG_LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);
const NAMESPACE_KEY = /^[-_A-Za-z0-9]+$/;
const FLIPT_FILE_SUFFIXES = ['features.yml', 'features.yaml'];

function parseBool(text: string): boolean | undefined {
  const t = text.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(t)) return true;
  if (['0', 'false', 'no', 'off', ''].includes(t)) return false;
  return undefined;
}

function isHttpUrl(text: string): boolean {
  try {
    const u = new URL(text);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}

export function usage(): string {
  const lines = [
    'Usage: flipt-exporter --flipt-url URL --bucket BUCKET [options]',
    '',
    "Copies every namespace's flags and segments from a Flipt v1 master into one S3 object",
    "(Flipt's declarative format, one YAML document per namespace) for read-only Flipt sidecars.",
    'Uploads only when the content changed; exits 0 when uploaded or unchanged, 1 on failure, 2 on bad usage.',
    '',
    'Options (each also settable as the environment variable shown):',
  ];
  for (const o of OPTIONS) {
    const flag = o.type === 'boolean' ? `--${o.name}` : `--${o.name} VALUE`;
    const dflt = o.default !== undefined && o.default !== '' ? ` [default: ${o.default}]` : '';
    lines.push(`  ${flag.padEnd(26)} ${ENV_PREFIX}${o.env}`, `  ${''.padEnd(26)} ${o.help}${dflt}`);
  }
  lines.push(
    '  --help, --version',
    '',
    'S3 credentials come only from the AWS default chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY,',
    'AWS_PROFILE, web identity/IRSA, instance role), never from a flag. The push token likewise:',
    `${ENV_PREFIX}NOTIFY_TOKEN or --notify-token-file, never a flag.`,
  );
  return `${lines.join('\n')}\n`;
}

export function parseConfig(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): ParseResult {
  const errors: string[] = [];
  const warnings: string[] = [];

  const credentialLike = argv.find((a) => /^--?(aws-)?(access|secret|session|credential)/i.test(a));
  if (credentialLike !== undefined) {
    return {
      kind: 'invalid',
      errors: [
        `${credentialLike.split('=')[0]}: S3 credentials are never taken from flags; set AWS_ACCESS_KEY_ID and ` +
          'AWS_SECRET_ACCESS_KEY (or AWS_PROFILE, web identity, an instance role) in the environment',
      ],
    };
  }

  const tokenFlag = argv.find((a) => /^--notify-token(=|$)/.test(a));
  if (tokenFlag !== undefined) {
    return {
      kind: 'invalid',
      errors: [
        `--notify-token: the push token is never taken from a flag (flags show in ps); set ${ENV_PREFIX}NOTIFY_TOKEN ` +
          'or --notify-token-file PATH',
      ],
    };
  }

  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: {
        ...Object.fromEntries(OPTIONS.map((o) => [o.name, { type: o.type, multiple: o.multiple ?? false }])),
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean' },
      },
      strict: true,
      allowPositionals: false,
      allowNegative: true,
    });
  } catch (err) {
    return { kind: 'invalid', errors: [err instanceof Error ? err.message : String(err)] };
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  if (values['help'] === true) return { kind: 'help' };
  if (values['version'] === true) return { kind: 'version' };

  /** The flag's value, else the environment's, else undefined; `source` names where it came from. */
  function raw(name: string): { value: string | boolean; source: string } | undefined {
    const spec = OPTIONS.find((o) => o.name === name) as OptionSpec;
    const flag = values[name];
    if (flag !== undefined) return { value: flag, source: `--${name}` };
    const fromEnv = env[`${ENV_PREFIX}${spec.env}`];
    if (fromEnv !== undefined && fromEnv !== '')
      return { value: fromEnv, source: `${ENV_PREFIX}${spec.env}` };
    return undefined;
  }
  function text(name: string): string | undefined {
    const r = raw(name);
    return r === undefined ? undefined : String(r.value).trim();
  }
  function flag(name: string, fallback: boolean): boolean {
    const r = raw(name);
    if (r === undefined) return fallback;
    if (typeof r.value === 'boolean') return r.value;
    const b = parseBool(r.value);
    if (b === undefined) {
      errors.push(`${r.source}: expected true or false, got ${JSON.stringify(r.value)}`);
      return fallback;
    }
    return b;
  }
  function integer(name: string, fallback: number, min: number, max: number): number {
    const r = raw(name);
    if (r === undefined) return fallback;
    const n = Number(r.value);
    if (!Number.isInteger(n) || n < min || n > max) {
      errors.push(
        `${r.source}: expected a whole number from ${min} to ${max}, got ${JSON.stringify(r.value)}`,
      );
      return fallback;
    }
    return n;
  }
  function duration(name: string, fallback: string, minMs: number): number {
    const r = raw(name);
    const value = r === undefined ? fallback : String(r.value).trim();
    const ms = parseGoDuration(value);
    if (ms === undefined || ms < minMs) {
      errors.push(
        `${r?.source ?? `--${name}`}: expected a duration of at least ${minMs} ms such as 500ms, 5s or 1m30s, got ${JSON.stringify(value)}`,
      );
      return parseGoDuration(fallback) as number;
    }
    return ms;
  }

  const fliptUrl = text('flipt-url') ?? '';
  if (fliptUrl === '') errors.push(`--flipt-url (or ${ENV_PREFIX}FLIPT_URL) is required`);
  else if (!isHttpUrl(fliptUrl))
    errors.push(`--flipt-url: expected an http(s) URL, got ${JSON.stringify(fliptUrl)}`);

  const bucket = text('bucket') ?? '';
  if (bucket === '') errors.push(`--bucket (or ${ENV_PREFIX}BUCKET) is required`);
  else if (!isS3BucketName(bucket)) {
    errors.push(`--bucket: ${JSON.stringify(bucket)} is not a valid S3 bucket name`);
  }

  let prefix = text('prefix') ?? '';
  if (prefix.startsWith('/')) errors.push(`--prefix: must not start with "/", got ${JSON.stringify(prefix)}`);
  // Flipt's prefix is literal and its docs ask for a trailing slash; add it rather than write
  // "flagsfeatures.yml" next to the prefix the sidecars list.
  if (prefix !== '' && !prefix.endsWith('/')) prefix = `${prefix}/`;

  const key = text('key') ?? 'features.yml';
  if (key === '' || key.startsWith('/') || key.endsWith('/')) {
    errors.push(`--key: expected an object name such as features.yml, got ${JSON.stringify(key)}`);
  } else if (!FLIPT_FILE_SUFFIXES.some((s) => key.endsWith(s))) {
    warnings.push(
      `--key ${key}: Flipt reads only keys ending in features.yml or features.yaml unless the bucket has a ` +
        '.flipt.yml index naming this key',
    );
  }

  const endpoint = text('endpoint');
  if (endpoint !== undefined && !isHttpUrl(endpoint)) {
    errors.push(`--endpoint: expected an http(s) URL, got ${JSON.stringify(endpoint)}`);
  }

  let namespaces: string[] | undefined;
  const nsText = text('namespaces');
  if (nsText !== undefined) {
    namespaces = [
      ...new Set(
        nsText
          .split(',')
          .map((n) => n.trim())
          .filter((n) => n !== ''),
      ),
    ];
    const bad = namespaces.filter((n) => !NAMESPACE_KEY.test(n));
    if (namespaces.length === 0) errors.push('--namespaces: no namespace key given');
    if (bad.length > 0)
      errors.push(`--namespaces: not namespace keys: ${bad.map((b) => JSON.stringify(b)).join(', ')}`);
  }

  let maxShrink = 0.25;
  const shrinkText = text('max-shrink');
  if (shrinkText !== undefined) {
    const percent = shrinkText.endsWith('%');
    const n = Number(percent ? shrinkText.slice(0, -1) : shrinkText) / (percent ? 100 : 1);
    if (!Number.isFinite(n) || n < 0 || n > 1 || shrinkText === '' || shrinkText === '%') {
      errors.push(
        `--max-shrink: expected a share from 0 to 1 or a percentage, got ${JSON.stringify(shrinkText)}`,
      );
    } else {
      maxShrink = n;
    }
  }

  const listenText = text('listen') ?? ':9090';
  const listen = parseListen(listenText);
  if (!listen) errors.push(`--listen: expected [host]:port, got ${JSON.stringify(listenText)}`);

  const sizeText = text('max-response-size') ?? '64MiB';
  let maxResponseBytes = parseSize(sizeText);
  if (maxResponseBytes === undefined || maxResponseBytes < 1024) {
    errors.push(
      `--max-response-size: expected a size of at least 1KiB such as 16MiB, got ${JSON.stringify(sizeText)}`,
    );
    maxResponseBytes = 64 * 1024 * 1024;
  }

  const markerNamespace = text('marker-namespace') ?? DEFAULT_MARKER_NAMESPACE;
  if (!new RegExp(MARKER_NAMESPACE_OR_NONE_PATTERN).test(markerNamespace)) {
    errors.push(
      `--marker-namespace: expected a Flipt namespace key (letters, digits, "-", "_", ",") or "", got ${JSON.stringify(markerNamespace)}`,
    );
  }
  if (markerNamespace !== '' && namespaces?.includes(markerNamespace)) {
    errors.push(
      `--namespaces: ${markerNamespace} is the export marker (--marker-namespace); choose another marker`,
    );
  }

  // Repeated flags win over the environment's comma-separated list.
  const notifyFlags = values['notify-url'] as unknown as string[] | undefined;
  const notifySource = notifyFlags !== undefined ? '--notify-url' : `${ENV_PREFIX}NOTIFY_URL`;
  const notifyTexts = [
    ...new Set(
      (notifyFlags ?? [env[`${ENV_PREFIX}NOTIFY_URL`] ?? ''])
        .flatMap((v) => v.split(','))
        .map((v) => v.trim())
        .filter((v) => v !== ''),
    ),
  ];
  const notifyUrls: string[] = [];
  for (const text of notifyTexts) {
    const parsedUrl = parseNotifyUrl(text);
    if ('error' in parsedUrl) errors.push(`${notifySource}: ${parsedUrl.error}`);
    else notifyUrls.push(parsedUrl.url.href);
  }
  if (notifyUrls.length > 16) errors.push(`${notifySource}: at most 16 URLs, got ${notifyUrls.length}`);
  const notifyToken = env[`${ENV_PREFIX}NOTIFY_TOKEN`]?.trim() || undefined;
  const notifyTokenFile = text('notify-token-file') || undefined;
  if (notifyToken !== undefined && notifyToken.length < MIN_TOKEN_LENGTH)
    errors.push(`${ENV_PREFIX}NOTIFY_TOKEN: at least ${MIN_TOKEN_LENGTH} characters, as the cache requires`);
  if (notifyToken !== undefined && notifyTokenFile !== undefined)
    errors.push(`${ENV_PREFIX}NOTIFY_TOKEN and --notify-token-file: set one of the two`);
  if (notifyUrls.length > 0 && notifyToken === undefined && notifyTokenFile === undefined)
    errors.push(
      `${notifySource}: the push needs a token: set ${ENV_PREFIX}NOTIFY_TOKEN or --notify-token-file (the cache's FLIPT_CACHE_REFRESH_TOKEN)`,
    );

  const logLevel = (text('log-level') ?? 'info').toLowerCase();
  if (!LOG_LEVELS.has(logLevel)) errors.push(`--log-level: expected one of ${[...LOG_LEVELS].join(', ')}`);

  const config: ExporterConfig = {
    fliptUrl,
    fliptToken: text('flipt-token') || undefined,
    bucket,
    prefix,
    key,
    objectKey: `${prefix}${key}`,
    endpoint,
    region: text('region') || undefined,
    pathStyle: flag('path-style', endpoint !== undefined),
    namespaces,
    watch: flag('watch', false),
    intervalMs: duration('interval', '30s', 1_000),
    allowShrink: flag('allow-shrink', false),
    maxShrink,
    timeoutMs: duration('timeout', '10s', 100),
    concurrency: integer('concurrency', 2, 1, 64),
    s3Retries: integer('s3-retries', 5, 0, 20),
    fliptRetries: integer('flipt-retries', 2, 0, 10),
    listen: listen ?? { host: '0.0.0.0', port: 9090 },
    logLevel,
    schemaCheck: !flag('skip-schema-check', false),
    flagsPerDocument: integer('flags-per-document', 100, 0, 1_000_000),
    markerNamespace,
    deadlineMs: duration('deadline', '5m', 1_000),
    maxPages: integer('max-pages', 1_000, 1, 1_000_000),
    maxResponseBytes,
    notifyUrls,
    notifyToken,
    notifyTokenFile,
    notifyTimeoutMs: duration('notify-timeout', '5s', 100),
  };
  if (errors.length > 0) return { kind: 'invalid', errors };
  if (!config.watch && raw('interval') !== undefined)
    warnings.push('--interval has no effect without --watch');
  if (config.deadlineMs < config.timeoutMs)
    warnings.push('--deadline is shorter than --timeout: a single slow request ends the run');
  if (notifyUrls.length === 0 && (notifyToken !== undefined || notifyTokenFile !== undefined))
    warnings.push('a push token is set but no --notify-url: nothing is pushed');
  return { kind: 'run', config, warnings };
}
