// The golden cases through the CLI door: `flipt-injector inject -f NAME.yaml` must print
// NAME.injected.yaml (or fail with NAME.error.txt), and injecting that output again must change nothing.
import { spawnSync } from 'node:child_process';
import t from 'tap';
import { runCli } from './support/cli.ts';
import { expected, goldenCases, orphanedGoldenFiles } from './support/golden.ts';

t.test('no golden file is orphaned', async (t) => {
  t.same(orphanedGoldenFiles(), [], 'every NAME.injected.yaml / NAME.error.txt has its NAME.yaml');
});

for (const goldenCase of goldenCases()) {
  t.test(goldenCase.name, async (t) => {
    const run = await runCli(['inject', '-f', goldenCase.inputFile, ...goldenCase.args]);
    if (goldenCase.kind === 'error') {
      t.equal(run.code, 1, 'a rejection exits 1');
      t.equal(run.stdout, '', 'nothing is written to stdout');
      const want = expected(goldenCase, run.stderr);
      t.ok(want, `${goldenCase.expectedFile} exists (create it with UPDATE_GOLDEN=1)`);
      t.equal(run.stderr, want, 'stderr matches the golden error');
      t.match(run.stderr, /^flipt-sidecar-injector refused Pod shop\/bad-/);
      return;
    }
    t.equal(run.code, 0, `exit 0 (stderr: ${run.stderr})`);
    t.equal(run.stderr, '');
    const want = expected(goldenCase, run.stdout);
    t.ok(want, `${goldenCase.expectedFile} exists (create it with UPDATE_GOLDEN=1)`);
    t.equal(run.stdout, want, 'output matches the golden file');

    // Re-run: injecting the injected output again is a no-op, byte for byte.
    const again = await runCli(['inject', '-f', '-', ...goldenCase.args], run.stdout);
    t.equal(again.code, 0);
    t.equal(again.stdout, run.stdout, 'injecting the output again changes nothing');
  });
}

t.test('UPDATE_GOLDEN is refused under CI', async (t) => {
  const loaded = spawnSync(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `await import(${JSON.stringify(new URL('./support/golden.ts', import.meta.url).href)})`,
    ],
    { env: { ...process.env, UPDATE_GOLDEN: '1', CI: 'true' }, encoding: 'utf8' },
  );
  t.not(loaded.status, 0, 'loading the golden helpers fails');
  t.match(loaded.stderr, /UPDATE_GOLDEN=1 is refused under CI/);
});
