// Fuzz-style: thousands of randomly mutated and truncated AdmissionReview bodies, over real HTTPS.
// Every answer must be a well-formed AdmissionReview (whose patch applies cleanly and leaves exactly
// one sidecar) or a 4xx with a message; never a 5xx, and the server stays up throughout.
// Reproduce a failure with FUZZ_SEED=<seed printed below>; FUZZ_RUNS sets the count.
import fastJsonPatch from 'fast-json-patch';
import t from 'tap';
import { Agent } from 'node:https';
import { admissionReview, httpsCall, spawnServe, testCertificates } from '../support/webhook.ts';

const RUNS = Number(process.env.FUZZ_RUNS ?? 3000);
const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);

/** mulberry32: a small seeded PRNG, so a failing run can be replayed. */
function prng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 2 ** 32;
  };
}

const realisticPod = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: {
    generateName: 'checkout-7d9f8-',
    namespace: 'shop',
    labels: { app: 'checkout', 'flipt.io/inject': 'true', 'pod-template-hash': '7d9f8' },
    annotations: { 'flipt.io/poll-interval': '10s', 'flipt.io/cpu-limit': '250m', 'example.com/a~b/c': 'x' },
    ownerReferences: [
      { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'checkout-7d9f8', uid: 'u', controller: true },
    ],
  },
  spec: {
    initContainers: [{ name: 'migrate', image: 'ghcr.io/example/migrate:1' }],
    containers: [
      { name: 'app', image: 'ghcr.io/example/checkout:4', ports: [{ containerPort: 3000, name: 'http' }] },
      { name: 'worker', image: 'ghcr.io/example/worker:4' },
      { name: 'metrics', image: 'ghcr.io/example/exporter:1', ports: [{ containerPort: 9100 }] },
    ],
    volumes: [{ name: 'config', configMap: { name: 'checkout' } }],
  },
};

const oddValues: unknown[] = [
  null,
  true,
  0,
  -1,
  65536,
  1.5,
  '',
  'x'.repeat(5000),
  '~1/~0',
  '\u0000',
  '🚩',
  [],
  [1, 'a'],
  {},
  { name: 7 },
  'flipt-sidecar',
  'abc',
  '8080',
  '-5',
  '1e400',
  'true',
  'false',
];
const annotationKeys = [
  'flipt.io/http-port',
  'flipt.io/grpc-port',
  'flipt.io/poll-interval',
  'flipt.io/memory-limit',
  'flipt.io/native-sidecar',
  'flipt.io/status',
  'flipt.io/unknown',
  'flipt.io/image',
];

type Json = Record<string, unknown> | unknown[];

function paths(value: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  if (typeof value !== 'object' || value === null) return [prefix];
  const entries = Array.isArray(value) ? value.map((v, i) => [i, v] as const) : Object.entries(value);
  return [prefix, ...entries.flatMap(([k, v]) => paths(v, [...prefix, k]))];
}

function mutate(review: Json, random: () => number): string {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const steps = 1 + Math.floor(random() * 3);
  for (let i = 0; i < steps; i++) {
    const path = pick(paths(review));
    if (path.length === 0) continue;
    const parent = path
      .slice(0, -1)
      .reduce<unknown>((o, k) => (o as Record<string | number, unknown>)[k], review) as Record<
      string | number,
      unknown
    >;
    const key = path.at(-1) as string | number;
    const action = random();
    if (action < 0.35) parent[key] = structuredClone(pick(oddValues));
    else if (action < 0.55) {
      if (Array.isArray(parent)) parent.splice(Number(key), 1);
      else delete parent[key];
    } else if (action < 0.8) {
      const pod = (
        review as { request?: { object?: { metadata?: { annotations?: Record<string, unknown> } } } }
      ).request?.object;
      if (pod?.metadata && typeof pod.metadata === 'object') {
        pod.metadata.annotations = {
          ...(typeof pod.metadata.annotations === 'object' ? pod.metadata.annotations : {}),
        };
        pod.metadata.annotations[pick(annotationKeys)] = pick(oddValues.filter((v) => typeof v === 'string'));
      }
    } else {
      // Graft a copy of another part of the review here (a Pod where a string was, and so on).
      const donor = pick(paths(review)).reduce<unknown>(
        (o, k) => (o as Record<string | number, unknown>)[k],
        review,
      );
      parent[key] = structuredClone(donor);
    }
  }
  let text = JSON.stringify(review);
  const corruption = random();
  if (corruption < 0.15) text = text.slice(0, Math.floor(random() * text.length));
  else if (corruption < 0.25) {
    const at = Math.floor(random() * text.length);
    text = text.slice(0, at) + pick(['"', '}', ']', ',', '\\', '\u00ff', 'null']) + text.slice(at + 1);
  }
  return text;
}

t.test(`fuzzed AdmissionReviews (seed ${SEED}, ${RUNS} runs)`, async (t) => {
  // The server under test is a real `flipt-injector serve` process.
  const serve = await spawnServe();
  const agent = new Agent({ ca: (await testCertificates()).caCert, keepAlive: true });
  t.teardown(async () => {
    agent.destroy();
    serve.child.kill('SIGTERM');
    await serve.exited;
  });
  const webhook = {
    post: (path: string, body: string) => httpsCall(`${serve.url}${path}`, { method: 'POST', agent, body }),
    get: (path: string) => httpsCall(`${serve.url}${path}`, { method: 'GET', agent }),
  };
  const random = prng(SEED);
  const tally = { allowedWithPatch: 0, allowedNoPatch: 0, denied: 0, clientError: 0 };
  const failures: string[] = [];

  for (let run = 0; run < RUNS && failures.length < 5; run++) {
    const review = admissionReview(structuredClone(realisticPod), 'shop');
    const body = mutate(review as unknown as Json, random);
    const path = random() < 0.5 ? '/mutate' : '/mutate/namespace';
    const answer = await webhook.post(path, body);
    const fail = (why: string) =>
      failures.push(
        `run ${run}: ${why}\n  body: ${body.slice(0, 300)}\n  answer: ${answer.status} ${answer.text.slice(0, 300)}`,
      );

    if (answer.status >= 400 && answer.status < 500) {
      const message = (answer.json() as { message?: unknown }).message;
      if (typeof message !== 'string' || message === '') fail('a 4xx without a message');
      tally.clientError++;
      continue;
    }
    if (answer.status !== 200) {
      fail(`status ${answer.status}`);
      continue;
    }
    const reply = answer.json() as {
      apiVersion?: string;
      kind?: string;
      response?: {
        uid?: unknown;
        allowed?: unknown;
        patch?: string;
        patchType?: string;
        status?: { message?: unknown };
      };
    };
    const sent = JSON.parse(body) as { request: { uid: string; object: unknown } };
    if (reply.apiVersion !== 'admission.k8s.io/v1' || reply.kind !== 'AdmissionReview')
      fail('not an AdmissionReview');
    if (reply.response?.uid !== sent.request.uid) fail('uid not echoed');
    if (typeof reply.response?.allowed !== 'boolean') fail('allowed is not a boolean');
    if (reply.response?.allowed === false) {
      if (typeof reply.response.status?.message !== 'string') fail('a denial without a message');
      tally.denied++;
      continue;
    }
    if (reply.response?.patch === undefined) {
      tally.allowedNoPatch++;
      continue;
    }
    tally.allowedWithPatch++;
    if (reply.response.patchType !== 'JSONPatch') fail('patch without patchType JSONPatch');
    try {
      const operations = JSON.parse(Buffer.from(reply.response.patch, 'base64').toString('utf8'));
      const patched = fastJsonPatch.applyPatch(structuredClone(sent.request.object), operations, true, false)
        .newDocument as {
        spec: { initContainers?: { name: string }[]; containers: { name: string }[] };
      };
      const sidecars = [...(patched.spec.initContainers ?? []), ...patched.spec.containers].filter(
        (c) => c.name === 'flipt-sidecar',
      );
      if (sidecars.length !== 1) fail(`${sidecars.length} sidecars after the patch`);
    } catch (err) {
      fail(`the patch does not apply: ${(err as Error).message}`);
    }
  }
  t.same(failures, [], 'every answer is well-formed');
  t.equal((await webhook.get('/healthz')).status, 200, 'the server is still up');
  t.equal(serve.child.exitCode, null, 'the process never exited');
  t.ok(
    tally.allowedWithPatch > 0 && tally.denied > 0 && tally.clientError > 0,
    `all outcomes exercised: ${JSON.stringify(tally)}`,
  );
});
