// deploy.sh without a cluster: its options, and the certificate bootstrap (`--certs-only`), which
// runs the real `flipt-injector certs` and keeps what is still good. The cluster steps run against
// a real kube-apiserver and kube-controller-manager in the e2e suite (test/e2e/deploy.test.ts).
import { X509Certificate } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { certStatus } from '../../scripts/cert-status.ts';
import { MANIFESTS, parseObjects, ROOT } from './support.ts';

// helm, kubectl and flipt-injector run as processes: slow on a busy 2-core machine, bounded here.
t.setTimeout(300_000);

const DEPLOY = join(ROOT, 'deploy.sh');
const SERVICE_NAMES = [
  'flipt-sidecar-injector',
  'flipt-sidecar-injector.flipt-system',
  'flipt-sidecar-injector.flipt-system.svc',
  'flipt-sidecar-injector.flipt-system.svc.cluster.local',
];

function deploy(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    // No kubectl or minikube is needed for these; an empty KUBECONFIG keeps the user's away.
    execFile(
      'bash',
      [DEPLOY, ...args],
      { env: { ...process.env, KUBECONFIG: '/nonexistent' }, timeout: 120_000 },
      (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}

const files = async (dir: string) =>
  Object.fromEntries(
    await Promise.all(
      ['ca.crt', 'ca.key', 'tls.crt', 'tls.key'].map(async (f) => [f, await readFile(join(dir, f), 'utf8')]),
    ),
  ) as Record<'ca.crt' | 'ca.key' | 'tls.crt' | 'tls.key', string>;

t.test('--certs-only makes a CA and a serving certificate for the Service, keys private', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'flipt-deploy-certs-'));
  const run = await deploy(['--certs-only', '--certs-dir', dir]);
  t.equal(run.code, 0, run.stderr);
  const pems = await files(dir);
  const ca = new X509Certificate(pems['ca.crt']);
  const cert = new X509Certificate(pems['tls.crt']);
  t.ok(ca.ca);
  t.ok(cert.verify(ca.publicKey));
  for (const name of SERVICE_NAMES) t.match(cert.subjectAltName, `DNS:${name}`);
  // The name the API server calls: the Service in the chart-rendered webhook configuration.
  const webhook = parseObjects(
    await readFile(join(MANIFESTS, 'flipt-sidecar-injector', 'mutatingwebhookconfiguration.yaml'), 'utf8'),
  )[0] as unknown as { webhooks: { clientConfig: { service: { name: string; namespace: string } } }[] };
  for (const entry of webhook.webhooks) {
    const { name, namespace } = entry.clientConfig.service;
    t.match(cert.subjectAltName, `DNS:${name}.${namespace}.svc`, 'covers the Service the webhook calls');
  }
  for (const key of ['ca.key', 'tls.key']) t.equal((await stat(join(dir, key))).mode & 0o777, 0o600, key);
});

t.test(
  're-running keeps valid certificates; a new --injector-url host re-issues under the same CA',
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'flipt-deploy-certs-'));
    t.equal((await deploy(['--certs-only', '--certs-dir', dir])).code, 0);
    const first = await files(dir);
    const again = await deploy(['--certs-only', '--certs-dir', dir]);
    t.match(again.stderr, /still valid: kept/);
    t.same(await files(dir), first, 'nothing rewritten');

    const url = await deploy([
      '--certs-only',
      '--certs-dir',
      dir,
      '--injector-url',
      'https://127.0.0.1:18443',
    ]);
    t.equal(url.code, 0, url.stderr);
    t.match(url.stderr, /new serving certificate with the existing CA/);
    const second = await files(dir);
    t.equal(second['ca.crt'], first['ca.crt'], 'the CA (and so the caBundle) is kept');
    t.equal(second['ca.key'], first['ca.key']);
    t.not(second['tls.crt'], first['tls.crt']);
    const cert = new X509Certificate(second['tls.crt']);
    t.match(cert.subjectAltName, 'IP Address:127.0.0.1', 'an IP host becomes an IP SAN');
    t.ok(cert.verify(new X509Certificate(second['ca.crt']).publicKey));
    t.same(
      await files(
        (await deploy(['--certs-only', '--certs-dir', dir, '--injector-url', 'https://127.0.0.1:18443/']))
          .code === 0
          ? dir
          : '',
      ),
      second,
      'same URL again: kept',
    );

    const named = await deploy([
      '--certs-only',
      '--certs-dir',
      dir,
      '--injector-url',
      'https://injector.test:8443',
    ]);
    t.equal(named.code, 0, named.stderr);
    t.match(new X509Certificate((await files(dir))['tls.crt']).subjectAltName, 'DNS:injector.test');
  },
);

t.test('a broken or mismatched CA is replaced', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'flipt-deploy-certs-'));
  t.equal((await deploy(['--certs-only', '--certs-dir', dir])).code, 0);
  const first = await files(dir);
  await writeFile(join(dir, 'ca.key'), first['tls.key']);
  const run = await deploy(['--certs-only', '--certs-dir', dir]);
  t.equal(run.code, 0, run.stderr);
  t.match(run.stderr, /ca\.crt does not match its key/);
  t.not((await files(dir))['ca.crt'], first['ca.crt'], 'a new CA');
});

t.test('cert-status decides keep / reissue / new, and says why', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'flipt-deploy-certs-'));
  t.equal(
    certStatus(dir, { dnsNames: ['a'], ipAddresses: [], minDays: 30 }).status,
    'new',
    'empty directory',
  );
  t.equal((await deploy(['--certs-only', '--certs-dir', dir])).code, 0);
  const wanted = { dnsNames: SERVICE_NAMES, ipAddresses: [], minDays: 30 };
  t.equal(certStatus(dir, wanted).status, 'keep');
  t.match(certStatus(dir, { ...wanted, ipAddresses: ['10.0.0.1'] }), {
    status: 'reissue',
    reason: /IP Address:10\.0\.0\.1/,
  });
  const later = new Date(Date.now() + 340 * 86_400_000);
  t.match(certStatus(dir, { ...wanted, now: later }), { status: 'new', reason: /CA expires within 30 days/ });
  const pems = await files(dir);
  await writeFile(join(dir, 'tls.key'), pems['ca.key']);
  t.match(certStatus(dir, wanted), { status: 'reissue', reason: /tls\.crt does not match its key/ });
  await writeFile(join(dir, 'tls.crt'), 'not a certificate');
  t.match(certStatus(dir, wanted), { status: 'reissue', reason: /cannot be read/ });
});

t.test('bad options get a clear message and exit 1, before anything is touched', async (t) => {
  const cases: [string[], RegExp][] = [
    [['--bogus'], /unknown option: --bogus/],
    [['--image'], /--image needs a value/],
    [['--image', 'flipt-sidecar-injector:latest', '--certs-only'], /pin a tag or digest/],
    [['--image', 'flipt-sidecar-injector', '--certs-only'], /pin a tag or digest/],
    [
      ['--certs-only', '--injector-url', 'http://127.0.0.1:8443'],
      /--injector-url must look like https:\/\/HOST:PORT/,
    ],
    [['--certs-only', '--injector-url', 'https://127.0.0.1:8443/mutate'], /no path/],
  ];
  for (const [args, message] of cases) {
    const run = await deploy(args);
    t.equal(run.code, 1, args.join(' '));
    t.match(run.stderr, message, args.join(' '));
  }
  const help = await deploy(['--help']);
  t.equal(help.code, 0);
  t.match(help.stdout, /--no-minikube.*\n.*--no-image-build/s);
});
