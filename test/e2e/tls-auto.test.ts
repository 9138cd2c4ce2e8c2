// Self-managed TLS (issue 12) against a real kube-apiserver with RBAC enforced:
//  1. RBAC: the chart's ServiceAccount, Role, ClusterRole, bindings and webhook configuration,
//     rendered by the real helm (tls.mode auto) and applied with kubectl; the injectors run with a
//     token of that ServiceAccount and nothing else.
//  2. Two injector processes (`flipt-injector serve --tls-auto`) started together converge on one
//     Secret and one CA, patch both webhook entries' caBundle, and pods created through the webhook
//     get their sidecar.
//  3. Forced rotation (a 36 s lifetime, renewed at two thirds of it) while two clients keep creating
//     labelled pods through the API server: no failed admission across at least two rotations.
//  4. File mode: the certificate files replaced the way the kubelet updates a mounted Secret; new
//     handshakes present the new certificate, same process, no failed request.
// Stand-in (named as such): a TCP round-robin proxy in front of the two injectors plays the Service
// and kube-proxy, routing new connections only to replicas whose /readyz answers 200 (the
// EndpointSlice controller refuses loopback addresses, and these tests use nothing but loopback).
import t from 'tap';
import { X509Certificate } from 'node:crypto';
import { mkdir, readFile, rename, symlink, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:https';
import { createServer, connect as tcpConnect, type Socket } from 'node:net';
import { join, resolve } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { AdmissionregistrationV1Api, CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { splitPem } from '../../src/core/tls-rotation.ts';
import { createCa, issueServingCert } from '../../src/tls.ts';
import { mutatingWebhookConfiguration } from '../../src/webhook/registration.ts';
import { freePort, startProcess, waitFor, type ManagedProcess } from '../support/process.ts';
import { helm, kubectl } from '../support/kube-tools.ts';
import { parseObjects } from '../deploy/support.ts';
import { useControlPlane } from './harness/apiserver.ts';
import { INJECT_LABEL, registerInjector, sidecarsOf } from './harness/injector.ts';
import { apiErrorMessage, createNamespace, createPod } from './harness/kube.ts';

t.setTimeout(600_000);
const started = Date.now();
const repo = resolve(import.meta.dirname, '..', '..');
const cli = join(repo, 'src', 'cli.ts');
const RELEASE = 'flipt-sidecar-injector';
const NAMESPACE = 'flipt-system';
// Renewed at the default two thirds: a new certificate every ~23 s, served ~3 s later; the old CA
// stays until the old certificate expires ~10 s after that, before the next one is staged.
const LIFETIME = '36s';
const CHECK_INTERVAL = '1s';
// The chart's NODE_OPTIONS (values.yaml nodeOptions) instead of tap's, so memory is as in a pod.
const INJECTOR_ENV = { NODE_OPTIONS: '--max-semi-space-size=4' };

const plane = await useControlPlane(t);
const core = plane.kubeConfig.makeApiClient(CoreV1Api);
const admission = plane.kubeConfig.makeApiClient(AdmissionregistrationV1Api);
const admin = { kubeconfig: plane.kubeconfigPath, timeoutMs: 90_000 };
await createNamespace(plane, NAMESPACE);
await createNamespace(plane, 'tls-pods');

/** The certificate a new TLS handshake with 127.0.0.1:port presents (SHA-256 fingerprint). */
function presented(port: number): Promise<string> {
  return new Promise((done, fail) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      const cert = socket.getPeerX509Certificate();
      socket.end();
      if (cert) done(cert.fingerprint256);
      else fail(new Error('no certificate presented'));
    });
    socket.setTimeout(5_000, () => socket.destroy(new Error('handshake timed out')));
    socket.on('error', fail);
  });
}

function httpsStatus(port: number, path: string, agent?: Agent): Promise<number> {
  return new Promise((done, fail) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        timeout: 3_000,
        ...(agent ? { agent } : { rejectUnauthorized: false }),
      },
      (res) => {
        res.resume();
        res.on('end', () => done(res.statusCode ?? 0));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', fail);
    req.end();
  });
}

/** The Service + kube-proxy stand-in (see the file header). */
async function startProxy(port: number, backends: number[]) {
  const ready = new Map<number, boolean>();
  const connections = new Map<number, number>();
  const sockets = new Set<Socket>();
  const probe = setInterval(() => {
    for (const port of backends) {
      httpsStatus(port, '/readyz').then(
        (status) => ready.set(port, status === 200),
        () => ready.set(port, false),
      );
    }
  }, 250);
  let turn = 0;
  const server = createServer((client) => {
    const live = backends.filter((port) => ready.get(port));
    if (live.length === 0) return void client.destroy();
    const port = live[turn++ % live.length] as number;
    connections.set(port, (connections.get(port) ?? 0) + 1);
    const upstream = tcpConnect(port, '127.0.0.1');
    sockets.add(client).add(upstream);
    client.pipe(upstream).pipe(client);
    const close = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
  });
  await new Promise<void>((done) => server.listen(port, '127.0.0.1', done));
  return {
    port,
    connections,
    close: () => {
      clearInterval(probe);
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((done) => server.close(() => done()));
    },
  };
}

function labelledPod(): V1Pod {
  return {
    metadata: { generateName: 'app-', labels: { [INJECT_LABEL]: 'true' } },
    spec: { containers: [{ name: 'app', image: 'registry.example/app:1' }] },
  };
}

interface Load {
  attempted: number;
  failed: number;
  errors: string[];
}

/** `workers` clients creating labelled pods back to back until `stop` returns true. */
async function createPodsUntil(ns: string, workers: number, stop: () => boolean): Promise<Load> {
  const load: Load = { attempted: 0, failed: 0, errors: [] };
  const worker = async () => {
    while (!stop()) {
      load.attempted++;
      try {
        const pod = await createPod(plane.kubeConfig, ns, labelledPod());
        if (sidecarsOf(pod).init !== 1) throw new Error(`${pod.metadata?.name}: stored without its sidecar`);
      } catch (err) {
        load.failed++;
        if (load.errors.length < 10) load.errors.push(apiErrorMessage(err));
      }
    }
  };
  await Promise.all(Array.from({ length: workers }, worker));
  return load;
}

/** Current and peak resident memory of a process, from /proc. */
async function memory(process: ManagedProcess): Promise<string> {
  const status = await readFile(`/proc/${process.child.pid}/status`, 'utf8');
  const mib = (field: string) =>
    Math.round(Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) / 1024);
  return `${process.name} RSS ${mib('VmRSS')} MiB, peak ${mib('VmHWM')} MiB`;
}

const logLines = async (file: string) =>
  (await readFile(file, 'utf8'))
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { msg: string; [key: string]: unknown });

// --- 1. The chart's RBAC, webhook configuration and ServiceAccount, rendered and applied -------------
/** Loopback ports that were free a moment ago, all different (freePort may repeat itself). */
async function freePorts(count: number): Promise<number[]> {
  const ports: number[] = [];
  while (ports.length < count) {
    const port = await freePort();
    if (!ports.includes(port)) ports.push(port);
  }
  return ports;
}
const [proxyPort, port0, port1, filePort] = (await freePorts(4)) as [number, number, number, number];
const rendered = await helm(
  [
    'template',
    RELEASE,
    join(repo, 'charts', 'flipt-sidecar-injector'),
    '--namespace',
    NAMESPACE,
    '--set',
    'tls.mode=auto',
    '--set',
    `webhook.url=https://127.0.0.1:${proxyPort}`,
  ],
  admin,
);
if (rendered.code !== 0) throw new Error(rendered.stderr);
const chartObjects = parseObjects(rendered.stdout);
const KINDS = [
  'ServiceAccount',
  'Role',
  'RoleBinding',
  'ClusterRole',
  'ClusterRoleBinding',
  'MutatingWebhookConfiguration',
];
const applied = chartObjects.filter((o) => KINDS.includes(o.kind));
const applyResult = await kubectl(['apply', '-f', '-'], {
  ...admin,
  input: applied.map((o) => `---\n${stringify(o)}`).join(''),
});
if (applyResult.code !== 0) throw new Error(applyResult.stderr);
const deployment = chartObjects.find((o) => o.kind === 'Deployment') as unknown as {
  spec: { template: { spec: { containers: { args: string[] }[]; serviceAccountName: string } } };
};
const chartArgs = deployment.spec.template.spec.containers[0]?.args ?? [];
const argAfter = (flag: string) => chartArgs[chartArgs.indexOf(flag) + 1] as string;
const SECRET = argAfter('--tls-secret');
const WEBHOOK = argAfter('--webhook-configuration');
const account = deployment.spec.template.spec.serviceAccountName;

// A second configuration that is not ours: it must never be touched.
const decoyConfiguration = mutatingWebhookConfiguration({
  name: 'someone-elses-webhook',
  caBundle: Buffer.from('-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n').toString('base64'),
  target: { url: 'https://127.0.0.1:1' },
  injectorNamespace: 'nowhere',
  failurePolicy: 'Ignore',
});
const decoy = {
  ...decoyConfiguration,
  webhooks: decoyConfiguration.webhooks.map((entry) => ({
    ...entry,
    objectSelector: { matchLabels: { 'never-matches': 'x' } },
  })),
};
await kubectl(['apply', '-f', '-'], { ...admin, input: stringify(decoy) });

const token = await kubectl(
  ['create', 'token', account, '--namespace', NAMESPACE, '--duration', '1h'],
  admin,
);
if (token.code !== 0) throw new Error(token.stderr);
const saKubeconfig = join(plane.dir, 'injector-sa.kubeconfig');
await writeFile(
  saKubeconfig,
  stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: 'e2e',
        cluster: {
          server: plane.url,
          'certificate-authority-data': Buffer.from(plane.caCert).toString('base64'),
        },
      },
    ],
    users: [{ name: 'injector', user: { token: token.stdout.trim() } }],
    contexts: [{ name: 'e2e', context: { cluster: 'e2e', user: 'injector' } }],
    'current-context': 'e2e',
  }),
  { mode: 0o600 },
);
const asInjector = { kubeconfig: saKubeconfig, timeoutMs: 60_000 };

// --- 2. Two replicas started together ------------------------------------------------------------
const ports = [port0, port1];
const proxy = await startProxy(proxyPort, ports);
t.teardown(() => proxy.close());
const injectorLogs = ports.map((_, i) => join(plane.dir, `flipt-injector-${i}.log`));

// The chart's own container arguments (its program path and config file replaced by this checkout's),
// then what the test changes, later flags winning: a short lifetime, 1 s checks, a loopback port.
const configFile = join(plane.dir, 'config.yaml');
await writeFile(
  configFile,
  (chartObjects.find((o) => o.kind === 'ConfigMap')?.data as Record<string, string>)['config.yaml'] as string,
);
function startInjector(i: number): Promise<ManagedProcess> {
  const port = ports[i] as number;
  const args = chartArgs.slice(1).map((arg, j, all) => (all[j - 1] === '--config' ? configFile : arg));
  return startProcess({
    name: `flipt-injector-${i}`,
    command: process.execPath,
    args: [
      cli,
      ...args,
      '--tls-lifetime',
      LIFETIME,
      '--tls-check-interval',
      CHECK_INTERVAL,
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
    ],
    // Only the ServiceAccount's token: KUBECONFIG is the one client-node's loadFromDefault reads.
    env: { ...process.env, ...INJECTOR_ENV, KUBECONFIG: saKubeconfig, HOME: plane.dir },
    logFile: injectorLogs[i] as string,
    ready: async () => (await httpsStatus(port, '/readyz')) === 200,
    readyTimeoutMs: 60_000,
  });
}

const injectors: ManagedProcess[] = [];
t.teardown(() => Promise.all(injectors.map((p) => p.stop(5_000))));

async function readSecret() {
  const secret = await core.readNamespacedSecret({ name: SECRET, namespace: NAMESPACE });
  const data = Object.fromEntries(
    Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]),
  );
  return { secret, data };
}
const fingerprint = (pem: string) => new X509Certificate(pem).fingerprint256;

async function webhookBundles(name: string): Promise<string[]> {
  const configuration = await admission.readMutatingWebhookConfiguration({ name });
  return (configuration.webhooks ?? []).map((w) =>
    Buffer.from(w.clientConfig.caBundle ?? '', 'base64').toString('utf8'),
  );
}

t.test('1. RBAC: the ServiceAccount may do exactly what serve --tls-auto needs', async (t) => {
  const can = async (...args: string[]) =>
    (await kubectl(['auth', 'can-i', ...args, '--namespace', NAMESPACE], asInjector)).stdout.trim();
  t.equal(await can('get', `secrets/${SECRET}`), 'yes');
  t.equal(await can('update', `secrets/${SECRET}`), 'yes');
  t.equal(await can('create', 'secrets'), 'yes', 'create: not restrictable by name (documented)');
  t.equal(await can('get', 'secrets/another-secret'), 'no', 'no other Secret');
  t.equal(await can('list', 'secrets'), 'no', 'no listing');
  t.equal(await can('delete', `secrets/${SECRET}`), 'no');
  t.equal(await can('get', `mutatingwebhookconfigurations/${WEBHOOK}`), 'yes');
  t.equal(await can('patch', `mutatingwebhookconfigurations/${WEBHOOK}`), 'yes');
  t.equal(
    await can('patch', 'mutatingwebhookconfigurations/someone-elses-webhook'),
    'no',
    'not another webhook',
  );
  t.equal(await can('update', `mutatingwebhookconfigurations/${WEBHOOK}`), 'no', 'patch only');
  t.equal(await can('get', 'pods'), 'no');
  t.equal(await can('get', 'namespaces'), 'no');
});

t.test('2. two replicas started together converge on one Secret and one CA', async (t) => {
  // Every top-level await is done before the first subtest: tap ends the file's test (and stops the
  // control plane) once its subtests are done.
  const startedTogether = Date.now();
  injectors.push(...(await Promise.all([startInjector(0), startInjector(1)])));
  const convergedMs = Date.now() - startedTogether;
  t.comment(`both ready ${convergedMs} ms after starting together`);
  const { secret, data } = await readSecret();
  t.equal(secret.type, 'kubernetes.io/tls');
  const cas = splitPem(data['ca.crt'] ?? '');
  t.equal(cas.length, 1, 'one CA');
  const ca = new X509Certificate(cas[0] as string);
  const leaf = new X509Certificate(data['tls.crt'] as string);
  t.ok(leaf.verify(ca.publicKey), 'the stored certificate is signed by it');
  for (const port of ports) {
    t.equal(
      await presented(port),
      leaf.fingerprint256,
      `the replica on ${port} serves the stored certificate`,
    );
  }
  const bundles = await webhookBundles(WEBHOOK);
  t.equal(bundles.length, 2, 'both webhook entries');
  for (const bundle of bundles) t.same(splitPem(bundle), cas, 'caBundle = that CA');
  t.same(
    (await webhookBundles('someone-elses-webhook')).map((b) => b.trim()),
    [
      '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----',
      '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----',
    ],
    'another configuration is left alone',
  );
  const logs = await Promise.all(injectorLogs.map(logLines));
  const creates = logs.flat().filter((l) => l.msg === 'TLS Secret: create').length;
  const conflicts = logs.flat().filter((l) => l.msg === 'another replica wrote first; re-reading').length;
  t.equal(creates, 1, 'exactly one replica created the Secret');
  t.comment(`conflicts lost and re-read: ${conflicts}`);
  t.same(
    logs.flat().filter((l) => /forbidden|HTTP 403/i.test(JSON.stringify(l))),
    [],
    'no call was refused: the Role and ClusterRole are enough',
  );

  const pods = await createPodsUntil(
    'tls-pods',
    1,
    (() => {
      let n = 0;
      return () => n++ >= 10;
    })(),
  );
  t.same(
    pods,
    { attempted: 10, failed: 0, errors: [] },
    'pods created through the webhook get their sidecar',
  );
});

t.test('3. forced rotation under load: no failed admission across at least two rotations', async (t) => {
  const first = await readSecret();
  const seen = [fingerprint(first.data['tls.crt'] as string)];
  let maxCas = 1;
  let lastCas = 1;
  let pruned = 0;
  let stop = false;
  const rotationStarted = Date.now();
  // Watches the Secret while the clients run: each new tls.crt is a rotation.
  const watch = (async () => {
    while (!stop) {
      try {
        const { data } = await readSecret();
        const current = fingerprint(data['tls.crt'] as string);
        if (current !== seen.at(-1)) seen.push(current);
        const cas = splitPem(data['ca.crt'] ?? '').length;
        if (cas < lastCas) pruned++;
        lastCas = cas;
        maxCas = Math.max(maxCas, cas);
        // Two promotions and the old CA pruned after the second: the whole cycle, twice.
        if (seen.length >= 3 && pruned >= 2) stop = true;
      } catch {
        // a failed read is retried
      }
      if (Date.now() - rotationStarted > 150_000) stop = true;
      await new Promise((r) => setTimeout(r, 250));
    }
  })();
  const load = await createPodsUntil('tls-pods', 2, () => stop);
  await watch;
  const rotationMs = Date.now() - rotationStarted;
  const rotations = seen.length - 1;
  t.comment(
    `${rotations} rotations (${pruned} CA prunes, at most ${maxCas} CAs in the bundle) in ${rotationMs} ms; ` +
      `admissions attempted ${load.attempted}, failed ${load.failed}; ` +
      `proxy connections per replica ${JSON.stringify(Object.fromEntries(proxy.connections))}`,
  );
  t.ok(rotations >= 2, `at least two rotations (${rotations})`);
  t.ok(pruned >= 2, 'the old CA left the bundle after each rotation');
  t.equal(maxCas, 2, 'never more than the old and the new CA');
  t.ok(load.attempted > 50, `a steady stream of admissions (${load.attempted})`);
  t.equal(load.failed, 0, `no failed admission: ${load.errors.join(' | ')}`);
  const { data } = await readSecret();
  await waitFor(
    'both replicas to serve the current certificate',
    async () => {
      const current = fingerprint((await readSecret()).data['tls.crt'] as string);
      return (await Promise.all(ports.map(presented))).every((f) => f === current);
    },
    { timeoutMs: 15_000 },
  );
  t.ok(data['tls.crt'], 'both replicas serve the latest certificate, without a restart');
  for (const injector of injectors)
    t.equal(injector.child.exitCode, null, `${injector.name} still the same process`);
  t.comment(
    `memory (auto mode, client-node loaded): ${(await Promise.all(injectors.map(memory))).join('; ')}`,
  );
  const logs = (await Promise.all(injectorLogs.map(logLines))).flat();
  t.comment(
    `log: ${['stage', 'promote', 'prune', 'create', 'replace'].map((a) => `${a} ${logs.filter((l) => l.msg === `TLS Secret: ${a}`).length}`).join(', ')}; ` +
      `reconcile failures ${logs.filter((l) => /reconcile failed/.test(l.msg)).length}`,
  );
  t.equal(logs.filter((l) => l.msg === 'TLS Secret: replace').length, 0, 'never an emergency replacement');
  t.ok(
    logs.some((l) => l.msg === 'serving certificate in use' && typeof l.notAfter === 'string'),
    'expiry logged',
  );
  const metrics = await new Promise<string>((done, fail) => {
    const req = request(
      { host: '127.0.0.1', port: ports[0], path: '/metrics', rejectUnauthorized: false },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (c: string) => (text += c));
        res.on('end', () => done(text));
      },
    );
    req.on('error', fail);
    req.end();
  });
  t.match(metrics, /flipt_injector_tls_certificate_expiry_timestamp_seconds \d+/, 'expiry metric');
});

t.test(
  '4. file mode: replaced files are served to new handshakes, no restart, no failed request',
  async (t) => {
    await Promise.all(injectors.map((p) => p.stop(5_000)));
    const ca = await createCa({ days: 1 });
    const names = { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] };
    const first = await issueServingCert(ca, { ...names, days: 1 });
    const second = await issueServingCert(ca, { ...names, days: 1 });
    // The kubelet's layout for a mounted Secret: tls.crt -> ..data/tls.crt, ..data -> a versioned dir,
    // replaced by renaming a new symlink over it.
    const dir = join(plane.dir, 'mounted-tls');
    await mkdir(dir);
    const publish = async (version: string, pair: { cert: string; key: string }) => {
      await mkdir(join(dir, version));
      await writeFile(join(dir, version, 'tls.crt'), pair.cert);
      await writeFile(join(dir, version, 'tls.key'), pair.key);
      await symlink(version, join(dir, '..data_tmp'));
      await rename(join(dir, '..data_tmp'), join(dir, '..data'));
    };
    await publish('v1', first);
    await symlink('..data/tls.crt', join(dir, 'tls.crt'));
    await symlink('..data/tls.key', join(dir, 'tls.key'));
    const port = filePort;
    const injector = await startProcess({
      name: 'flipt-injector-file',
      command: process.execPath,
      args: [
        cli,
        'serve',
        '--tls-cert',
        join(dir, 'tls.crt'),
        '--tls-key',
        join(dir, 'tls.key'),
        '--tls-check-interval',
        '1s',
        '--host',
        '127.0.0.1',
        '--port',
        String(port),
      ],
      env: { ...process.env, ...INJECTOR_ENV },
      logFile: join(plane.dir, 'flipt-injector-file.log'),
      ready: async () => (await httpsStatus(port, '/readyz')) === 200,
    });
    t.teardown(() => injector.stop(5_000));
    await registerInjector(
      plane.kubeConfig,
      {
        url: `https://127.0.0.1:${port}`,
        caBundle: Buffer.from(ca.cert).toString('base64'),
        close: async () => {},
      },
      { mode: 'native' },
    );
    t.equal(await presented(port), fingerprint(first.cert));
    const keepAlive = new Agent({ ca: ca.cert, keepAlive: true, maxSockets: 1 });
    t.teardown(() => keepAlive.destroy());
    t.equal(await httpsStatus(port, '/healthz', keepAlive), 200, 'a connection opened before the change');

    let stop = false;
    const loadDone = createPodsUntil('tls-pods', 2, () => stop);
    await new Promise((r) => setTimeout(r, 2_000));
    const swappedAt = Date.now();
    await publish('v2', second);
    await waitFor(
      'a new handshake to present the new certificate',
      async () => (await presented(port)) === fingerprint(second.cert),
      {
        timeoutMs: 15_000,
        intervalMs: 100,
      },
    );
    const pickedUpMs = Date.now() - swappedAt;
    await new Promise((r) => setTimeout(r, 3_000));
    stop = true;
    const load = await loadDone;
    t.comment(
      `new certificate presented ${pickedUpMs} ms after the swap; admissions attempted ${load.attempted}, failed ${load.failed}`,
    );
    t.equal(load.failed, 0, `no failed request: ${load.errors.join(' | ')}`);
    t.ok(load.attempted > 10, `admissions ran across the change (${load.attempted})`);
    t.equal(
      await httpsStatus(port, '/healthz', keepAlive),
      200,
      'the connection opened before still answers',
    );
    t.equal(injector.child.exitCode, null, 'no restart: the same process');
    t.comment(`memory (file mode): ${await memory(injector)}`);
    const logs = await logLines(injector.logFile);
    t.ok(
      logs.some((l) => l.msg === 'serving certificate reloaded'),
      'the reload is logged',
    );
    t.comment(`whole file: ${Date.now() - started} ms`);
  },
);
