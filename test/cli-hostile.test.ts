// The CLI under careless and hostile input (issue 9): a malformed pod template gets one sentence with
// the document number, the path and what is expected (never a library's dump or a JS error), deep
// nesting is refused with a message, a refusal anywhere leaves stdout empty, and a 20,000-document
// manifest goes through a real process under a 256 MB heap (the old code held every document at once
// and died there).
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import t from 'tap';
import { MAX_NESTING } from '../src/yaml-stream.ts';
import { deploymentsManifest, runCli } from './support/cli.ts';

// The 20,000-document run takes a minute of CPU; on a shared machine under load, several of wall time.
t.setTimeout(1_200_000);

const injected = 'metadata: {name: ok}\nspec: {containers: [{name: app, image: nginx}]}\n';

t.test('malformed pod templates: document, path and what is expected', async (t) => {
  const cases: [string, string, string][] = [
    [
      'kind: Pod only',
      'kind: Pod\n',
      'document 1, spec: expected a pod spec (a mapping with containers), got nothing',
    ],
    [
      'spec: null',
      'kind: Pod\nspec: null\n',
      'document 1, spec: expected a pod spec (a mapping with containers), got null',
    ],
    [
      'metadata: "x"',
      'kind: Pod\nmetadata: "x"\nspec: {containers: [{name: a}]}\n',
      'document 1, metadata: expected a mapping, got a string',
    ],
    [
      'annotations: [a, b]',
      'kind: Pod\nmetadata: {annotations: [a, b]}\nspec: {containers: [{name: a}]}\n',
      'document 1, metadata.annotations: expected a mapping of annotation names to string values, got a list',
    ],
    [
      'containers: "abc" in a Deployment',
      'kind: Deployment\nmetadata: {name: web, namespace: shop}\nspec: {template: {spec: {containers: "abc"}}}\n',
      'document 1, spec.template.spec.containers: expected a list of containers, got a string',
    ],
    [
      'containers: [null], second document',
      `kind: Pod\n${injected}---\nkind: Pod\nspec: {containers: [null]}\n`,
      'document 2, spec.containers[0]: expected a container (a mapping with a name), got null',
    ],
    [
      'an unquoted label value',
      'kind: Pod\nmetadata: {labels: {flipt.io/inject: true}}\nspec: {containers: [{name: a}]}\n',
      'document 1, metadata.labels["flipt.io/inject"]: expected a string (quote it: "true"), got a boolean (true)',
    ],
    [
      'a CronJob item in a List',
      'kind: List\nitems:\n- kind: CronJob\n  metadata: {name: nightly}\n  spec: {jobTemplate: {spec: {template: {spec: {containers: [{name: 1}]}}}}}\n',
      'document 1, items[0].spec.jobTemplate.spec.template.spec.containers[0].name: expected a string, got an integer',
    ],
  ];
  for (const [name, input, message] of cases) {
    for (const command of ['inject', 'check']) {
      const run = await runCli([command, '-f', '-', '--namespace-enabled'], input);
      t.equal(run.code, 1, `${name} (${command}): exit 1`);
      const lines = run.stderr.trimEnd().split('\n');
      t.equal(lines.length, 1, `${name} (${command}): one line`);
      t.match(
        lines[0],
        /^flipt-sidecar-injector refused \w+ /,
        `${name} (${command}): says who refused what`,
      );
      t.ok(lines[0]?.endsWith(`: ${message}`), `${name} (${command}): ${lines[0]}`);
      t.notMatch(run.stderr, /OPERATION_|TypeError|Cannot read|at .*\.ts:\d+/, `${name}: no internals`);
      if (command === 'inject') t.equal(run.stdout, '', `${name}: nothing on stdout`);
      else t.match(run.stdout, `: reject [malformed] ${message}\n`, `${name}: check says why`);
    }
  }
});

t.test('a pod template shared through a YAML alias is refused, naming the alias', async (t) => {
  const input = [
    'kind: List',
    'items:',
    '- kind: Deployment',
    '  metadata: {name: a, namespace: shop}',
    '  spec:',
    '    template: &tmpl',
    '      metadata: {labels: {flipt.io/inject: "true"}}',
    '      spec: {containers: [{name: app, image: nginx}]}',
    '- kind: Deployment',
    '  metadata: {name: b, namespace: shop}',
    '  spec:',
    '    template: *tmpl',
    '',
  ].join('\n');
  const run = await runCli(['inject', '-f', '-'], input);
  t.equal(run.code, 1);
  t.equal(run.stdout, '');
  t.equal(
    run.stderr,
    [
      'flipt-sidecar-injector refused Deployment shop/a: document 1, items[0].spec.template: the pod template defines a YAML anchor (&tmpl) that may be used elsewhere; write the pod template out in full so that it can be injected',
      'flipt-sidecar-injector refused Deployment shop/b: document 1, items[1].spec.template: the pod template is a YAML alias (*tmpl); write the pod template out in full so that it can be injected',
      '',
    ].join('\n'),
  );
  // Through an alias higher up the path.
  const viaSpec = await runCli(
    ['inject', '-f', '-'],
    'kind: List\nitems:\n- &d {kind: Deployment, metadata: {name: a}, spec: {template: {metadata: {labels: {flipt.io/inject: "true"}}, spec: {containers: [{name: app}]}}}}\n- *d\n',
  );
  t.equal(viaSpec.code, 1);
  t.match(viaSpec.stderr, /document 1, items\[1\]\.spec\.template: items\[1\] is a YAML alias \(\*d\)/);
  // Anchors and aliases elsewhere in a document are fine, and so is a template that is not changed.
  const elsewhere = await runCli(
    ['inject', '-f', '-'],
    'kind: Pod\nmetadata: {name: p, labels: {flipt.io/inject: "false"}, annotations: {a: &v x, b: *v}}\nspec: {containers: [{name: app}]}\n',
  );
  t.equal(elsewhere.code, 0, elsewhere.stderr);
});

t.test('deep nesting is refused with a message, not a stack overflow', async (t) => {
  const depth = 1_000;
  const flow = '{"kind":"List","items":['.repeat(depth) + '{}' + ']}'.repeat(depth);
  const lines = ['kind: List', 'items:'];
  for (let i = 0; i < depth; i++) lines.push(`${'  '.repeat(i)}- kind: List`, `${'  '.repeat(i)}  items:`);
  const block = `${lines.join('\n')}\n${'  '.repeat(depth)}- {}\n`;
  for (const [name, input] of [
    ['flow', flow],
    ['block', block],
    ['second document', `kind: Pod\n${injected}---\n${flow}`],
  ] as const) {
    for (const command of ['inject', 'check']) {
      const run = await runCli([command, '-f', '-'], input);
      t.equal(run.code, 1, `${name} ${command}: exit 1`);
      const number = name === 'second document' ? 2 : 1;
      t.equal(
        run.stderr,
        `error: document ${number} nests collections more than ${MAX_NESTING} levels deep; a Kubernetes manifest never needs that many (is it generated by a runaway template?)\n`,
        `${name} ${command}`,
      );
      t.equal(run.stdout, '');
    }
  }
  // A List nested less deep than the limit is walked like any other.
  let nested =
    '{kind: Pod, metadata: {name: deep, labels: {flipt.io/inject: "true"}}, spec: {containers: [{name: app}]}}';
  for (let i = 0; i < 20; i++) nested = `{kind: List, items: [${nested}]}`;
  const ok = await runCli(['check', '-f', '-'], nested);
  t.equal(ok.code, 0, ok.stderr);
  t.equal(
    ok.stdout,
    'Pod <default namespace>/deep: inject [pod-label] the pod is labelled flipt.io/inject=true\n',
  );
});

t.test('a refusal in a later document leaves stdout empty; refusals are listed up to a bound', async (t) => {
  const good = deploymentsManifest(3);
  const run = await runCli(['inject', '-f', '-'], `${good}---\nkind: Pod\nspec: null\n`);
  t.equal(run.code, 1);
  t.equal(run.stdout, '', 'the documents before the refused one are not written');
  t.match(run.stderr, /document 4, spec: expected/);

  const bad = Array.from({ length: 150 }, (_, i) => `kind: Pod\nmetadata: {name: p${i}}\nspec: null\n`).join(
    '---\n',
  );
  const many = await runCli(['inject', '-f', '-'], bad);
  const lines = many.stderr.trimEnd().split('\n');
  t.equal(lines.length, 101);
  t.equal(lines.at(-1), 'and 50 more problems');
});

t.test('the spooled output is copied back whole, and held in memory without a writable TMPDIR', async (t) => {
  // Multi-byte characters across the spool's 64 KiB chunks.
  const input = `${deploymentsManifest(50)}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: text}\ndata: {text: "${'äöü€'.repeat(40_000)}"}\n`;
  const fromFile = await runCli(['inject', '-f', '-'], input);
  t.equal(fromFile.code, 0, fromFile.stderr);
  t.ok(fromFile.stdout.length > 200_000);
  t.equal(fromFile.stdout.match(/- name: flipt-sidecar$/gm)?.length, 50);
  t.ok(fromFile.stdout.endsWith(`data: {text: "${'äöü€'.repeat(40_000)}"}\n`), 'the last document intact');
  const saved = process.env.TMPDIR;
  process.env.TMPDIR = '/nonexistent/flipt-injector-test';
  t.teardown(() => {
    if (saved === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = saved;
  });
  const inMemory = await runCli(['inject', '-f', '-'], input);
  t.equal(inMemory.code, 0, inMemory.stderr);
  t.equal(inMemory.stdout, fromFile.stdout, 'the same output');
});

t.test('20,000 Deployments through the real CLI under a 256 MB heap', { timeout: 1_200_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'flipt-cli-20k-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'deployments.yaml');
  await writeFile(file, deploymentsManifest(20_000));
  const cli = resolve(import.meta.dirname, '..', 'src', 'cli.ts');
  // Counted as it streams: the test does not hold the 60 MB of output either.
  const result = await new Promise<{
    code: number | null;
    sidecars: number;
    documents: number;
    stderr: string;
  }>((done) => {
    // Without tap's coverage collection: the in-process tests cover this code, and collecting it
    // here only slows a run that is already the longest in the suite.
    const env = { ...process.env };
    delete env.NODE_V8_COVERAGE;
    const child = spawn(process.execPath, ['--max-old-space-size=256', cli, 'inject', '-f', file], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env,
    });
    let sidecars = 0;
    let documents = 1;
    let tail = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      const text = tail + chunk.toString('utf8');
      const cut = text.lastIndexOf('\n') + 1;
      for (const line of text.slice(0, cut).split('\n')) {
        if (line === '---') documents++;
        else if (line.endsWith('- name: flipt-sidecar')) sidecars++;
      }
      tail = text.slice(cut);
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8').slice(0, 4096)));
    child.on('close', (code) => done({ code, sidecars, documents, stderr }));
  });
  t.equal(result.code, 0, `exit 0 ${result.stderr}`);
  t.equal(result.documents, 20_000, 'every document is written');
  t.equal(result.sidecars, 20_000, 'every Deployment got its sidecar');
});
