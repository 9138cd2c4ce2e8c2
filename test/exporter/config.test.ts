// Configuration: flags over FLIPT_EXPORTER_* over defaults, validated once, every problem reported
// together, and no way at all to pass S3 credentials as flags.
import t from 'tap';
import { parseGoDuration } from '../../common/go-duration.ts';
import { parseListen, parseSize } from '../../common/options.ts';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { OPTIONS, parseConfig, usage, type ExporterConfig } from '../../exporter/config.ts';

const required = ['--flipt-url', 'http://flipt:8080', '--bucket', 'flags'];

function config(argv: string[], env: Record<string, string> = {}): ExporterConfig {
  const r = parseConfig(argv, env);
  if (r.kind !== 'run') throw new Error(`expected a config, got ${JSON.stringify(r)}`);
  return r.config;
}

function errors(argv: string[], env: Record<string, string> = {}): string {
  const r = parseConfig(argv, env);
  return r.kind === 'invalid' ? r.errors.join('\n') : '';
}

t.test('defaults', async (t) => {
  t.same(config(required), {
    fliptUrl: 'http://flipt:8080',
    fliptToken: undefined,
    bucket: 'flags',
    prefix: '',
    key: 'features.yml',
    objectKey: 'features.yml',
    endpoint: undefined,
    region: undefined,
    pathStyle: false,
    namespaces: undefined,
    watch: false,
    intervalMs: 30_000,
    allowShrink: false,
    maxShrink: 0.25,
    timeoutMs: 10_000,
    concurrency: 2,
    s3Retries: 5,
    fliptRetries: 2,
    listen: { host: '0.0.0.0', port: 9090 },
    logLevel: 'info',
    schemaCheck: true,
    flagsPerDocument: 100,
    markerNamespace: 'flipt-export',
    deadlineMs: 300_000,
    maxPages: 1_000,
    maxResponseBytes: 64 * 1024 * 1024,
    notifyUrls: [],
    notifyToken: undefined,
    notifyTokenFile: undefined,
    notifyTimeoutMs: 5_000,
  });
});

t.test('the run bounds: deadline, pages, answer size, document size', async (t) => {
  const c = config([
    ...required,
    '--deadline',
    '90s',
    '--max-pages',
    '50',
    '--max-response-size',
    '512KiB',
    '--flags-per-document',
    '0',
  ]);
  t.match(c, { deadlineMs: 90_000, maxPages: 50, maxResponseBytes: 512 * 1024, flagsPerDocument: 0 });
  const e = config(required, {
    FLIPT_EXPORTER_DEADLINE: '2m',
    FLIPT_EXPORTER_MAX_PAGES: '7',
    FLIPT_EXPORTER_MAX_RESPONSE_SIZE: '1GiB',
    FLIPT_EXPORTER_FLAGS_PER_DOCUMENT: '250',
  });
  t.match(e, { deadlineMs: 120_000, maxPages: 7, maxResponseBytes: 1024 ** 3, flagsPerDocument: 250 });
  t.equal(parseSize('2048'), 2048);
  t.equal(parseSize('64MiB'), 64 * 1024 * 1024);
  for (const bad of ['', 'lots', '1.5MiB', '-1', '10MB']) t.equal(parseSize(bad), undefined, bad);
  const message = errors([
    ...required,
    '--deadline',
    'soon',
    '--max-pages',
    '0',
    '--max-response-size',
    '12',
    '--flags-per-document=-1',
  ]);
  t.match(message, /--deadline: expected a duration/);
  t.match(message, /--max-pages: expected a whole number from 1/);
  t.match(message, /--max-response-size: expected a size of at least 1KiB/);
  t.match(message, /--flags-per-document: expected a whole number from 0/);
});

t.test('every option the issue names exists, each with an environment variable', async (t) => {
  const names = OPTIONS.map((o) => o.name);
  for (const name of [
    'flipt-url',
    'flipt-token',
    'bucket',
    'prefix',
    'key',
    'endpoint',
    'region',
    'namespaces',
    'watch',
    'interval',
    'allow-shrink',
  ]) {
    t.ok(names.includes(name), `--${name}`);
  }
  t.ok(OPTIONS.every((o) => /^[A-Z0-9_]+$/.test(o.env)));
  for (const o of OPTIONS) t.match(usage(), `--${o.name}`);
});

t.test('docs/exporter.md documents every option with its environment variable', async (t) => {
  const docs = readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'exporter.md'), 'utf8');
  for (const o of OPTIONS) {
    t.match(docs, new RegExp(`\\| \`--${o.name}\`\\s+\\| \`FLIPT_EXPORTER_${o.env}\``), `--${o.name}`);
  }
});

t.test('the environment configures everything, flags override it', async (t) => {
  const env = {
    FLIPT_EXPORTER_FLIPT_URL: 'https://flipt.example',
    FLIPT_EXPORTER_FLIPT_TOKEN: 'tok',
    FLIPT_EXPORTER_BUCKET: 'env-bucket',
    FLIPT_EXPORTER_PREFIX: 'flags',
    FLIPT_EXPORTER_KEY: 'all.features.yaml',
    FLIPT_EXPORTER_ENDPOINT: 'http://minio:9000',
    FLIPT_EXPORTER_REGION: 'eu-west-1',
    FLIPT_EXPORTER_NAMESPACES: 'default, production,default',
    FLIPT_EXPORTER_WATCH: 'true',
    FLIPT_EXPORTER_INTERVAL: '5s',
    FLIPT_EXPORTER_ALLOW_SHRINK: '1',
    FLIPT_EXPORTER_MAX_SHRINK: '40%',
    FLIPT_EXPORTER_TIMEOUT: '1m30s',
    FLIPT_EXPORTER_CONCURRENCY: '16',
    FLIPT_EXPORTER_LISTEN: '127.0.0.1:9102',
    FLIPT_EXPORTER_LOG_LEVEL: 'DEBUG',
    FLIPT_EXPORTER_SKIP_SCHEMA_CHECK: 'yes',
  };
  const c = config([], env);
  t.match(c, {
    fliptUrl: 'https://flipt.example',
    fliptToken: 'tok',
    bucket: 'env-bucket',
    prefix: 'flags/',
    objectKey: 'flags/all.features.yaml',
    endpoint: 'http://minio:9000',
    region: 'eu-west-1',
    pathStyle: true,
    namespaces: ['default', 'production'],
    watch: true,
    intervalMs: 5_000,
    allowShrink: true,
    maxShrink: 0.4,
    timeoutMs: 90_000,
    concurrency: 16,
    listen: { host: '127.0.0.1', port: 9102 },
    logLevel: 'debug',
    schemaCheck: false,
  });
  const o = config(
    ['--bucket', 'flag-bucket', '--no-watch', '--no-path-style', '--interval', '2s', '--prefix', 'a/b/'],
    env,
  );
  t.match(o, {
    bucket: 'flag-bucket',
    watch: false,
    pathStyle: false,
    intervalMs: 2_000,
    objectKey: 'a/b/all.features.yaml',
  });
});

t.test('path-style follows the endpoint unless set', async (t) => {
  t.equal(
    config([...required, '--endpoint', 'http://127.0.0.1:9000']).pathStyle,
    true,
    'custom endpoint: on',
  );
  t.equal(config(required).pathStyle, false, 'AWS: virtual-hosted');
  t.equal(config([...required, '--path-style']).pathStyle, true);
  t.equal(config([...required, '--endpoint', 'http://minio', '--no-path-style']).pathStyle, false);
});

t.test('credentials cannot be passed as flags', async (t) => {
  t.match(
    errors([...required, '--access-key-id', 'AKIA']),
    /S3 credentials are never taken from flags; set AWS_ACCESS_KEY_ID/,
  );
  t.match(
    errors([...required, '--secret-access-key=x']),
    /--secret-access-key: S3 credentials are never taken from flags/,
  );
  t.match(errors([...required, '--aws-session-token', 'x']), /never taken from flags/);
});

t.test('every problem is reported at once', async (t) => {
  const all = errors([
    '--flipt-url',
    'ftp://x',
    '--bucket',
    'Bad_Bucket',
    '--interval',
    '5',
    '--concurrency',
    '0',
    '--max-shrink',
    '2',
    '--namespaces',
    'a b',
    '--listen',
    'x:y',
    '--endpoint',
    'minio:9000',
    '--log-level',
    'loud',
    '--prefix',
    '/abs',
    '--key',
    'dir/',
  ]);
  for (const expected of [
    /--flipt-url: expected an http\(s\) URL/,
    /--bucket: "Bad_Bucket" is not a valid S3 bucket name/,
    /--interval: expected a duration of at least 1000 ms such as 500ms, 5s or 1m30s, got "5"/,
    /--concurrency: expected a whole number from 1 to 64, got "0"/,
    /--max-shrink: expected a share from 0 to 1 or a percentage, got "2"/,
    /--namespaces: not namespace keys: "a b"/,
    /--listen: expected \[host\]:port, got "x:y"/,
    /--endpoint: expected an http\(s\) URL, got "minio:9000"/,
    /--log-level: expected one of/,
    /--prefix: must not start with "\/"/,
    /--key: expected an object name/,
  ]) {
    t.match(all, expected);
  }
  t.match(
    errors([]),
    /--flipt-url \(or FLIPT_EXPORTER_FLIPT_URL\) is required[\s\S]*--bucket \(or FLIPT_EXPORTER_BUCKET\) is required/,
  );
  t.match(errors([...required, '--no-such-flag']), /Unknown option '--no-such-flag'/);
  t.match(errors([...required, 'positional']), /positional/);
  t.match(
    errors(required, { FLIPT_EXPORTER_WATCH: 'maybe' }),
    /FLIPT_EXPORTER_WATCH: expected true or false, got "maybe"/,
  );
});

t.test('warnings for settings that work but probably are not meant', async (t) => {
  const r = parseConfig([...required, '--key', 'flags.yml', '--interval', '5s'], {});
  t.equal(r.kind, 'run');
  if (r.kind === 'run') {
    t.match(r.warnings.join('\n'), /Flipt reads only keys ending in features\.yml or features\.yaml/);
    t.match(r.warnings.join('\n'), /--interval has no effect without --watch/);
  }
});

t.test('help and version', async (t) => {
  t.same(parseConfig(['--help'], {}), { kind: 'help' });
  t.same(parseConfig(['-h'], {}), { kind: 'help' });
  t.same(parseConfig(['--version'], {}), { kind: 'version' });
  t.match(usage(), /credentials come only from the AWS default chain/);
});

t.test('durations and listen addresses', async (t) => {
  t.equal(parseGoDuration('500ms'), 500);
  t.equal(parseGoDuration('1h2m3s'), 3_723_000);
  t.equal(parseGoDuration('1.5s'), 1_500);
  t.equal(parseGoDuration('5'), undefined);
  t.equal(parseGoDuration('5 s'), undefined);
  t.same(parseListen(':9090'), { host: '0.0.0.0', port: 9090 });
  t.same(parseListen('9090'), { host: '0.0.0.0', port: 9090 });
  t.same(parseListen('[::1]:80'), { host: '::1', port: 80 });
  t.equal(parseListen('host:99999'), undefined);
});

t.test('--marker-namespace: a Flipt namespace key or "", never one of the exported namespaces', async (t) => {
  const ok = parseConfig([...required, '--marker-namespace', 'ready_1'], {});
  t.match(ok, { kind: 'run', config: { markerNamespace: 'ready_1' } });
  t.match(parseConfig([...required, '--marker-namespace', ''], {}), {
    kind: 'run',
    config: { markerNamespace: '' },
  });
  t.match(
    errors([...required, '--marker-namespace', 'has space']),
    /--marker-namespace: expected a Flipt namespace key/,
  );
  t.match(
    errors([...required, '--namespaces', 'a,flipt-export']),
    /--namespaces: flipt-export is the export marker/,
  );
});
