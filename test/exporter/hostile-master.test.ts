// Issue 9's attacks on the exporter, each reproduced against a loopback HTTP server posing as the
// master (a real Flipt cannot be made to answer like this: these are the faults of a broken or
// hostile master). Each test failed before its fix: endless page tokens, a list cut short without
// a count, zero namespaces, an answer of any size, flag keys that are dot segments, a run without
// an end.
import t from 'tap';
import { runExport } from '../../exporter/export.ts';
import { createFliptClient, FliptReadError } from '../../exporter/flipt-client.ts';
import { readFliptState } from '../../exporter/flipt-read.ts';
import { createDocumentValidator } from '../../exporter/schema.ts';
import { answer, loadFixture, startReplayMaster, syntheticData, type MasterData } from './flipt-replay.ts';
import { MemoryStore } from './memory-store.ts';

async function master(t: { teardown(fn: () => unknown): void }, data: MasterData) {
  const m = await startReplayMaster({ data });
  t.teardown(() => m.close());
  return m;
}

async function readError(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected the read to fail');
}

const shrink = { allowShrink: false, maxShrink: 0.25 };

t.test('a master handing out a new page token forever: the list stops at --max-pages', async (t) => {
  const m = await master(t, syntheticData(10, 1));
  let served = 0;
  m.handler = (r, normal) => {
    if (!r.path.endsWith('/default/flags')) return normal();
    served++;
    const first = { ...r, query: new URLSearchParams('limit=100') };
    const page = JSON.parse(answer(m.data, first).body) as Record<string, unknown>;
    return { status: 200, body: JSON.stringify({ ...page, nextPageToken: `token-${served}` }) };
  };
  const client = createFliptClient({ baseUrl: m.url, timeoutMs: 2_000, retries: 0, maxPages: 25 });
  const err = await readError(readFliptState(client, { concurrency: 2 }));
  t.type(err, FliptReadError);
  t.match(err.message, /namespace default flags: still not at the end after 25 pages \(--max-pages 25\)/);
  t.equal(served, 25, 'exactly --max-pages requests to the list');
});

t.test('a list cut short without a count, or with a count of 0, is refused', async (t) => {
  for (const [name, total] of [
    ['absent', undefined],
    ['0', 0],
  ] as const) {
    const m = await master(t, syntheticData(5, 1));
    m.handler = (r, normal) => {
      if (!r.path.endsWith('/default/flags')) return normal();
      const page = JSON.parse(normal().body) as Record<string, unknown>;
      // 2 of 5 flags, an empty next token: the last page as far as the exporter can tell.
      const cut: Record<string, unknown> = {
        flags: (page['flags'] as unknown[]).slice(0, 2),
        nextPageToken: '',
      };
      if (total !== undefined) cut['totalCount'] = total;
      return { status: 200, body: JSON.stringify(cut) };
    };
    const client = createFliptClient({ baseUrl: m.url, timeoutMs: 2_000, retries: 0 });
    const err = await readError(readFliptState(client, { concurrency: 2 }));
    t.match(
      err.message,
      total === undefined
        ? /namespace default flags: the master's answer has no totalCount, which every Flipt v1 list reports; refusing 2 items/
        : /namespace default flags: read 2 items in 1 pages but the master counts 0/,
      `totalCount ${name}`,
    );
  }
});

t.test('a master listing zero namespaces is refused and nothing is written', async (t) => {
  const m = await master(t, syntheticData(3, 1));
  m.handler = (r, normal) =>
    r.path === '/api/v1/namespaces'
      ? { status: 200, body: JSON.stringify({ namespaces: [], nextPageToken: '', totalCount: 0 }) }
      : normal();
  const store = new MemoryStore();
  const flipt = createFliptClient({ baseUrl: m.url, timeoutMs: 2_000, retries: 0 });
  const outcome = await runExport(
    { flipt, store, validate: createDocumentValidator() },
    { concurrency: 2, flagsPerDocument: 100, shrink },
  );
  t.match(outcome, {
    status: 'failed',
    stage: 'flipt',
    message: /the master lists no namespaces; a Flipt master always has "default"/,
  });
  t.equal(store.puts, 0, 'no PUT, not even an empty one');
  t.equal(store.heads, 0);
});

t.test('an answer larger than --max-response-size fails the read, with or without a length', async (t) => {
  for (const chunked of [false, true]) {
    const m = await master(t, loadFixture());
    const huge = JSON.stringify({
      segments: [],
      nextPageToken: '',
      totalCount: 0,
      padding: 'x'.repeat(3 * 1024 * 1024),
    });
    m.handler = (r, normal) =>
      r.path.endsWith('/default/segments') ? { status: 200, body: huge, chunked } : normal();
    const client = createFliptClient({
      baseUrl: m.url,
      timeoutMs: 5_000,
      retries: 0,
      maxResponseBytes: 1024 * 1024,
    });
    const err = await readError(readFliptState(client, { concurrency: 2 }));
    t.type(err, FliptReadError);
    t.match(
      err.message,
      chunked
        ? /GET http:\/\/127\.0\.0\.1:\d+\/api\/v1\/namespaces\/default\/segments\?limit=100: the answer is larger than the 1\.0 MiB the exporter reads \(--max-response-size\)/
        : /segments\?limit=100: the answer declares 3\.0 MiB, more than the 1\.0 MiB the exporter reads/,
      chunked ? 'chunked' : 'with Content-Length',
    );
  }
});

t.test('flag and namespace keys that are dot segments reach their own endpoints', async (t) => {
  const data = syntheticData(0, 1);
  const keys = ['.', '..', '%2e%2e', '.%2e', 'a/b', '...'];
  const template = (syntheticData(3, 1).flags['default'] as Record<string, unknown>[])[2]!; // boolean
  data.flags['default'] = keys.map((key) => ({ ...template, key }));
  data.namespaces.push({ ...data.namespaces[0], key: '..', name: 'dots' });
  data.segments['..'] = [];
  data.flags['..'] = [{ ...template, key: '..' }];
  const m = await master(t, data);
  const client = createFliptClient({ baseUrl: m.url, timeoutMs: 2_000, retries: 0 });
  const state = await readFliptState(client, { concurrency: 2 });
  t.same(
    state.namespaces.map((n) => [n.namespace.key, n.flags.map((f) => f.flag.key)]),
    [
      ['default', keys],
      ['..', ['..']],
    ],
  );
  const received = m.requests.map((r) => r.rawPath);
  for (const path of [
    '/api/v1/namespaces/default/flags/%2E/rollouts',
    '/api/v1/namespaces/default/flags/%2E%2E/rollouts',
    '/api/v1/namespaces/default/flags/%252e%252e/rollouts',
    '/api/v1/namespaces/default/flags/.%252e/rollouts',
    '/api/v1/namespaces/default/flags/a%2Fb/rollouts',
    '/api/v1/namespaces/default/flags/.../rollouts',
    '/api/v1/namespaces/%2E%2E/flags',
    '/api/v1/namespaces/%2E%2E/segments',
    '/api/v1/namespaces/%2E%2E/flags/%2E%2E/rollouts',
  ]) {
    t.ok(received.includes(path), `the server received ${path}`);
  }
  // Collapsed, these would have been other endpoints.
  for (const wrong of [
    '/api/v1/namespaces/default/rollouts',
    '/api/v1/namespaces/default/flags/rollouts',
    '/api/v1/flags',
  ])
    t.notOk(received.includes(wrong), `nothing reached ${wrong}`);
});

t.test('a run past --deadline fails and writes nothing; the next run is unaffected', async (t) => {
  const m = await master(t, syntheticData(40, 1));
  const store = new MemoryStore();
  const flipt = createFliptClient({ baseUrl: m.url, timeoutMs: 5_000, retries: 0 });
  const deps = { flipt, store, validate: createDocumentValidator() };
  // Every per-flag read takes 100 ms: 40 flags one at a time take 4 s, the deadline is 0.5 s.
  m.handler = (r, normal) =>
    /\/flags\/[^/]+\/(rules|rollouts)$/.test(r.path) ? { ...normal(), delayMs: 100 } : normal();
  const started = Date.now();
  const late = await runExport(deps, { concurrency: 1, flagsPerDocument: 100, shrink, deadlineMs: 500 });
  t.match(late, {
    status: 'failed',
    stage: 'deadline',
    message: /did not finish within its deadline of 500 ms \(--deadline\); nothing was written/,
  });
  t.ok(Date.now() - started < 2_000, 'the run ended at its deadline, not when the reads did');
  t.equal(store.puts, 0);
  m.handler = (_r, normal) => normal();
  t.match(await runExport(deps, { concurrency: 4, flagsPerDocument: 100, shrink, deadlineMs: 10_000 }), {
    status: 'uploaded',
    flags: 40,
  });
});
