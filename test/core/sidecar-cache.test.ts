// The sidecar cache (src/core/sidecar-cache.ts): bounded whatever pods arrive, owned by its config,
// and indistinguishable from resolving and building afresh.
import t from 'tap';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { resolveSettings } from '../../src/core/annotations.ts';
import { defaultConfig, parseConfig, type InjectorConfig } from '../../src/core/config.ts';
import { injectPod } from '../../src/core/inject.ts';
import type { Pod } from '../../src/core/k8s.ts';
import {
  encodePatch,
  Lru,
  MAX_ANNOTATION_SETS,
  MAX_PATCH_SHAPES,
  MAX_SIDECARS,
  SidecarCache,
  sidecarCacheFor,
} from '../../src/core/sidecar-cache.ts';
import { buildSidecar } from '../../src/core/sidecar.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function pod(annotations: Record<string, string>, spec: Partial<NonNullable<Pod['spec']>> = {}): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'app', namespace: 'shop', labels: { 'flipt.io/inject': 'true' }, annotations },
    spec: { containers: [{ name: 'app', image: 'app:1', ports: [{ containerPort: 3000 }] }], ...spec },
  };
}

const context = (config: InjectorConfig, cache?: SidecarCache) => ({
  config,
  namespace: 'shop',
  namespaceEnabled: false,
  kind: 'Pod',
  operation: 'CREATE',
  ...(cache ? { sidecars: cache } : {}),
});

/** Admits `count` pods whose flipt.io/* annotations all differ (and so do their sidecars). */
function flood(cache: SidecarCache, from: number, count: number, spec?: Partial<NonNullable<Pod['spec']>>) {
  for (let i = from; i < from + count; i++) {
    const annotations = {
      'flipt.io/poll-interval': `${i + 1}s`,
      'flipt.io/prefix': `team-${i}/`,
      'example.com/build': `build-${i}`,
    };
    const result = injectPod(pod(annotations, spec), context(cache.config, cache));
    if (result.outcome !== 'injected')
      throw new Error(`pod ${i} was not injected: ${JSON.stringify(result)}`);
    encodePatch(result.patch);
  }
}

function heapAfterGc(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

t.test('Lru keeps the most recently used entries up to its bound', async (t) => {
  const lru = new Lru<string, number>(2);
  lru.set('a', 1);
  lru.set('b', 2);
  t.equal(lru.get('a'), 1, 'a is used, b is now the oldest');
  lru.set('c', 3);
  t.equal(lru.size, 2);
  t.equal(lru.get('b'), undefined, 'the least recently used entry went');
  t.equal(lru.get('a'), 1);
  t.equal(lru.get('c'), 3);
});

t.test('a flood of pods with distinct annotations keeps the cache and the heap bounded', async (t) => {
  const cache = new SidecarCache(defaultConfig());
  const empty = heapAfterGc();
  // Every pod also differs in its patch shape's pod-dependent part (the init container list exists).
  flood(cache, 0, 2_000);
  const size = cache.size;
  t.equal(size.sidecars, MAX_SIDECARS, `sidecars held: ${size.sidecars}`);
  t.equal(size.annotationSets, MAX_ANNOTATION_SETS, `annotation sets held: ${size.annotationSets}`);
  t.ok(size.patchShapes <= MAX_SIDECARS * MAX_PATCH_SHAPES, `patch shapes held: ${size.patchShapes}`);
  const full = heapAfterGc();
  // About 10 KiB per sidecar (objects, JSON, one patch shape's base64) and 0.2 KiB per annotation set.
  t.ok(
    full - empty < 8 * 1024 * 1024,
    `a full cache holds ${((full - empty) / 1024).toFixed(0)} KiB of heap`,
  );
  // Four times as many distinct pods again, with two more patch shapes: nothing more is held.
  flood(cache, 2_000, 4_000, { initContainers: [{ name: 'migrate', image: 'm:1' }] });
  flood(cache, 6_000, 4_000, { volumes: [{ name: 'config', configMap: { name: 'c' } }] });
  const after = cache.size;
  t.equal(after.sidecars, MAX_SIDECARS);
  t.equal(after.annotationSets, MAX_ANNOTATION_SETS);
  t.ok(after.patchShapes <= MAX_SIDECARS * MAX_PATCH_SHAPES);
  const grown = heapAfterGc() - full;
  t.ok(grown < 2 * 1024 * 1024, `heap after 8,000 more distinct pods: ${(grown / 1024).toFixed(0)} KiB more`);
  cache.clear();
  t.same(cache.size, { sidecars: 0, annotationSets: 0, patchShapes: 0 }, 'clear empties it');
});

t.test('pods that differ only outside flipt.io/* share one entry', async (t) => {
  const cache = new SidecarCache(defaultConfig());
  for (let i = 0; i < 1_000; i++) {
    const result = injectPod(pod({ 'example.com/commit': `c${i}` }), context(cache.config, cache));
    t.equal(result.outcome, 'injected');
    if (result.outcome === 'injected') encodePatch(result.patch);
  }
  t.same(cache.size, { sidecars: 1, annotationSets: 1, patchShapes: 1 });
});

t.test('distinct annotation sets that resolve to the same settings share one sidecar', async (t) => {
  const cache = new SidecarCache(defaultConfig());
  const a = cache.resolve({ 'flipt.io/poll-interval': '30s' });
  const b = cache.resolve({});
  t.ok(a.ok && b.ok);
  if (a.ok && b.ok) t.equal(a.sidecar, b.sidecar, 'the same built sidecar');
  t.same(cache.size, { sidecars: 1, annotationSets: 2, patchShapes: 0 });
});

t.test('a huge annotation set is resolved every time, never remembered', async (t) => {
  const cache = new SidecarCache(defaultConfig());
  const prefix = `${'p'.repeat(500)}/`;
  for (let i = 0; i < 5; i++) {
    const result = cache.resolve({ 'flipt.io/prefix': prefix, 'flipt.io/image': `${'r'.repeat(600)}:${i}` });
    t.ok(result.ok || result.errors.length > 0);
  }
  t.equal(cache.size.annotationSets, 0, 'nothing kept for keys over the length bound');
});

t.test('the cache belongs to its config: a reloaded config gets its own', async (t) => {
  const before = defaultConfig();
  const reloaded = parseConfig({ sidecar: { image: 'registry.example/flipt:v1.61.1' } });
  t.ok(reloaded.ok);
  if (!reloaded.ok) return;
  t.equal(sidecarCacheFor(before), sidecarCacheFor(before), 'one cache per config');
  t.not(sidecarCacheFor(before), sidecarCacheFor(reloaded.config), 'a new config, a new cache');
  const annotations = { 'flipt.io/poll-interval': '10s' };
  const old = sidecarCacheFor(before).resolve(annotations);
  const fresh = sidecarCacheFor(reloaded.config).resolve(annotations);
  t.ok(old.ok && fresh.ok);
  if (old.ok && fresh.ok) {
    t.equal(old.sidecar.container.image, 'docker.flipt.io/flipt/flipt:v1.61.1');
    t.equal(
      fresh.sidecar.container.image,
      'registry.example/flipt:v1.61.1',
      'the new config, not a stale entry',
    );
  }
});

t.test('cached objects are frozen: a mutation throws instead of changing later pods', async (t) => {
  const cache = new SidecarCache(defaultConfig());
  const result = cache.resolve({});
  t.ok(result.ok);
  if (!result.ok) return;
  const { container } = result.sidecar;
  t.throws(() => {
    (container as { image?: string }).image = 'evil:1';
  }, TypeError);
  t.throws(() => container.env?.push({ name: 'X', value: 'y' }), TypeError);
  t.throws(() => {
    (result.settings.sidecar as { image: string }).image = 'evil:1';
  }, TypeError);
});

t.test('resolve answers exactly what resolveSettings and buildSidecar answer', async (t) => {
  const config = defaultConfig();
  const cache = new SidecarCache(config);
  const sets: Record<string, string>[] = [
    {},
    { 'flipt.io/poll-interval': '10s' },
    { 'flipt.io/poll-interval': '10' },
    { 'flipt.io/http-port': '9000' },
    { 'flipt.io/cpu-request': '2', 'flipt.io/cpu-limit': '1' },
    { 'flipt.io/unknown': 'x', 'flipt.io/imgae': 'y' },
    { 'flipt.io/native-sidecar': 'false', 'flipt.io/memory-limit': '512Mi' },
    { 'flipt.io/credentials-secret': '', 'flipt.io/endpoint': '' },
    {
      'flipt.io/status':
        '{"initContainers":["flipt-sidecar"],"containers":[],"volumes":["flipt-sidecar-data"]}',
    },
  ];
  for (const annotations of sets) {
    for (const round of ['miss', 'hit']) {
      const want = resolveSettings(config, annotations);
      const got = cache.resolve(annotations);
      t.same(got.ok, want.ok, `${JSON.stringify(annotations)} (${round})`);
      if (!want.ok && !got.ok) t.same(got.errors, want.errors, 'the same errors');
      if (want.ok && got.ok) {
        t.same(got.settings, want.settings, 'the same settings');
        t.same(got.sidecar, buildSidecar(want.settings), 'the same sidecar');
      }
    }
  }
});

t.test('encodePatch gives the base64 of JSON.stringify for every patch shape', async (t) => {
  const config = defaultConfig();
  const cache = new SidecarCache(config);
  const shapes: Pod[] = [
    pod({}),
    pod({}, { initContainers: [{ name: 'migrate' }], volumes: [{ name: 'v', emptyDir: {} }] }),
    { ...pod({}), metadata: { name: 'no-annotations', labels: { 'flipt.io/inject': 'true' } } },
    pod({ 'flipt.io/native-sidecar': 'false' }, { volumes: [] }),
  ];
  for (const p of shapes) {
    for (const round of ['miss', 'hit']) {
      const fresh = injectPod(p, context(config));
      const cached = injectPod(p, context(config, cache));
      t.equal(fresh.outcome, 'injected');
      if (fresh.outcome !== 'injected' || cached.outcome !== 'injected') continue;
      t.equal(
        encodePatch(cached.patch),
        Buffer.from(JSON.stringify(fresh.patch)).toString('base64'),
        `${round}: ${fresh.patch.map((op) => `${op.op} ${op.path}`).join(', ')}`,
      );
    }
  }
});

t.test('patch shapes per sidecar are bounded, and each is the reference bytes', async (t) => {
  const config = defaultConfig();
  const cache = new SidecarCache(config);
  const status = '{"initContainers":["flipt-sidecar"],"containers":[],"volumes":["flipt-sidecar-data"]}';
  // A stale sidecar of ours at a different index each time: a `replace` at a different path.
  for (let k = 0; k < 20; k++) {
    const initContainers = Array.from({ length: 20 }, (_, i) =>
      i === k ? { name: 'flipt-sidecar', image: 'old:1' } : { name: `init-${i}`, image: 'i:1' },
    );
    const p = pod({ 'flipt.io/status': status }, { initContainers });
    for (const round of ['miss', 'hit']) {
      const fresh = injectPod(p, context(config));
      const cached = injectPod(p, context(config, cache));
      if (fresh.outcome !== 'injected' || cached.outcome !== 'injected') {
        t.fail(`pod ${k} not injected`);
        continue;
      }
      t.equal(
        encodePatch(cached.patch),
        Buffer.from(JSON.stringify(fresh.patch)).toString('base64'),
        `${round}: ${fresh.patch.map((op) => `${op.op} ${op.path}`).join(', ')}`,
      );
    }
  }
  t.same(cache.size, { sidecars: 1, annotationSets: 1, patchShapes: MAX_PATCH_SHAPES });
});

t.test('encodePatch without a cached sidecar, or with two, encodes the operations as they are', async (t) => {
  const config = defaultConfig();
  const reference = (ops: unknown) => Buffer.from(JSON.stringify(ops)).toString('base64');
  const fresh = injectPod(pod({}), context(config));
  t.equal(fresh.outcome, 'injected');
  if (fresh.outcome !== 'injected') return;
  t.equal(encodePatch(fresh.patch), reference(fresh.patch), 'a sidecar built afresh');
  const a = new SidecarCache(config).resolve({});
  const b = new SidecarCache(config).resolve({});
  t.ok(a.ok && b.ok);
  if (!a.ok || !b.ok) return;
  const mixed = [
    { op: 'add' as const, path: '/spec/initContainers/0', value: a.sidecar.container },
    { op: 'add' as const, path: '/spec/volumes/-', value: b.sidecar.volume },
  ];
  t.equal(encodePatch(mixed), reference(mixed), "two caches' sidecars in one patch");
  // Same operations and paths as a kept shape, another value: not taken for it.
  const cache = new SidecarCache(config);
  const first = injectPod(pod({}), context(config, cache));
  t.equal(first.outcome, 'injected');
  if (first.outcome !== 'injected') return;
  encodePatch(first.patch);
  const changed = first.patch.map((op) =>
    op.path.endsWith('flipt.io~1status') ? { ...op, value: '{"other":true}' } : op,
  );
  t.equal(encodePatch(changed), reference(changed), 'a different status value is encoded, not looked up');
});
