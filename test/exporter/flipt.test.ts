// The Flipt side of the exporter against a replaying master: fixtures written from Flipt v1.61.1's
// REST API definitions, served by a loopback HTTP server that pages like Flipt (Flipt cannot be
// built on this machine, so there is no real master to record). Covers paging past several pages,
// the bearer token, bounded concurrency, and every way a read can fail: a failed read must be an
// error, never a smaller state.
import t from 'tap';
import { createFliptClient, FliptReadError, type FliptClient } from '../../exporter/flipt-client.ts';
import { readFliptState } from '../../exporter/flipt-read.ts';
import {
  answer,
  loadFixture,
  requestsTo,
  startReplayMaster,
  syntheticData,
  type MasterData,
  type ReplayMaster,
} from './flipt-replay.ts';

async function withMaster(
  t: { teardown(fn: () => unknown): void },
  data: MasterData,
  token?: string,
): Promise<ReplayMaster> {
  const master = await startReplayMaster({ data, ...(token !== undefined ? { token } : {}) });
  t.teardown(() => master.close());
  return master;
}

function client(
  master: ReplayMaster,
  extra: Partial<Parameters<typeof createFliptClient>[0]> = {},
): FliptClient {
  return createFliptClient({
    baseUrl: master.url,
    timeoutMs: 2_000,
    retries: 0,
    wait: async () => true,
    ...extra,
  });
}

async function readError(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected the read to fail');
}

t.test('reads every namespace, flag, segment, rule and rollout of the fixture', async (t) => {
  const master = await withMaster(t, loadFixture());
  const c = client(master);
  const state = await readFliptState(c, { concurrency: 4 });
  t.same(
    state.namespaces.map((n) => [n.namespace.key, n.flags.length, n.segments.length]),
    [
      ['default', 5, 4],
      ['production', 2, 1],
      ['staging', 0, 0],
    ],
  );
  const checkout = state.namespaces[0]?.flags.find((f) => f.flag.key === 'new-checkout');
  t.equal(checkout?.rules.length, 3);
  t.equal(checkout?.flag.defaultVariantId, checkout?.flag.variants[0]?.id);
  t.same(checkout?.flag.metadata, { team: 'payments', tier: 2, beta: true });
  const darkMode = state.namespaces[0]?.flags.find((f) => f.flag.key === 'dark-mode');
  t.equal(darkMode?.rollouts.length, 4);
  t.equal(darkMode?.rollouts[3]?.threshold?.percentage, 33.33);

  const lists = master.requests.filter((r) => !/^\/api\/v1\/namespaces\/[^/]+$/.test(r.path));
  t.ok(
    lists.every((r) => r.query.get('limit') === '100'),
    'every list asks for the largest page Flipt serves (100)',
  );
  t.same(
    master.requests
      .filter((r) => r.path.endsWith('/rules'))
      .map((r) => r.path.split('/')[6])
      .sort(),
    ['banner-color', 'checkout-v2', 'greeting', 'new-checkout'],
    'one rules call per variant flag',
  );
  t.notOk(
    master.requests.some((r) => /\/(dark-mode|kill-switch|ops-flag)\/rules$/.test(r.path)),
    'no rules call for boolean flags',
  );
  t.notOk(
    master.requests.some((r) => /\/(new-checkout|banner-color|greeting|checkout-v2)\/rollouts$/.test(r.path)),
    'no rollouts call for variant flags',
  );
  t.equal(c.requests, master.requests.length, 'the client counts what it sent');
});

t.test(
  'pages past several pages: 120 namespaces, 230 flags in one namespace, 250 rules on one flag',
  async (t) => {
    const data = syntheticData(600, 120);
    const big = syntheticData(230, 1);
    data.flags['default'] = big.flags['default'] as MasterData['flags'][string];
    Object.assign(data.rules, big.rules);
    Object.assign(data.rollouts, big.rollouts);
    const template = (data.rules['default/flag-00000'] as Record<string, unknown>[])[0] as Record<
      string,
      unknown
    >;
    data.rules['default/flag-00000'] = Array.from({ length: 250 }, (_, i) => ({
      ...template,
      id: `rule-${i}`,
      rank: i + 1,
    }));
    const master = await withMaster(t, data);
    const state = await readFliptState(client(master), { concurrency: 8 });

    t.equal(state.namespaces.length, 120);
    t.equal(requestsTo(master, '/api/v1/namespaces').length, 2, 'namespaces: 2 pages of up to 100');
    const def = state.namespaces.find((n) => n.namespace.key === 'default');
    t.equal(def?.flags.length, 230);
    const flagPages = requestsTo(master, '/api/v1/namespaces/default/flags');
    t.equal(flagPages.length, 3, 'flags: 3 pages');
    t.same(
      flagPages.map((r) => r.query.has('pageToken')),
      [false, true, true],
      'the next page is asked for with the token the previous page returned',
    );
    t.same(
      def?.flags.map((f) => f.flag.key),
      big.flags['default']?.map((f) => f['key']),
      'every flag once, in the order served',
    );
    t.equal(def?.flags[0]?.rules.length, 250);
    t.equal(
      requestsTo(master, '/api/v1/namespaces/default/flags/flag-00000/rules').length,
      3,
      'rules: 3 pages',
    );
    const total = state.namespaces.reduce((n, ns) => n + ns.flags.length, 0);
    t.equal(total, 230 + 119 * 5);
  },
);

t.test('a smaller page size pages the same state in more requests', async (t) => {
  const master = await withMaster(t, syntheticData(95, 1));
  const state = await readFliptState(client(master, { pageLimit: 10 }), { concurrency: 4 });
  t.equal(state.namespaces[0]?.flags.length, 95);
  t.equal(requestsTo(master, '/api/v1/namespaces/default/flags').length, 10);
});

t.test('the bearer token is sent, and a refusal says to check it', async (t) => {
  const master = await withMaster(t, loadFixture(), 's3cr3t');
  await readFliptState(client(master, { token: 's3cr3t' }), { concurrency: 2 });
  t.ok(master.requests.every((r) => r.authorization === 'Bearer s3cr3t'));

  const err = await readError(readFliptState(client(master, { token: 'wrong' }), { concurrency: 2 }));
  t.type(err, FliptReadError);
  t.match(
    err.message,
    /GET http:\/\/127\.0\.0\.1:\d+\/api\/v1\/namespaces\?limit=100: HTTP 401: request was not authenticated/,
  );
  t.match(err.message, /check the Flipt token/);
});

t.test('chosen namespaces are read by key, and an unknown one is an error', async (t) => {
  const master = await withMaster(t, loadFixture());
  const state = await readFliptState(client(master), { namespaces: ['production'], concurrency: 2 });
  t.same(
    state.namespaces.map((n) => n.namespace),
    [{ key: 'production', name: 'Production', description: 'Live traffic: change with care' }],
  );
  t.equal(requestsTo(master, '/api/v1/namespaces').length, 0, 'the namespace list is not read');
  const err = await readError(
    readFliptState(client(master), { namespaces: ['production', 'nope'], concurrency: 2 }),
  );
  t.match(err.message, /api\/v1\/namespaces\/nope: HTTP 404: namespace "nope" not found/);
});

t.test('per-flag calls run in parallel, never more than the concurrency bound', async (t) => {
  // Deterministic: each per-flag request is held until three are in flight, then the three are
  // answered together. A reader that never reaches three would hang, so a long guard releases them
  // (and the assertion below then fails); one that exceeds three is seen before any answer.
  const master = await withMaster(t, syntheticData(60, 1));
  let inFlight = 0;
  let maxInFlight = 0;
  let waiting: (() => void)[] = [];
  const releaseAll = () => {
    const batch = waiting;
    waiting = [];
    for (const release of batch) release();
  };
  master.handler = (request, normal) => {
    if (!/\/flags\/[^/]+\/(rules|rollouts)$/.test(request.path)) return normal();
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    const hold = new Promise<void>((resolve) => waiting.push(resolve)).then(() => void inFlight--);
    if (inFlight >= 3) releaseAll();
    return { ...normal(), hold };
  };
  const guard = setInterval(releaseAll, 5_000);
  t.teardown(() => clearInterval(guard));
  const state = await readFliptState(client(master), { concurrency: 3 });
  t.equal(state.namespaces[0]?.flags.length, 60, 'every flag read');
  t.equal(maxInFlight, 3, 'exactly the bound in flight, never more');
});

t.test('every failed or partial read is an error naming what failed', async (t) => {
  const cases: [
    string,
    MasterData,
    (m: ReplayMaster) => void,
    RegExp,
    Partial<Parameters<typeof createFliptClient>[0]>?,
  ][] = [
    [
      'a 500 on one flag rules call, mid-export',
      syntheticData(40, 1),
      (m) => {
        m.handler = (r, normal) =>
          r.path.endsWith('/flag-00031/rules')
            ? { status: 500, body: '{"code":13,"message":"database is locked"}' }
            : normal();
      },
      /flags\/flag-00031\/rules\?limit=100: HTTP 500: database is locked/,
    ],
    [
      'invalid JSON on the second page of flags',
      syntheticData(150, 1),
      (m) => {
        m.handler = (r, normal) =>
          r.path.endsWith('/flags') && r.query.has('pageToken')
            ? { status: 200, body: '{"flags": [' }
            : normal();
      },
      /flags\?limit=100&pageToken=[^:]+: the answer is not valid JSON/,
    ],
    [
      'a page that never arrives (timeout)',
      loadFixture(),
      (m) => {
        m.handler = (r, normal) =>
          r.path.endsWith('/segments') ? { ...normal(), delayMs: 1_500 } : normal();
      },
      /segments\?limit=100: no complete answer within 300 ms/,
      { timeoutMs: 300 },
    ],
    [
      'a missing page (the last page is cut short)',
      syntheticData(150, 1),
      (m) => {
        m.handler = (r, normal) => {
          const a = normal();
          if (!r.path.endsWith('/flags')) return a;
          const body = JSON.parse(a.body) as Record<string, unknown>;
          return { status: 200, body: JSON.stringify({ ...body, nextPageToken: '' }) };
        };
      },
      /namespace default flags: read 100 items in 1 pages but the master counts 150; a page is missing/,
    ],
    [
      'a page served twice (the list changed while it was read)',
      syntheticData(150, 1),
      (m) => {
        m.handler = (r, normal) => {
          if (!r.path.endsWith('/flags') || !r.query.has('pageToken')) return normal();
          const first = JSON.parse(
            answer(m.data, { ...r, query: new URLSearchParams('limit=100') }).body,
          ) as Record<string, unknown>;
          return {
            status: 200,
            body: JSON.stringify({
              ...first,
              flags: (first['flags'] as unknown[]).slice(0, 50),
              nextPageToken: '',
            }),
          };
        };
      },
      /namespace default flags: "flag-00000" appears twice/,
    ],
    [
      'a page token that repeats',
      syntheticData(150, 1),
      (m) => {
        m.handler = (r, normal) =>
          r.path.endsWith('/flags')
            ? normal() && answer(m.data, { ...r, query: new URLSearchParams('limit=100') })
            : normal();
      },
      /returned page token "[^"]+" twice/,
    ],
    [
      'an answer of the wrong shape',
      loadFixture(),
      (m) => {
        m.handler = (r, normal) =>
          r.path.endsWith('/segments') ? { status: 200, body: '{"segments": {"key": "x"}}' } : normal();
      },
      /namespace default segments \(page 1\)\.segments: expected an array, got object/,
    ],
    [
      'a flag with a field of the wrong type',
      loadFixture(),
      (m) => {
        m.handler = (r, normal) => {
          const a = normal();
          if (!r.path.endsWith('/production/flags')) return a;
          const body = JSON.parse(a.body) as { flags: Record<string, unknown>[] };
          body.flags[0]!['enabled'] = 'true';
          return { status: 200, body: JSON.stringify(body) };
        };
      },
      /namespace production flags \(page 1\)\.flags\[0\]\.enabled: expected a boolean, got the string "true"/,
    ],
    [
      'a master that stays unreachable',
      loadFixture(),
      (m) => {
        m.handler = () => ({ status: 0, body: '', destroy: true });
      },
      /GET http:\/\/127\.0\.0\.1:\d+\/api\/v1\/namespaces\?limit=100: (ECONNRESET: )?socket hang up/,
      { retries: 2 },
    ],
  ];
  for (const [name, data, setup, expected, options] of cases) {
    const master = await withMaster(t, data);
    setup(master);
    const err = await readError(readFliptState(client(master, options), { concurrency: 4 }));
    t.type(err, FliptReadError, name);
    t.match(err.message, expected, name);
  }
});

t.test('a master that answers 503 or drops a connection once is asked again', async (t) => {
  const master = await withMaster(t, loadFixture());
  let failed = 0;
  master.handler = (r, normal) => {
    if (r.path.endsWith('/segments') && failed < 2) {
      failed++;
      return failed === 1
        ? { status: 503, body: 'upstream connect error' }
        : { status: 0, body: '', destroy: true };
    }
    return normal();
  };
  const state = await readFliptState(client(master, { retries: 2 }), { concurrency: 2 });
  t.equal(state.namespaces.length, 3);
  t.equal(failed, 2);

  // A 500 is the master's own failure, not a transient one: no retry.
  const again = await withMaster(t, loadFixture());
  again.handler = (r, normal) =>
    r.path.endsWith('/segments') ? { status: 500, body: '{"message":"boom"}' } : normal();
  const err = await readError(readFliptState(client(again, { retries: 2 }), { concurrency: 2 }));
  t.match(err.message, /HTTP 500: boom/);
  t.equal(
    again.requests.filter((r) => r.path === '/api/v1/namespaces/default/segments').length,
    1,
    'asked once',
  );
});
