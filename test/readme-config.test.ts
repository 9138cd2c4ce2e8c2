// README's "Per-pod annotations" table is what users read: it must list exactly the annotations the
// injector accepts, each overriding a real config field, in the order the code checks them.
import { readdirSync, readFileSync } from 'node:fs';
import t from 'tap';
import { ANNOTATIONS } from '../src/core/annotations.ts';
import { load as loadYaml } from 'js-yaml';
import { CONFIG_ENV_OVERRIDES, defaultConfig } from '../src/core/config.ts';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

function annotationTable(): { annotation: string; field: string }[] {
  const section = readme.split(/^### Per-pod annotations$/m)[1]?.split(/^## /m)[0] ?? '';
  return [...section.matchAll(/^\| `(flipt\.io\/[^`]+)` +\| `([^`]+)` +\|/gm)].map((m) => ({
    annotation: m[1] as string,
    field: m[2] as string,
  }));
}

t.test('README lists every annotation the injector accepts, and nothing else', async (t) => {
  const rows = annotationTable();
  t.ok(rows.length > 0, 'the table was found');
  t.same(
    rows.map((r) => r.annotation),
    Object.keys(ANNOTATIONS),
  );
});

t.test('each README row names a config field that exists', async (t) => {
  const config = defaultConfig() as unknown as Record<string, unknown>;
  for (const { annotation, field } of annotationTable()) {
    const value = field
      .split('.')
      .reduce<unknown>((node, key) => (node as Record<string, unknown>)?.[key], config);
    t.not(value, undefined, `${annotation} → ${field}`);
  }
});

t.test(
  "README's configuration example is the built-in defaults, with each override's env variable",
  async (t) => {
    const block =
      readme
        .split(/^## Configuration$/m)[1]
        ?.split('```yaml\n')[1]
        ?.split('```')[0] ?? '';
    t.ok(block.length > 0, 'the example was found');
    t.same(loadYaml(block), defaultConfig(), 'every field and default, nothing else');
    const named = new Set(
      [...block.matchAll(/# (?:[^#\n]*?\b)?((?:FLIPT_INJECTOR|POD)_[A-Z_]+)/g)].map((m) => m[1]),
    );
    t.same(
      [...named].sort(),
      Object.keys(CONFIG_ENV_OVERRIDES).sort(),
      'every environment override is named',
    );
  },
);

t.test(
  'README "Where things live" names every source file of the four programs and the toolbox',
  async (t) => {
    const map = readme.split(/^## Where things live$/m)[1]?.split(/^## /m)[0] ?? '';
    t.ok(map.length > 0, 'the section was found');
    const root = new URL('..', import.meta.url);
    const missing: string[] = [];
    for (const dir of ['common', 'src', 'exporter', 'cache']) {
      const files = readdirSync(new URL(dir, root), { recursive: true, encoding: 'utf8' });
      for (const file of files) {
        if (!file.endsWith('.ts')) continue;
        const name = file.split('/').at(-1) as string;
        if (!map.includes(name)) missing.push(`${dir}/${file}`);
      }
    }
    t.same(missing, [], 'every file is named (by its file name) with what it holds');
  },
);
