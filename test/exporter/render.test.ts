// The renderer: Flipt API state (fixtures written from Flipt v1.61.1's REST API definitions; Flipt
// cannot be built on this machine) → declarative YAML. Checked against a golden file, for
// determinism, for the mapping `flipt export` does, and for every inconsistency it must refuse.
// Every export produced here is also validated against Flipt's document rules
// (exporter/schema/flipt-v1.4.schema.json, the stand-in for `flipt validate`).
import { UPDATE_GOLDEN } from '../support/golden.ts';
import t, { type Test } from 'tap';
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { buildDocuments, renderYaml, type ExportDocument } from '../../exporter/render.ts';
import { createDocumentValidator } from '../../exporter/schema.ts';
import { loadFixture, stateOf, syntheticData, type MasterData } from './flipt-replay.ts';

const golden = join(import.meta.dirname, 'golden', 'fixture.features.yml.golden');
const validate = createDocumentValidator();

function exportOf(data: MasterData): { yaml: string; documents: ExportDocument[] } {
  const built = buildDocuments(stateOf(data));
  if (!built.ok) throw new Error(`unexpected render errors: ${built.errors.join('; ')}`);
  return { yaml: renderYaml(built.documents), documents: built.documents };
}

/** The YAML as a sidecar would read it, checked against Flipt's document rules. */
function readBack(t: Test, yaml: string): Record<string, unknown>[] {
  const docs = parseAllDocuments(yaml).map((d) => {
    t.same(d.errors, [], 'the YAML parses');
    return d.toJS() as Record<string, unknown>;
  });
  t.same(validate(docs), [], "the export passes Flipt's document schema");
  return docs;
}

function errorsOf(data: MasterData): string[] {
  const built = buildDocuments(stateOf(data));
  return built.ok ? [] : built.errors;
}

const clone = (d: MasterData): MasterData => structuredClone(d);

t.test('the fixture renders exactly as the golden file', async (t) => {
  const { yaml } = exportOf(loadFixture());
  if (UPDATE_GOLDEN) {
    mkdirSync(join(import.meta.dirname, 'golden'), { recursive: true });
    writeFileSync(golden, yaml);
    t.comment(`wrote ${golden}`);
  }
  // A missing golden file fails: writing it here would let a deleted expectation pass.
  t.ok(existsSync(golden), `${golden} exists (create it with UPDATE_GOLDEN=1)`);
  t.equal(yaml, readFileSync(golden, 'utf8'), 'golden file is current (UPDATE_GOLDEN=1 to rewrite it)');
  const docs = readBack(t, yaml);
  t.same(
    docs.map((d) => (d['namespace'] as { key: string }).key),
    ['default', 'production', 'staging'],
    'one document per namespace, sorted by key, empty namespaces included',
  );
  t.ok(
    docs.every((d) => d['version'] === '1.4'),
    'every document carries version 1.4',
  );
});

t.test('the same state gives the same bytes whatever order the master lists it in', async (t) => {
  const data = loadFixture();
  const reference = exportOf(data).yaml;
  const shuffled = clone(data);
  shuffled.namespaces.reverse();
  for (const list of Object.values(shuffled.flags)) list.reverse();
  for (const list of Object.values(shuffled.segments)) list.reverse();
  for (const list of Object.values(shuffled.rules)) list.reverse();
  for (const list of Object.values(shuffled.rollouts)) list.reverse();
  for (const list of Object.values(shuffled.flags)) {
    for (const flag of list) {
      // Same attachment and metadata, keys in another order.
      for (const v of flag['variants'] as Record<string, unknown>[]) {
        if (v['attachment'] && String(v['attachment']).startsWith('{')) {
          const parsed = JSON.parse(String(v['attachment'])) as Record<string, unknown>;
          v['attachment'] = JSON.stringify(Object.fromEntries(Object.entries(parsed).reverse()));
        }
      }
      if (flag['metadata']) flag['metadata'] = Object.fromEntries(Object.entries(flag['metadata']).reverse());
    }
  }
  t.equal(exportOf(shuffled).yaml, reference);
  t.equal(exportOf(data).yaml, reference, 'and rendering twice changes nothing');
  t.notMatch(reference, /20\d\d-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z/, 'no timestamps from the API in the body');
});

t.test('rules, distributions and rollouts map like flipt export', async (t) => {
  const docs = readBack(t, exportOf(loadFixture()).yaml);
  const flags = docs[0]?.['flags'] as Record<string, unknown>[];
  const checkout = flags.find((f) => f['key'] === 'new-checkout') as Record<string, unknown>;
  t.same(checkout['variants'], [
    { key: 'control', name: 'Control', description: 'current checkout', default: true },
    {
      key: 'treatment',
      name: 'Treatment',
      description: 'one-page checkout',
      attachment: { color: 'blue', nested: { a: true, b: 1, none: null }, sizes: [1, 2, 3] },
    },
  ]);
  t.same(checkout['metadata'], { beta: true, team: 'payments', tier: 2 });
  t.same(checkout['rules'], [
    {
      segment: 'beta-users',
      distributions: [
        { variant: 'control', rollout: 50 },
        { variant: 'treatment', rollout: 50 },
      ],
    },
    {
      segment: { keys: ['internal', 'eu-users'], operator: 'AND_SEGMENT_OPERATOR' },
      distributions: [{ variant: 'treatment', rollout: 100 }],
    },
    {
      segment: { keys: ['internal', 'beta-users'], operator: 'OR_SEGMENT_OPERATOR' },
      distributions: [
        { variant: 'control', rollout: 33.33 },
        { variant: 'treatment', rollout: 66.67 },
      ],
    },
  ]);
  const darkMode = flags.find((f) => f['key'] === 'dark-mode') as Record<string, unknown>;
  t.same(darkMode['rollouts'], [
    { description: 'staff first', segment: { key: 'internal', value: true } },
    { segment: { keys: ['beta-users', 'eu-users'], operator: 'AND_SEGMENT_OPERATOR', value: false } },
    { description: 'either cohort', segment: { keys: ['beta-users', 'internal'], value: true } },
    { description: 'a third of everyone', threshold: { percentage: 33.33, value: true } },
  ]);
  t.notOk('variants' in darkMode || 'rules' in darkMode, 'boolean flags carry rollouts only');
  const greeting = flags.find((f) => f['key'] === 'greeting') as Record<string, unknown>;
  t.same((greeting['variants'] as Record<string, unknown>[])[0]?.['attachment'], {
    bool: false,
    emoji: '🚀',
    empty: '',
    message: 'Hello "world"\nsecond line',
    neg: -3.5,
    number: 1e21,
    small: 0.000001,
  });
  t.same(
    (greeting['rules'] as Record<string, unknown>[])[0]?.['distributions'],
    [
      { variant: 'v1', rollout: 0 },
      { variant: 'v2', rollout: 100 },
    ],
    'a 0% distribution is written (Flipt requires rollout)',
  );
  const production = docs[1]?.['flags'] as Record<string, unknown>[];
  t.same((production.find((f) => f['key'] === 'ops-flag') as Record<string, unknown>)['rollouts'], [
    { threshold: { percentage: 0, value: false } },
  ]);
  const segments = docs[0]?.['segments'] as Record<string, unknown>[];
  t.same(
    segments.map((s) => s['key']),
    ['beta-users', 'eu-users', 'internal', 'unused-segment'],
    'every segment, used or not, sorted by key',
  );
  t.same((segments[2] as Record<string, unknown>)['constraints'], [
    {
      type: 'ENTITY_ID_COMPARISON_TYPE',
      property: 'entityId',
      operator: 'isoneof',
      value: '["alice","bob"]',
      description: 'named staff',
    },
    { type: 'STRING_COMPARISON_TYPE', property: 'email', operator: 'suffix', value: '@example.com' },
  ]);
  t.same(docs[0]?.['namespace'], { key: 'default', name: 'Default', description: 'Default namespace' });
});

t.test('rules are written in rank order and a one-key segmentKeys becomes a plain key', async (t) => {
  const data = loadFixture();
  const rules = data.rules['default/new-checkout'] as Record<string, unknown>[];
  // The master answers by rank; make it answer out of order and with a one-element segmentKeys.
  rules[0] = { ...rules[0], rank: 3 };
  rules[2] = { ...rules[2], rank: 1, segmentKeys: ['internal'], segmentKey: '' };
  const docs = readBack(t, exportOf(data).yaml);
  const checkout = (docs[0]?.['flags'] as Record<string, unknown>[]).find((f) => f['key'] === 'new-checkout');
  t.same(
    (checkout?.['rules'] as Record<string, unknown>[]).map((r) => r['segment']),
    ['internal', { keys: ['internal', 'eu-users'], operator: 'AND_SEGMENT_OPERATOR' }, 'beta-users'],
  );
});

t.test('an inconsistent state is refused with every problem named', async (t) => {
  const base = loadFixture();
  const cases: [string, (d: MasterData) => void, RegExp][] = [
    [
      'a distribution naming an unknown variant',
      (d) => {
        const rule = (d.rules['default/new-checkout'] as Record<string, unknown>[])[0] as Record<
          string,
          unknown
        >;
        (rule['distributions'] as Record<string, unknown>[])[0]!['variantId'] = 'no-such-variant';
      },
      /namespace default flag new-checkout rule 1 distribution references unknown variant id "no-such-variant"/,
    ],
    [
      'a rule naming an unknown segment',
      (d) => {
        (d.rules['default/new-checkout'] as Record<string, unknown>[])[1]!['segmentKeys'] = [
          'internal',
          'ghost',
        ];
      },
      /namespace default flag new-checkout rule 2 references unknown segment "ghost"/,
    ],
    [
      'a rollout naming an unknown segment',
      (d) => {
        const rollout = (d.rollouts['default/dark-mode'] as Record<string, unknown>[])[0] as Record<
          string,
          unknown
        >;
        (rollout['segment'] as Record<string, unknown>)['segmentKey'] = 'ghost';
      },
      /namespace default flag dark-mode rollout 1 references unknown segment "ghost"/,
    ],
    [
      'a rule with no segment',
      (d) => {
        (d.rules['production/checkout-v2'] as Record<string, unknown>[])[0]!['segmentKey'] = '';
      },
      /namespace production flag checkout-v2 rule 1 names no segment/,
    ],
    [
      'an attachment that is not JSON',
      (d) => {
        const flag = (d.flags['default'] as Record<string, unknown>[])[0] as Record<string, unknown>;
        (flag['variants'] as Record<string, unknown>[])[1]!['attachment'] = '{not json';
      },
      /flag new-checkout variant treatment has an attachment that is not valid JSON/,
    ],
    [
      'a default variant that is not one of the variants',
      (d) => {
        const flag = (d.flags['production'] as Record<string, unknown>[])[0] as Record<string, unknown>;
        flag['defaultVariant'] = { id: 'gone', key: 'gone' };
      },
      /flag checkout-v2 has a default variant id "gone" that is not one of its variants/,
    ],
    [
      'an unknown flag type',
      (d) => {
        (d.flags['production'] as Record<string, unknown>[])[0]!['type'] = 'STRING_FLAG_TYPE';
      },
      /flag checkout-v2 has unknown type "STRING_FLAG_TYPE"/,
    ],
    [
      'an unknown match type',
      (d) => {
        (d.segments['production'] as Record<string, unknown>[])[0]!['matchType'] = 'SOME_MATCH_TYPE';
      },
      /segment everyone has unknown match type "SOME_MATCH_TYPE"/,
    ],
    [
      'an unknown comparison type',
      (d) => {
        const seg = (d.segments['default'] as Record<string, unknown>[])[0] as Record<string, unknown>;
        (seg['constraints'] as Record<string, unknown>[])[0]!['type'] = 'UNKNOWN_COMPARISON_TYPE';
      },
      /segment internal constraint 1 has unknown type "UNKNOWN_COMPARISON_TYPE"/,
    ],
    [
      'a rollout whose type does not match its rule',
      (d) => {
        (d.rollouts['production/ops-flag'] as Record<string, unknown>[])[0]!['type'] = 'SEGMENT_ROLLOUT_TYPE';
      },
      /flag ops-flag rollout 1 has type "SEGMENT_ROLLOUT_TYPE" without a matching segment or threshold/,
    ],
    [
      'two variants with one key',
      (d) => {
        const flag = (d.flags['production'] as Record<string, unknown>[])[0] as Record<string, unknown>;
        (flag['variants'] as Record<string, unknown>[])[1]!['key'] = 'on';
      },
      /flag checkout-v2 has two variants with key "on"/,
    ],
  ];
  for (const [name, mutate, expected] of cases) {
    const data = clone(base);
    mutate(data);
    const errors = errorsOf(data);
    t.match(errors.join('\n'), expected, name);
  }
  // Several problems at once are all reported.
  const data = clone(base);
  for (const [, mutate] of cases.slice(0, 3)) mutate(data);
  t.equal(errorsOf(data).length, 3, 'three problems, three messages');
});

t.test('a large synthetic master renders valid documents', async (t) => {
  const { yaml } = exportOf(syntheticData(300, 3));
  const docs = readBack(t, yaml);
  t.equal(
    docs.reduce((n, d) => n + (d['flags'] as unknown[]).length, 0),
    300,
  );
});
