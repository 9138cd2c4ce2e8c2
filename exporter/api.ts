// The Flipt v1 REST API shapes the exporter reads, and decoders that turn untrusted JSON into them.
//
// The master's gateway (grpc-gateway with jsonpb, EmitDefaults) writes lowerCamelCase names, enums
// by name and default values, and unset message fields as null. So absent and null both mean "the
// default" here, while a value of the wrong type is an error: an answer that does not look like
// Flipt's is not something to copy into every sidecar.

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

type Fields = Record<string, unknown>;

function record(value: unknown, path: string): Fields {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new DecodeError(`${path}: expected an object, got ${describe(value)}`);
  }
  return value as Fields;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'string' ? `the string ${JSON.stringify(value.slice(0, 40))}` : typeof value;
}

function str(o: Fields, field: string, path: string, fallback = ''): string {
  const v = o[field];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'string') throw new DecodeError(`${path}.${field}: expected a string, got ${describe(v)}`);
  return v;
}

function requiredStr(o: Fields, field: string, path: string): string {
  const v = str(o, field, path);
  if (v === '') throw new DecodeError(`${path}.${field}: missing`);
  return v;
}

function bool(o: Fields, field: string, path: string): boolean {
  const v = o[field];
  if (v === undefined || v === null) return false;
  if (typeof v !== 'boolean')
    throw new DecodeError(`${path}.${field}: expected a boolean, got ${describe(v)}`);
  return v;
}

function num(o: Fields, field: string, path: string): number {
  const v = o[field];
  if (v === undefined || v === null) return 0;
  // jsonpb writes NaN and infinities as strings; no valid rollout or rank is one.
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new DecodeError(`${path}.${field}: expected a finite number, got ${describe(v)}`);
  }
  return v;
}

function list(o: Fields, field: string, path: string): unknown[] {
  const v = o[field];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new DecodeError(`${path}.${field}: expected an array, got ${describe(v)}`);
  return v;
}

function strings(o: Fields, field: string, path: string): string[] {
  return list(o, field, path).map((v, i) => {
    if (typeof v !== 'string')
      throw new DecodeError(`${path}.${field}[${i}]: expected a string, got ${describe(v)}`);
    return v;
  });
}

export function decodeNamespace(value: unknown, path: string): ApiNamespace {
  const o = record(value, path);
  return {
    key: requiredStr(o, 'key', path),
    name: str(o, 'name', path),
    description: str(o, 'description', path),
  };
}

function decodeVariant(value: unknown, path: string): ApiVariant {
  const o = record(value, path);
  return {
    id: requiredStr(o, 'id', path),
    key: requiredStr(o, 'key', path),
    name: str(o, 'name', path),
    description: str(o, 'description', path),
    attachment: str(o, 'attachment', path),
  };
}

export function decodeFlag(value: unknown, path: string): ApiFlag {
  const o = record(value, path);
  const defaultVariant = o['defaultVariant'];
  const metadata = o['metadata'];
  return {
    key: requiredStr(o, 'key', path),
    name: str(o, 'name', path),
    description: str(o, 'description', path),
    enabled: bool(o, 'enabled', path),
    type: str(o, 'type', path, 'VARIANT_FLAG_TYPE'),
    variants: list(o, 'variants', path).map((v, i) => decodeVariant(v, `${path}.variants[${i}]`)),
    defaultVariantId:
      defaultVariant === undefined || defaultVariant === null
        ? ''
        : requiredStr(record(defaultVariant, `${path}.defaultVariant`), 'id', `${path}.defaultVariant`),
    metadata: metadata === undefined || metadata === null ? {} : record(metadata, `${path}.metadata`),
  };
}

function decodeConstraint(value: unknown, path: string): ApiConstraint {
  const o = record(value, path);
  return {
    type: str(o, 'type', path, 'UNKNOWN_COMPARISON_TYPE'),
    property: str(o, 'property', path),
    operator: str(o, 'operator', path),
    value: str(o, 'value', path),
    description: str(o, 'description', path),
  };
}

export function decodeSegment(value: unknown, path: string): ApiSegment {
  const o = record(value, path);
  return {
    key: requiredStr(o, 'key', path),
    name: str(o, 'name', path),
    description: str(o, 'description', path),
    matchType: str(o, 'matchType', path, 'ALL_MATCH_TYPE'),
    constraints: list(o, 'constraints', path).map((c, i) => decodeConstraint(c, `${path}.constraints[${i}]`)),
  };
}

export function decodeRule(value: unknown, path: string): ApiRule {
  const o = record(value, path);
  return {
    id: requiredStr(o, 'id', path),
    rank: num(o, 'rank', path),
    segmentKey: str(o, 'segmentKey', path),
    segmentKeys: strings(o, 'segmentKeys', path),
    segmentOperator: str(o, 'segmentOperator', path, 'OR_SEGMENT_OPERATOR'),
    distributions: list(o, 'distributions', path).map((d, i) => {
      const dp = `${path}.distributions[${i}]`;
      const od = record(d, dp);
      return { variantId: requiredStr(od, 'variantId', dp), rollout: num(od, 'rollout', dp) };
    }),
  };
}

export function decodeRollout(value: unknown, path: string): ApiRollout {
  const o = record(value, path);
  const segment = o['segment'];
  const threshold = o['threshold'];
  let decodedSegment: ApiRolloutSegment | undefined;
  if (segment !== undefined && segment !== null) {
    const sp = `${path}.segment`;
    const s = record(segment, sp);
    decodedSegment = {
      segmentKey: str(s, 'segmentKey', sp),
      segmentKeys: strings(s, 'segmentKeys', sp),
      segmentOperator: str(s, 'segmentOperator', sp, 'OR_SEGMENT_OPERATOR'),
      value: bool(s, 'value', sp),
    };
  }
  let decodedThreshold: ApiRolloutThreshold | undefined;
  if (threshold !== undefined && threshold !== null) {
    const tp = `${path}.threshold`;
    const t = record(threshold, tp);
    decodedThreshold = { percentage: num(t, 'percentage', tp), value: bool(t, 'value', tp) };
  }
  return {
    id: str(o, 'id', path),
    rank: num(o, 'rank', path),
    type: str(o, 'type', path, 'UNKNOWN_ROLLOUT_TYPE'),
    description: str(o, 'description', path),
    segment: decodedSegment,
    threshold: decodedThreshold,
  };
}

/** Decodes one page of a list answer: `{<listField>: [...], nextPageToken, totalCount}`. */
export function decodePage<T>(
  value: unknown,
  listField: string,
  decodeItem: (item: unknown, path: string) => T,
  path: string,
): Page<T> {
  const o = record(value, path);
  if (!(listField in o)) throw new DecodeError(`${path}: the answer has no "${listField}" list`);
  const items = list(o, listField, path).map((item, i) => decodeItem(item, `${path}.${listField}[${i}]`));
  const total = o['totalCount'];
  if (total !== undefined && total !== null && (typeof total !== 'number' || !Number.isInteger(total))) {
    throw new DecodeError(`${path}.totalCount: expected an integer, got ${describe(total)}`);
  }
  return {
    items,
    nextPageToken: str(o, 'nextPageToken', path),
    totalCount: typeof total === 'number' ? total : undefined,
  };
}
