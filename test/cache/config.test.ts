// The cache's configuration: defaults, every bad value named by its variable, all at once.
import t from 'tap';
import { parseCacheConfig, usage } from '../../cache/config.ts';

t.test('defaults and normalisation', async (t) => {
  const r = parseCacheConfig([], { FLIPT_CACHE_BUCKET: 'flags', FLIPT_CACHE_PREFIX: 'team' });
  t.same(r, {
    kind: 'run',
    config: {
      bucket: 'flags',
      prefix: 'team/',
      pathStyle: false,
      host: '0.0.0.0',
      port: 8080,
      intervalMs: 5000,
      timeoutMs: 10000,
      maxObjects: 1000,
      maxObjectBytes: 64 * 1024 ** 2,
      maxTotalBytes: 256 * 1024 ** 2,
      pushWaitMs: 10000,
      logLevel: 'info',
      schemaCheck: true,
    },
  });
  const m = parseCacheConfig([], {
    FLIPT_CACHE_BUCKET: 'flags',
    FLIPT_CACHE_ENDPOINT: 'http://minio:9000',
    FLIPT_CACHE_LISTEN: '127.0.0.1:0',
    FLIPT_CACHE_INTERVAL: '2s',
    FLIPT_CACHE_REFRESH_TOKEN: 'x'.repeat(16),
    FLIPT_CACHE_SKIP_SCHEMA_CHECK: 'true',
  });
  t.match(m, {
    kind: 'run',
    config: { pathStyle: true, host: '127.0.0.1', port: 0, intervalMs: 2000, schemaCheck: false },
  });
  t.same(parseCacheConfig(['--help'], {}), { kind: 'help' });
  t.same(parseCacheConfig(['--version'], {}), { kind: 'version' });
  t.match(usage(), /FLIPT_CACHE_REFRESH_TOKEN/);
});

t.test('every problem at once, each naming its variable', async (t) => {
  const r = parseCacheConfig(['extra'], {
    FLIPT_CACHE_PREFIX: '/abs',
    FLIPT_CACHE_INTERVAL: 'soon',
    FLIPT_CACHE_TIMEOUT: '1ms',
    FLIPT_CACHE_MAX_OBJECTS: 'many',
    FLIPT_CACHE_MAX_OBJECT_BYTES: '2GiB',
    FLIPT_CACHE_PATH_STYLE: 'maybe',
    FLIPT_CACHE_LISTEN: 'host:port',
    FLIPT_CACHE_REFRESH_TOKEN: 'short',
  });
  if (r.kind !== 'invalid') throw new Error('expected invalid');
  t.match(r.errors.join('\n'), /unexpected arguments/);
  for (const name of ['BUCKET is required', 'INTERVAL', 'MAX_OBJECTS', 'PATH_STYLE', 'LISTEN']) {
    t.match(r.errors.join('\n'), `FLIPT_CACHE_${name}`);
  }
  const bounds = parseCacheConfig([], {
    FLIPT_CACHE_BUCKET: 'flags',
    FLIPT_CACHE_PREFIX: '/abs',
    FLIPT_CACHE_TIMEOUT: '1ms',
    FLIPT_CACHE_MAX_OBJECT_BYTES: '2GiB',
    FLIPT_CACHE_REFRESH_TOKEN: 'short',
    FLIPT_CACHE_LOG_LEVEL: 'loud',
  });
  if (bounds.kind !== 'invalid') throw new Error('expected invalid');
  for (const name of ['PREFIX', 'TIMEOUT', 'MAX_OBJECT_BYTES', 'REFRESH_TOKEN', 'LOG_LEVEL']) {
    t.match(bounds.errors.join('\n'), `FLIPT_CACHE_${name}: must be`);
  }
  t.match(parseCacheConfig([], { FLIPT_CACHE_BUCKET: 'metrics' }), {
    kind: 'invalid',
    errors: [/collides with the cache's own paths/],
  });
});
