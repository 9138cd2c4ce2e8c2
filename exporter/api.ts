// The Flipt v1 REST API shapes the exporter reads, and decoders that turn untrusted JSON into them:
// each answer is checked against a TypeBox schema of the wire format (compiled once, the package's
// one way to check untrusted JSON), then mapped to these types with the defaults filled in.
//
// The master's gateway (grpc-gateway with jsonpb, EmitDefaults) writes lowerCamelCase names, enums
// by name and default values, and unset message fields as null. So absent and null both mean "the
// default" here, while a value of the wrong type is an error: an answer that does not look like
// Flipt's is not something to copy into every sidecar.
import { Kind, Type, type Static, type TSchema } from '@sinclair/typebox';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import { ValueErrorType, type ValueError } from '@sinclair/typebox/errors';

export interface ApiNamespace {
  key: string;
  name: string;
  description: string;
}

export interface ApiVariant {
  id: string;
  key: string;
  name: string;
  description: string;
  /** A JSON document as a string; '' when the variant has none. */
  attachment: string;
}

export interface ApiFlag {
  key: string;
  name: string;
  description: string;
  enabled: boolean;
  type: string;
  variants: ApiVariant[];
  /** The id of the default variant, '' when there is none. */
  defaultVariantId: string;
  metadata: Record<string, unknown>;
}

export interface ApiConstraint {
  type: string;
  property: string;
  operator: string;
  value: string;
  description: string;
}

export interface ApiSegment {
  key: string;
  name: string;
  description: string;
  matchType: string;
  constraints: ApiConstraint[];
}

export interface ApiDistribution {
  variantId: string;
  rollout: number;
}

export interface ApiRule {
  id: string;
  rank: number;
  segmentKey: string;
  segmentKeys: string[];
  segmentOperator: string;
  distributions: ApiDistribution[];
}

export interface ApiRolloutSegment {
  segmentKey: string;
  segmentKeys: string[];
  segmentOperator: string;
  value: boolean;
}

export interface ApiRolloutThreshold {
  percentage: number;
  value: boolean;
}

export interface ApiRollout {
  id: string;
  rank: number;
  type: string;
  description: string;
  segment: ApiRolloutSegment | undefined;
  threshold: ApiRolloutThreshold | undefined;
}

/** One page of a list endpoint. */
export interface Page<T> {
  items: T[];
  nextPageToken: string;
  /** The master's count of the whole list, when it reports one. */
  totalCount: number | undefined;
}

/** Everything read for one flag: rules for variant flags, rollouts for boolean flags. */
export interface FlagState {
  flag: ApiFlag;
  rules: ApiRule[];
  rollouts: ApiRollout[];
}

export interface NamespaceState {
  namespace: ApiNamespace;
  flags: FlagState[];
  segments: ApiSegment[];
}

/** The master's whole state as read, before rendering. */
export interface FliptState {
  namespaces: NamespaceState[];
}

export class DecodeError extends Error {
  override name = 'DecodeError';
}

// The wire format. jsonpb writes an unset field as null, so every field but the keys may be absent
// or null; extra fields (a newer master) are allowed and ignored.
const orNull = <T extends TSchema>(schema: T) => Type.Optional(Type.Union([schema, Type.Null()]));
const Key = Type.String({ minLength: 1 });
const Text = orNull(Type.String());
const Bool = orNull(Type.Boolean());
// JSON has no NaN or infinities (jsonpb writes them as strings); no valid rollout or rank is one.
const Num = orNull(Type.Number());
const Keys = orNull(Type.Array(Type.String()));

const NamespaceWire = Type.Object({ key: Key, name: Text, description: Text });

const VariantWire = Type.Object({ id: Key, key: Key, name: Text, description: Text, attachment: Text });

const FlagWire = Type.Object({
  key: Key,
  name: Text,
  description: Text,
  enabled: Bool,
  type: Text,
  variants: orNull(Type.Array(VariantWire)),
  defaultVariant: orNull(Type.Object({ id: Key })),
  metadata: orNull(Type.Object({})),
});

const ConstraintWire = Type.Object({
  type: Text,
  property: Text,
  operator: Text,
  value: Text,
  description: Text,
});

const SegmentWire = Type.Object({
  key: Key,
  name: Text,
  description: Text,
  matchType: Text,
  constraints: orNull(Type.Array(ConstraintWire)),
});

const RuleWire = Type.Object({
  id: Key,
  rank: Num,
  segmentKey: Text,
  segmentKeys: Keys,
  segmentOperator: Text,
  distributions: orNull(Type.Array(Type.Object({ variantId: Key, rollout: Num }))),
});

const RolloutWire = Type.Object({
  id: Text,
  rank: Num,
  type: Text,
  description: Text,
  segment: orNull(Type.Object({ segmentKey: Text, segmentKeys: Keys, segmentOperator: Text, value: Bool })),
  threshold: orNull(Type.Object({ percentage: Num, value: Bool })),
});

const PageWire = Type.Object({
  nextPageToken: Text,
  totalCount: orNull(Type.Integer()),
});

/** `.flags[0].key` from TypeBox's `/flags/0/key`. */
function dotted(pointer: string): string {
  return pointer
    .split('/')
    .slice(1)
    .map((token) =>
      /^\d+$/.test(token) ? `[${token}]` : `.${token.replaceAll('~1', '/').replaceAll('~0', '~')}`,
    )
    .join('');
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'string' ? `the string ${JSON.stringify(value.slice(0, 40))}` : typeof value;
}

const EXPECTED: Record<string, string> = {
  String: 'a string',
  Boolean: 'a boolean',
  Number: 'a finite number',
  Integer: 'an integer',
  Array: 'an array',
  Object: 'an object',
};

/**
 * The innermost reason: a value that is neither null nor of the field's type fails the union
 * `T | null` as a whole, so the error of `T` (the first member) is followed down to the field.
 */
function innermost(error: ValueError): ValueError {
  if (error.type !== ValueErrorType.Union || error.value === null) return error;
  const inner = error.errors[0]?.First();
  return inner ? innermost(inner) : error;
}

function explain(check: TypeCheck<TSchema>, value: unknown, path: string): string {
  const first = check.Errors(value).First();
  if (!first) return `${path}: not a valid answer`;
  const error = innermost(first);
  const where = `${path}${dotted(error.path)}`;
  if (error.type === ValueErrorType.ObjectRequiredProperty || error.type === ValueErrorType.StringMinLength)
    return `${where}: missing`;
  const schema = error.schema as TSchema & { anyOf?: TSchema[] };
  const kind = schema[Kind] === 'Union' ? schema.anyOf?.[0]?.[Kind] : schema[Kind];
  return `${where}: expected ${EXPECTED[kind as string] ?? kind}, got ${describe(error.value)}`;
}

/** A decoder: the compiled check of a wire schema, then the mapping that fills in the defaults. */
function decoder<S extends TSchema, T>(wire: S, build: (checked: Static<S>) => T) {
  const check = TypeCompiler.Compile(wire);
  return (value: unknown, path: string): T => {
    if (!check.Check(value)) throw new DecodeError(explain(check, value, path));
    return build(value);
  };
}

export const decodeNamespace = decoder(NamespaceWire, (n): ApiNamespace => ({
  key: n.key,
  name: n.name ?? '',
  description: n.description ?? '',
}));

export const decodeFlag = decoder(FlagWire, (f): ApiFlag => ({
  key: f.key,
  name: f.name ?? '',
  description: f.description ?? '',
  enabled: f.enabled ?? false,
  type: f.type ?? 'VARIANT_FLAG_TYPE',
  variants: (f.variants ?? []).map((v) => ({
    id: v.id,
    key: v.key,
    name: v.name ?? '',
    description: v.description ?? '',
    attachment: v.attachment ?? '',
  })),
  defaultVariantId: f.defaultVariant?.id ?? '',
  metadata: f.metadata ?? {},
}));

export const decodeSegment = decoder(SegmentWire, (s): ApiSegment => ({
  key: s.key,
  name: s.name ?? '',
  description: s.description ?? '',
  matchType: s.matchType ?? 'ALL_MATCH_TYPE',
  constraints: (s.constraints ?? []).map((c) => ({
    type: c.type ?? 'UNKNOWN_COMPARISON_TYPE',
    property: c.property ?? '',
    operator: c.operator ?? '',
    value: c.value ?? '',
    description: c.description ?? '',
  })),
}));

export const decodeRule = decoder(RuleWire, (r): ApiRule => ({
  id: r.id,
  rank: r.rank ?? 0,
  segmentKey: r.segmentKey ?? '',
  segmentKeys: r.segmentKeys ?? [],
  segmentOperator: r.segmentOperator ?? 'OR_SEGMENT_OPERATOR',
  distributions: (r.distributions ?? []).map((d) => ({ variantId: d.variantId, rollout: d.rollout ?? 0 })),
}));

export const decodeRollout = decoder(RolloutWire, (r): ApiRollout => ({
  id: r.id ?? '',
  rank: r.rank ?? 0,
  type: r.type ?? 'UNKNOWN_ROLLOUT_TYPE',
  description: r.description ?? '',
  segment: r.segment
    ? {
        segmentKey: r.segment.segmentKey ?? '',
        segmentKeys: r.segment.segmentKeys ?? [],
        segmentOperator: r.segment.segmentOperator ?? 'OR_SEGMENT_OPERATOR',
        value: r.segment.value ?? false,
      }
    : undefined,
  threshold: r.threshold
    ? { percentage: r.threshold.percentage ?? 0, value: r.threshold.value ?? false }
    : undefined,
}));

const pageCheck = TypeCompiler.Compile(PageWire);

/** Decodes one page of a list answer: `{<listField>: [...], nextPageToken, totalCount}`. */
export function decodePage<T>(
  value: unknown,
  listField: string,
  decodeItem: (item: unknown, path: string) => T,
  path: string,
): Page<T> {
  // The envelope first (its list field's name is the caller's), then each item on its own path.
  if (!pageCheck.Check(value)) throw new DecodeError(explain(pageCheck, value, path));
  const page = value as Static<typeof PageWire> & Record<string, unknown>;
  if (!(listField in page)) throw new DecodeError(`${path}: the answer has no "${listField}" list`);
  const list = page[listField] ?? [];
  if (!Array.isArray(list))
    throw new DecodeError(`${path}.${listField}: expected an array, got ${describe(list)}`);
  return {
    items: list.map((item, i) => decodeItem(item, `${path}.${listField}[${i}]`)),
    nextPageToken: page.nextPageToken ?? '',
    totalCount: page.totalCount ?? undefined,
  };
}
