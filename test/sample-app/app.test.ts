// The sample app over real HTTP against two loopback servers that stand in for Flipt's evaluation
// API (POST /evaluate/v1/batch, answers shaped as Flipt v1.61.1's BatchEvaluationResponse): named
// as such, because the unit suite runs without a Flipt binary. One plays the sidecar, the other
// flipt-master; they answer from a small table, so the page's side-by-side view, disagreement,
// failures and timeouts can all be produced on demand.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { resolve } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import t from 'tap';
import { buildSampleApp } from '../../src/sample-app/app.ts';
import { parseSampleAppConfig, type SampleAppConfig } from '../../src/sample-app/config.ts';
import { escapeHtml } from '../../src/sample-app/page.ts';

// Real servers and a child process: bounded generously for a busy 2-core machine.
t.setTimeout(120_000);

interface FliptStandIn {
  url: string;
  requests: unknown[];
  /** flag key → answer; a missing key answers NOT_FOUND like Flipt. */
  flags: Map<string, { variant?: string; attachment?: string; enabled?: boolean }>;
  status: number;
  delayMs: number;
  close(): Promise<void>;
}

async function fliptStandIn(): Promise<FliptStandIn> {
  const app: FastifyInstance = Fastify();
  const state: FliptStandIn = {
    url: '',
    requests: [],
    flags: new Map(),
    status: 200,
    delayMs: 0,
    close: () => app.close(),
  };
  app.post('/evaluate/v1/batch', async (request, reply) => {
    state.requests.push(request.body);
    // unref: a long delay must not keep the test process alive after teardown.
    if (state.delayMs > 0) await new Promise((r) => setTimeout(r, state.delayMs).unref());
    if (state.status !== 200) return reply.code(state.status).send({ code: 13, message: 'boom' });
    const body = request.body as {
      requests: {
        flagKey: string;
        namespaceKey: string;
        entityId: string;
        context: Record<string, string>;
      }[];
    };
    return {
      requestId: 'r',
      requestDurationMillis: 0.1,
      responses: body.requests.map(({ flagKey, namespaceKey }) => {
        const flag = state.flags.get(flagKey);
        if (!flag) {
          return {
            type: 'ERROR_EVALUATION_RESPONSE_TYPE',
            errorResponse: { flagKey, namespaceKey, reason: 'NOT_FOUND_ERROR_EVALUATION_REASON' },
          };
        }
        if (flag.enabled !== undefined) {
          return {
            type: 'BOOLEAN_EVALUATION_RESPONSE_TYPE',
            booleanResponse: { flagKey, enabled: flag.enabled, reason: 'DEFAULT_EVALUATION_REASON' },
          };
        }
        return {
          type: 'VARIANT_EVALUATION_RESPONSE_TYPE',
          variantResponse: {
            flagKey,
            match: true,
            segmentKeys: ['everyone'],
            reason: 'MATCH_EVALUATION_REASON',
            variantKey: flag.variant,
            variantAttachment: flag.attachment ?? '',
          },
        };
      }),
    };
  });
  state.url = await app.listen({ host: '127.0.0.1', port: 0 });
  return state;
}

async function setup(t: { teardown(fn: () => unknown): void }, env: Record<string, string> = {}) {
  const sidecar = await fliptStandIn();
  const master = await fliptStandIn();
  for (const stand of [sidecar, master]) {
    stand.flags.set('color-theme', { variant: 'blue', attachment: '{"background":"#0969da"}' });
    stand.flags.set('new-checkout', { enabled: false });
  }
  const parsed = parseSampleAppConfig({
    SAMPLE_APP_SIDECAR_URL: sidecar.url,
    SAMPLE_APP_MASTER_URL: master.url,
    SAMPLE_APP_FLAGS: 'color-theme,new-checkout',
    ...env,
  });
  if (!parsed.ok) throw new Error(parsed.errors.join('; '));
  const config: SampleAppConfig = { ...parsed.config, host: '127.0.0.1', port: 0 };
  const app = buildSampleApp(config);
  const url = await app.listen({ host: config.host, port: 0 });
  t.teardown(async () => {
    await app.close();
    await sidecar.close();
    await master.close();
  });
  return { sidecar, master, url };
}

t.test('the page shows both answers and both latencies side by side', async (t) => {
  const { sidecar, master, url } = await setup(t);
  const response = await fetch(`${url}/?entity=alice&plan=beta&ignored=x`);
  t.equal(response.status, 200);
  t.match(response.headers.get('content-type'), /text\/html/);
  const html = await response.text();
  t.match(html, /sidecar \(localhost\)/);
  t.match(html, /flipt-master/);
  t.equal(html.match(/\d+\.\d\d ms/g)?.length, 2, 'two latencies');
  t.match(html, /Both give the same answers/);
  t.match(html, /<strong>blue<\/strong>/);
  t.match(html, escapeHtml('{"background":"#0969da"}'));
  t.match(html, /<strong>false<\/strong>/);
  t.match(html, /as long as the sidecar/);
  // Exactly one batch request to each, with the page's entity and only the known context keys.
  t.equal(sidecar.requests.length, 1);
  t.equal(master.requests.length, 1);
  t.same(sidecar.requests[0], {
    requests: ['color-theme', 'new-checkout'].map((flagKey) => ({
      namespaceKey: 'default',
      flagKey,
      entityId: 'alice',
      context: { plan: 'beta' },
    })),
  });
});

t.test('a disagreement (the sidecar still on the last export) is shown per flag', async (t) => {
  const { master, url } = await setup(t);
  master.flags.set('new-checkout', { enabled: true });
  const compare = (await (await fetch(`${url}/api/compare`)).json()) as {
    agree: boolean;
    sidecar: { answers: { value: string }[] };
    master: { answers: { value: string }[] };
  };
  t.equal(compare.agree, false);
  t.equal(compare.sidecar.answers[1]?.value, 'false');
  t.equal(compare.master.answers[1]?.value, 'true');
  const html = await (await fetch(url)).text();
  t.match(html, /The answers differ/);
  t.match(html, /&ne;/);
});

t.test('a side that fails is reported, the other still shown', async (t) => {
  const { master, url } = await setup(t);
  master.status = 500;
  const compare = (await (await fetch(`${url}/api/compare`)).json()) as {
    agree: null;
    sidecar: { ok: boolean };
    master: { ok: boolean; error: string };
  };
  t.equal(compare.agree, null);
  t.ok(compare.sidecar.ok);
  t.notOk(compare.master.ok);
  t.match(compare.master.error, /^HTTP 500/);
  const html = await (await fetch(url)).text();
  t.match(html, /One side did not answer/);
});

t.test('a side that does not answer in time is reported as such', async (t) => {
  // The stand-in waits far longer than the timeout: only the timeout can end the request.
  const { sidecar, url } = await setup(t, { SAMPLE_APP_TIMEOUT_MS: '300' });
  sidecar.delayMs = 20_000;
  const compare = (await (await fetch(`${url}/api/compare`)).json()) as {
    sidecar: { ok: boolean; error: string };
  };
  t.notOk(compare.sidecar.ok);
  t.match(compare.sidecar.error, /no answer within 300 ms/);
});

t.test('an unreachable Flipt is an answer, not a crash', async (t) => {
  const { url } = await setup(t, { SAMPLE_APP_MASTER_URL: 'http://127.0.0.1:1' });
  const compare = (await (await fetch(`${url}/api/compare`)).json()) as {
    master: { ok: boolean; error: string };
  };
  t.notOk(compare.master.ok);
  t.match(compare.master.error, /fetch failed|ECONNREFUSED/);
});

t.test('a flag the store does not know is shown as not found', async (t) => {
  const { sidecar, url } = await setup(t);
  sidecar.flags.delete('color-theme');
  const compare = (await (await fetch(`${url}/api/compare`)).json()) as {
    sidecar: { answers: { kind: string; value: string }[] };
  };
  t.same(compare.sidecar.answers[0], {
    flagKey: 'color-theme',
    kind: 'error',
    value: 'not found',
    reason: 'not found',
  });
});

t.test('request input is escaped and bounded', async (t) => {
  const { url } = await setup(t);
  const html = await (await fetch(`${url}/?entity=${encodeURIComponent('<script>x</script>')}`)).text();
  t.notMatch(html, /<script>x/);
  t.match(html, /&lt;script&gt;x/);
  const tooLong = await fetch(`${url}/?entity=${'a'.repeat(101)}`);
  t.equal(tooLong.status, 400);
});

t.test('/healthz answers without asking either Flipt', async (t) => {
  const { sidecar, master, url } = await setup(t);
  const response = await fetch(`${url}/healthz`);
  t.equal(response.status, 200);
  t.same(await response.json(), { status: 'ok' });
  t.equal(sidecar.requests.length + master.requests.length, 0);
});

const MAIN = resolve(import.meta.dirname, '..', '..', 'src', 'sample-app', 'main.ts');

t.test('main: refuses an invalid environment naming the variable, exit 2', async (t) => {
  const child = spawn(process.execPath, [MAIN], {
    env: { ...process.env, SAMPLE_APP_PORT: 'eighty' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const [code] = (await once(child, 'exit')) as [number];
  t.equal(code, 2);
  t.match(stderr, /SAMPLE_APP_PORT: must be an integer/);
});

t.test('main: listens, answers /healthz, stops cleanly on SIGTERM', async (t) => {
  const child = spawn(process.execPath, [MAIN], {
    env: { ...process.env, SAMPLE_APP_HOST: '127.0.0.1', SAMPLE_APP_PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  // Fastify logs the address it listens on; port 0 picks a free one.
  let stdout = '';
  const address = await new Promise<string>((resolveAddress, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listening line within 60 s: ${stdout}`)), 60_000);
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      const match = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout);
      if (match?.[1]) {
        clearTimeout(timer);
        resolveAddress(match[1]);
      }
    });
  });
  const response = await fetch(`${address}/healthz`);
  t.equal(response.status, 200);
  child.kill('SIGTERM');
  const [code] = (await once(child, 'exit')) as [number];
  t.equal(code, 0);
});
