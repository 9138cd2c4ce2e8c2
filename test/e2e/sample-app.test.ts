// sample-app against the real pieces it was made for, and the demo flags through real Flipt:
// - `flipt validate` accepts manifests/flipt-master/demo-flags.yml;
// - a Flipt v1.61.1 master seeded exactly as manifests/flipt-master seeds it: the init container's
//   `flipt import --skip-existing demo-flags.yml` on the master's database, twice (a restart), with
//   an edit made in between surviving the second import;
// - the exporter writes the bucket on a real MinIO; a real sidecar started with the injector's own
//   environment (harness/flipt.ts) reads it;
// - sample-app asks both, shows the same answers, and follows a change made on the master once the
//   exporter has run and the sidecar has polled: the README's quick-start story, end to end.
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import t from 'tap';
import { buildSampleApp } from '../../src/sample-app/app.ts';
import { parseSampleAppConfig } from '../../src/sample-app/config.ts';
import { serverBinary, waitFor } from '../support/process.ts';
import { useMinio } from '../support/minio.ts';
import { exportTarget, runExporter, resultLine } from './harness/exporter.ts';
import { runFliptCli, useFliptMaster, useInjectedSidecar, type FliptMaster } from './harness/flipt.ts';

t.setTimeout(300_000);
const SEED_DIR = resolve(import.meta.dirname, '..', '..', 'manifests', 'flipt-master');
const SEED_FILE = 'demo-flags.yml';

/** The seed init container's command, on the master's database (the master stopped, as in a pod). */
async function seed(master: FliptMaster): Promise<{ code: number | null; output: string }> {
  await master.stop();
  const child = spawn(serverBinary('flipt'), ['import', '--skip-existing', SEED_FILE], {
    cwd: SEED_DIR,
    env: {
      PATH: process.env['PATH'] ?? '/usr/bin:/bin',
      HOME: master.dir,
      FLIPT_DB_URL: `file:${join(master.dir, 'flipt.db')}`,
      FLIPT_META_STATE_DIRECTORY: join(master.dir, 'state'),
      FLIPT_META_TELEMETRY_ENABLED: 'false',
      FLIPT_META_CHECK_FOR_UPDATES: 'false',
      FLIPT_LOG_ENCODING: 'json',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (output += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (output += c));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const code = await new Promise<number | null>((done) => child.once('close', done));
  clearTimeout(timer);
  await master.start();
  return { code, output };
}

async function api(master: FliptMaster, method: string, path: string, body?: unknown): Promise<unknown> {
  const response = await fetch(`${master.url}${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: HTTP ${response.status} ${text}`);
  return JSON.parse(text);
}
const setBanner = (master: FliptMaster, enabled: boolean) =>
  api(master, 'PUT', '/api/v1/namespaces/default/flags/maintenance-banner', {
    name: 'Maintenance banner',
    enabled,
  });

t.test('flipt validate accepts the demo flags', async (t) => {
  const result = await runFliptCli(['validate', SEED_FILE], { cwd: SEED_DIR });
  t.equal(result.code, 0, result.code === 0 ? 'flipt validate: exit 0' : `${result.stdout}${result.stderr}`);
});

const master = await useFliptMaster(t);

t.test('the seed imports the demo flags; a second run keeps an edit made in the UI', async (t) => {
  const first = await seed(master);
  t.equal(first.code, 0, first.code === 0 ? 'first import: exit 0' : first.output);
  const { flags } = (await api(master, 'GET', '/api/v1/namespaces/default/flags')) as {
    flags: { key: string; enabled: boolean }[];
  };
  t.same(flags.map((f) => f.key).sort(), [
    'color-theme',
    'maintenance-banner',
    'new-checkout',
    'recommendation-engine',
  ]);
  await setBanner(master, true);
  const again = await seed(master);
  t.equal(again.code, 0, again.code === 0 ? 'second import: exit 0' : again.output);
  const banner = (await api(master, 'GET', '/api/v1/namespaces/default/flags/maintenance-banner')) as {
    enabled: boolean;
  };
  t.equal(banner.enabled, true, '--skip-existing left the edited flag alone');
});

t.test('exported to MinIO, read by a real injected sidecar, compared by sample-app', async (t) => {
  const minio = await useMinio(t);
  await minio.createBucket('flipt');
  const exportOnce = async () => {
    const run = await runExporter(
      exportTarget({ fliptUrl: master.url, bucket: 'flipt', endpoint: minio.endpoint }),
      minio.credentialsEnv(),
    );
    if (run.code !== 0) throw new Error(`exporter failed: ${JSON.stringify(run.logs)} ${run.stderr}`);
    return resultLine(run.logs);
  };
  await exportOnce();
  const sidecar = await useInjectedSidecar(t, {
    bucket: 'flipt',
    accessKeyId: minio.rootUser,
    secretAccessKey: minio.rootPassword,
    s3Endpoint: minio.endpoint,
    annotations: { 'flipt.io/poll-interval': '1s' },
  });

  const parsed = parseSampleAppConfig({
    SAMPLE_APP_HOST: '127.0.0.1',
    SAMPLE_APP_PORT: '0',
    SAMPLE_APP_SIDECAR_URL: sidecar.url,
    SAMPLE_APP_MASTER_URL: master.url,
  });
  if (!parsed.ok) throw new Error(parsed.errors.join('; '));
  const app = buildSampleApp(parsed.config);
  const appUrl = await app.listen({ host: '127.0.0.1', port: 0 });
  t.teardown(() => app.close());

  interface Compare {
    agree: boolean | null;
    flags: string[];
    sidecar: {
      ok: boolean;
      durationMs: number;
      answers: { flagKey: string; value: string; reason: string }[];
    };
    master: {
      ok: boolean;
      durationMs: number;
      answers: { flagKey: string; value: string; reason: string }[];
    };
  }
  const compare = async (query: string) =>
    (await (await fetch(`${appUrl}/api/compare?${query}`)).json()) as Compare;
  const values = (side: Compare['sidecar']) =>
    Object.fromEntries(side.answers.map((a) => [a.flagKey, a.value]));

  t.test('the page: the sidecar and the master give the same answers, from the demo rules', async (t) => {
    const beta = await compare('entity=alice&plan=beta');
    t.ok(
      beta.sidecar.ok && beta.master.ok,
      beta.sidecar.ok && beta.master.ok ? 'both answered' : JSON.stringify(beta),
    );
    t.equal(beta.agree, true);
    t.same(values(beta.sidecar), {
      'color-theme': 'purple',
      'recommendation-engine': 'popularity',
      'new-checkout': 'true',
      'maintenance-banner': 'true',
    });
    const euPowerUser = await compare('entity=bob&region=eu-west-1&orders=12');
    t.equal(euPowerUser.agree, true);
    t.equal(values(euPowerUser.sidecar)['recommendation-engine'], 'collaborative', 'AND of two segments');
    t.match(values(euPowerUser.sidecar)['color-theme'], /^(blue|green)$/, '50/50 rollout for everyone');
    const html = await (await fetch(`${appUrl}/?entity=alice&plan=beta`)).text();
    t.match(html, /Both give the same answers/);
    t.equal(html.match(/\d+\.\d\d ms/g)?.length, 2, 'both latencies shown');
    t.comment(`one sample: sidecar ${beta.sidecar.durationMs} ms, master ${beta.master.durationMs} ms`);
  });

  t.test('a change on the master reaches the page after an export and a poll', async (t) => {
    await setBanner(master, false);
    const stale = await compare('entity=alice');
    t.equal(values(stale.master)['maintenance-banner'], 'false', 'the master has the change at once');
    t.equal(values(stale.sidecar)['maintenance-banner'], 'true', 'the sidecar still serves the last export');
    t.equal(stale.agree, false);
    const exported = await exportOnce();
    t.equal(exported['result'], 'uploaded');
    await waitFor(
      'the sidecar to pick up the export',
      async () => (await compare('entity=alice')).agree === true,
      {
        timeoutMs: 30_000,
        intervalMs: 500,
      },
    );
    t.equal(values((await compare('entity=alice')).sidecar)['maintenance-banner'], 'false');
  });
});
