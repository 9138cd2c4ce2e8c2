// The core under hostile input (issue 9): work and messages are bounded whatever a pod holds, pods a
// patch would leave invalid are refused, and every pod field the injector reads is type-checked.
import t from 'tap';
import { ANNOTATIONS_POINTER, resolveSettings, STATUS_ANNOTATION } from '../../src/core/annotations.ts';
import {
  capMessage,
  clip,
  MAX_MESSAGE_CHARS,
  MAX_PROBLEMS,
  MAX_QUOTED_CHARS,
  ProblemList,
  quote,
  SmallestStrings,
} from '../../src/core/bounded.ts';
import { defaultConfig } from '../../src/core/config.ts';
import { injectPod } from '../../src/core/inject.ts';
import { rejectionMessage } from '../../src/core/refusal.ts';
import { podDisplayName, type Pod } from '../../src/core/k8s.ts';
import { podInvariantProblems } from '../../src/core/pod-checks.ts';
import { podShapeProblem, shapeMessage } from '../../src/core/pod-shape.ts';
import { boundedEditDistance, closestKey } from '../../src/core/suggest.ts';

const config = defaultConfig();
const context = { config, namespace: 'shop', namespaceEnabled: false };
const labelled = (metadata: Pod['metadata'] = {}, spec: Partial<Pod['spec']> = {}): Pod => ({
  metadata: { name: 'p', ...metadata, labels: { 'flipt.io/inject': 'true', ...metadata?.labels } },
  spec: { containers: [{ name: 'app', image: 'nginx' }], ...spec },
});

t.test('clip, quote and capMessage bound what is repeated back', async (t) => {
  t.equal(clip('short'), 'short');
  t.equal(clip('x'.repeat(1000)), `${'x'.repeat(MAX_QUOTED_CHARS)}… (1000 characters)`);
  t.equal(quote('a"b'), '"a\\"b"');
  t.equal(quote('y'.repeat(5000)), `"${'y'.repeat(MAX_QUOTED_CHARS)}"… (5000 characters)`);
  t.equal(capMessage('ok'), 'ok');
  const capped = capMessage('z'.repeat(MAX_MESSAGE_CHARS * 3));
  t.equal(capped.length, MAX_MESSAGE_CHARS);
  t.match(capped, /… \(message truncated\)$/);
  t.ok(rejectionMessage('pod x', ['e'.repeat(100_000)]).length <= MAX_MESSAGE_CHARS);
});

t.test('ProblemList keeps the first N, counts the rest, builds only kept texts', async (t) => {
  const list = new ProblemList(2);
  let built = 0;
  for (let i = 0; i < 1000; i++) list.add(() => `p${i}${String(++built)}`);
  list.addUnexamined(5);
  t.equal(list.count, 1005);
  t.equal(built, 2, 'texts are built only for kept problems');
  t.same(list.list(), ['p01', 'p12', 'and 1003 more problems']);
  const one = new ProblemList(1);
  one.add('a');
  one.add('b');
  t.same(one.list(), ['a', 'and 1 more problem']);
  t.same(new ProblemList().list(), []);
});

t.test('SmallestStrings keeps the N smallest in order, in one pass', async (t) => {
  const smallest = new SmallestStrings(3);
  for (const s of ['m', 'z', 'b', 'y', 'a', 'c', 'a2', 'd']) smallest.add(s);
  t.same(smallest.items, ['a', 'a2', 'b']);
  t.equal(smallest.count, 8);
  const descending = new SmallestStrings(MAX_PROBLEMS);
  for (let i = 100_000; i > 0; i--) descending.add(String(i).padStart(6, '0'));
  t.same(descending.items[0], '000001');
  t.equal(descending.items.length, MAX_PROBLEMS);
});

t.test('edit distance is bounded; suggestions only for keys of plausible length', async (t) => {
  t.equal(boundedEditDistance('kitten', 'sitting', 3), 3);
  t.equal(boundedEditDistance('kitten', 'sitting', 2), 3, 'over the bound: max + 1');
  t.equal(boundedEditDistance('abc', 'abcdefgh', 3), 4, 'length difference alone exceeds the bound');
  t.equal(boundedEditDistance('aaaaaaa', 'bbbbbbb', 2), 3, 'stops early when a row exceeds the bound');
  t.equal(boundedEditDistance('', '', 3), 0);
  const known = ['flipt.io/poll-interval', 'flipt.io/bucket'];
  t.equal(closestKey('flipt.io/poll-intervall', known), 'flipt.io/poll-interval');
  t.equal(closestKey('flipt.io/bukcet', known), 'flipt.io/bucket');
  t.equal(closestKey('flipt.io/something-else', known), undefined);
  t.equal(closestKey(`flipt.io/${'x'.repeat(100_000)}`, known), undefined, 'a huge key costs a length check');
});

t.test(
  'thousands of unknown keys: the first N sorted, the rest counted, the list pointed to once',
  async (t) => {
    const annotations: Record<string, string> = { 'other.io/x': 'y', [STATUS_ANNOTATION]: 'ignored here' };
    for (let i = 50_000; i > 0; i--) annotations[`flipt.io/k${String(i).padStart(5, '0')}`] = '';
    annotations['flipt.io/poll-intervall'] = '10s';
    annotations['flipt.io/http-port'] = 'x'.repeat(300_000);
    const result = resolveSettings(config, annotations);
    if (result.ok) throw new Error('expected errors');
    t.equal(result.errors.length, MAX_PROBLEMS + 2, 'N problems, "and M more", the pointer');
    t.match(
      result.errors[0],
      /^annotation flipt\.io\/http-port: invalid value "x{100}"… \(300000 characters\)/,
    );
    t.equal(result.errors[1], 'annotation flipt.io/k00001 is not recognised');
    t.equal(result.errors[MAX_PROBLEMS], `and ${50_001 + 1 - MAX_PROBLEMS} more problems`);
    t.equal(result.errors[MAX_PROBLEMS + 1], ANNOTATIONS_POINTER);
    t.equal(result.errors.filter((e) => e === ANNOTATIONS_POINTER).length, 1);
    const message = rejectionMessage('pod shop/p', result.errors);
    t.ok(message.length < 2_000, `the message stays short (${message.length})`);

    const typo = resolveSettings(config, { 'flipt.io/poll-intervall': '10s' });
    t.same(typo, {
      ok: false,
      errors: [
        'annotation flipt.io/poll-intervall is not recognised (did you mean flipt.io/poll-interval?)',
        ANNOTATIONS_POINTER,
      ],
    });
    const huge = `flipt.io/${'q'.repeat(10_000)}`;
    const long = resolveSettings(config, { [huge]: '' });
    t.match(long, {
      ok: false,
      errors: [/^annotation flipt\.io\/q+… \(10009 characters\) is not recognised$/],
    });
    const label = resolveSettings(config, { 'flipt.io/inject': 'true' });
    t.same(label, {
      ok: false,
      errors: [
        'annotation flipt.io/inject is not recognised (flipt.io/inject is a label, not an annotation: set it under metadata.labels)',
      ],
    });
  },
);

t.test('pods a patch would leave invalid are refused, not patched', async (t) => {
  const classic = JSON.stringify({ initContainers: [], containers: ['flipt-sidecar'], volumes: [] });
  const native = JSON.stringify({
    initContainers: ['flipt-sidecar'],
    containers: [],
    volumes: ['flipt-sidecar-data'],
  });
  const cases: [string, Pod, RegExp][] = [
    ['no containers', labelled({}, { containers: [] }), /spec\.containers is empty/],
    [
      'only our sidecar, claimed by a forged status',
      labelled(
        { annotations: { [STATUS_ANNOTATION]: classic, 'flipt.io/native-sidecar': 'true' } },
        { containers: [{ name: 'flipt-sidecar' }] },
      ),
      /spec\.containers holds only flipt-sidecar/,
    ],
    [
      'two sidecars',
      labelled(
        { annotations: { [STATUS_ANNOTATION]: native } },
        { initContainers: [{ name: 'flipt-sidecar' }, { name: 'flipt-sidecar' }] },
      ),
      /2 containers are named flipt-sidecar \(spec\.initContainers\[0\], spec\.initContainers\[1\]\)/,
    ],
    [
      'two volumes',
      labelled(
        { annotations: { [STATUS_ANNOTATION]: native } },
        { volumes: [{ name: 'flipt-sidecar-data' }, { name: 'flipt-sidecar-data' }] },
      ),
      /2 volumes are named flipt-sidecar-data/,
    ],
  ];
  for (const [name, pod, message] of cases) {
    const result = injectPod(pod, context);
    t.match(result, { outcome: 'rejected', reason: 'invalid-pod', errors: [message] }, name);
  }
  const many = podInvariantProblems(
    labelled({}, { containers: Array.from({ length: 6 }, () => ({ name: 'flipt-sidecar' })) }),
  );
  t.match(many, [/only flipt-sidecar/, /6 containers are named flipt-sidecar \(.*, …\)/]);
  t.same(podInvariantProblems({}), [
    'spec.containers is empty: a pod needs at least one container to give a sidecar to',
  ]);
});

t.test('a forged status naming anything but our own names is refused, whatever its size', async (t) => {
  for (const status of [
    { initContainers: ['app'], containers: [], volumes: [] },
    { initContainers: [], containers: ['flipt-sidecar', 'flipt-sidecar'], volumes: [] },
    {
      initContainers: [],
      containers: [],
      volumes: Array.from({ length: 100_000 }, () => 'flipt-sidecar-data'),
    },
  ]) {
    const pod = labelled({ annotations: { [STATUS_ANNOTATION]: JSON.stringify(status) } });
    const result = injectPod(pod, context);
    t.match(result, { outcome: 'rejected', reason: 'invalid-status' });
    if (result.outcome === 'rejected') t.ok(result.errors[0]!.length < 600, 'the forged text is clipped');
  }
});

t.test('conflicts are bounded like the other problems', async (t) => {
  const containers = Array.from({ length: 5_000 }, (_, i) => ({
    name: `c${i}`,
    ports: [{ containerPort: config.sidecar.httpPort, name: 'http' }],
  }));
  const result = injectPod(labelled({}, { containers }), context);
  if (result.outcome !== 'rejected') throw new Error('expected a refusal');
  t.equal(result.reason, 'conflict');
  t.equal(result.errors.length, MAX_PROBLEMS + 1);
  t.equal(result.errors.at(-1), `and ${5_000 - MAX_PROBLEMS} more problems`);
});

t.test('names in messages are clipped', async (t) => {
  const name = 'n'.repeat(10_000);
  t.equal(podDisplayName({ metadata: { name } }, 'shop'), `shop/${'n'.repeat(253)}… (10000 characters)`);
  const decision = injectPod({ metadata: { labels: { 'flipt.io/inject': 'y'.repeat(10_000) } } }, context);
  t.match(decision, { outcome: 'rejected', errors: [/has the value "y{100}"… \(10000 characters\)/] });
});

t.test('pod shape: every field the injector reads has the type it expects', async (t) => {
  const cases: [string, unknown, string | undefined][] = [
    ['a normal pod', labelled(), undefined],
    [
      'null metadata and lists',
      { metadata: null, spec: { containers: [], initContainers: null, volumes: null } },
      undefined,
    ],
    ['not a mapping', 'abc', 'the document: expected a pod (a mapping with metadata and spec), got a string'],
    ['no spec', { kind: 'Pod' }, 'spec: expected a pod spec (a mapping with containers), got nothing'],
    ['spec: null', { spec: null }, 'spec: expected a pod spec (a mapping with containers), got null'],
    [
      'metadata: "x"',
      { metadata: 'x', spec: { containers: [] } },
      'metadata: expected a mapping, got a string',
    ],
    [
      'a name that is a number',
      { metadata: { name: 5 }, spec: { containers: [] } },
      'metadata.name: expected a string, got an integer',
    ],
    [
      'annotations: [a, b]',
      { metadata: { annotations: ['a', 'b'] }, spec: { containers: [] } },
      'metadata.annotations: expected a mapping of annotation names to string values, got a list',
    ],
    [
      'an unquoted label value',
      { metadata: { labels: { 'flipt.io/inject': true } }, spec: { containers: [] } },
      'metadata.labels["flipt.io/inject"]: expected a string (quote it: "true"), got a boolean (true)',
    ],
    [
      'a nested annotation value',
      { metadata: { annotations: { app: { a: 1 } } }, spec: { containers: [] } },
      'metadata.annotations.app: expected a string, got a mapping',
    ],
    [
      'containers: "abc"',
      { spec: { containers: 'abc' } },
      'spec.containers: expected a list of containers, got a string',
    ],
    [
      'containers: [null]',
      { spec: { containers: [null] } },
      'spec.containers[0]: expected a container (a mapping with a name), got null',
    ],
    [
      'a container without a name',
      { spec: { containers: [{ image: 'x' }] } },
      'spec.containers[0].name: expected a string, got nothing',
    ],
    [
      'ports: 80',
      { spec: { containers: [{ name: 'a', ports: 80 }] } },
      'spec.containers[0].ports: expected a list of ports, got an integer',
    ],
    [
      'ports: [8080]',
      { spec: { containers: [{ name: 'a', ports: [8080] }] } },
      'spec.containers[0].ports[0]: expected a port (a mapping with containerPort), got an integer',
    ],
    [
      'containerPort: "80"',
      { spec: { containers: [{ name: 'a', ports: [{ containerPort: '80' }] }] } },
      'spec.containers[0].ports[0].containerPort: expected an integer, got a string',
    ],
    [
      'containerPort: 80.5',
      { spec: { containers: [{ name: 'a', ports: [{ containerPort: 80.5, name: 'h' }] }] } },
      'spec.containers[0].ports[0].containerPort: expected an integer, got a number',
    ],
    [
      'a port name that is a list',
      { spec: { containers: [{ name: 'a', ports: [{ containerPort: 80, name: [] }] }] } },
      'spec.containers[0].ports[0].name: expected a string, got a list',
    ],
    [
      'initContainers: {}',
      { spec: { containers: [], initContainers: {} } },
      'spec.initContainers: expected a list of containers, got a mapping',
    ],
    [
      'volumes: "v"',
      { spec: { containers: [], volumes: 'v' } },
      'spec.volumes: expected a list of volumes, got a string',
    ],
    [
      'volumes: [1]',
      { spec: { containers: [], volumes: [1] } },
      'spec.volumes[0]: expected a volume (a mapping with a name), got an integer',
    ],
    [
      'a volume without a name',
      { spec: { containers: [], volumes: [{}] } },
      'spec.volumes[0].name: expected a string, got nothing',
    ],
    ['undefined', undefined, 'the document: expected a pod (a mapping with metadata and spec), got nothing'],
    [
      'a bigint-free symbol check',
      { spec: { containers: [{ name: Symbol('s') }] } },
      'spec.containers[0].name: expected a string, got a symbol',
    ],
  ];
  for (const [name, pod, message] of cases) {
    const problem = podShapeProblem(pod);
    t.equal(problem === undefined ? undefined : shapeMessage(problem, ''), message, name);
  }
  const problem = podShapeProblem({ spec: null });
  t.equal(
    shapeMessage(problem!, 'request.object'),
    'request.object.spec: expected a pod spec (a mapping with containers), got null',
  );
  t.equal(
    shapeMessage(podShapeProblem(7)!, 'request.object'),
    'request.object: expected a pod (a mapping with metadata and spec), got an integer',
  );
  const longKey = 'k'.repeat(500);
  t.match(
    shapeMessage(podShapeProblem({ metadata: { labels: { [longKey]: 1 } }, spec: { containers: [] } })!, ''),
    /^metadata\.labels\.k{100}… \(500 characters\): expected a string \(quote it: "1"\), got an integer$/,
  );
});

t.test('overlong values are refused before a pattern runs over them', async (t) => {
  const image = resolveSettings(config, { 'flipt.io/image': 'a'.repeat(2_000_000) });
  t.match(image, {
    ok: false,
    errors: [
      /flipt\.io\/image: invalid value "a{100}"… \(2000000 characters\) \(it is longer than 1024 characters\)/,
    ],
  });
  const secret = resolveSettings(config, { 'flipt.io/credentials-secret': 'a'.repeat(254) });
  t.match(secret, { ok: false, errors: [/\(it is longer than 253 characters\)/] });
  t.match(resolveSettings(config, { 'flipt.io/credentials-secret': 'a'.repeat(253) }), { ok: true });
});
