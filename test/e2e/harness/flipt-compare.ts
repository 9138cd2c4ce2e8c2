// Asking a Flipt master and a sidecar the same evaluation questions and comparing the answers.
//
// Compared: HTTP status and the whole JSON body (match, variantKey, variantAttachment, enabled,
// reason, segmentKeys, flagKey, error answers), after removing what differs per request by design
// (requestId, requestDurationMillis, timestamp) and with two representational normalisations:
// - segmentKeys are compared as sets: Flipt v1.61.1 collects a rule's matched segments by ranging
//   over a Go map (internal/server/evaluation), so their order varies from one request to the next
//   on either server;
// - variantAttachment is compared parsed as JSON: the declarative format re-serialises attachments,
//   so key order and spacing change.
// One upstream divergence is normalised, and only in its exact form: Flipt v1.61.1's declarative
// loader (internal/storage/fs/snapshot.go) json.Marshal()s a variant's missing attachment, so the
// sidecar answers variantAttachment "null" where the database master answers "". It is accepted
// only when the master says "", the sidecar says "null", both name the same variant and that variant
// was seeded without an attachment; every accepted case is counted and listed for the test to assert.

export interface EvalRequest {
  namespaceKey: string;
  flagKey: string;
  entityId: string;
  context: Record<string, string>;
}

export interface Question {
  path: '/evaluate/v1/variant' | '/evaluate/v1/boolean' | '/evaluate/v1/batch';
  body: EvalRequest | { requests: EvalRequest[] };
}

/**
 * For each (entity, context) pair: every flag on the endpoint of its type, then one batch of all of
 * them, with `extraBatch(pair)` appended to the batch.
 */
export function evaluationQuestions(
  flags: readonly { namespace: string; flag: { key: string; type: string } }[],
  pairs: readonly { entityId: string; context: Record<string, string> }[],
  extraBatch: (pair: { entityId: string; context: Record<string, string> }) => EvalRequest[] = () => [],
): Question[] {
  const questions: Question[] = [];
  for (const pair of pairs) {
    const { entityId, context } = pair;
    const requests: EvalRequest[] = flags.map(({ namespace, flag }) => ({
      namespaceKey: namespace,
      flagKey: flag.key,
      entityId,
      context,
    }));
    flags.forEach(({ flag }, i) =>
      questions.push({
        path: flag.type === 'VARIANT_FLAG_TYPE' ? '/evaluate/v1/variant' : '/evaluate/v1/boolean',
        body: requests[i] as EvalRequest,
      }),
    );
    questions.push({ path: '/evaluate/v1/batch', body: { requests: [...requests, ...extraBatch(pair)] } });
  }
  return questions;
}

export interface Answer {
  status: number;
  body: unknown;
}

export async function ask(url: string, q: Question): Promise<Answer> {
  let lastError: unknown;
  // A refused or reset connection under load is retried twice; an HTTP answer never is.
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const answer = await fetch(`${url}${q.path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(q.body),
        signal: AbortSignal.timeout(15_000),
      });
      const text = await answer.text();
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        body = text;
      }
      return { status: answer.status, body };
    } catch (err) {
      lastError = err;
    }
  }
  throw new Error(
    `POST ${url}${q.path} failed: ${lastError instanceof Error ? lastError.message : String(lastError)}`,
  );
}

const VOLATILE = new Set(['requestId', 'requestDurationMillis', 'timestamp']);

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Volatile fields removed, segmentKeys sorted, attachments parsed. */
export function normalize(value: unknown): Json {
  if (Array.isArray(value)) return value.map(normalize);
  if (value === null || typeof value !== 'object') return value as Json;
  const out: Record<string, Json> = {};
  for (const [k, v] of Object.entries(value)) {
    if (VOLATILE.has(k)) continue;
    if (k === 'segmentKeys' && Array.isArray(v)) out[k] = [...(v as string[])].sort();
    else if (k === 'variantAttachment' && typeof v === 'string' && v !== '')
      out[k] = { parsed: parseJson(v) };
    else out[k] = normalize(v);
  }
  return out;
}

function parseJson(text: string): Json {
  try {
    return normalize(JSON.parse(text));
  } catch {
    return { unparseable: text };
  }
}

/** Deep equality of JSON values, object key order ignored. */
export function sameJson(a: Json, b: Json): boolean {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as Json[];
    return a.length === bb.length && a.every((x, i) => sameJson(x, bb[i] as Json));
  }
  const ao = a as Record<string, Json>;
  const bo = b as Record<string, Json>;
  const keys = Object.keys(ao);
  return (
    keys.length === Object.keys(bo).length &&
    keys.every((k) => Object.hasOwn(bo, k) && sameJson(ao[k] as Json, bo[k] as Json))
  );
}

export interface Comparison {
  /** Questions asked of both servers. */
  questions: number;
  /** Individual evaluations compared (a batch counts each of its requests). */
  evaluations: number;
  /** Answers by reason / status, to show the questions were not all alike. */
  outcomes: Record<string, number>;
  differences: number;
  /** The first differences, described. */
  examples: string[];
  /** Answers where only the known "null" vs "" attachment divergence differed. */
  nullAttachment: number;
  /** The variants (namespace/flag/variant) those answers named. */
  nullAttachmentVariants: Set<string>;
  /** The master's outcomes per `namespace/flag` (single-flag questions). */
  perFlag: Map<string, Set<string>>;
}

function variantAnswers(
  q: Question,
  master: Record<string, Json>,
  sidecar: Record<string, Json>,
): { request: EvalRequest; master: Record<string, Json>; sidecar: Record<string, Json> }[] {
  if (q.path === '/evaluate/v1/variant') return [{ request: q.body as EvalRequest, master, sidecar }];
  if (q.path !== '/evaluate/v1/batch') return [];
  const requests = (q.body as { requests: EvalRequest[] }).requests;
  const m = master['responses'];
  const s = sidecar['responses'];
  if (!Array.isArray(m) || !Array.isArray(s)) return [];
  const out = [];
  for (let i = 0; i < requests.length; i++) {
    const mv = (m[i] as Record<string, Json> | undefined)?.['variantResponse'];
    const sv = (s[i] as Record<string, Json> | undefined)?.['variantResponse'];
    if (mv && sv && typeof mv === 'object' && typeof sv === 'object') {
      out.push({
        request: requests[i] as EvalRequest,
        master: mv as Record<string, Json>,
        sidecar: sv as Record<string, Json>,
      });
    }
  }
  return out;
}

function tally(outcomes: Record<string, number>, answer: Answer, body: Json, perFlag?: Set<string>): void {
  const note = (key: string) => {
    outcomes[key] = (outcomes[key] ?? 0) + 1;
    perFlag?.add(key);
  };
  if (answer.status !== 200) return note(`HTTP ${answer.status}`);
  const record = body as Record<string, Json>;
  const items = Array.isArray(record['responses'])
    ? (record['responses'] as Record<string, Json>[])
    : [record];
  for (const item of items) {
    const inner = (item['variantResponse'] ??
      item['booleanResponse'] ??
      item['errorResponse'] ??
      item) as Record<string, Json>;
    const value =
      inner['variantKey'] !== undefined
        ? `variant=${String(inner['variantKey'] || '(none)')}`
        : inner['enabled'] !== undefined
          ? `enabled=${String(inner['enabled'])}`
          : '';
    const segments = Array.isArray(inner['segmentKeys']) ? ` [${inner['segmentKeys'].join(',')}]` : '';
    note(`${String(inner['reason'])}${value ? ` ${value}` : ''}${segments}`);
  }
}

/**
 * Asks both servers every question (at most `concurrency` at once per server) and compares the
 * answers. `withoutAttachment` holds `namespace/flag/variant` of variants seeded without one.
 */
export async function compareServers(
  masterUrl: string,
  sidecarUrl: string,
  questions: Question[],
  opts: { concurrency?: number; withoutAttachment: Set<string>; maxExamples?: number },
): Promise<Comparison> {
  const result: Comparison = {
    questions: 0,
    evaluations: 0,
    outcomes: {},
    differences: 0,
    examples: [],
    nullAttachment: 0,
    nullAttachmentVariants: new Set(),
    perFlag: new Map(),
  };
  let next = 0;
  const worker = async () => {
    while (next < questions.length) {
      const q = questions[next++] as Question;
      const [m, s] = await Promise.all([ask(masterUrl, q), ask(sidecarUrl, q)]);
      const mBody = normalize(m.body);
      const sBody = normalize(s.body);
      result.questions++;
      result.evaluations +=
        q.path === '/evaluate/v1/batch' ? (q.body as { requests: unknown[] }).requests.length : 1;
      let flagOutcomes: Set<string> | undefined;
      if (q.path !== '/evaluate/v1/batch') {
        const { namespaceKey, flagKey } = q.body as EvalRequest;
        const key = `${namespaceKey}/${flagKey}`;
        flagOutcomes = result.perFlag.get(key) ?? new Set();
        result.perFlag.set(key, flagOutcomes);
      }
      tally(result.outcomes, m, mBody, flagOutcomes);
      if (m.status === 200 && s.status === 200 && mBody && sBody && typeof mBody === 'object') {
        for (const pair of variantAnswers(q, mBody as Record<string, Json>, sBody as Record<string, Json>)) {
          const key = `${pair.request.namespaceKey}/${pair.request.flagKey}/${String(pair.master['variantKey'])}`;
          if (
            pair.master['variantAttachment'] === '' &&
            sameJson(pair.sidecar['variantAttachment'] as Json, { parsed: null }) &&
            pair.master['variantKey'] !== '' &&
            pair.master['variantKey'] === pair.sidecar['variantKey'] &&
            opts.withoutAttachment.has(key)
          ) {
            // The known upstream divergence (see the top of this file): "null" → "".
            pair.sidecar['variantAttachment'] = '';
            result.nullAttachment++;
            result.nullAttachmentVariants.add(key);
          }
        }
      }
      if (m.status !== s.status || !sameJson(mBody, sBody)) {
        result.differences++;
        if (result.examples.length < (opts.maxExamples ?? 10)) {
          result.examples.push(
            `${q.path} ${JSON.stringify(q.body).slice(0, 400)}\n  master  ${m.status} ${JSON.stringify(mBody).slice(0, 600)}\n  sidecar ${s.status} ${JSON.stringify(sBody).slice(0, 600)}`,
          );
        }
      }
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency ?? 6 }, worker));
  return result;
}
