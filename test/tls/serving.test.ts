// src/tls/serving.ts, the one owner of the serving certificate, against a real HTTPS server:
// file mode (mounted files replaced the way the kubelet does it, by a symlink swap) and the auto
// mode's reconcile with several replicas writing at once. The Secret and webhook configuration here
// are an in-memory stand-in with resourceVersions (the real API server is in
// test/e2e/tls-auto.test.ts); it answers 409 exactly where the API server would.
import { X509Certificate } from 'node:crypto';
import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:https';
import { connect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { defaultConfig } from '../../src/core/config.ts';
import { splitPem } from '../../src/core/tls-rotation.ts';
import { startInjectorServer } from '../../src/server.ts';
import { createCa, generateCertificates, issueServingCert } from '../../src/tls.ts';
import { reconcileOnce } from '../../src/tls/auto.ts';
import {
  ConflictError,
  type RawSecret,
  type SecretStore,
  type WebhookBundles,
  type WebhookTarget,
} from '../../src/tls/store.ts';
import { startServingCertificate, type ServingLogger } from '../../src/tls/serving.ts';
import { certFacts } from '../../src/tls/x509.ts';

t.setTimeout(120_000);

function memoryLog() {
  const lines: { level: string; msg: string; obj: object }[] = [];
  const log: ServingLogger = {
    info: (obj, msg) => void lines.push({ level: 'info', msg, obj }),
    warn: (obj, msg) => void lines.push({ level: 'warn', msg, obj }),
    error: (obj, msg) => void lines.push({ level: 'error', msg, obj }),
  };
  return { log, lines };
}

/** The certificate a new TLS handshake presents. */
function presented(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      const raw = socket.getPeerX509Certificate();
      socket.end();
      if (raw) resolve(raw.fingerprint256);
      else reject(new Error('no certificate'));
    });
    socket.on('error', reject);
  });
}

function get(port: number, agent: Agent, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent, servername: 'localhost' }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

t.test('file mode: replaced files are served to new connections, open ones keep working', async (t) => {
  const ca = await createCa({ days: 1 });
  const names = { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] };
  const first = await issueServingCert(ca, { ...names, days: 1 });
  const second = await issueServingCert(ca, { ...names, days: 1 });
  // The kubelet's layout for a mounted Secret: tls.crt -> ..data/tls.crt, ..data -> a timestamped dir.
  const dir = await mkdtemp(join(tmpdir(), 'flipt-tls-files-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const writeVersion = async (name: string, pair: { cert: string; key: string }) => {
    await mkdir(join(dir, name));
    await writeFile(join(dir, name, 'tls.crt'), pair.cert);
    await writeFile(join(dir, name, 'tls.key'), pair.key);
    await symlink(name, join(dir, '..data_tmp'));
    await rename(join(dir, '..data_tmp'), join(dir, '..data'));
  };
  await writeVersion('v1', first);
  await symlink('..data/tls.crt', join(dir, 'tls.crt'));
  await symlink('..data/tls.key', join(dir, 'tls.key'));

  const { log, lines } = memoryLog();
  const serving = await startServingCertificate({
    source: {
      kind: 'file',
      certFile: join(dir, 'tls.crt'),
      keyFile: join(dir, 'tls.key'),
      expiryWarningMs: 14 * 24 * 3_600_000,
    },
    checkIntervalMs: 60_000,
    log,
  });
  t.teardown(() => serving.stop());
  const server = await startInjectorServer({
    config: defaultConfig(),
    tls: serving.current,
    host: '127.0.0.1',
    port: 0,
    logLevel: false,
    ready: () => serving.ready(),
    registerMetrics: (registry) => serving.registerMetrics(registry),
  });
  t.teardown(() => server.close());
  serving.onChange((pair) => server.reloadTls(pair));
  const port = Number(new URL(server.url).port);
  const fingerprint = (pem: string) => new X509Certificate(pem).fingerprint256;

  t.equal(await presented(port), fingerprint(first.cert), 'serves the mounted certificate');
  const keepAlive = new Agent({ ca: ca.cert, keepAlive: true, maxSockets: 1 });
  t.teardown(() => keepAlive.destroy());
  t.equal(await get(port, keepAlive, '/readyz'), 200, 'ready with a valid certificate');
  t.match(lines.at(-1)?.msg, 'serving certificate in use');
  t.ok(
    lines.some((l) => l.level === 'warn' && /expires soon/.test(l.msg)),
    'a one-day certificate is within the 14-day warning margin',
  );

  await writeVersion('v2', second);
  await serving.check();
  t.ok(
    lines.some((l) => l.msg === 'serving certificate reloaded'),
    'the reload is logged',
  );
  t.equal(await presented(port), fingerprint(second.cert), 'a new handshake gets the new certificate');
  t.equal(await get(port, keepAlive, '/healthz'), 200, 'the connection opened before still answers');
  const metrics = await new Promise<string>((resolve, reject) => {
    const agent = new Agent({ ca: ca.cert });
    const req = request(
      { host: '127.0.0.1', port, path: '/metrics', agent, servername: 'localhost' },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (c: string) => (text += c));
        res.on('end', () => resolve(text));
      },
    );
    req.on('error', reject);
    req.end();
  });
  const expiry = Date.parse(new X509Certificate(second.cert).validTo) / 1000;
  t.match(metrics, `flipt_injector_tls_certificate_expiry_timestamp_seconds ${expiry}`, 'expiry metric');

  // A half-written or broken file keeps the current certificate.
  await writeFile(join(dir, 'v2', 'tls.crt'), 'not a certificate');
  await serving.check();
  t.ok(lines.some((l) => l.level === 'warn' && /keeping the current one/.test(l.msg)));
  t.equal(await presented(port), fingerprint(second.cert), 'still the last good certificate');

  // A certificate with someone else's key (files replaced one at a time) is refused by the server
  // and retried, not recorded as served.
  const mismatched = await issueServingCert(ca, { ...names, days: 1 });
  await writeVersion('v2b', { cert: mismatched.cert, key: first.key });
  await serving.check();
  t.equal(await presented(port), fingerprint(second.cert), 'a mismatched pair is not served');
  await writeFile(join(dir, 'v2b', 'tls.key'), mismatched.key);
  await serving.check();
  t.equal(await presented(port), fingerprint(mismatched.cert), 'once the key matches, it is');

  // The timer does the same on its own.
  const third = await issueServingCert(ca, { ...names, days: 1 });
  await writeVersion('v3', third);
  const timed = await startServingCertificate({
    source: {
      kind: 'file',
      certFile: join(dir, 'tls.crt'),
      keyFile: join(dir, 'tls.key'),
      expiryWarningMs: 0,
    },
    checkIntervalMs: 100,
    log,
  });
  let swapped: string | undefined;
  timed.onChange((pair) => (swapped = pair.cert));
  timed.start();
  t.teardown(() => timed.stop());
  await writeVersion('v4', first);
  const deadline = Date.now() + 10_000;
  while (swapped === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  t.equal(swapped, first.cert, 'the periodic check picked up the change');
});

t.test('file mode: an expired certificate is served but not ready, and warned about', async (t) => {
  const ca = await createCa({ days: 1 });
  const pair = await issueServingCert(ca, { dnsNames: ['localhost'], validityMs: 1_000 });
  const dir = await mkdtemp(join(tmpdir(), 'flipt-tls-expired-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'tls.crt'), pair.cert);
  await writeFile(join(dir, 'tls.key'), pair.key);
  const { log, lines } = memoryLog();
  const serving = await startServingCertificate({
    source: {
      kind: 'file',
      certFile: join(dir, 'tls.crt'),
      keyFile: join(dir, 'tls.key'),
      expiryWarningMs: 0,
    },
    checkIntervalMs: 60_000,
    log,
    now: () => Date.now() + 5_000,
  });
  t.notOk(serving.ready());
  t.ok(lines.some((l) => l.level === 'warn' && /has expired/.test(l.msg)));
  await t.rejects(
    startServingCertificate({
      source: {
        kind: 'file',
        certFile: join(dir, 'missing.crt'),
        keyFile: join(dir, 'tls.key'),
        expiryWarningMs: 0,
      },
      checkIntervalMs: 60_000,
      log,
    }),
    /cannot read .*missing\.crt/,
    'a missing file stops start-up, naming it',
  );
});

/** An in-memory Secret and webhook configuration with resourceVersions (see the file header). */
function memoryCluster() {
  let secret: RawSecret | undefined;
  let version = 0;
  const webhook: WebhookBundles = {
    resourceVersion: '0',
    entries: [
      { name: 'pod.inject.flipt.io', caBundle: '' },
      { name: 'namespace.inject.flipt.io', caBundle: '' },
    ],
  };
  const writes = { secret: 0, webhook: 0, conflicts: 0 };
  // Each call yields first, so that concurrent replicas interleave like real API calls.
  const tick = () => new Promise((r) => setImmediate(r));
  const store: SecretStore = {
    async read() {
      await tick();
      return secret && structuredClone(secret);
    },
    async create(content) {
      await tick();
      if (secret) {
        writes.conflicts++;
        throw new ConflictError('exists');
      }
      secret = { resourceVersion: String(++version), ...structuredClone(content) };
      writes.secret++;
    },
    async update(resourceVersion, content) {
      await tick();
      if (!secret || secret.resourceVersion !== resourceVersion) {
        writes.conflicts++;
        throw new ConflictError('changed');
      }
      secret = { resourceVersion: String(++version), ...structuredClone(content) };
      writes.secret++;
    },
  };
  const target: WebhookTarget = {
    async read() {
      await tick();
      return structuredClone(webhook);
    },
    async patchBundle(current, bundlePem) {
      await tick();
      if (current.resourceVersion !== webhook.resourceVersion) {
        writes.conflicts++;
        throw new ConflictError('changed');
      }
      for (const entry of webhook.entries) entry.caBundle = bundlePem;
      webhook.resourceVersion = String(++version);
      writes.webhook++;
    },
  };
  return { store, target, writes, secret: () => secret, webhook };
}

t.test('auto mode: replicas racing converge on one CA; losers use the winner certificate', async (t) => {
  const cluster = memoryCluster();
  const names = { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] };
  let generated = 0;
  // selfsigned dates certificates by the real clock; the replicas below run on a moved one, so the
  // certificates staged later live long enough not to be due again at once.
  let lifetimeMs = 60_000;
  const deps = {
    secret: cluster.store,
    webhook: cluster.target,
    names,
    policy: { renewFraction: 2 / 3, promoteDelayMs: 3_000 },
    generate: async () => {
      generated++;
      const set = await generateCertificates({ ...names, validityMs: lifetimeMs });
      return { ca: certFacts(set.caCert), cert: certFacts(set.cert), key: set.key };
    },
  };
  const results = await Promise.all([1, 2, 3, 4].map(() => reconcileOnce(deps)));
  const stored = cluster.secret();
  t.ok(stored, 'a Secret exists');
  t.equal(cluster.writes.secret, 1, 'exactly one create won');
  t.ok(cluster.writes.conflicts >= 3, `the others lost with a conflict (${cluster.writes.conflicts})`);
  t.ok(generated >= 1, `certificates generated: ${generated}`);
  const fingerprints = new Set(results.map((r) => r.state.current?.cert.fingerprint));
  t.equal(fingerprints.size, 1, 'every replica ends with the same certificate');
  const caPems = splitPem(stored?.data['ca.crt'] ?? '');
  t.equal(caPems.length, 1, 'one CA');
  for (const entry of cluster.webhook.entries)
    t.equal(entry.caBundle, caPems[0], `${entry.name}: caBundle = that CA`);
  for (const result of results) {
    t.ok(result.published?.has(certFacts(caPems[0] as string).fingerprint), 'each sees it published');
  }

  // Staging and promotion, with time moved forward.
  const createdAt = Date.now();
  lifetimeMs = 3_600_000;
  const at = (ms: number) => () => createdAt + ms;
  const staged = await Promise.all([1, 2].map(() => reconcileOnce({ ...deps, now: at(41_000) })));
  t.equal(splitPem(cluster.secret()?.data['ca.crt'] ?? '').length, 2, 'staged: bundle holds old and new CA');
  t.ok(cluster.secret()?.data['next.crt'], 'a certificate is staged');
  t.equal(
    new Set(staged.map((r) => r.state.next?.cert.fingerprint)).size,
    1,
    'both replicas see the same staged certificate',
  );
  t.equal(cluster.webhook.entries[0]?.caBundle, cluster.secret()?.data['ca.crt'], 'bundle published');
  const promoted = await Promise.all([1, 2].map(() => reconcileOnce({ ...deps, now: at(45_000) })));
  t.notOk(cluster.secret()?.data['next.crt'], 'promoted');
  t.equal(promoted[0]?.state.current?.cert.fingerprint, staged[0]?.state.next?.cert.fingerprint);
  t.equal(splitPem(cluster.secret()?.data['ca.crt'] ?? '').length, 2, 'old CA kept until it expires');
  await reconcileOnce({ ...deps, now: at(61_000) });
  t.equal(
    splitPem(cluster.webhook.entries[1]?.caBundle ?? '').length,
    1,
    'expired CA pruned from the webhook',
  );
});

t.test('auto mode: not ready until the webhook configuration trusts the CA', async (t) => {
  const cluster = memoryCluster();
  const names = { dnsNames: ['localhost'], ipAddresses: [] };
  const missing: WebhookTarget = { read: async () => undefined, patchBundle: cluster.target.patchBundle };
  const { log, lines } = memoryLog();
  const source = {
    kind: 'auto' as const,
    secret: cluster.store,
    names,
    lifetimeMs: 3_600_000,
    renewFraction: 2 / 3,
  };
  const noWebhook = await startServingCertificate({
    source: { ...source, webhook: missing },
    checkIntervalMs: 1_000,
    log,
  });
  t.notOk(noWebhook.ready(), 'no webhook configuration: not ready');
  t.ok(lines.some((l) => /does not exist/.test(l.msg)));
  const withWebhook = await startServingCertificate({
    source: { ...source, webhook: cluster.target },
    checkIntervalMs: 1_000,
    log,
  });
  t.ok(withWebhook.ready(), 'bundle patched: ready');
  t.equal(withWebhook.current.cert, cluster.secret()?.data['tls.crt'], 'serves the stored certificate');
  t.not(noWebhook.current.cert, cluster.secret()?.data['tls.crt'], 'the other still serves its placeholder');
  await noWebhook.check();
  t.notOk(noWebhook.ready());
});
