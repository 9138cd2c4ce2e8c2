// Which upstream states the cache accepts: only complete, readable states that Flipt v1.61.1's
// schema (the exporter's check) accepts, with at least one flag document.
import t from 'tap';
import { createDocumentValidator } from '../../exporter/schema.ts';
import { buildSnapshot, isFlagDocument, versionLabel, type CachedObject } from '../../cache/snapshot.ts';

const validate = createDocumentValidator();
const doc = (flag: string, type = 'BOOLEAN_FLAG_TYPE') =>
  `version: "1.4"\nnamespace:\n  key: default\nflags:\n  - key: ${flag}\n    name: ${flag}\n    type: ${type}\n    enabled: true\n`;
const object = (key: string, text: string): CachedObject => ({
  key,
  body: Buffer.from(text),
  etag: `"${key.length}-${text.length}"`,
  size: text.length,
  lastModified: new Date(0),
  contentType: 'application/yaml',
});

t.test('flag documents as Flipt selects them', async (t) => {
  t.ok(isFlagDocument('features.yml', false));
  t.ok(isFlagDocument('team/a.features.yaml', false));
  t.notOk(isFlagDocument('notes.yml', false));
  t.notOk(isFlagDocument('.flipt.yml', false));
  t.ok(isFlagDocument('notes.yml', true), 'with an index every YAML object is checked');
  t.ok(isFlagDocument('x.json', true));
  t.notOk(isFlagDocument('README.md', true));
});

t.test('a valid multi-document state becomes a sorted snapshot', async (t) => {
  const r = buildSnapshot(
    'p/',
    [object('p/features.yml', `${doc('a')}---\n${doc('b')}`), object('p/README.md', 'hello')],
    validate,
    1000,
  );
  if (!r.ok) throw new Error(r.problems.join('; '));
  t.same(
    r.snapshot.sorted.map((o) => o.key),
    ['p/README.md', 'p/features.yml'],
  );
  t.equal(r.snapshot.flags, 2);
  t.equal(r.snapshot.bytes, 5 + doc('a').length + 4 + doc('b').length);
  t.match(versionLabel(r.snapshot), /^2-objects-[0-9a-f]{8}$/);
  const one = buildSnapshot('', [object('features.yml', doc('a'))], validate, 1);
  t.equal(one.ok && versionLabel(one.snapshot), `${'features.yml'.length}-${doc('a').length}`);
});

t.test('refused: invalid YAML, schema errors, no flag document', async (t) => {
  const bad = buildSnapshot('', [object('features.yml', 'flags: [unclosed')], validate, 1);
  t.match(bad, { ok: false, problems: [/features\.yml: not valid YAML/] });
  const schema = buildSnapshot('', [object('features.yml', doc('a', 'NOPE'))], validate, 1);
  t.match(schema, {
    ok: false,
    problems: [/features\.yml: namespace default: \/flags\/0\/type must be one of/],
  });
  const json = buildSnapshot(
    '',
    [object('.flipt.yml', 'version: "1.0"'), object('x.json', '{')],
    validate,
    1,
  );
  t.match(json, { ok: false, problems: [/x\.json: not valid JSON/] });
  const empty = buildSnapshot('p/', [object('p/README.md', 'x')], validate, 1);
  t.match(empty, { ok: false, problems: [/no flag document under the prefix "p\/"/] });
  const dup = buildSnapshot('', [object('features.yml', 'a: 1\na: 2\n')], validate, 1);
  t.equal(dup.ok, false, 'duplicate keys are refused, as Go yaml.v3 refuses them');
  const unchecked = buildSnapshot('', [object('features.yml', doc('a', 'NOPE'))], undefined, 1);
  t.equal(unchecked.ok, true, 'without the schema check only readability is checked');
});
