// Seeding a real Flipt v1.61.1 master through its REST API, and the (entity, context) pairs the
// equivalence suites evaluate. A seed is described as data (SeedSpec), so the tests also know what
// they seeded (e.g. which variants have no attachment). Endpoints, field names and operators are
// the ones of Flipt v1.61.1 (rpc/flipt/flipt.proto through grpc-gateway; operators per comparison
// type from rpc/flipt/operators.go and the CreateConstraintRequest validation):
//
//   STRING    eq neq empty notempty prefix suffix isoneof isnotoneof contains notcontains
//   NUMBER    eq neq lt lte gt gte present notpresent isoneof isnotoneof
//   BOOLEAN   true false present notpresent
//   DATETIME  eq neq lt lte gt gte present notpresent   (values are stored converted to UTC, whole seconds)
//   ENTITY_ID eq neq isoneof isnotoneof contains notcontains   (property "entityId")

export type ComparisonType =
  | 'STRING_COMPARISON_TYPE'
  | 'NUMBER_COMPARISON_TYPE'
  | 'BOOLEAN_COMPARISON_TYPE'
  | 'DATETIME_COMPARISON_TYPE'
  | 'ENTITY_ID_COMPARISON_TYPE';
export type SegmentOperator = 'OR_SEGMENT_OPERATOR' | 'AND_SEGMENT_OPERATOR';

export interface ConstraintSpec {
  type: ComparisonType;
  property: string;
  operator: string;
  value?: string;
  description?: string;
}
export interface SegmentSpec {
  key: string;
  name: string;
  description?: string;
  matchType: 'ALL_MATCH_TYPE' | 'ANY_MATCH_TYPE';
  constraints: ConstraintSpec[];
}
export interface VariantSpec {
  key: string;
  name?: string;
  description?: string;
  /** Any JSON value; undefined = no attachment. */
  attachment?: unknown;
}
export interface RuleSpec {
  segments: string[];
  operator?: SegmentOperator;
  distributions: { variant: string; rollout: number }[];
}
export interface RolloutSpec {
  description?: string;
  threshold?: { percentage: number; value: boolean };
  segment?: { keys: string[]; operator?: SegmentOperator; value: boolean };
}
export interface FlagSpec {
  key: string;
  name: string;
  description?: string;
  type: 'VARIANT_FLAG_TYPE' | 'BOOLEAN_FLAG_TYPE';
  enabled: boolean;
  metadata?: Record<string, string | number | boolean>;
  variants?: VariantSpec[];
  defaultVariant?: string;
  rules?: RuleSpec[];
  rollouts?: RolloutSpec[];
}
export interface NamespaceSpec {
  key: string;
  name: string;
  description?: string;
  segments: SegmentSpec[];
  flags: FlagSpec[];
}
export interface SeedSpec {
  namespaces: NamespaceSpec[];
}

// ---------------------------------------------------------------------------------------------
// A small REST client

export class FliptApiError extends Error {
  readonly status: number;
  constructor(message: string, status: number) {
    super(message);
    this.status = status;
  }
}

export class FliptApi {
  readonly url: string;
  readonly token: string | undefined;
  constructor(url: string, token?: string) {
    this.url = url;
    this.token = token;
  }

  async call<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.token !== undefined) headers['authorization'] = `Bearer ${this.token}`;
    const answer = await fetch(`${this.url}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(15_000),
    });
    const text = await answer.text();
    if (!answer.ok) {
      throw new FliptApiError(
        `${method} ${path}: HTTP ${answer.status}: ${text.slice(0, 500)}`,
        answer.status,
      );
    }
    return (text === '' ? {} : JSON.parse(text)) as T;
  }
  get<T = Record<string, unknown>>(path: string) {
    return this.call<T>('GET', path);
  }
  post<T = Record<string, unknown>>(path: string, body: unknown) {
    return this.call<T>('POST', path, body);
  }
  put<T = Record<string, unknown>>(path: string, body: unknown) {
    return this.call<T>('PUT', path, body);
  }
  delete(path: string) {
    return this.call('DELETE', path);
  }
}

const enc = encodeURIComponent;

/** Creates one namespace's segments and flags; the namespace itself unless it is `default`. */
export async function seedNamespace(api: FliptApi, ns: NamespaceSpec): Promise<void> {
  if (ns.key !== 'default') {
    await api.post('/api/v1/namespaces', { key: ns.key, name: ns.name, description: ns.description ?? '' });
  }
  const base = `/api/v1/namespaces/${enc(ns.key)}`;
  for (const segment of ns.segments) {
    await api.post(`${base}/segments`, {
      key: segment.key,
      name: segment.name,
      description: segment.description ?? '',
      matchType: segment.matchType,
    });
    for (const c of segment.constraints) {
      await api.post(`${base}/segments/${enc(segment.key)}/constraints`, {
        type: c.type,
        property: c.property,
        operator: c.operator,
        value: c.value ?? '',
        description: c.description ?? '',
      });
    }
  }
  for (const flag of ns.flags) await seedFlag(api, ns.key, flag);
}

export async function seedFlag(api: FliptApi, namespace: string, flag: FlagSpec): Promise<void> {
  const base = `/api/v1/namespaces/${enc(namespace)}/flags`;
  await api.post(base, {
    key: flag.key,
    name: flag.name,
    description: flag.description ?? '',
    enabled: flag.enabled,
    type: flag.type,
    ...(flag.metadata ? { metadata: flag.metadata } : {}),
  });
  const variantIds = new Map<string, string>();
  for (const v of flag.variants ?? []) {
    const created = await api.post<{ id: string }>(`${base}/${enc(flag.key)}/variants`, {
      key: v.key,
      name: v.name ?? '',
      description: v.description ?? '',
      attachment: v.attachment === undefined ? '' : JSON.stringify(v.attachment),
    });
    variantIds.set(v.key, created.id);
  }
  if (flag.defaultVariant !== undefined) {
    await api.put(`${base}/${enc(flag.key)}`, {
      key: flag.key,
      name: flag.name,
      description: flag.description ?? '',
      enabled: flag.enabled,
      defaultVariantId: variantIds.get(flag.defaultVariant),
      ...(flag.metadata ? { metadata: flag.metadata } : {}),
    });
  }
  let rank = 1;
  for (const rule of flag.rules ?? []) {
    const created = await api.post<{ id: string }>(`${base}/${enc(flag.key)}/rules`, {
      rank: rank++,
      ...segmentRef(rule.segments, rule.operator, 'segmentKey'),
    });
    for (const d of rule.distributions) {
      const variantId = variantIds.get(d.variant);
      if (variantId === undefined) throw new Error(`${flag.key}: no variant ${d.variant}`);
      await api.post(`${base}/${enc(flag.key)}/rules/${enc(created.id)}/distributions`, {
        variantId,
        rollout: d.rollout,
      });
    }
  }
  rank = 1;
  for (const rollout of flag.rollouts ?? []) {
    await api.post(`${base}/${enc(flag.key)}/rollouts`, {
      rank: rank++,
      description: rollout.description ?? '',
      ...(rollout.threshold ? { threshold: rollout.threshold } : {}),
      ...(rollout.segment
        ? {
            segment: {
              value: rollout.segment.value,
              ...segmentRef(rollout.segment.keys, rollout.segment.operator, 'segmentKey'),
            },
          }
        : {}),
    });
  }
}

function segmentRef(keys: string[], operator: SegmentOperator | undefined, single: string) {
  if (keys.length === 1 && operator === undefined) return { [single]: keys[0] };
  return { segmentKeys: keys, segmentOperator: operator ?? 'OR_SEGMENT_OPERATOR' };
}

export async function seedMaster(url: string, spec: SeedSpec, token?: string): Promise<void> {
  const api = new FliptApi(url, token);
  for (const ns of spec.namespaces) await seedNamespace(api, ns);
}

// ---------------------------------------------------------------------------------------------
// The standard seed

/** One single-constraint segment per (type, operator): each operator judged on its own. */
const OPERATOR_CONSTRAINTS: ConstraintSpec[] = [
  { type: 'STRING_COMPARISON_TYPE', property: 'plan', operator: 'eq', value: 'pro' },
  { type: 'STRING_COMPARISON_TYPE', property: 'plan', operator: 'neq', value: 'free' },
  { type: 'STRING_COMPARISON_TYPE', property: 'nickname', operator: 'empty' },
  { type: 'STRING_COMPARISON_TYPE', property: 'nickname', operator: 'notempty' },
  { type: 'STRING_COMPARISON_TYPE', property: 'email', operator: 'prefix', value: 'admin' },
  { type: 'STRING_COMPARISON_TYPE', property: 'email', operator: 'suffix', value: '@example.com' },
  { type: 'STRING_COMPARISON_TYPE', property: 'plan', operator: 'isoneof', value: '["pro","enterprise"]' },
  { type: 'STRING_COMPARISON_TYPE', property: 'plan', operator: 'isnotoneof', value: '["free","trial"]' },
  { type: 'STRING_COMPARISON_TYPE', property: 'email', operator: 'contains', value: 'corp' },
  { type: 'STRING_COMPARISON_TYPE', property: 'email', operator: 'notcontains', value: 'test' },
  { type: 'NUMBER_COMPARISON_TYPE', property: 'age', operator: 'eq', value: '18' },
  { type: 'NUMBER_COMPARISON_TYPE', property: 'age', operator: 'neq', value: '18' },
  { type: 'NUMBER_COMPARISON_TYPE', property: 'age', operator: 'lt', value: '21' },
  { type: 'NUMBER_COMPARISON_TYPE', property: 'score', operator: 'lt', value: '0.1' },
  { type: 'NUMBER_COMPARISON_TYPE', property: 'age', operator: 'lte', value: '65' },
  { type: 'NUMBER_COMPARISON_TYPE', property: 'score', operator: 'gt', value: '30.5' },
  { type: 'NUMBER_COMPARISON_TYPE', property: 'age', operator: 'gte', value: '21' },
  { type: 'NUMBER_COMPARISON_TYPE', property: 'score', operator: 'present' },
  { type: 'NUMBER_COMPARISON_TYPE', property: 'score', operator: 'notpresent' },
  { type: 'NUMBER_COMPARISON_TYPE', property: 'age', operator: 'isoneof', value: '[1, 2.5, 18]' },
  { type: 'NUMBER_COMPARISON_TYPE', property: 'age', operator: 'isnotoneof', value: '[18,21]' },
  { type: 'BOOLEAN_COMPARISON_TYPE', property: 'beta', operator: 'true' },
  { type: 'BOOLEAN_COMPARISON_TYPE', property: 'beta', operator: 'false' },
  { type: 'BOOLEAN_COMPARISON_TYPE', property: 'beta', operator: 'present' },
  { type: 'BOOLEAN_COMPARISON_TYPE', property: 'beta', operator: 'notpresent' },
  { type: 'DATETIME_COMPARISON_TYPE', property: 'signup', operator: 'eq', value: '2024-01-01T00:00:00Z' },
  { type: 'DATETIME_COMPARISON_TYPE', property: 'signup', operator: 'neq', value: '2024-01-01' },
  {
    type: 'DATETIME_COMPARISON_TYPE',
    property: 'signup',
    operator: 'lt',
    value: '2024-06-01T12:00:00+02:00',
  },
  { type: 'DATETIME_COMPARISON_TYPE', property: 'signup', operator: 'lte', value: '2024-03-10' },
  { type: 'DATETIME_COMPARISON_TYPE', property: 'signup', operator: 'gt', value: '2023-12-31T23:59:59Z' },
  {
    type: 'DATETIME_COMPARISON_TYPE',
    property: 'signup',
    operator: 'gte',
    value: '2024-02-29T00:00:00-05:00',
  },
  { type: 'DATETIME_COMPARISON_TYPE', property: 'signup', operator: 'present' },
  { type: 'DATETIME_COMPARISON_TYPE', property: 'signup', operator: 'notpresent' },
  { type: 'ENTITY_ID_COMPARISON_TYPE', property: 'entityId', operator: 'eq', value: 'user-7' },
  { type: 'ENTITY_ID_COMPARISON_TYPE', property: 'entityId', operator: 'neq', value: 'user-7' },
  {
    type: 'ENTITY_ID_COMPARISON_TYPE',
    property: 'entityId',
    operator: 'isoneof',
    value: '["user-1","user-2","admin-1"]',
  },
  {
    type: 'ENTITY_ID_COMPARISON_TYPE',
    property: 'entityId',
    operator: 'isnotoneof',
    value: '["user-3","svc:a"]',
  },
  { type: 'ENTITY_ID_COMPARISON_TYPE', property: 'entityId', operator: 'contains', value: 'admin' },
  { type: 'ENTITY_ID_COMPARISON_TYPE', property: 'entityId', operator: 'notcontains', value: 'svc' },
];

const SHORT_TYPE: Record<ComparisonType, string> = {
  STRING_COMPARISON_TYPE: 'string',
  NUMBER_COMPARISON_TYPE: 'number',
  BOOLEAN_COMPARISON_TYPE: 'boolean',
  DATETIME_COMPARISON_TYPE: 'datetime',
  ENTITY_ID_COMPARISON_TYPE: 'entity',
};

function operatorSegmentKey(c: ConstraintSpec): string {
  return `op-${SHORT_TYPE[c.type]}-${c.operator}-${c.property}`.toLowerCase();
}

/** Options of the standard seed. */
export interface StandardSeedOptions {
  /**
   * Include `lt` constraints (NUMBER and DATETIME). Flipt v1.61.1's declarative schema has no `lt`
   * (it spells it `le`), so these export only if the exporter rewrites them exactly.
   */
  lt?: boolean;
}

/**
 * The seed of the equivalence suite: three namespaces with flags, one namespace without any;
 * every constraint type and operator, ALL/ANY segments, AND/OR multi-segment rules, percentage
 * distributions (including 0 % and uneven splits), threshold and segment rollouts, default
 * variants, disabled flags, attachments of every JSON shape, variants without attachment.
 */
export function standardSeed(options: StandardSeedOptions = {}): SeedSpec {
  const withLt = options.lt ?? true;
  const operatorConstraints = OPERATOR_CONSTRAINTS.filter((c) => withLt || c.operator !== 'lt');
  const operatorSegments: SegmentSpec[] = operatorConstraints.map((c) => ({
    key: operatorSegmentKey(c),
    name: `${SHORT_TYPE[c.type]} ${c.operator} (${c.property})`,
    matchType: 'ALL_MATCH_TYPE',
    constraints: [c],
  }));
  const segments: SegmentSpec[] = [
    ...operatorSegments,
    {
      key: 'pro-adults',
      name: 'Pro adults',
      description: 'ALL of two constraints',
      matchType: 'ALL_MATCH_TYPE',
      constraints: [
        { type: 'STRING_COMPARISON_TYPE', property: 'plan', operator: 'eq', value: 'pro' },
        { type: 'NUMBER_COMPARISON_TYPE', property: 'age', operator: 'gte', value: '21' },
      ],
    },
    {
      key: 'beta-or-example',
      name: 'Beta testers or example.com',
      matchType: 'ANY_MATCH_TYPE',
      constraints: [
        { type: 'BOOLEAN_COMPARISON_TYPE', property: 'beta', operator: 'true' },
        { type: 'STRING_COMPARISON_TYPE', property: 'email', operator: 'suffix', value: '@example.com' },
        {
          type: 'DATETIME_COMPARISON_TYPE',
          property: 'signup',
          operator: 'gte',
          value: '2024-05-01T00:00:00+09:00',
          description: 'recent sign-ups',
        },
      ],
    },
    {
      key: 'admins',
      name: 'Admins',
      matchType: 'ANY_MATCH_TYPE',
      constraints: [
        { type: 'ENTITY_ID_COMPARISON_TYPE', property: 'entityId', operator: 'contains', value: 'admin' },
        { type: 'STRING_COMPARISON_TYPE', property: 'email', operator: 'prefix', value: 'admin' },
      ],
    },
    { key: 'everyone', name: 'Everyone (no constraints)', matchType: 'ALL_MATCH_TYPE', constraints: [] },
    { key: 'anyone', name: 'Anyone (ANY, no constraints)', matchType: 'ANY_MATCH_TYPE', constraints: [] },
  ];

  const attachments = {
    object: {
      color: '#0000ff',
      sizes: [1, 2, 3],
      nested: { a: { b: [true, null, 1.5, 'x'] }, empty: {}, list: [] },
      unicode: 'ünïcødé ✓',
      zero: 0,
      negative: -42,
      float: 0.1,
      exp: 1e-7,
      big: 9007199254740991,
      empty: '',
    },
    array: [1, 'two', { three: 3 }, [4, [5]], null, false],
    deep: { l1: { l2: { l3: { l4: { l5: ['deep'] } } } } },
    emptyObject: {},
    emptyArray: [],
  };

  // Four operator segments per boolean flag, one segment rollout each (values alternate), so every
  // segment is reached whenever the ones before it do not match; the answer's segmentKeys says
  // which one matched. Groups take every 10th segment (different types and properties), and the
  // operators that match almost every context come last, so they mask little. Fewer flags keep
  // the suite's evaluation count (flags × pairs) affordable.
  const BROAD = new Set(['neq', 'notempty', 'empty', 'isnotoneof', 'notcontains', 'present', 'notpresent']);
  const stride = Math.ceil(operatorSegments.length / 4);
  const operatorFlags: FlagSpec[] = [];
  for (let n = 0; n < stride; n++) {
    const group = [0, 1, 2, 3]
      .map((k) => operatorSegments[n + k * stride])
      .filter((g): g is SegmentSpec => g !== undefined)
      .sort(
        (a, b) =>
          Number(BROAD.has(a.constraints[0]!.operator)) - Number(BROAD.has(b.constraints[0]!.operator)),
      );
    operatorFlags.push({
      key: `bool-ops-${n}`,
      name: `Boolean on ${group.map((g) => g.name).join(', ')}`,
      type: 'BOOLEAN_FLAG_TYPE',
      // Alternating: the default answer (no rollout matched) differs between flags.
      enabled: n % 2 === 0,
      rollouts: [
        ...group.map((g, j) => ({
          description: g.name,
          segment: { keys: [g.key], value: (n + j) % 2 === 1 },
        })),
        ...(n % 4 === 1 ? [{ threshold: { percentage: 37.5, value: true } }] : []),
      ],
    });
  }

  const defaultNs: NamespaceSpec = {
    key: 'default',
    name: 'Default',
    segments,
    flags: [
      ...operatorFlags,
      {
        key: 'checkout-theme',
        name: 'Checkout theme',
        description: 'variant flag with every rule shape',
        type: 'VARIANT_FLAG_TYPE',
        enabled: true,
        metadata: { owner: 'team-checkout', ticket: 1234, critical: true, ratio: 0.25 },
        variants: [
          { key: 'blue', name: 'Blue', description: 'object attachment', attachment: attachments.object },
          { key: 'green', name: 'Green', attachment: attachments.array },
          { key: 'red', name: 'Red', description: 'no attachment' },
          { key: 'deep', attachment: attachments.deep },
        ],
        rules: [
          { segments: ['pro-adults'], distributions: [{ variant: 'blue', rollout: 100 }] },
          {
            segments: ['beta-or-example', 'admins'],
            operator: 'OR_SEGMENT_OPERATOR',
            distributions: [
              { variant: 'green', rollout: 50 },
              { variant: 'red', rollout: 50 },
            ],
          },
          {
            segments: ['op-string-eq-plan', 'op-datetime-gt-signup'],
            operator: 'AND_SEGMENT_OPERATOR',
            distributions: [
              { variant: 'blue', rollout: 33.3 },
              { variant: 'green', rollout: 33.3 },
              { variant: 'deep', rollout: 33.4 },
            ],
          },
          {
            segments: ['everyone'],
            distributions: [
              { variant: 'red', rollout: 25 },
              { variant: 'blue', rollout: 0 },
              { variant: 'deep', rollout: 12.5 },
            ],
          },
        ],
      },
      {
        key: 'pricing',
        name: 'Pricing',
        type: 'VARIANT_FLAG_TYPE',
        enabled: true,
        variants: [
          { key: 'control', attachment: { price: 10, currency: 'EUR' } },
          { key: 'discount', attachment: { price: 7.5, tiers: [{ min: 0, max: 10 }, { min: 10 }] } },
          { key: 'bare' },
        ],
        defaultVariant: 'control',
        rules: [
          {
            segments: ['op-number-gte-age', 'op-boolean-true-beta'],
            operator: 'AND_SEGMENT_OPERATOR',
            distributions: [
              { variant: 'discount', rollout: 70 },
              { variant: 'bare', rollout: 30 },
            ],
          },
          { segments: ['anyone'], distributions: [{ variant: 'discount', rollout: 20 }] },
        ],
      },
      {
        key: 'default-without-attachment',
        name: 'Default variant without attachment',
        type: 'VARIANT_FLAG_TYPE',
        enabled: true,
        variants: [{ key: 'plain' }, { key: 'rich', attachment: attachments.emptyObject }],
        defaultVariant: 'plain',
        rules: [{ segments: ['admins'], distributions: [{ variant: 'rich', rollout: 100 }] }],
      },
      {
        key: 'rule-without-distributions',
        name: 'A rule without distributions',
        type: 'VARIANT_FLAG_TYPE',
        enabled: true,
        variants: [{ key: 'only', attachment: attachments.emptyArray }],
        rules: [{ segments: ['op-entity-contains-entityid'], distributions: [] }],
      },
      {
        key: 'no-rules',
        name: 'Enabled, variants, no rules',
        type: 'VARIANT_FLAG_TYPE',
        enabled: true,
        variants: [{ key: 'a', attachment: { a: 1 } }, { key: 'b' }],
      },
      {
        key: 'disabled-variant',
        name: 'Disabled variant flag',
        type: 'VARIANT_FLAG_TYPE',
        enabled: false,
        variants: [{ key: 'on', attachment: { on: true } }, { key: 'off' }],
        defaultVariant: 'off',
        rules: [{ segments: ['everyone'], distributions: [{ variant: 'on', rollout: 100 }] }],
      },
      {
        key: 'no-variants',
        name: 'Enabled, no variants at all',
        type: 'VARIANT_FLAG_TYPE',
        enabled: true,
      },
      {
        key: 'rollout-mix',
        name: 'Boolean: segment and threshold rollouts',
        type: 'BOOLEAN_FLAG_TYPE',
        enabled: false,
        metadata: { kind: 'release' },
        rollouts: [
          {
            description: 'AND of two segments',
            segment: {
              keys: ['pro-adults', 'op-boolean-present-beta'],
              operator: 'AND_SEGMENT_OPERATOR',
              value: true,
            },
          },
          {
            description: 'OR of two segments, off',
            segment: {
              keys: ['admins', 'op-entity-eq-entityid'],
              operator: 'OR_SEGMENT_OPERATOR',
              value: false,
            },
          },
          { description: 'a third of the rest', threshold: { percentage: 33.3, value: true } },
          { threshold: { percentage: 80, value: false } },
        ],
      },
      {
        key: 'threshold-only',
        name: 'Boolean: threshold only',
        type: 'BOOLEAN_FLAG_TYPE',
        enabled: true,
        rollouts: [{ threshold: { percentage: 50, value: false } }],
      },
      {
        key: 'threshold-zero-and-full',
        name: 'Boolean: 0 % then 100 %',
        type: 'BOOLEAN_FLAG_TYPE',
        enabled: false,
        rollouts: [
          { threshold: { percentage: 0, value: false } },
          { threshold: { percentage: 100, value: true } },
        ],
      },
      {
        key: 'boolean-disabled',
        name: 'Boolean, disabled, no rollouts',
        type: 'BOOLEAN_FLAG_TYPE',
        enabled: false,
      },
      {
        key: 'boolean-enabled-plain',
        name: 'Boolean, enabled, no rollouts',
        type: 'BOOLEAN_FLAG_TYPE',
        enabled: true,
      },
    ],
  };

  // Same keys as in `default` with other content: answers must come from the right namespace.
  const production: NamespaceSpec = {
    key: 'production',
    name: 'Production',
    description: 'same flag keys as default, other content',
    segments: [
      {
        key: 'pro-adults',
        name: 'Pro adults (production)',
        matchType: 'ANY_MATCH_TYPE',
        constraints: [
          {
            type: 'STRING_COMPARISON_TYPE',
            property: 'plan',
            operator: 'isoneof',
            value: '["pro","enterprise"]',
          },
          { type: 'NUMBER_COMPARISON_TYPE', property: 'age', operator: 'gt', value: '40' },
        ],
      },
      {
        key: 'eu',
        name: 'EU',
        matchType: 'ALL_MATCH_TYPE',
        constraints: [
          { type: 'STRING_COMPARISON_TYPE', property: 'region', operator: 'prefix', value: 'eu-' },
          ...(withLt
            ? [
                {
                  type: 'DATETIME_COMPARISON_TYPE' as const,
                  property: 'signup',
                  operator: 'lt',
                  value: '2025-01-01T00:00:00-08:00',
                },
              ]
            : []),
        ],
      },
    ],
    flags: [
      {
        key: 'checkout-theme',
        name: 'Checkout theme (production)',
        type: 'VARIANT_FLAG_TYPE',
        enabled: true,
        variants: [{ key: 'blue', attachment: { color: 'navy' } }, { key: 'red' }],
        rules: [
          {
            segments: ['pro-adults', 'eu'],
            operator: 'AND_SEGMENT_OPERATOR',
            distributions: [{ variant: 'blue', rollout: 100 }],
          },
          {
            segments: ['eu'],
            distributions: [
              { variant: 'red', rollout: 60 },
              { variant: 'blue', rollout: 40 },
            ],
          },
        ],
      },
      {
        key: 'rollout-mix',
        name: 'Rollout mix (production)',
        type: 'BOOLEAN_FLAG_TYPE',
        enabled: true,
        rollouts: [
          { segment: { keys: ['eu'], value: false } },
          { threshold: { percentage: 10, value: true } },
        ],
      },
    ],
  };

  const staging: NamespaceSpec = {
    key: 'staging-eu',
    name: 'Staging EU',
    segments: [
      {
        key: 'testers',
        name: 'Testers',
        matchType: 'ALL_MATCH_TYPE',
        constraints: [
          { type: 'STRING_COMPARISON_TYPE', property: 'email', operator: 'contains', value: 'test' },
          { type: 'BOOLEAN_COMPARISON_TYPE', property: 'beta', operator: 'true' },
        ],
      },
    ],
    flags: [
      {
        key: 'new-search',
        name: 'New search',
        type: 'BOOLEAN_FLAG_TYPE',
        enabled: false,
        rollouts: [
          { segment: { keys: ['testers'], value: true } },
          { threshold: { percentage: 5, value: true } },
        ],
      },
      {
        key: 'banner',
        name: 'Banner',
        type: 'VARIANT_FLAG_TYPE',
        enabled: true,
        variants: [{ key: 'spring', attachment: ['a', 'b'] }, { key: 'none' }],
        rules: [{ segments: ['testers'], distributions: [{ variant: 'none', rollout: 100 }] }],
        defaultVariant: 'spring',
      },
    ],
  };

  const emptyNs: NamespaceSpec = { key: 'empty-ns', name: 'No flags', segments: [], flags: [] };
  return { namespaces: [defaultNs, production, staging, emptyNs] };
}

/** Every (namespace, flag) of a seed, in seed order. */
export function flagsOf(spec: SeedSpec): { namespace: string; flag: FlagSpec }[] {
  return spec.namespaces.flatMap((ns) => ns.flags.map((flag) => ({ namespace: ns.key, flag })));
}

/** Keys `namespace/flag/variant` of variants seeded without an attachment. */
export function variantsWithoutAttachment(spec: SeedSpec): Set<string> {
  const keys = new Set<string>();
  for (const { namespace, flag } of flagsOf(spec)) {
    for (const v of flag.variants ?? []) {
      if (v.attachment === undefined) keys.add(`${namespace}/${flag.key}/${v.key}`);
    }
  }
  return keys;
}

// ---------------------------------------------------------------------------------------------
// Boundary values and the (entity, context) pairs

const f64 = new Float64Array(1);
const u64 = new BigUint64Array(f64.buffer);

/** The next float64 below x (toward -Infinity). */
export function nextFloat64Down(x: number): number {
  if (Number.isNaN(x) || x === -Infinity) return x;
  if (x === 0) return -Number.MIN_VALUE;
  f64[0] = x;
  u64[0] = x > 0 ? u64[0]! - 1n : u64[0]! + 1n;
  return f64[0];
}

/** The next float64 above x (toward +Infinity). */
export function nextFloat64Up(x: number): number {
  return -nextFloat64Down(-x);
}

const NS_PER_S = 1_000_000_000n;

/** RFC 3339 → nanoseconds since the epoch (what Go's time.Parse keeps), or undefined. */
export function parseRfc3339Ns(text: string): bigint | undefined {
  const m =
    /^(\d{4})-(\d{2})-(\d{2})(?:[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2}))?$/.exec(
      text,
    );
  if (!m) return undefined;
  const [, y, mo, d, h = '00', mi = '00', s = '00', frac = '', zone = 'Z'] = m;
  const ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  let offsetMin = 0;
  if (zone !== 'Z' && zone !== 'z') {
    const sign = zone.startsWith('-') ? -1 : 1;
    offsetMin = sign * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6)));
  }
  const seconds = BigInt(ms / 1000 - offsetMin * 60);
  return seconds * NS_PER_S + BigInt(frac.padEnd(9, '0') || '0');
}

/** Nanoseconds since the epoch → RFC 3339 with nanoseconds, at a UTC offset in minutes. */
export function formatRfc3339Ns(ns: bigint, offsetMinutes = 0): string {
  const local = ns + BigInt(offsetMinutes * 60) * NS_PER_S;
  let seconds = local / NS_PER_S;
  let frac = local % NS_PER_S;
  if (frac < 0n) {
    frac += NS_PER_S;
    seconds -= 1n;
  }
  const iso = new Date(Number(seconds) * 1000).toISOString().slice(0, 19);
  const fraction = frac === 0n ? '' : `.${frac.toString().padStart(9, '0')}`.replace(/0+$/, '');
  if (offsetMinutes === 0) return `${iso}${fraction}Z`;
  const sign = offsetMinutes < 0 ? '-' : '+';
  const abs = Math.abs(offsetMinutes);
  const hh = String(Math.floor(abs / 60)).padStart(2, '0');
  const mm = String(abs % 60).padStart(2, '0');
  return `${iso}${fraction}${sign}${hh}:${mm}`;
}

const ZONES = [0, 330, -480, 60, -210, 840];

/** Values on and around a constraint's value, as a client would send them in a context. */
export function boundaryValues(c: ConstraintSpec): string[] {
  const value = c.value ?? '';
  switch (c.type) {
    case 'NUMBER_COMPARISON_TYPE': {
      const numbers: number[] = [];
      if (value.startsWith('[')) numbers.push(...(JSON.parse(value) as number[]));
      else if (value !== '') numbers.push(Number(value));
      const out = new Set<string>(['', ' ', 'abc', '0', '-0', '1e3', 'NaN']);
      for (const n of numbers) {
        for (const x of [n, nextFloat64Down(n), nextFloat64Up(n), n - 1, n + 1, n - 0.5, n + 0.5]) {
          out.add(String(x));
        }
        // Other spellings of the same number: "18.0", "2.50", "1.8e+1".
        if (!String(n).includes('e')) out.add(Number.isInteger(n) ? `${n}.0` : `${n}0`);
        out.add(n.toExponential());
      }
      return [...out];
    }
    case 'DATETIME_COMPARISON_TYPE': {
      const out = new Set<string>(['', 'not-a-date', '2024-01-01', '2030-12-31']);
      const ns = parseRfc3339Ns(value);
      if (ns !== undefined) {
        for (const delta of [0n, -1n, 1n, -NS_PER_S, NS_PER_S, -86_400n * NS_PER_S]) {
          out.add(formatRfc3339Ns(ns + delta));
        }
        for (const zone of ZONES) out.add(formatRfc3339Ns(ns, zone));
        out.add(formatRfc3339Ns(ns - 1n, ZONES[1]));
        out.add(formatRfc3339Ns(ns + 1n, ZONES[2]));
        out.add(formatRfc3339Ns(ns, 0).slice(0, 10));
      }
      return [...out];
    }
    case 'BOOLEAN_COMPARISON_TYPE':
      return ['true', 'false', 'TRUE', 'False', '1', '0', 't', 'F', 'yes', '', ' '];
    case 'STRING_COMPARISON_TYPE':
    case 'ENTITY_ID_COMPARISON_TYPE': {
      const words: string[] = value.startsWith('[')
        ? (JSON.parse(value) as string[])
        : value === ''
          ? []
          : [value];
      const out = new Set<string>(['', ' ', 'x']);
      for (const w of words) {
        for (const x of [
          w,
          `${w}x`,
          `x${w}`,
          ` ${w}`,
          `${w} `,
          w.toUpperCase(),
          w.slice(0, -1),
          w.slice(1),
        ]) {
          out.add(x);
        }
      }
      return [...out];
    }
  }
}

export interface EvaluationPair {
  entityId: string;
  context: Record<string, string>;
}

/** mulberry32: a tiny deterministic PRNG, so every run evaluates the same pairs. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * `count` deterministic (entity, context) pairs: first every boundary value of every constraint of
 * the seed (each property cycles through its values), then random picks among them; many distinct
 * entity ids so percentage distributions and thresholds spread over their buckets.
 */
export function evaluationPairs(spec: SeedSpec, count = 1_200, seed = 7): EvaluationPair[] {
  const byProperty = new Map<string, Set<string>>();
  const entityValues = new Set<string>();
  for (const ns of spec.namespaces) {
    for (const segment of ns.segments) {
      for (const c of segment.constraints) {
        const values = boundaryValues(c);
        if (c.type === 'ENTITY_ID_COMPARISON_TYPE') {
          for (const v of values) if (v.trim() !== '') entityValues.add(v);
          continue;
        }
        const set = byProperty.get(c.property) ?? new Set<string>();
        for (const v of values) set.add(v);
        byProperty.set(c.property, set);
      }
    }
  }
  const properties = [...byProperty.keys()].sort();
  const values = new Map(properties.map((p) => [p, [...(byProperty.get(p) as Set<string>)]]));
  const entities = [...entityValues];
  const longest = Math.max(entities.length, ...[...values.values()].map((v) => v.length));
  const random = prng(seed);
  const pairs: EvaluationPair[] = [];
  for (let i = 0; i < Math.max(count, longest); i++) {
    const systematic = i < longest;
    const context: Record<string, string> = {};
    for (const p of properties) {
      const list = values.get(p) as string[];
      if (systematic) context[p] = list[i % list.length] as string;
      else if (random() < 0.8) context[p] = list[Math.floor(random() * list.length)] as string;
    }
    const entityId =
      systematic && i < entities.length
        ? (entities[i] as string)
        : random() < 0.15
          ? (entities[Math.floor(random() * entities.length)] as string)
          : `user-${i}`;
    pairs.push({ entityId, context });
  }
  return pairs;
}

// ---------------------------------------------------------------------------------------------
// A seed from REST API answers (the shape of test/exporter/fixtures/flipt-v1.61.1-api.json), so a
// real master can hold the state the replayed answers describe.

type ApiObject = Record<string, unknown>;

/** The replay fixture's shape: lists per namespace and per `namespace/flag`. */
export interface ApiData {
  namespaces: ApiObject[];
  flags: Record<string, ApiObject[]>;
  segments: Record<string, ApiObject[]>;
  rules: Record<string, ApiObject[]>;
  rollouts: Record<string, ApiObject[]>;
}

const str = (o: ApiObject, k: string) => (typeof o[k] === 'string' ? (o[k] as string) : '');
const keysOf = (o: ApiObject, single: string): { keys: string[]; operator: SegmentOperator | undefined } => {
  const many = Array.isArray(o['segmentKeys']) ? (o['segmentKeys'] as string[]) : [];
  if (many.length > 0) return { keys: many, operator: o['segmentOperator'] as SegmentOperator };
  return { keys: [str(o, single)], operator: undefined };
};

export function seedFromApiData(data: ApiData): SeedSpec {
  return {
    namespaces: data.namespaces.map((n) => {
      const ns = str(n, 'key');
      return {
        key: ns,
        name: str(n, 'name'),
        description: str(n, 'description'),
        segments: (data.segments[ns] ?? []).map((s) => ({
          key: str(s, 'key'),
          name: str(s, 'name'),
          description: str(s, 'description'),
          matchType: s['matchType'] as SegmentSpec['matchType'],
          constraints: ((s['constraints'] as ApiObject[] | undefined) ?? []).map((c) => ({
            type: c['type'] as ComparisonType,
            property: str(c, 'property'),
            operator: str(c, 'operator'),
            value: str(c, 'value'),
            description: str(c, 'description'),
          })),
        })),
        flags: (data.flags[ns] ?? []).map((f): FlagSpec => {
          const key = str(f, 'key');
          const variants = (f['variants'] as ApiObject[] | undefined) ?? [];
          const variantKey = new Map(variants.map((v) => [str(v, 'id'), str(v, 'key')]));
          const metadata = f['metadata'] as FlagSpec['metadata'] | null | undefined;
          const defaultVariant = f['defaultVariant'] as ApiObject | null | undefined;
          const byRank = (list: ApiObject[] | undefined) =>
            [...(list ?? [])].sort((a, b) => Number(a['rank']) - Number(b['rank']));
          return {
            key,
            name: str(f, 'name'),
            description: str(f, 'description'),
            type: f['type'] as FlagSpec['type'],
            enabled: f['enabled'] === true,
            ...(metadata && Object.keys(metadata).length > 0 ? { metadata } : {}),
            variants: variants.map((v) => ({
              key: str(v, 'key'),
              name: str(v, 'name'),
              description: str(v, 'description'),
              ...(str(v, 'attachment') === ''
                ? {}
                : { attachment: JSON.parse(str(v, 'attachment')) as unknown }),
            })),
            ...(defaultVariant ? { defaultVariant: str(defaultVariant, 'key') } : {}),
            rules: byRank(data.rules[`${ns}/${key}`]).map((r) => {
              const { keys, operator } = keysOf(r, 'segmentKey');
              return {
                segments: keys,
                ...(operator ? { operator } : {}),
                distributions: ((r['distributions'] as ApiObject[] | undefined) ?? []).map((d) => ({
                  variant: variantKey.get(str(d, 'variantId')) ?? str(d, 'variantId'),
                  rollout: Number(d['rollout']),
                })),
              };
            }),
            rollouts: byRank(data.rollouts[`${ns}/${key}`]).map((r): RolloutSpec => {
              const threshold = r['threshold'] as ApiObject | null | undefined;
              const segment = r['segment'] as ApiObject | null | undefined;
              if (threshold) {
                return {
                  description: str(r, 'description'),
                  threshold: {
                    percentage: Number(threshold['percentage']),
                    value: threshold['value'] === true,
                  },
                };
              }
              const { keys, operator } = keysOf(segment ?? {}, 'segmentKey');
              return {
                description: str(r, 'description'),
                segment: { keys, ...(operator ? { operator } : {}), value: segment?.['value'] === true },
              };
            }),
          };
        }),
      };
    }),
  };
}
