// Pure: the master's state as read → Flipt's declarative documents (version 1.4, one per
// namespace) → a deterministic YAML stream. Same state, same bytes: namespaces, flags and segments
// are sorted by key, rules and rollouts by rank, map keys inside attachments and metadata sorted,
// and nothing time-dependent is written. The mapping follows Flipt's own exporter
// (internal/ext/exporter.go at v1.61.1) so that a sidecar reading the result evaluates like the
// master; where that exporter omits a zero value the schema then requires (a 0% distribution or
// threshold), the value is written.
import type { ApiRollout, ApiRule, FlagState, FliptState, NamespaceState } from './api.ts';
import { LT_REWRITTEN_TYPES, rewriteLessThan } from './lt-rewrite.ts';
import { toYamlStream, type JsonValue } from './yaml.ts';

export const DOCUMENT_VERSION = '1.4';

type Obj = { [key: string]: JsonValue };

export interface ExportDocument extends Obj {
  version: string;
  namespace: Obj;
  flags: Obj[];
  segments: Obj[];
}

export interface ExportStats {
  namespaces: number;
  flags: number;
  segments: number;
}

/** An `lt` constraint written as its exact `lte` equivalent (see lt-rewrite.ts). */
export interface ConstraintRewrite {
  namespace: string;
  segment: string;
  property: string;
  type: string;
  from: string;
  to: string;
}

export type BuildResult =
  | { ok: true; documents: ExportDocument[]; stats: ExportStats; rewrites: ConstraintRewrite[] }
  | { ok: false; errors: string[] };

/** One namespace rendered: its document, or what is wrong with it. */
export interface NamespaceRender {
  document: ExportDocument;
  errors: string[];
  rewrites: ConstraintRewrite[];
}

const FLAG_TYPES = new Set(['VARIANT_FLAG_TYPE', 'BOOLEAN_FLAG_TYPE']);
const MATCH_TYPES = new Set(['ALL_MATCH_TYPE', 'ANY_MATCH_TYPE']);
const SEGMENT_OPERATORS = new Set(['OR_SEGMENT_OPERATOR', 'AND_SEGMENT_OPERATOR']);
const COMPARISON_TYPES = new Set([
  'STRING_COMPARISON_TYPE',
  'NUMBER_COMPARISON_TYPE',
  'BOOLEAN_COMPARISON_TYPE',
  'DATETIME_COMPARISON_TYPE',
  'ENTITY_ID_COMPARISON_TYPE',
]);

/** Code-unit order: the same on every machine, unlike localeCompare. */
function byKey<T>(keyOf: (item: T) => string): (a: T, b: T) => number {
  return (a, b) => {
    const ka = keyOf(a);
    const kb = keyOf(b);
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  };
}

/** JSON value with every object's keys sorted, so key order in the master never shows. */
function canonical(value: unknown): JsonValue {
  if (Array.isArray(value)) return value.map(canonical);
  if (typeof value === 'object' && value !== null) {
    const out: Obj = {};
    for (const key of Object.keys(value).sort())
      out[key] = canonical((value as Record<string, unknown>)[key]);
    return out;
  }
  if (
    typeof value === 'string' ||
    typeof value === 'number' ||
    typeof value === 'boolean' ||
    value === null
  ) {
    return value;
  }
  throw new Error(`not a JSON value: ${typeof value}`);
}

/** The segment keys a rule or rollout names: `segmentKeys`, or the single `segmentKey`. */
function segmentKeysOf(segmentKey: string, segmentKeys: string[]): string[] | string {
  if (segmentKeys.length > 0) {
    if (segmentKey !== '' && !segmentKeys.includes(segmentKey)) {
      return `names segment ${JSON.stringify(segmentKey)} and segments ${JSON.stringify(segmentKeys)}`;
    }
    return segmentKeys;
  }
  return segmentKey === '' ? 'names no segment' : [segmentKey];
}

function renderRule(
  rule: ApiRule,
  where: string,
  variantKeys: Map<string, string>,
  segments: Set<string>,
  errors: string[],
): Obj | undefined {
  const keys = segmentKeysOf(rule.segmentKey, rule.segmentKeys);
  if (typeof keys === 'string') {
    errors.push(`${where} ${keys}`);
    return undefined;
  }
  for (const key of keys) {
    if (!segments.has(key)) errors.push(`${where} references unknown segment ${JSON.stringify(key)}`);
  }
  if (!SEGMENT_OPERATORS.has(rule.segmentOperator)) {
    errors.push(`${where} has unknown segment operator ${JSON.stringify(rule.segmentOperator)}`);
  }
  const out: Obj = {
    // One segment is written as its key; several as keys plus operator, as `flipt export` does.
    segment: keys.length === 1 ? (keys[0] as string) : { keys, operator: rule.segmentOperator },
  };
  const distributions: Obj[] = [];
  // Order kept as the master returns it: bucketing walks the distributions in this order.
  for (const d of rule.distributions) {
    const variant = variantKeys.get(d.variantId);
    if (variant === undefined) {
      errors.push(`${where} distribution references unknown variant id ${JSON.stringify(d.variantId)}`);
      continue;
    }
    distributions.push({ variant, rollout: d.rollout });
  }
  if (distributions.length > 0) out['distributions'] = distributions;
  return out;
}

function renderRollout(
  rollout: ApiRollout,
  where: string,
  segments: Set<string>,
  errors: string[],
): Obj | undefined {
  const out: Obj = {};
  if (rollout.description !== '') out['description'] = rollout.description;
  if (rollout.type === 'SEGMENT_ROLLOUT_TYPE' && rollout.segment) {
    const s = rollout.segment;
    const keys = segmentKeysOf(s.segmentKey, s.segmentKeys);
    if (typeof keys === 'string') {
      errors.push(`${where} ${keys}`);
      return undefined;
    }
    for (const key of keys) {
      if (!segments.has(key)) errors.push(`${where} references unknown segment ${JSON.stringify(key)}`);
    }
    if (!SEGMENT_OPERATORS.has(s.segmentOperator)) {
      errors.push(`${where} has unknown segment operator ${JSON.stringify(s.segmentOperator)}`);
    }
    const segment: Obj = keys.length === 1 ? { key: keys[0] as string } : { keys };
    // OR is the default when reading; write the operator only when it changes the meaning.
    if (keys.length > 1 && s.segmentOperator === 'AND_SEGMENT_OPERATOR')
      segment['operator'] = s.segmentOperator;
    segment['value'] = s.value;
    out['segment'] = segment;
  } else if (rollout.type === 'THRESHOLD_ROLLOUT_TYPE' && rollout.threshold) {
    out['threshold'] = { percentage: rollout.threshold.percentage, value: rollout.threshold.value };
  } else {
    errors.push(`${where} has type ${JSON.stringify(rollout.type)} without a matching segment or threshold`);
    return undefined;
  }
  return out;
}

function renderFlag(state: FlagState, ns: string, segments: Set<string>, errors: string[]): Obj {
  const { flag } = state;
  const where = `namespace ${ns} flag ${flag.key}`;
  if (!FLAG_TYPES.has(flag.type)) errors.push(`${where} has unknown type ${JSON.stringify(flag.type)}`);
  const out: Obj = { key: flag.key, name: flag.name, type: flag.type };
  if (flag.description !== '') out['description'] = flag.description;
  out['enabled'] = flag.enabled;
  if (Object.keys(flag.metadata).length > 0) out['metadata'] = canonical(flag.metadata);

  const variantKeys = new Map<string, string>();
  const seenVariantKeys = new Set<string>();
  const variants: Obj[] = [];
  for (const v of flag.variants) {
    if (seenVariantKeys.has(v.key))
      errors.push(`${where} has two variants with key ${JSON.stringify(v.key)}`);
    seenVariantKeys.add(v.key);
    variantKeys.set(v.id, v.key);
    const variant: Obj = { key: v.key };
    if (v.name !== '') variant['name'] = v.name;
    if (v.description !== '') variant['description'] = v.description;
    if (flag.defaultVariantId !== '' && v.id === flag.defaultVariantId) variant['default'] = true;
    if (v.attachment !== '') {
      try {
        variant['attachment'] = canonical(JSON.parse(v.attachment));
      } catch {
        errors.push(`${where} variant ${v.key} has an attachment that is not valid JSON`);
      }
    }
    variants.push(variant);
  }
  if (flag.defaultVariantId !== '' && !variantKeys.has(flag.defaultVariantId)) {
    errors.push(
      `${where} has a default variant id ${JSON.stringify(flag.defaultVariantId)} that is not one of its variants`,
    );
  }
  if (variants.length > 0) out['variants'] = variants;

  // Rank order is evaluation order, and Flipt derives the rank from the position in the file.
  const rules = [...state.rules].sort((a, b) => a.rank - b.rank);
  const renderedRules: Obj[] = [];
  rules.forEach((rule, i) => {
    const r = renderRule(rule, `${where} rule ${i + 1}`, variantKeys, segments, errors);
    if (r) renderedRules.push(r);
  });
  if (renderedRules.length > 0) out['rules'] = renderedRules;

  const rollouts = [...state.rollouts].sort((a, b) => a.rank - b.rank);
  const renderedRollouts: Obj[] = [];
  rollouts.forEach((rollout, i) => {
    const r = renderRollout(rollout, `${where} rollout ${i + 1}`, segments, errors);
    if (r) renderedRollouts.push(r);
  });
  if (renderedRollouts.length > 0) out['rollouts'] = renderedRollouts;
  return out;
}

/** Renders one namespace (pure); errors and rewrites are returned, not thrown. */
export function renderNamespace(state: NamespaceState): NamespaceRender {
  const errors: string[] = [];
  const rewrites: ConstraintRewrite[] = [];
  const ns = state.namespace;
  const namespace: Obj = { key: ns.key };
  if (ns.name !== '') namespace['name'] = ns.name;
  if (ns.description !== '') namespace['description'] = ns.description;

  const segmentKeys = new Set(state.segments.map((s) => s.key));
  const segments: Obj[] = [...state.segments].sort(byKey((s) => s.key)).map((s) => {
    const where = `namespace ${ns.key} segment ${s.key}`;
    if (!MATCH_TYPES.has(s.matchType))
      errors.push(`${where} has unknown match type ${JSON.stringify(s.matchType)}`);
    const out: Obj = { key: s.key, name: s.name };
    if (s.description !== '') out['description'] = s.description;
    out['match_type'] = s.matchType;
    if (s.constraints.length > 0) {
      out['constraints'] = s.constraints.map((c, i) => {
        if (!COMPARISON_TYPES.has(c.type)) {
          errors.push(`${where} constraint ${i + 1} has unknown type ${JSON.stringify(c.type)}`);
        }
        let { operator, value } = c;
        if (operator === 'lt' && LT_REWRITTEN_TYPES.has(c.type)) {
          const rewrite = rewriteLessThan(c.type, value);
          if (!rewrite.ok) {
            errors.push(
              `${where} constraint ${i + 1} (${c.property} lt): Flipt v1.61.1 sidecars cannot read "lt" ` +
                `and it cannot be rewritten exactly: ${rewrite.reason}`,
            );
          } else {
            rewrites.push({
              namespace: ns.key,
              segment: s.key,
              property: c.property,
              type: c.type,
              from: `lt ${value}`,
              to: `lte ${rewrite.value}`,
            });
            operator = rewrite.operator;
            value = rewrite.value;
          }
        }
        const constraint: Obj = { type: c.type, property: c.property, operator };
        if (value !== '') constraint['value'] = value;
        if (c.description !== '') constraint['description'] = c.description;
        return constraint;
      });
    }
    return out;
  });

  const flags = [...state.flags]
    .sort(byKey((f) => f.flag.key))
    .map((f) => renderFlag(f, ns.key, segmentKeys, errors));
  return { document: { version: DOCUMENT_VERSION, namespace, flags, segments }, errors, rewrites };
}

/** Namespaces in the order they are written. */
export function sortNamespaces(states: readonly NamespaceState[]): NamespaceState[] {
  return [...states].sort(byKey((n) => n.namespace.key));
}

/** Maps the master's state to one document per namespace, or lists everything that is wrong. */
export function buildDocuments(state: FliptState): BuildResult {
  const errors: string[] = [];
  const rewrites: ConstraintRewrite[] = [];
  const documents = sortNamespaces(state.namespaces).map((n) => {
    const rendered = renderNamespace(n);
    errors.push(...rendered.errors);
    rewrites.push(...rendered.rewrites);
    return rendered.document;
  });
  if (errors.length > 0) return { ok: false, errors };
  return {
    ok: true,
    rewrites,
    documents,
    stats: {
      namespaces: documents.length,
      flags: documents.reduce((sum, d) => sum + d.flags.length, 0),
      segments: documents.reduce((sum, d) => sum + d.segments.length, 0),
    },
  };
}

/** The object's body: a YAML stream with one document per namespace. */
export function renderYaml(documents: readonly ExportDocument[]): string {
  return toYamlStream(documents);
}
