// The injector's cache mode (storage.mode "cache"): sidecars point at the bucket cache's Service and
// carry no credential reference, only the fixed placeholder keys aws-sdk-go-v2 needs to sign.
import t from 'tap';
import { applyEnvOverrides, defaultConfig, parseConfig } from '../../src/core/config.ts';
import { resolveSettings } from '../../src/core/annotations.ts';
import { buildSidecar, CACHE_MODE_PLACEHOLDER_CREDENTIALS } from '../../src/core/sidecar.ts';

const envOf = (config: unknown) => {
  const parsed = parseConfig(config);
  if (!parsed.ok) throw new Error(parsed.errors.join('; '));
  const settings = resolveSettings(parsed.config);
  if (!settings.ok) throw new Error(settings.errors.join('; '));
  return buildSidecar(settings.settings).container.env ?? [];
};

t.test('direct S3 stays the default', async (t) => {
  t.equal(defaultConfig().storage.mode, 's3');
  const env = envOf({});
  t.ok(
    env.some((e) => e.name === 'AWS_ACCESS_KEY_ID' && e.valueFrom?.secretKeyRef),
    'Secret reference',
  );
});

t.test('cache mode: the cache endpoint, no Secret, placeholder keys', async (t) => {
  const env = envOf({ storage: { mode: 'cache', cacheEndpoint: 'http://cache.example:8080' } });
  t.notOk(
    env.some((e) => e.valueFrom !== undefined),
    'no valueFrom at all',
  );
  const byName = Object.fromEntries(env.map((e) => [e.name, e.value]));
  t.match(byName, {
    FLIPT_STORAGE_OBJECT_S3_ENDPOINT: 'http://cache.example:8080',
    AWS_ACCESS_KEY_ID: 'flipt-bucket-cache',
    AWS_SECRET_ACCESS_KEY: 'not-a-secret',
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_REQUEST_CHECKSUM_CALCULATION: 'when_required',
  });
  t.equal(CACHE_MODE_PLACEHOLDER_CREDENTIALS.length, 3);
});

t.test('config: env overrides and a cache mode without endpoint refused', async (t) => {
  const raw = applyEnvOverrides(
    {},
    { FLIPT_INJECTOR_STORAGE_MODE: 'cache', FLIPT_INJECTOR_CACHE_ENDPOINT: 'http://c:8080' },
  );
  const parsed = parseConfig(raw);
  t.match(parsed, { ok: true, config: { storage: { mode: 'cache', cacheEndpoint: 'http://c:8080' } } });
  t.match(parseConfig({ storage: { mode: 'cache', cacheEndpoint: '' } }), {
    ok: false,
    errors: [/storage\.cacheEndpoint: must be the bucket cache URL/],
  });
  t.match(parseConfig({ storage: { mode: 'proxy' } }), {
    ok: false,
    errors: [/storage\.mode: must be one of s3, cache/],
  });
});
