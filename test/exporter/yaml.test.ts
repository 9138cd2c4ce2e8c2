// The YAML writer must give back exactly what it was given, under a YAML 1.2 reader and a YAML 1.1
// reader (Go's yaml.v3 in Flipt inherits 1.1 habits from libyaml), for any JSON-like value.
import t from 'tap';
import { parse, parseAllDocuments } from 'yaml';
import { toYamlDocument, toYamlStream, yamlString, type JsonValue } from '../../exporter/yaml.ts';

const tricky = [
  '',
  ' ',
  'plain',
  'two words',
  'trailing ',
  ' leading',
  'yes',
  'No',
  'ON',
  'off',
  'y',
  'N',
  'true',
  'False',
  'null',
  'Null',
  '~',
  '0',
  '007',
  '1.4',
  '1e3',
  '.inf',
  '-.Inf',
  '.nan',
  '0x1F',
  '0o17',
  '1_000',
  '12:30:00',
  '2026-03-01',
  '2026-03-01T10:00:00Z',
  '+1',
  '-',
  '- item',
  '? key',
  ': value',
  'key: value',
  'a #comment',
  '#hash',
  '&anchor',
  '*alias',
  '!tag',
  '%directive',
  '@at',
  '`tick',
  '|literal',
  '>folded',
  '"quoted"',
  "'single'",
  '[a, b]',
  '{a: b}',
  'a,b',
  '<<',
  '=',
  '---',
  '...',
  'line\nbreak',
  'tab\there',
  'cr\rhere',
  'back\\slash',
  'unicode é ü 日本',
  'emoji 🚀',
  'nel\u0085here',
  'ls\u2028ps\u2029',
  'bom\ufeffhere',
  'del\u007fhere',
  'c1\u0080\u009f',
  'bell\u0007',
  'nul\u0000',
  'a/b.c-d_e',
  'Default namespace',
  'flag-123',
];

/** ASCII-only label: raw NEL or LS in a test name would break the TAP stream itself. */
const show = (s: string) =>
  JSON.stringify(s).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

t.test('every tricky string reads back unchanged, as a value and as a key', async (t) => {
  for (const s of tricky) {
    const doc = toYamlDocument({ value: s, [s]: 'key', list: [s] });
    for (const version of ['1.2', '1.1'] as const) {
      const back = parse(doc, { version }) as Record<string, unknown>;
      t.equal(back['value'], s, `value ${show(s)} (YAML ${version})`);
      t.equal(back[s], 'key', `key ${show(s)} (YAML ${version})`);
      t.same(back['list'], [s], `list item ${show(s)} (YAML ${version})`);
    }
  }
});

t.test('plain output only where it is unambiguous', async (t) => {
  t.equal(yamlString('beta-users'), 'beta-users');
  t.equal(yamlString('Default namespace'), 'Default namespace');
  t.equal(yamlString('yes'), '"yes"');
  t.equal(yamlString('1.4'), '"1.4"');
  t.equal(yamlString('a: b'), '"a: b"');
  t.equal(yamlString('ls\u2028'), '"ls\\u2028"');
});

// A small deterministic generator: the same cases on every run.
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    return s / 2 ** 32;
  };
}

const alphabet = [
  'a',
  'Z',
  '_',
  '-',
  ' ',
  ':',
  '#',
  '"',
  "'",
  '\\',
  '\n',
  '\t',
  '0',
  '9',
  '.',
  '/',
  'é',
  '🚀',
  '\u2028',
  '{',
  '[',
  '&',
  '*',
  '!',
  '|',
  '>',
  '%',
  '@',
  ',',
];

function randomString(r: () => number): string {
  if (r() < 0.2) return tricky[Math.floor(r() * tricky.length)] as string;
  let s = '';
  const n = Math.floor(r() * 8);
  for (let i = 0; i < n; i++) s += alphabet[Math.floor(r() * alphabet.length)];
  return s;
}

function randomValue(r: () => number, depth: number): JsonValue {
  const k = r();
  if (depth > 3 || k < 0.45) {
    const s = r();
    if (s < 0.5) return randomString(r);
    if (s < 0.65) return Math.round((r() - 0.5) * 1e6) / (r() < 0.5 ? 1 : 1000);
    if (s < 0.75) return [0, -1, 1e21, 1e-7, 0.1, 33.33, 2 ** 53][Math.floor(r() * 7)] as number;
    if (s < 0.9) return r() < 0.5;
    return null;
  }
  if (k < 0.7) return Array.from({ length: Math.floor(r() * 4) }, () => randomValue(r, depth + 1));
  const o: Record<string, JsonValue> = {};
  for (let i = Math.floor(r() * 4); i > 0; i--) o[randomString(r)] = randomValue(r, depth + 1);
  return o;
}

t.test('random JSON values read back unchanged (2,000 generated documents)', async (t) => {
  const r = rng(20260301);
  let failures = 0;
  for (let i = 0; i < 2000; i++) {
    const value = { v: randomValue(r, 0) };
    const back = parse(toYamlDocument(value));
    if (JSON.stringify(back) !== JSON.stringify(value)) {
      failures++;
      if (failures <= 3) t.fail(`round trip differs for ${show(JSON.stringify(value))}`);
    }
  }
  t.equal(failures, 0, 'no value changed on the way through YAML');
});

t.test('a stream holds one document per input, in order', async (t) => {
  const stream = toYamlStream([{ a: 1 }, { b: [] }, { c: {} }]);
  t.equal(stream, '---\na: 1\n---\nb: []\n---\nc: {}\n');
  t.same(
    parseAllDocuments(stream).map((d) => d.toJS()),
    [{ a: 1 }, { b: [] }, { c: {} }],
  );
});

t.test('non-finite numbers are refused rather than written', async (t) => {
  t.throws(() => toYamlDocument({ n: Number.NaN }), /cannot write the number NaN/);
});
