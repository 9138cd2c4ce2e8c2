import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import t from 'tap';
import { ConfigError, loadConfig } from '../../src/config-file.ts';
import {
  applyEnvOverrides,
  defaultConfig,
  INJECTOR_CONFIG_SCHEMA,
  parseConfig,
} from '../../src/core/config.ts';

t.test('defaults match the demo deployment', async (t) => {
  const config = defaultConfig();
  t.equal(config.sidecar.image, 'docker.flipt.io/flipt/flipt:v1.61.1', 'a pinned 1.x image');
  t.equal(config.sidecar.nativeSidecar, true, 'native sidecar by default');
  t.equal(config.sidecar.httpPort, 8080);
  t.equal(config.sidecar.grpcPort, 9000);
  t.equal(config.storage.bucket, 'flipt');
  t.equal(config.storage.endpoint, 'http://minio.flipt-system.svc.cluster.local:9000');
  t.equal(config.credentials.secretName, 'flipt-s3-credentials');
  t.equal(config.injector.namespace, 'flipt-system');
  t.same(parseConfig(undefined), { ok: true, config }, 'an empty file means the defaults');
  t.same(parseConfig(null), { ok: true, config });
});

t.test('a partial file keeps the other defaults', async (t) => {
  const result = parseConfig({
    storage: { bucket: 'team-flags', prefix: 'flags/' },
    sidecar: { httpPort: 18080 },
  });
  t.ok(result.ok);
  if (!result.ok) return;
  t.equal(result.config.storage.bucket, 'team-flags');
  t.equal(result.config.storage.prefix, 'flags/');
  t.equal(result.config.storage.region, 'us-east-1', 'untouched fields keep their defaults');
  t.equal(result.config.sidecar.httpPort, 18080);
  t.equal(result.config.sidecar.grpcPort, 9000);
});

t.test('every invalid field is named, all at once', async (t) => {
  const result = parseConfig({
    sidecar: { httpPort: 0, nativeSidecar: 'yes', image: 'Not An Image', logLevel: 'loud' },
    storage: { pollInterval: 'abc', bucket: 'UPPER' },
    credentials: { secretName: 'Bad_Name' },
    typo: true,
  });
  t.notOk(result.ok);
  if (result.ok) return;
  const text = result.errors.join('\n');
  t.match(text, /^sidecar\.httpPort: must be a port number from 1 to 65535 \(got 0\)$/m);
  t.match(text, /^sidecar\.nativeSidecar: must be "true" or "false" \(got "yes"\)$/m);
  t.match(text, /^sidecar\.image: must be an image reference/m);
  t.match(text, /^sidecar\.logLevel: must be one of debug, info, warn, error \(got "loud"\)$/m);
  t.match(text, /^storage\.pollInterval: must be a Go duration/m);
  t.match(text, /^storage\.bucket: must be an S3 bucket name/m);
  t.match(text, /^credentials\.secretName: must be a Secret name/m);
  t.match(text, /^typo: unknown field$/m);
});

t.test('checks beyond the schema: minimum poll interval, port clash, request over limit', async (t) => {
  const short = parseConfig({ storage: { pollInterval: '500ms' } });
  t.same(short.ok ? [] : short.errors, [
    'storage.pollInterval: must be a Go duration of at least 1s, such as 30s, 1m or 1m30s (got "500ms" (it is shorter than 1s))',
  ]);
  const clash = parseConfig({ sidecar: { httpPort: 9000 } });
  t.match(
    clash.ok ? '' : clash.errors.join(),
    /config sidecar\.httpPort and config sidecar\.grpcPort: the HTTP and gRPC ports must differ/,
  );
  const over = parseConfig({ sidecar: { resources: { requests: { cpu: '2' }, limits: { cpu: '1' } } } });
  t.match(
    over.ok ? '' : over.errors.join(),
    /config sidecar\.resources\.requests\.cpu: the cpu request 2 exceeds the cpu limit 1/,
  );
  const long = parseConfig({ credentials: { secretName: 'a'.repeat(254) } });
  t.match(long.ok ? '' : long.errors.join(), /credentials\.secretName: .*longer than 253 characters/);
});

t.test('a top level that is not a mapping is refused', async (t) => {
  for (const input of [[], 'text', 42]) {
    const result = parseConfig(input);
    t.notOk(result.ok, JSON.stringify(input));
    t.match(result.ok ? '' : result.errors[0], /^\(top level\)/);
  }
});

t.test('environment overrides apply over the file and are validated like it', async (t) => {
  const raw = applyEnvOverrides(
    { storage: { bucket: 'from-file' } },
    {
      FLIPT_INJECTOR_BUCKET: 'from-env',
      FLIPT_INJECTOR_HTTP_PORT: '18080',
      FLIPT_INJECTOR_NATIVE_SIDECAR: 'false',
      POD_NAMESPACE: 'injector',
      UNRELATED: 'x',
    },
  );
  const result = parseConfig(raw);
  t.ok(result.ok);
  if (!result.ok) return;
  t.equal(result.config.storage.bucket, 'from-env');
  t.equal(result.config.sidecar.httpPort, 18080);
  t.equal(result.config.sidecar.nativeSidecar, false);
  t.equal(result.config.injector.namespace, 'injector');

  const bad = parseConfig(
    applyEnvOverrides(undefined, {
      FLIPT_INJECTOR_HTTP_PORT: 'eighty',
      FLIPT_INJECTOR_NATIVE_SIDECAR: 'maybe',
    }),
  );
  t.notOk(bad.ok);
  t.match(bad.ok ? '' : bad.errors.join('\n'), /sidecar\.httpPort: must be a port number.*"eighty"/);
  t.match(
    bad.ok ? '' : bad.errors.join('\n'),
    /sidecar\.nativeSidecar: must be "true" or "false" \(got "maybe"\)/,
  );
  t.same(
    applyEnvOverrides([1], { FLIPT_INJECTOR_BUCKET: 'x' }),
    [1],
    'a non-mapping is left for validation to refuse',
  );
  t.same(
    applyEnvOverrides({ storage: 'flat' }, { FLIPT_INJECTOR_BUCKET: 'x' }),
    { storage: 'flat' },
    'a section that is not a mapping is left for validation to refuse',
  );
});

t.test('the schema is plain JSON Schema (reusable as the chart values schema)', async (t) => {
  const schema = JSON.parse(JSON.stringify(INJECTOR_CONFIG_SCHEMA));
  t.equal(schema.type, 'object');
  t.equal(schema.additionalProperties, false);
  t.equal(schema.properties.sidecar.properties.httpPort.maximum, 65535);
  t.type(schema.properties.storage.properties.pollInterval.pattern, 'string');
});

t.test('loadConfig reads YAML files and stops on errors naming the field', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'flipt-config-'));
  const good = join(dir, 'good.yaml');
  await writeFile(good, 'storage:\n  bucket: team-flags\n');
  const config = await loadConfig(good, { FLIPT_INJECTOR_PREFIX: 'env/' });
  t.equal(config.storage.bucket, 'team-flags');
  t.equal(config.storage.prefix, 'env/');

  const bad = join(dir, 'bad.yaml');
  await writeFile(bad, 'storage:\n  pollInterval: soon\n');
  await t.rejects(loadConfig(bad, {}), {
    name: 'ConfigError',
    message: /storage\.pollInterval: must be a Go duration/,
  });

  const broken = join(dir, 'broken.yaml');
  await writeFile(broken, 'storage: [unclosed\n');
  await t.rejects(loadConfig(broken, {}), { message: /not valid YAML/ });
  await t.rejects(loadConfig(join(dir, 'missing.yaml'), {}), { message: /cannot read the file/ });

  const error = new ConfigError('x', ['a', 'b']);
  t.same(error.errors, ['a', 'b']);
  t.equal(error.message, 'invalid configuration (x):\n  - a\n  - b');
  t.same(await loadConfig(undefined, {}), defaultConfig(), 'no file: built-in defaults');
});

t.test('the config schema is plain JSON Schema: Ajv in strict mode compiles it and agrees', async (t) => {
  const ajv = new Ajv({ strict: true, allowUnionTypes: true, useDefaults: true });
  const validate = ajv.compile(JSON.parse(JSON.stringify(INJECTOR_CONFIG_SCHEMA)));
  const filled: unknown = {};
  t.ok(validate(filled), 'an empty document is valid once defaults are filled');
  t.same(filled, defaultConfig(), "Ajv's defaults are the injector's defaults");
  t.notOk(validate({ storage: { pollInterval: 'soon' } }), 'and it refuses what parseConfig refuses');
  t.notOk(validate({ sidecar: { unknown: true } }));
});
