// The webhook server over real HTTPS: endpoints, metrics, logs, bad input, TLS floor, shutdown.
import { Writable } from 'node:stream';
import { connect } from 'node:tls';
import t from 'tap';
import { pino } from 'pino';
import { defaultConfig } from '../../src/core/config.ts';
import { startInjectorServer } from '../../src/server.ts';
import { generateCertificates } from '../../src/tls.ts';
import { buildApp, BODY_LIMIT_BYTES } from '../../src/webhook/app.ts';
import { admissionReview, httpsCall, startTestWebhook, testCertificates } from '../support/webhook.ts';
import { Agent } from 'node:https';

const config = defaultConfig();
const pod = (labels: Record<string, string> = { 'flipt.io/inject': 'true' }) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { generateName: 'web-', namespace: 'shop', labels },
  spec: { containers: [{ name: 'app', image: 'nginx' }] },
});

t.test('health, readiness and metrics', async (t) => {
  const webhook = await startTestWebhook(config);
  t.teardown(() => webhook.close());
  const health = await webhook.get('/healthz');
  t.equal(health.status, 200);
  t.same(health.json(), { status: 'ok' });
  const ready = await webhook.get('/readyz');
  t.equal(ready.status, 200);

  await webhook.post('/mutate', admissionReview(pod(), 'shop'));
  await webhook.post('/mutate', admissionReview(pod({}), 'shop'));
  await webhook.post('/mutate/namespace', admissionReview(pod({}), 'shop'));
  await webhook.post(
    '/mutate',
    admissionReview(
      { ...pod(), metadata: { ...pod().metadata, annotations: { 'flipt.io/port': '1' } } },
      'shop',
    ),
  );
  await webhook.post('/mutate', 'not json');

  const metrics = await webhook.get('/metrics');
  t.equal(metrics.status, 200);
  t.match(metrics.headers['content-type'], /text\/plain/);
  const text = metrics.text;
  t.match(text, /flipt_injector_admission_requests_total\{path="\/mutate"\} 3/);
  t.match(text, /flipt_injector_admission_requests_total\{path="\/mutate\/namespace"\} 1/);
  t.match(text, /flipt_injector_injections_total\{reason="pod-label",changed="true"\} 1/);
  t.match(text, /flipt_injector_injections_total\{reason="namespace-label",changed="true"\} 1/);
  t.match(text, /flipt_injector_skips_total\{reason="not-requested"\} 1/);
  t.match(text, /flipt_injector_rejections_total\{reason="invalid-annotation"\} 1/);
  t.match(text, /flipt_injector_errors_total\{kind="bad-request"\} 1/);
  t.match(text, /flipt_injector_admission_duration_seconds_bucket\{le="[^"]+",outcome="injected"\}/);
  t.match(text, /flipt_injector_process_resident_memory_bytes/, 'process metrics, prefixed');
});

t.test('malformed bodies get a 4xx with a clear message, never a crash', async (t) => {
  const webhook = await startTestWebhook(config);
  t.teardown(() => webhook.close());
  const valid = admissionReview(pod(), 'shop');
  const cases: [string, string | object, RegExp, number?][] = [
    ['not JSON', '{"apiVersion":', /JSON/i],
    ['a JSON array', [], /must be a JSON object/],
    ['a JSON string', '"hello"', /must be a JSON object/],
    ['not an AdmissionReview', { kind: 'Pod' }, /kind must be AdmissionReview/],
    [
      'admission.k8s.io/v1beta1',
      { ...valid, apiVersion: 'admission.k8s.io/v1beta1' },
      /admissionReviewVersions/,
    ],
    ['no request', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }, /^request/],
    ['no uid', { ...valid, request: { ...valid.request, uid: '' } }, /request\.uid/],
    [
      'no request.object',
      { ...valid, request: { ...valid.request, object: undefined } },
      /request\.object is missing/,
    ],
    [
      'an object that is not a Pod',
      { ...valid, request: { ...valid.request, object: { spec: {} } } },
      /request\.object\.spec\.containers/,
    ],
    [
      'labels that are not strings',
      { ...valid, request: { ...valid.request, object: { ...pod(), metadata: { labels: { a: 1 } } } } },
      /request\.object\.metadata\.labels/,
    ],
  ];
  for (const [name, body, message] of cases) {
    const answer = await webhook.post('/mutate', body);
    t.equal(answer.status, 400, `${name}: 400`);
    t.match((answer.json() as { message: string }).message, message, `${name}: says what is wrong`);
  }

  const wrongType = await httpsCall(`${webhook.server.url}/mutate`, {
    method: 'POST',
    agent: webhook.agent,
    body: 'x',
    headers: { 'content-type': 'text/plain' },
  });
  t.equal(wrongType.status, 415, 'a non-JSON content type is refused');

  const huge = JSON.stringify({ ...valid, padding: 'x'.repeat(BODY_LIMIT_BYTES) });
  const tooLarge = await webhook.post('/mutate', huge);
  t.equal(tooLarge.status, 413, 'bodies over the limit are refused');

  t.equal((await webhook.get('/healthz')).status, 200, 'still serving');
});

t.test('requests that are not Pod CREATEs are allowed untouched', async (t) => {
  const webhook = await startTestWebhook(config);
  t.teardown(() => webhook.close());
  const review = admissionReview(pod(), 'shop', { operation: 'UPDATE' });
  const update = (await webhook.post('/mutate', review)).json() as { response: Record<string, unknown> };
  t.same(update.response, { uid: review.request.uid, allowed: true });
  const deployment = admissionReview(pod(), 'shop', {
    kind: { group: 'apps', version: 'v1', kind: 'Deployment' },
    object: null,
  });
  const other = (await webhook.post('/mutate', deployment)).json() as { response: Record<string, unknown> };
  t.same(other.response, { uid: deployment.request.uid, allowed: true });
});

t.test('a dry-run request gets the same answer', async (t) => {
  const webhook = await startTestWebhook(config);
  t.teardown(() => webhook.close());
  const real = (await webhook.post('/mutate', admissionReview(pod(), 'shop'))).json() as {
    response: { patch: string };
  };
  const dry = (await webhook.post('/mutate', admissionReview(pod(), 'shop', { dryRun: true }))).json() as {
    response: { patch: string };
  };
  t.equal(dry.response.patch, real.response.patch);
});

t.test('logs are JSON with the pod and the decision', async (t) => {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString('utf8').trim().split('\n'));
      done();
    },
  });
  const app = buildApp({ config, log: pino({ level: 'info' }, stream) });
  t.teardown(() => app.close());
  await app.inject({ method: 'POST', url: '/mutate', payload: admissionReview(pod(), 'shop') });
  await app.inject({
    method: 'POST',
    url: '/mutate',
    payload: admissionReview(
      {
        ...pod(),
        metadata: {
          name: 'bad',
          labels: { 'flipt.io/inject': 'true' },
          annotations: { 'flipt.io/http-port': 'x' },
        },
      },
      'shop',
    ),
  });
  const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  const injected = records.find((r) => r.outcome === 'injected');
  t.match(injected, {
    pod: 'shop/web-*',
    reason: 'pod-label',
    msg: /labelled flipt.io\/inject=true/,
    dryRun: false,
  });
  t.type(injected?.uid, 'string');
  t.match(injected?.reqId, /^req-/, 'the line names its request (Fastify has no logger)');
  const rejected = records.find((r) => r.outcome === 'rejected');
  t.match(rejected, {
    pod: 'shop/bad',
    reason: 'invalid-annotation',
    msg: 'refused: a flipt.io/* annotation is invalid or unknown',
    errors: [/flipt.io\/http-port/],
  });
  t.notMatch(String(rejected?.msg), /labelled/, 'a refused pod never logs the labelled-pod sentence');
});

t.test('an unexpected fault is a 500 with no details leaked, and the server keeps serving', async (t) => {
  const app = buildApp({ config });
  app.get('/boom', async () => {
    throw new Error('secret internals');
  });
  t.teardown(() => app.close());
  const answer = await app.inject({ method: 'GET', url: '/boom' });
  t.equal(answer.statusCode, 500);
  t.notMatch(answer.body, /secret internals/);
  t.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
});

t.test('TLS: at least 1.2, and only for clients that trust our CA', async (t) => {
  const webhook = await startTestWebhook(config);
  t.teardown(() => webhook.close());
  const { port } = new URL(webhook.server.url);
  const tryTls = (options: object) =>
    new Promise<string>((resolve) => {
      const socket = connect(
        { host: '127.0.0.1', port: Number(port), ca: webhook.certs.caCert, ...options },
        () => {
          resolve(socket.getProtocol() ?? 'unknown');
          socket.end();
        },
      );
      socket.on('error', (err) => resolve(`error: ${err.message}`));
    });
  t.match(await tryTls({ maxVersion: 'TLSv1.1', minVersion: 'TLSv1' }), /^error/, 'TLS 1.1 is refused');
  t.equal(await tryTls({ minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' }), 'TLSv1.2');
  t.equal(await tryTls({}), 'TLSv1.3');
  const other = await generateCertificates();
  t.match(
    await tryTls({ ca: other.caCert }),
    /^error: .*certificate/i,
    'a client trusting another CA refuses us',
  );
});

t.test('certificate reload swaps the serving certificate without a restart', async (t) => {
  const first = await testCertificates();
  const second = await generateCertificates({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  const server = await startInjectorServer({
    config,
    tls: first,
    port: 0,
    host: '127.0.0.1',
    logLevel: false,
  });
  t.teardown(() => server.close());
  const get = (ca: string) => httpsCall(`${server.url}/healthz`, { method: 'GET', agent: new Agent({ ca }) });
  t.equal((await get(first.caCert)).status, 200);
  server.reloadTls(second);
  t.equal((await get(second.caCert)).status, 200, 'new connections get the new certificate');
  await t.rejects(get(first.caCert), /certificate/, 'the old CA no longer verifies');
});

t.test('graceful shutdown finishes the request in flight, then refuses new ones', async (t) => {
  const certs = await testCertificates();
  const server = await startInjectorServer({
    config,
    tls: certs,
    port: 0,
    host: '127.0.0.1',
    logLevel: false,
  });
  const { port } = new URL(server.url);
  const body = JSON.stringify(admissionReview(pod(), 'shop'));
  const half = Math.floor(body.length / 2);

  // Send the headers and half of the body, then ask the server to stop, then send the rest.
  const socket = connect({
    host: '127.0.0.1',
    port: Number(port),
    ca: certs.caCert,
    servername: 'localhost',
  });
  await new Promise((resolve) => socket.once('secureConnect', resolve));
  const response = new Promise<string>((resolve) => {
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
    socket.on('end', () => resolve(text));
    socket.on('close', () => resolve(text));
  });
  socket.write(
    `POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body.slice(0, half)}`,
  );
  await new Promise((resolve) => setTimeout(resolve, 100));
  const closing = server.close();
  await new Promise((resolve) => setTimeout(resolve, 100));
  socket.write(body.slice(half));
  const text = await response;
  t.match(text, /^HTTP\/1\.1 200/, 'the in-flight request is answered');
  t.match(text, /"allowed":true/);
  await closing;
  await t.rejects(
    httpsCall(`${server.url}/healthz`, { method: 'GET', agent: new Agent({ ca: certs.caCert }) }),
    /ECONNREFUSED/,
    'no new connections after shutdown',
  );
});
