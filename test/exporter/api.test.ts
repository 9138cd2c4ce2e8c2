// The decoders of the master's answers: jsonpb defaults for absent and null fields, and a message
// that names the exact field and what was expected for anything else.
import t from 'tap';
import {
  DecodeError,
  decodeFlag,
  decodePage,
  decodeRollout,
  decodeRule,
  decodeSegment,
} from '../../exporter/api.ts';

t.test('absent and null fields take their defaults', async (t) => {
  const sparse = decodeFlag({ key: 'f' }, 'flag');
  const nulls = decodeFlag(
    { key: 'f', name: null, enabled: null, type: null, variants: null, defaultVariant: null, metadata: null },
    'flag',
  );
  const expected = {
    key: 'f',
    name: '',
    description: '',
    enabled: false,
    type: 'VARIANT_FLAG_TYPE',
    variants: [],
    defaultVariantId: '',
    metadata: {},
  };
  t.same(sparse, expected);
  t.same(nulls, expected);
  t.same(decodeRollout({ rank: 2 }, 'r'), {
    id: '',
    rank: 2,
    type: 'UNKNOWN_ROLLOUT_TYPE',
    description: '',
    segment: undefined,
    threshold: undefined,
  });
  t.same(decodeSegment({ key: 's', constraints: [{ property: 'p' }] }, 's').constraints, [
    { type: 'UNKNOWN_COMPARISON_TYPE', property: 'p', operator: '', value: '', description: '' },
  ]);
  t.same(decodeFlag({ key: 'f', defaultVariant: { id: 'v1' }, metadata: { team: 'a' } }, 'f'), {
    ...expected,
    defaultVariantId: 'v1',
    metadata: { team: 'a' },
  });
});

t.test('a wrong field is named by its path, with what was expected and what came', async (t) => {
  const cases: [() => unknown, RegExp][] = [
    [
      () => decodeFlag({ key: 'f', enabled: 'true' }, 'p'),
      /^p\.enabled: expected a boolean, got the string "true"$/,
    ],
    [() => decodeFlag({ name: 'x' }, 'p'), /^p\.key: missing$/],
    [() => decodeFlag({ key: '' }, 'p'), /^p\.key: missing$/],
    [
      () => decodeFlag({ key: 'f', variants: [{ id: 'a', key: 'b', name: 3 }] }, 'p'),
      /^p\.variants\[0\]\.name: expected a string, got number$/,
    ],
    [
      () => decodeFlag({ key: 'f', variants: [null] }, 'p'),
      /^p\.variants\[0\]: expected an object, got null$/,
    ],
    [() => decodeFlag({ key: 'f', metadata: [] }, 'p'), /^p\.metadata: expected an object, got an array$/],
    [() => decodeFlag({ key: 'f', defaultVariant: {} }, 'p'), /^p\.defaultVariant\.id: missing$/],
    [
      () => decodeRule({ id: 'r', rank: 'NaN' }, 'p'),
      /^p\.rank: expected a finite number, got the string "NaN"$/,
    ],
    [
      () => decodeRule({ id: 'r', segmentKeys: ['a', 1] }, 'p'),
      /^p\.segmentKeys\[1\]: expected a string, got number$/,
    ],
    [
      () => decodeRule({ id: 'r', distributions: [{ variantId: 'v', rollout: '50' }] }, 'p'),
      /^p\.distributions\[0\]\.rollout: expected a finite number, got the string "50"$/,
    ],
    [() => decodeFlag([], 'p'), /^p: expected an object, got an array$/],
    [() => decodeFlag('x', 'p'), /^p: expected an object, got the string "x"$/],
  ];
  for (const [decode, message] of cases) {
    t.throws(decode, message);
    try {
      decode();
    } catch (err) {
      t.type(err, DecodeError);
    }
  }
});

t.test('pages: the envelope, then each item on its own path', async (t) => {
  t.same(
    decodePage({ flags: [{ key: 'a' }], nextPageToken: 'n', totalCount: 3 }, 'flags', decodeFlag, 'page')
      .totalCount,
    3,
  );
  t.same(decodePage({ flags: null }, 'flags', decodeFlag, 'page'), {
    items: [],
    nextPageToken: '',
    totalCount: undefined,
  });
  t.throws(
    () => decodePage({ segments: [] }, 'flags', decodeFlag, 'page'),
    /^page: the answer has no "flags" list$/,
  );
  t.throws(
    () => decodePage({ flags: {} }, 'flags', decodeFlag, 'page'),
    /^page\.flags: expected an array, got object$/,
  );
  t.throws(
    () => decodePage({ flags: [], totalCount: 1.5 }, 'flags', decodeFlag, 'page'),
    /^page\.totalCount: expected an integer, got number$/,
  );
  t.throws(
    () => decodePage({ flags: [{ key: 1 }] }, 'flags', decodeFlag, 'page'),
    /^page\.flags\[0\]\.key: expected a string, got number$/,
  );
  t.throws(() => decodePage(null, 'flags', decodeFlag, 'page'), /^page: expected an object, got null$/);
});
