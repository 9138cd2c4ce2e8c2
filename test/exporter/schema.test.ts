// Flipt's document rules (exporter/schema/flipt-v1.4.schema.json, written from Flipt v1.61.1's
// core/validation/flipt.cue): the stand-in for `flipt validate`, which cannot run here. What it
// accepts and refuses matters twice: the tests validate every export with it, and the exporter
// refuses to upload anything it refuses, because a sidecar would refuse the whole file.
import t from 'tap';
import { buildDocuments } from '../../exporter/render.ts';
import { createDocumentValidator } from '../../exporter/schema.ts';
import { loadFixture, stateOf } from './flipt-replay.ts';

const validate = createDocumentValidator();

const doc = (extra: Record<string, unknown>) => ({
  version: '1.4',
  namespace: { key: 'default', name: 'Default' },
  flags: [],
  segments: [],
  ...extra,
});

const segment = (constraint: Record<string, unknown>) => ({
  key: 's',
  name: 'S',
  match_type: 'ALL_MATCH_TYPE',
  constraints: [{ property: 'p', ...constraint }],
});

t.test('accepts what Flipt reads: the fixture export and the 1.4 forms', async (t) => {
  const built = buildDocuments(stateOf(loadFixture()));
  t.ok(built.ok);
  if (built.ok) t.same(validate(built.documents), []);
  t.same(
    validate([
      doc({ namespace: 'plain-key' }),
      doc({
        flags: [
          {
            key: 'f',
            name: 'F',
            type: 'VARIANT_FLAG_TYPE',
            enabled: true,
            variants: [
              { key: 'a', attachment: [1, 2] },
              { key: 'b', attachment: null },
            ],
            rules: [{ segment: { keys: ['s', 't'], operator: 'AND_SEGMENT_OPERATOR' }, distributions: [] }],
          },
          {
            key: 'g',
            name: 'G',
            type: 'BOOLEAN_FLAG_TYPE',
            enabled: false,
            rollouts: [{ threshold: { percentage: 5 } }],
          },
        ],
        segments: [segment({ type: 'NUMBER_COMPARISON_TYPE', operator: 'lte', value: '5' })],
      }),
    ]),
    [],
  );
});

t.test("refuses what Flipt v1.61.1's validator refuses, saying where", async (t) => {
  const cases: [string, Record<string, unknown>, RegExp][] = [
    [
      "'lt' (v1.61.1's schema only knows the typo 'le'; fixed upstream later by flipt-io/flipt#6307)",
      doc({ segments: [segment({ type: 'NUMBER_COMPARISON_TYPE', operator: 'lt', value: '5' })] }),
      /namespace default: \/segments\/0\/constraints\/0\/operator must be one of eq, neq, present, notpresent, le, lte/,
    ],
    [
      'an entity id constraint with a boolean-only operator',
      doc({ segments: [segment({ type: 'ENTITY_ID_COMPARISON_TYPE', operator: 'true' })] }),
      /\/segments\/0\/constraints\/0\/operator must be one of eq, neq, empty, notempty, prefix, suffix, isoneof, isnotoneof, contains, notcontains/,
    ],
    [
      'nested flag metadata',
      doc({ flags: [{ key: 'f', name: 'F', metadata: { nested: { a: 1 } } }] }),
      /\/flags\/0\/metadata\/nested must be string,number,boolean/,
    ],
    [
      'a scalar attachment',
      doc({ flags: [{ key: 'f', name: 'F', variants: [{ key: 'a', attachment: 'text' }] }] }),
      /\/flags\/0\/variants\/0\/attachment must be object,array,null/,
    ],
    [
      'rollouts on a variant flag',
      doc({
        flags: [
          { key: 'f', name: 'F', type: 'VARIANT_FLAG_TYPE', rollouts: [{ threshold: { percentage: 1 } }] },
        ],
      }),
      /\/flags\/0\/type must be equal to constant/,
    ],
    [
      'a distribution over 100%',
      doc({
        flags: [
          { key: 'f', name: 'F', rules: [{ segment: 's', distributions: [{ variant: 'a', rollout: 110 }] }] },
        ],
      }),
      /\/flags\/0\/rules\/0\/distributions\/0\/rollout must be <= 100/,
    ],
    [
      'a flag without a name',
      doc({ flags: [{ key: 'f', name: '' }] }),
      /\/flags\/0\/name must match pattern/,
    ],
    [
      'a key Flipt does not allow',
      doc({ segments: [{ key: 'has space', name: 'S', match_type: 'ALL_MATCH_TYPE' }] }),
      /\/segments\/0\/key must match pattern/,
    ],
    [
      'an unknown field',
      doc({ flags: [{ key: 'f', name: 'F', rank: 1 }] }),
      /\/flags\/0 has a field Flipt does not allow: rank/,
    ],
    [
      'a rollout with both a segment and a threshold',
      doc({
        flags: [
          {
            key: 'f',
            name: 'F',
            type: 'BOOLEAN_FLAG_TYPE',
            rollouts: [{ segment: { key: 's', value: true }, threshold: { percentage: 1 } }],
          },
        ],
      }),
      /\/flags\/0\/rollouts\/0 must NOT be valid/,
    ],
  ];
  for (const [name, document, expected] of cases) {
    t.match(validate([document]).join('\n'), expected, name);
  }
});
