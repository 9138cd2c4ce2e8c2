// The pure core, case by case, beyond what the golden files show.
import fastJsonPatch from 'fast-json-patch';
import t from 'tap';
import { parseGoDuration } from '../../common/go-duration.ts';
import { resolveSettings, STATUS_ANNOTATION } from '../../src/core/annotations.ts';
import { defaultConfig } from '../../src/core/config.ts';
import { decide } from '../../src/core/decide.ts';
import {
  BUCKET,
  checkFormat,
  DURATION,
  ENDPOINT,
  IMAGE,
  parseQuantity,
  QUANTITY,
} from '../../src/core/formats.ts';
import { containsAll } from '../../src/core/contains.ts';
import { injectPod, type InjectionResult } from '../../src/core/inject.ts';
import { podDisplayName, type Pod } from '../../src/core/k8s.ts';
import { addToArray, escapePointerToken, pointer, setInMap } from '../../src/core/patch.ts';
import { buildSidecar, SIDECAR_NAME, VOLUME_NAME } from '../../src/core/sidecar.ts';

const config = defaultConfig();
const labelled = (extra: Partial<Pod> = {}): Pod => ({
  metadata: { name: 'p', labels: { 'flipt.io/inject': 'true' }, ...extra.metadata },
  spec: { containers: [{ name: 'app', image: 'nginx' }], ...extra.spec },
});

function apply(pod: Pod, result: InjectionResult): Pod {
  if (result.outcome !== 'injected') throw new Error(`expected an injection, got ${result.outcome}`);
  return fastJsonPatch.applyPatch(structuredClone(pod), result.patch, true, false).newDocument;
}

t.test('Go durations', async (t) => {
  t.equal(parseGoDuration('1m30s'), 90_000);
  t.equal(parseGoDuration('1.5h'), 5_400_000);
  t.equal(parseGoDuration('250ms'), 250);
  t.equal(parseGoDuration('10µs'), 0.01);
  t.equal(parseGoDuration('abc'), undefined);
  t.equal(parseGoDuration(''), undefined);
  t.equal(parseGoDuration('10'), undefined, 'a unit is required');
  t.same(checkFormat(DURATION, '999ms'), { detail: 'it is shorter than 1s' });
  t.equal(checkFormat(DURATION, '1s'), undefined);
});

t.test('Kubernetes quantities', async (t) => {
  t.equal(parseQuantity('100m'), 0.1);
  t.equal(parseQuantity('64Mi'), 64 * 2 ** 20);
  t.equal(parseQuantity('1G'), 1e9);
  t.equal(parseQuantity('1e3'), 1000);
  t.equal(parseQuantity('.5'), 0.5);
  t.equal(parseQuantity('2'), 2);
  for (const bad of ['-1', '1 Gi', 'lots', '1.2.3', '1GiB', '']) {
    t.equal(parseQuantity(bad), undefined, bad);
    t.ok(checkFormat(QUANTITY, bad), `${bad} is refused`);
  }
});

t.test('bucket, endpoint and image formats', async (t) => {
  t.equal(checkFormat(BUCKET, 'my.flags-bucket'), undefined);
  for (const bad of ['ab', 'UPPER', '-start', 'end-', 'a'.repeat(64)]) t.ok(checkFormat(BUCKET, bad), bad);
  t.equal(checkFormat(ENDPOINT, 'http://minio:9000'), undefined);
  t.equal(checkFormat(ENDPOINT, 'https://s3.example.com/'), undefined);
  t.equal(checkFormat(ENDPOINT, ''), undefined, 'empty means AWS S3');
  for (const bad of ['minio:9000', 'ftp://x', 'http://x/path', 'http://'])
    t.ok(checkFormat(ENDPOINT, bad), bad);
  for (const good of [
    'flipt',
    'docker.flipt.io/flipt/flipt:v1.61.1',
    'localhost:5000/flipt:dev',
    `ghcr.io/flipt-io/flipt@sha256:${'a'.repeat(64)}`,
  ]) {
    t.equal(checkFormat(IMAGE, good), undefined, good);
  }
  for (const bad of ['flipt flipt', 'Flipt/UPPER', '', 'flipt:', ':tag']) t.ok(checkFormat(IMAGE, bad), bad);
});

t.test('RFC 6901 pointers escape ~ before /', async (t) => {
  t.equal(escapePointerToken('a/b'), 'a~1b');
  t.equal(escapePointerToken('a~b'), 'a~0b');
  t.equal(escapePointerToken('~/'), '~0~1');
  t.equal(pointer('metadata', 'annotations', 'flipt.io/status'), '/metadata/annotations/flipt.io~1status');
  t.equal(pointer('spec', 'containers', 0), '/spec/containers/0');
});

t.test('add operations work whether or not the target exists', async (t) => {
  t.same(addToArray(undefined, ['spec', 'volumes'], 1, 'last'), {
    op: 'add',
    path: '/spec/volumes',
    value: [1],
  });
  t.same(addToArray(null, ['spec', 'volumes'], 1, 'last'), { op: 'add', path: '/spec/volumes', value: [1] });
  t.same(addToArray([], ['spec', 'initContainers'], 1, 'first'), {
    op: 'add',
    path: '/spec/initContainers/0',
    value: 1,
  });
  t.same(addToArray([0], ['spec', 'volumes'], 1, 'last'), { op: 'add', path: '/spec/volumes/-', value: 1 });
  t.same(setInMap(undefined, ['metadata', 'annotations'], 'a/b', 'v'), {
    op: 'add',
    path: '/metadata/annotations',
    value: { 'a/b': 'v' },
  });
  t.same(setInMap({}, ['metadata', 'annotations'], 'a/b', 'v'), {
    op: 'add',
    path: '/metadata/annotations/a~1b',
    value: 'v',
  });
});

t.test('decide explains itself', async (t) => {
  const base = { namespace: 'shop', namespaceEnabled: false, injectorNamespace: 'flipt-system' };
  const pod = labelled();
  t.match(decide({ ...base, pod }), { action: 'inject', reason: 'pod-label' });
  t.match(decide({ ...base, pod, kind: 'Deployment' }), {
    action: 'skip',
    reason: 'not-a-pod',
    message: /Deployment/,
  });
  t.match(decide({ ...base, pod, operation: 'UPDATE' }), {
    action: 'skip',
    reason: 'not-create',
    message: /UPDATE/,
  });
  t.match(decide({ ...base, pod, namespace: 'kube-public' }), { action: 'skip', reason: 'system-namespace' });
  t.match(decide({ ...base, pod, namespace: 'kube-node-lease' }), {
    action: 'skip',
    reason: 'system-namespace',
  });
  t.match(decide({ ...base, pod, namespace: 'flipt-system' }), {
    action: 'skip',
    reason: 'injector-namespace',
  });
  const plain: Pod = { spec: { containers: [] } };
  t.match(decide({ ...base, pod: plain }), { action: 'skip', reason: 'not-requested' });
  t.match(decide({ ...base, pod: plain, namespaceEnabled: true }), {
    action: 'inject',
    reason: 'namespace-label',
    message: 'namespace shop is labelled flipt.io/inject=enabled',
  });
  t.match(decide({ ...base, namespace: undefined, pod: plain, namespaceEnabled: true }), {
    message: /\(unknown\)/,
  });
  const optedOut: Pod = { metadata: { labels: { 'flipt.io/inject': 'false' } }, spec: { containers: [] } };
  t.match(decide({ ...base, pod: optedOut, namespaceEnabled: true }), {
    action: 'skip',
    reason: 'pod-opted-out',
  });
  const odd: Pod = { metadata: { labels: { 'flipt.io/inject': 'enabled' } }, spec: { containers: [] } };
  t.match(decide({ ...base, pod: odd }), {
    action: 'reject',
    reason: 'invalid-inject-label',
    message: /"enabled"/,
  });
});

t.test('a pod with no metadata or annotations gets valid add operations', async (t) => {
  const bare: Pod = { spec: { containers: [{ name: 'app' }] } };
  const result = injectPod(bare, { config, namespace: 'shop', namespaceEnabled: true });
  const pod = apply(bare, result);
  t.equal(pod.spec?.initContainers?.[0]?.name, SIDECAR_NAME);
  t.equal(pod.spec?.volumes?.[0]?.name, VOLUME_NAME);
  t.type(pod.metadata?.annotations?.[STATUS_ANNOTATION], 'string');

  const noAnnotations = labelled();
  const first = injectPod(noAnnotations, { config, namespace: 'shop', namespaceEnabled: false });
  t.match(first, { outcome: 'injected', changed: true });
  t.ok(
    first.outcome === 'injected' &&
      first.patch.some((op) => op.path === '/metadata/annotations' && op.op === 'add'),
    'the annotations map is created whole',
  );
});

t.test('injection is idempotent, also after the API server fills in defaults', async (t) => {
  const pod = labelled();
  const once = apply(pod, injectPod(pod, { config, namespace: 'shop', namespaceEnabled: false }));
  const twice = injectPod(once, { config, namespace: 'shop', namespaceEnabled: false });
  t.match(twice, { outcome: 'injected', changed: false, patch: [] });

  // Defaulting adds fields we never set; they must not look like a change.
  const defaulted = structuredClone(once);
  const sidecar = defaulted.spec?.initContainers?.[0];
  if (!sidecar) throw new Error('no sidecar');
  sidecar.terminationMessagePath = '/dev/termination-log';
  sidecar.terminationMessagePolicy = 'File';
  if (sidecar.readinessProbe) sidecar.readinessProbe.successThreshold = 1;
  // The ServiceAccount admission plugin appends its token mount to every container, ours included.
  sidecar.volumeMounts?.push({
    name: 'kube-api-access-x',
    mountPath: '/var/run/secrets/kubernetes.io/serviceaccount',
    readOnly: true,
  });
  t.match(injectPod(defaulted, { config, namespace: 'shop', namespaceEnabled: false }), { changed: false });

  // A changed setting (here, the config's image) replaces the sidecar in place: still exactly one.
  const upgraded = {
    ...config,
    sidecar: { ...config.sidecar, image: 'docker.flipt.io/flipt/flipt:v1.61.2' },
  };
  const result = injectPod(defaulted, { config: upgraded, namespace: 'shop', namespaceEnabled: false });
  t.match(result, {
    outcome: 'injected',
    changed: true,
    patch: [{ op: 'replace', path: '/spec/initContainers/0' }],
  });
  const replaced = apply(defaulted, result);
  t.equal(replaced.spec?.initContainers?.filter((c) => c.name === SIDECAR_NAME).length, 1);
  t.equal(replaced.spec?.initContainers?.[0]?.image, 'docker.flipt.io/flipt/flipt:v1.61.2');

  // A changed volume is replaced in place too.
  const oddVolume = structuredClone(once);
  (oddVolume.spec?.volumes ?? [])[0] = { name: VOLUME_NAME, emptyDir: {} };
  t.match(injectPod(oddVolume, { config, namespace: 'shop', namespaceEnabled: false }), {
    patch: [{ op: 'replace', path: '/spec/volumes/0' }],
  });
});

t.test('containsAll compares what we set, ignoring what others added', async (t) => {
  t.ok(containsAll({ a: 1, b: [1, { c: 2 }] }, { a: 1, b: [1, { c: 2, d: 3 }], e: 4 }));
  t.notOk(containsAll({ a: [1, 2] }, { a: [1] }), 'every expected item must be there');
  t.ok(containsAll({ a: [1, 2] }, { a: [1, 9, 2, 3] }), 'items added by others are tolerated');
  t.notOk(containsAll({ a: [1, 2] }, { a: [2, 1] }), 'in order');
  t.notOk(containsAll({ a: [1] }, { a: 'x' }));
  t.notOk(containsAll({ a: { b: 1 } }, { a: null }));
  t.notOk(containsAll({ a: { b: 1 } }, { a: [1] }));
  t.notOk(containsAll({ a: 1 }, { a: '1' }));
});

t.test('a malformed flipt.io/status is refused rather than trusted', async (t) => {
  for (const status of ['{"initContainers":"x"}', 'null', '[]', '{"initContainers":[],"containers":[]}']) {
    const pod = labelled({ metadata: { annotations: { [STATUS_ANNOTATION]: status } } });
    t.match(injectPod(pod, { config, namespace: 'shop', namespaceEnabled: false }), {
      outcome: 'rejected',
      reason: 'invalid-status',
    });
  }
});

t.test('settings: annotations override config; the status annotation is not an override', async (t) => {
  const result = resolveSettings(config, {
    'flipt.io/bucket': 'b-1',
    [STATUS_ANNOTATION]: '{}',
    'example.com/other': 'ignored',
  });
  t.ok(result.ok);
  if (result.ok) t.equal(result.settings.storage.bucket, 'b-1');
  t.equal(config.storage.bucket, 'flipt', 'the config itself is never modified');
  const far = resolveSettings(config, { 'flipt.io/something-else-entirely': 'x' });
  t.notMatch(far.ok ? '' : far.errors.join(), /did you mean/, 'no suggestion when nothing is close');
});

t.test('the sidecar without a Secret uses the ambient AWS chain, and no endpoint means AWS S3', async (t) => {
  const settings = resolveSettings(config, { 'flipt.io/credentials-secret': '', 'flipt.io/endpoint': '' });
  if (!settings.ok) throw new Error('unexpected');
  const { container } = buildSidecar(settings.settings);
  const names = (container.env ?? []).map((e) => e.name);
  t.notOk(names.includes('AWS_ACCESS_KEY_ID'));
  t.notOk(names.includes('FLIPT_STORAGE_OBJECT_S3_ENDPOINT'));
  t.notOk(
    names.includes('AWS_REQUEST_CHECKSUM_CALCULATION'),
    'checksum relaxations only for S3-compatible stores',
  );
  t.notOk(JSON.stringify(container).match(/secret-access-key-value|password/i), 'no secret values anywhere');
});

t.test('display names', async (t) => {
  t.equal(podDisplayName({ metadata: { name: 'a' } }, 'ns'), 'ns/a');
  t.equal(podDisplayName({ metadata: { generateName: 'web-' } }, 'ns'), 'ns/web-*');
  t.equal(podDisplayName({ metadata: { namespace: 'm' } }, undefined), 'm/<unnamed>');
  t.equal(podDisplayName({}, undefined), '<no namespace>/<unnamed>');
});
