// The CLI beyond the golden files: usage errors, check, certs, webhook-config, and `serve` as a real
// process (start-up, a request, SIGTERM) — plus the compiled bin that npm installs.
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { Agent } from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { parse } from 'yaml';
import { runCli, spawnCli } from './support/cli.ts';
import { GOLDEN_DIR } from './support/golden.ts';
import { httpsCall, spawnServe, testCertificates } from './support/webhook.ts';

const root = resolve(import.meta.dirname, '..');
// Builds the bin with tsc and runs real processes: more than tap's default 30 s on a busy machine.
t.setTimeout(600_000);

t.test('usage errors exit 2 with the usage text', async (t) => {
  for (const argv of [
    [],
    ['frobnicate'],
    ['inject', '--no-such-flag'],
    ['inject', 'extra'],
    ['inject'],
    ['serve'],
  ]) {
    const run = await runCli(argv);
    t.equal(run.code, 2, argv.join(' ') || '(no arguments)');
    t.match(run.stderr + run.stdout, /Usage: flipt-injector/);
  }
  const help = await runCli(['--help']);
  t.equal(help.code, 0);
  t.match(help.stdout, /Commands:/);
  t.equal((await runCli(['help'])).code, 0);
  t.match((await runCli(['inject'])).stderr, /--file is required/);
});

t.test('inject reads stdin and reports bad YAML and bad config clearly', async (t) => {
  const input = await readFile(join(GOLDEN_DIR, 'job.yaml'), 'utf8');
  const fromStdin = await runCli(['inject', '-f', '-'], input);
  t.equal(fromStdin.code, 0);
  t.equal(fromStdin.stdout, await readFile(join(GOLDEN_DIR, 'job.injected.yaml'), 'utf8'));

  const broken = await runCli(['inject', '-f', '-'], 'kind: Pod\n  bad: [indent');
  t.equal(broken.code, 1);
  t.match(broken.stderr, /^error: document 1 is not valid YAML/);

  const dir = await mkdtemp(join(tmpdir(), 'flipt-cli-'));
  const config = join(dir, 'config.yaml');
  await writeFile(config, 'sidecar:\n  httpPort: 99999\n');
  const badConfig = await runCli(['inject', '-f', '-', '--config', config], input);
  t.equal(badConfig.code, 1);
  t.match(
    badConfig.stderr,
    /invalid configuration .*\n {2}- sidecar\.httpPort: must be a port number from 1 to 65535 \(got 99999\)/,
  );

  const missing = await runCli(['inject', '-f', join(dir, 'missing.yaml')]);
  t.equal(missing.code, 1);
  t.match(missing.stderr, /ENOENT/);
});

t.test('check explains every pod template', async (t) => {
  const manifest = [
    await readFile(join(GOLDEN_DIR, 'deployment.yaml'), 'utf8'),
    await readFile(join(GOLDEN_DIR, 'not-requested.yaml'), 'utf8'),
    await readFile(join(GOLDEN_DIR, 'deployment.injected.yaml'), 'utf8'),
  ].join('---\n');
  const run = await runCli(['check', '-f', '-'], manifest);
  t.equal(run.code, 0);
  t.equal(
    run.stdout,
    [
      'Deployment shop/web: inject [pod-label] the pod is labelled flipt.io/inject=true',
      'Pod shop/plain: skip [not-requested] neither the pod nor its namespace asks for injection (label flipt.io/inject)',
      'Deployment shop/web: already injected [pod-label] the pod is labelled flipt.io/inject=true',
      '',
    ].join('\n'),
  );
  const rejected = await runCli(['check', '-f', join(GOLDEN_DIR, 'reject-poll-interval.yaml')]);
  t.equal(rejected.code, 1);
  t.match(
    rejected.stdout,
    /^Pod shop\/bad-poll-interval: reject \[invalid-annotation\] annotation flipt.io\/poll-interval/,
  );
  t.match(rejected.stderr, /^flipt-sidecar-injector refused Pod shop\/bad-poll-interval/);
  const none = await runCli(['check', '-f', '-'], 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n');
  t.equal(none.stdout, 'no pods or pod templates found\n');
});

t.test('certs writes a CA and a serving certificate it signed', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'flipt-certs-'));
  const run = await runCli([
    'certs',
    '--out-dir',
    dir,
    '--dns-name',
    'injector.flipt-system.svc',
    '--ip',
    '127.0.0.1',
    '--days',
    '30',
  ]);
  t.equal(run.code, 0, run.stderr);
  const ca = new X509Certificate(await readFile(join(dir, 'ca.crt')));
  const cert = new X509Certificate(await readFile(join(dir, 'tls.crt')));
  t.ok(ca.ca, 'ca.crt is a CA');
  t.ok(cert.verify(ca.publicKey), 'tls.crt is signed by ca.crt');
  t.match(cert.subjectAltName, /DNS:injector\.flipt-system\.svc/);
  t.match(cert.subjectAltName, /IP Address:127\.0\.0\.1/);
  const days = (Date.parse(cert.validTo) - Date.now()) / 86_400_000;
  t.ok(days > 29 && days <= 30.01, `valid for 30 days (${days.toFixed(2)})`);
  t.equal((await stat(join(dir, 'tls.key'))).mode & 0o777, 0o600, 'the key is private');
  t.equal((await runCli(['certs', '--out-dir', dir, '--days', '0'])).code, 2, '--days out of range');
});

t.test('webhook-config prints the two-entry configuration', async (t) => {
  const { caCert } = await testCertificates();
  const dir = await mkdtemp(join(tmpdir(), 'flipt-whc-'));
  const caFile = join(dir, 'ca.crt');
  await writeFile(caFile, caCert);
  const byService = await runCli([
    'webhook-config',
    '--ca-file',
    caFile,
    '--service',
    'flipt-sidecar-injector',
  ]);
  t.equal(byService.code, 0, byService.stderr);
  const config = parse(byService.stdout);
  t.equal(config.kind, 'MutatingWebhookConfiguration');
  t.equal(config.webhooks.length, 2);
  t.same(
    config.webhooks.map(
      (w: { clientConfig: { service: { path: string; namespace: string } } }) => w.clientConfig.service,
    ),
    [
      { name: 'flipt-sidecar-injector', namespace: 'flipt-system', path: '/mutate', port: 443 },
      { name: 'flipt-sidecar-injector', namespace: 'flipt-system', path: '/mutate/namespace', port: 443 },
    ],
  );
  t.equal(Buffer.from(config.webhooks[0].clientConfig.caBundle, 'base64').toString(), caCert);
  const byUrl = parse(
    (
      await runCli([
        'webhook-config',
        '--ca-file',
        caFile,
        '--url',
        'https://127.0.0.1:8443/',
        '--injector-namespace',
        'x',
        '--failure-policy',
        'Ignore',
      ])
    ).stdout,
  );
  t.equal(byUrl.webhooks[1].clientConfig.url, 'https://127.0.0.1:8443/mutate/namespace');
  t.equal(byUrl.webhooks[0].failurePolicy, 'Ignore');
  t.match(byUrl.webhooks[0].namespaceSelector.matchExpressions[0].values, [
    'kube-system',
    'kube-public',
    'kube-node-lease',
    'x',
  ]);
  t.equal((await runCli(['webhook-config', '--ca-file', caFile])).code, 2, 'a target is required');
  t.equal(
    (
      await runCli([
        'webhook-config',
        '--ca-file',
        caFile,
        '--url',
        'https://x',
        '--failure-policy',
        'Sometimes',
      ])
    ).code,
    2,
  );
});

t.test('serve: a real process that answers over HTTPS and stops cleanly on SIGTERM', async (t) => {
  const certs = await testCertificates();
  const serve = await spawnServe();
  t.teardown(() => void serve.child.kill('SIGKILL'));
  t.match(serve.output(), /flipt-sidecar-injector listening/);
  const health = await httpsCall(`${serve.url}/healthz`, {
    method: 'GET',
    agent: new Agent({ ca: certs.caCert }),
  });
  t.equal(health.status, 200);
  serve.child.kill('SIGTERM');
  t.equal(await serve.exited, 0, 'exit 0 after SIGTERM');
  t.match(serve.output(), /shutting down: finishing in-flight requests/);
});

t.test('serve refuses to start on an invalid config, naming the field', async (t) => {
  const proc = spawnCli(['serve', '--tls-cert', 'x', '--tls-key', 'y'], {
    FLIPT_INJECTOR_POLL_INTERVAL: 'often',
  });
  t.equal(await proc.exited, 1);
  t.match(proc.err(), /storage\.pollInterval: must be a Go duration .*"often"/);
  const noCert = spawnCli([
    'serve',
    '--tls-cert',
    '/nonexistent/tls.crt',
    '--tls-key',
    '/nonexistent/tls.key',
  ]);
  t.equal(await noCert.exited, 1);
  t.match(noCert.err(), /cannot read \/nonexistent\/tls\.crt/);
});

t.test('the compiled bin (what npm installs) runs', async (t) => {
  // Inside the repository, so that the compiled files resolve packages from its node_modules.
  await mkdir(join(root, 'node_modules', '.cache'), { recursive: true });
  const outDir = await mkdtemp(join(root, 'node_modules', '.cache', 'flipt-build-'));
  t.teardown(() => rm(outDir, { recursive: true, force: true }));
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  await promisify(execFile)(process.execPath, [
    tsc,
    '-p',
    join(root, 'tsconfig.build.json'),
    '--outDir',
    outDir,
  ]);
  const { stdout } = await promisify(execFile)(process.execPath, [
    join(outDir, 'src', 'cli.js'),
    'inject',
    '-f',
    join(GOLDEN_DIR, 'job.yaml'),
  ]);
  t.equal(
    stdout,
    await readFile(join(GOLDEN_DIR, 'job.injected.yaml'), 'utf8'),
    'same output as the sources',
  );
});
