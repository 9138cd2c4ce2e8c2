// Watch mode's change detection with the evaluation snapshot ETag, against the replaying master
// (its snapshot endpoint answers like Flipt v1.61.1's: an ETag that changes with every write to
// the namespace, 304 on a current If-None-Match). The same against a real v1.61.1 master is in
// test/e2e/exporter-watch.test.ts.
import t from 'tap';
import { parseAllDocuments } from 'yaml';
import { NamespaceChangeTracker } from '../../exporter/changes.ts';
import { runExport, type ExportChangeTracker, type ExportOutcome } from '../../exporter/export.ts';
import { createFliptClient } from '../../exporter/flipt-client.ts';
import { createDocumentValidator } from '../../exporter/schema.ts';
import { startReplayMaster, syntheticData, type MasterData, type ReplayMaster } from './flipt-replay.ts';
import { MemoryStore } from './memory-store.ts';

const validate = createDocumentValidator();

async function setup(t: { teardown(fn: () => unknown): void }, data: MasterData) {
  const master = await startReplayMaster({ data });
  t.teardown(() => master.close());
  const store = new MemoryStore();
  const flipt = createFliptClient({ baseUrl: master.url, timeoutMs: 2_000, retries: 0 });
  const changes: ExportChangeTracker = new NamespaceChangeTracker();
  const tick = async (): Promise<{ outcome: ExportOutcome; requests: string[] }> => {
    const before = master.requests.length;
    const outcome = await runExport(
      { flipt, store, validate },
      { concurrency: 4, flagsPerDocument: 100, shrink: { allowShrink: true, maxShrink: 1 }, changes },
    );
    return { outcome, requests: master.requests.slice(before).map((r) => r.rawPath) };
  };
  return { master, store, tick, changes };
}

function rename(master: ReplayMaster, ns: string, index: number, name: string): void {
  (master.data.flags[ns] as Record<string, unknown>[])[index]!['name'] = name;
}

function flagNames(store: MemoryStore): string[] {
  return parseAllDocuments(store.text()).flatMap((d) =>
    (d.toJS() as { flags: { name: string }[] }).flags.map((f) => f.name),
  );
}

t.test('unchanged ticks cost one namespace list and one 304 per namespace', async (t) => {
  const { store, tick } = await setup(t, syntheticData(60, 3));
  const first = await tick();
  t.match(first.outcome, { status: 'uploaded', flags: 60, namespacesRead: 3 });
  for (let i = 0; i < 3; i++) {
    const again = await tick();
    t.match(again.outcome, { status: 'unchanged', flags: 60, namespacesRead: 0 });
    t.same(
      [...again.requests].sort(),
      [
        '/api/v1/namespaces',
        '/internal/v1/evaluation/snapshot/namespace/default',
        '/internal/v1/evaluation/snapshot/namespace/team-001',
        '/internal/v1/evaluation/snapshot/namespace/team-002',
      ],
      `tick ${i + 2}: ${again.requests.length} requests`,
    );
  }
  t.equal(store.puts, 1);
});

t.test('a change re-reads only its namespace, and the object shows it', async (t) => {
  const { master, store, tick } = await setup(t, syntheticData(60, 3));
  await tick();
  rename(master, 'team-001', 3, 'Renamed on the master');
  const changed = await tick();
  t.match(changed.outcome, { status: 'uploaded', flags: 60, namespacesRead: 1 });
  t.ok(changed.requests.some((p) => p.startsWith('/api/v1/namespaces/team-001/flags/')));
  t.notOk(changed.requests.some((p) => p.startsWith('/api/v1/namespaces/default/')));
  t.notOk(changed.requests.some((p) => p.startsWith('/api/v1/namespaces/team-002/')));
  t.ok(flagNames(store).includes('Renamed on the master'));

  // The object equals a full export of the same state.
  const fresh = await setup(t, master.data);
  await fresh.tick();
  t.equal(store.text(), fresh.store.text());
});

t.test('a write during the read is caught by the ETag after it, and read again', async (t) => {
  const { master, store, tick } = await setup(t, syntheticData(30, 1));
  await tick();
  rename(master, 'default', 0, 'first edit');
  let edited = false;
  master.handler = (r, normal) => {
    // While the exporter reads the rules of one flag, someone edits another flag.
    if (!edited && r.path.endsWith('/flags/flag-00010/rules')) {
      edited = true;
      rename(master, 'default', 20, 'edited during the read');
    }
    return normal();
  };
  const outcome = (await tick()).outcome;
  t.match(outcome, { status: 'uploaded', namespacesRead: 1 });
  t.ok(edited);
  const names = flagNames(store);
  t.ok(names.includes('first edit') && names.includes('edited during the read'));
  // Read twice: the flag list is asked for once per attempt.
  t.equal(master.requests.filter((r) => r.rawPath === '/api/v1/namespaces/default/flags').length, 3);
});

t.test('a namespace that keeps changing fails the tick after bounded re-reads', async (t) => {
  const { master, store, tick } = await setup(t, syntheticData(10, 1));
  await tick();
  rename(master, 'default', 1, 'a change to notice');
  let n = 0;
  master.handler = (r, normal) => {
    if (r.rawPath === '/api/v1/namespaces/default/segments') rename(master, 'default', 0, `edit ${n++}`);
    return normal();
  };
  const outcome = (await tick()).outcome;
  t.match(outcome, {
    status: 'failed',
    stage: 'flipt',
    message: /namespace default changed while it was read, 4 times in a row; the next tick tries again/,
  });
  t.equal(store.puts, 1, 'the bucket keeps the last good object');
  master.handler = (_r, normal) => normal();
  t.match((await tick()).outcome, { status: 'uploaded' });
});

t.test('a master without ETags gets a full read every tick', async (t) => {
  const { master, tick } = await setup(t, syntheticData(20, 2));
  master.handler = (r, normal) =>
    r.rawPath.startsWith('/internal/') ? { status: 404, body: '{"message":"Not Found"}' } : normal();
  for (let i = 0; i < 2; i++) {
    const { outcome } = await tick();
    t.match(outcome, { status: i === 0 ? 'uploaded' : 'unchanged', namespacesRead: 2 });
  }
  master.handler = (r, normal) => {
    const a = normal();
    return r.rawPath.startsWith('/internal/') ? { status: 200, body: a.body } : a; // no Etag header
  };
  t.match((await tick()).outcome, { status: 'unchanged', namespacesRead: 2 });
});

t.test('a deleted namespace leaves the object; a renamed one is re-rendered', async (t) => {
  const { master, store, tick, changes } = await setup(t, syntheticData(30, 3));
  await tick();
  t.equal(changes.size, 3);
  master.data.namespaces = master.data.namespaces.filter((n) => n['key'] !== 'team-002');
  t.match((await tick()).outcome, { status: 'uploaded', namespaces: 2, flags: 20, namespacesRead: 0 });
  t.equal(changes.size, 2);
  t.notMatch(store.text(), /team-002/);
  (master.data.namespaces[1] as Record<string, unknown>)['name'] = 'Team One, renamed';
  t.match((await tick()).outcome, { status: 'uploaded', namespacesRead: 1 });
  t.match(store.text(), /name: "Team One, renamed"/);
});

t.test('a namespace that cannot be exported is not read again until it changes', async (t) => {
  const { master, store, tick } = await setup(t, syntheticData(20, 2));
  const constraint = (
    (master.data.segments['team-001'] as Record<string, unknown>[])[0]!['constraints'] as Record<
      string,
      unknown
    >[]
  )[1]!;
  constraint['operator'] = 'lt';
  constraint['value'] = 'eighteen';
  const failed = await tick();
  t.match(failed.outcome, { status: 'failed', stage: 'render', message: /segment-0 constraint 2/ });
  const again = await tick();
  t.match(again.outcome, { status: 'failed', stage: 'render' });
  t.equal(again.requests.length, 3, 'one namespace list and two 304s: nothing read again');
  constraint['value'] = '18';
  t.match((await tick()).outcome, {
    status: 'uploaded',
    namespacesRead: 1,
    rewrites: [{ to: 'lte 17.999999999999996' }],
  });
  t.equal(store.puts, 1);
});
