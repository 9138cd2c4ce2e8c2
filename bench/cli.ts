// npm run bench:cli — `flipt-injector inject` on streams of 1,000 and 20,000 small Deployments (the
// 20,000 one is issue 9's 4.8 MB manifest), as a real process, with the production heap limit of a
// CI runner in mind (BENCH_HEAP_MB, default 256). In the same run, the baseline: the same process
// shape doing only what the YAML library must do anyway — parse every document and print it again.
// Rounds alternate; medians are reported with the ratio to the baseline. Peak RSS is the child's own
// (process.resourceUsage().maxRSS, reported at exit).
//
//   BENCH_ROUNDS=3 BENCH_HEAP_MB=256 npm run bench:cli
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { deploymentsManifest } from '../test/support/cli.ts';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const HEAP_MB = Number(process.env.BENCH_HEAP_MB ?? 256);
const root = resolve(import.meta.dirname, '..');
const dir = await mkdtemp(join(tmpdir(), 'flipt-bench-cli-'));

// The baseline: parse each document and write it back, one at a time, with the same YAML library.
const baseline = join(dir, 'baseline.mjs');
await writeFile(
  baseline,
  `import { readFileSync } from 'node:fs';
import { Composer, Parser } from ${JSON.stringify(join(root, 'node_modules', 'yaml', 'dist', 'index.js'))};
const text = readFileSync(process.argv[2], 'utf8');
const out = [];
for (const doc of new Composer().compose(new Parser().parse(text))) { doc.toJS(); out.push(doc.toString()); }
process.stdout.write(out.join('---\\n'));
`,
);
// Reports the child's peak RSS on stderr as it exits.
const REPORT_RSS = `data:text/javascript,process.on('exit',()=>process.stderr.write('maxRSS='+process.resourceUsage().maxRSS+'\\n'))`;

interface Run {
  seconds: number;
  peakRssMiB: number;
  outputBytes: number;
  code: number | null;
}

function run(args: string[]): Promise<Run> {
  return new Promise((done) => {
    const started = performance.now();
    const child = spawn(
      process.execPath,
      [`--max-old-space-size=${HEAP_MB}`, `--import=${REPORT_RSS}`, ...args],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let outputBytes = 0;
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (outputBytes += c.length));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('close', (code) => {
      const kib = Number(/maxRSS=(\d+)/.exec(stderr)?.[1] ?? 0);
      if (code !== 0) console.error(stderr.slice(0, 2000));
      done({ seconds: (performance.now() - started) / 1000, peakRssMiB: kib / 1024, outputBytes, code });
    });
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

console.log(`CLI benchmark: ${ROUNDS} rounds, --max-old-space-size=${HEAP_MB}`);
const rows: string[] = [];
let failed = false;
for (const count of [1_000, 20_000]) {
  const file = join(dir, `deployments-${count}.yaml`);
  const text = deploymentsManifest(count);
  await writeFile(file, text);
  const runs: Record<'baseline' | 'inject', Run[]> = { baseline: [], inject: [] };
  for (let round = 1; round <= ROUNDS; round++) {
    const order = round % 2 === 1 ? (['baseline', 'inject'] as const) : (['inject', 'baseline'] as const);
    for (const name of order) {
      const r = await run(
        name === 'baseline' ? [baseline, file] : [join(root, 'src', 'cli.ts'), 'inject', '-f', file],
      );
      runs[name].push(r);
      failed ||= r.code !== 0;
      console.log(
        `  ${count} docs round ${round} ${name.padEnd(8)} ${r.seconds.toFixed(2)} s  peak RSS ${r.peakRssMiB.toFixed(0)} MiB  exit ${r.code}`,
      );
    }
  }
  const s = (name: 'baseline' | 'inject') => ({
    seconds: median(runs[name].map((r) => r.seconds)),
    rss: median(runs[name].map((r) => r.peakRssMiB)),
    out: runs[name][0]?.outputBytes ?? 0,
  });
  const b = s('baseline');
  const i = s('inject');
  rows.push(
    `| ${count} | ${(text.length / 1024 / 1024).toFixed(1)} MiB | ${i.seconds.toFixed(2)} s | ${(count / i.seconds).toFixed(0)} | ${i.rss.toFixed(0)} MiB | ${b.seconds.toFixed(2)} s | ${b.rss.toFixed(0)} MiB | ${(i.seconds / b.seconds).toFixed(2)} | ${(i.out / 1024 / 1024).toFixed(1)} MiB |`,
  );
}
await rm(dir, { recursive: true, force: true });
console.log(
  '\n| documents | input | inject (median) | docs/s | inject peak RSS | baseline (parse + print) | baseline peak RSS | time ratio | output |',
);
console.log('|---|---|---|---|---|---|---|---|---|');
for (const row of rows) console.log(row);
process.exitCode = failed ? 1 : 0;
