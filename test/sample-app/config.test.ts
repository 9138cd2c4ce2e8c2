import t from 'tap';
import { DEMO_FLAGS, MAX_FLAGS, parseSampleAppConfig } from '../../src/sample-app/config.ts';

t.test('defaults fit the demo: sidecar on localhost, flipt-master by its Service name', async (t) => {
  const result = parseSampleAppConfig({});
  t.ok(result.ok);
  if (!result.ok) return;
  t.same(result.config, {
    host: '0.0.0.0',
    port: 3000,
    sidecarUrl: 'http://127.0.0.1:8080',
    masterUrl: 'http://flipt-master.default.svc.cluster.local:8080',
    namespace: 'default',
    flags: DEMO_FLAGS,
    timeoutMs: 2000,
  });
});

t.test('values are trimmed, trailing slashes dropped, duplicate flags removed', async (t) => {
  const result = parseSampleAppConfig({
    SAMPLE_APP_PORT: ' 4000 ',
    SAMPLE_APP_SIDECAR_URL: 'http://localhost:9999/',
    SAMPLE_APP_FLAGS: 'a, b,,a',
    SAMPLE_APP_NAMESPACE: 'shop',
  });
  t.ok(result.ok);
  if (!result.ok) return;
  t.equal(result.config.port, 4000);
  t.equal(result.config.sidecarUrl, 'http://localhost:9999');
  t.same(result.config.flags, ['a', 'b']);
  t.equal(result.config.namespace, 'shop');
});

t.test('every invalid variable is reported at once, by name', async (t) => {
  const result = parseSampleAppConfig({
    SAMPLE_APP_PORT: '70000',
    SAMPLE_APP_SIDECAR_URL: 'localhost:8080',
    SAMPLE_APP_MASTER_URL: 'ftp://master',
    SAMPLE_APP_NAMESPACE: 'no spaces',
    SAMPLE_APP_FLAGS: 'ok,not ok',
    SAMPLE_APP_TIMEOUT_MS: '10',
  });
  t.notOk(result.ok);
  if (result.ok) return;
  t.equal(result.errors.length, 6, result.errors.join('\n'));
  for (const name of ['PORT', 'SIDECAR_URL', 'MASTER_URL', 'NAMESPACE', 'FLAGS', 'TIMEOUT_MS']) {
    t.ok(
      result.errors.some((e) => e.startsWith(`SAMPLE_APP_${name}:`)),
      `names SAMPLE_APP_${name}`,
    );
  }
  t.match(result.errors.join('\n'), /"not ok"/);
});

t.test('the flag list is bounded', async (t) => {
  const many = Array.from({ length: MAX_FLAGS + 1 }, (_, i) => `f${i}`).join(',');
  const result = parseSampleAppConfig({ SAMPLE_APP_FLAGS: many });
  t.notOk(result.ok);
  const none = parseSampleAppConfig({ SAMPLE_APP_FLAGS: ' , ' });
  t.notOk(none.ok);
});

t.test('a URL with credentials or a query is refused', async (t) => {
  for (const url of ['http://user:pw@master:8080', 'http://master:8080/?x=1']) {
    const result = parseSampleAppConfig({ SAMPLE_APP_MASTER_URL: url });
    t.notOk(result.ok, url);
  }
});
