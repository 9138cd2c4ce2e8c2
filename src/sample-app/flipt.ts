// Asks one Flipt for every flag in one batch request (POST /evaluate/v1/batch) and times it: the
// same request goes to the sidecar on localhost and to flipt-master, so the two latencies compare
// like with like.

export interface FlagAnswer {
  flagKey: string;
  kind: 'variant' | 'boolean' | 'error';
  /** The variant key, "true"/"false", or the error reason. */
  value: string;
  reason: string;
  /** A variant's attachment (JSON text), when it has one. */
  attachment?: string;
}

export type Evaluation =
  { ok: true; durationMs: number; answers: FlagAnswer[] } | { ok: false; durationMs: number; error: string };

export interface EvaluationRequest {
  namespace: string;
  flags: string[];
  entityId: string;
  context: Record<string, string>;
  timeoutMs: number;
}

/** Enough for the flags of a demo page; a larger answer is refused, not buffered. */
export const MAX_RESPONSE_BYTES = 1024 * 1024;

interface BatchResponse {
  responses?: Array<{
    type?: string;
    variantResponse?: { flagKey?: string; variantKey?: string; reason?: string; variantAttachment?: string };
    booleanResponse?: { flagKey?: string; enabled?: boolean; reason?: string };
    errorResponse?: { flagKey?: string; reason?: string };
  }>;
}

// "MATCH_EVALUATION_REASON" → "match": shorter on the page.
const shortReason = (reason: string | undefined) =>
  (reason ?? 'UNKNOWN')
    .replace(/_EVALUATION_REASON$/, '')
    .replaceAll('_', ' ')
    .toLowerCase();

export function parseBatch(body: unknown, flags: string[]): FlagAnswer[] {
  const responses = (body as BatchResponse | null)?.responses;
  if (!Array.isArray(responses) || responses.length !== flags.length) {
    throw new Error(
      `expected ${flags.length} answers, got ${Array.isArray(responses) ? responses.length : 'none'}`,
    );
  }
  return responses.map((r, i): FlagAnswer => {
    const flagKey = flags[i] as string;
    if (r.type === 'VARIANT_EVALUATION_RESPONSE_TYPE' && r.variantResponse) {
      const v = r.variantResponse;
      const attachment =
        v.variantAttachment && v.variantAttachment !== 'null' ? v.variantAttachment : undefined;
      return {
        flagKey,
        kind: 'variant',
        value: v.variantKey || '(none)',
        reason: shortReason(v.reason),
        ...(attachment ? { attachment } : {}),
      };
    }
    if (r.type === 'BOOLEAN_EVALUATION_RESPONSE_TYPE' && r.booleanResponse) {
      return {
        flagKey,
        kind: 'boolean',
        value: String(r.booleanResponse.enabled === true),
        reason: shortReason(r.booleanResponse.reason),
      };
    }
    if (r.type === 'ERROR_EVALUATION_RESPONSE_TYPE' && r.errorResponse) {
      const reason = shortReason(
        r.errorResponse.reason?.replace(/_ERROR_EVALUATION_REASON$/, '_EVALUATION_REASON'),
      );
      return { flagKey, kind: 'error', value: reason, reason };
    }
    throw new Error(`answer ${i} (${flagKey}) has an unknown type ${JSON.stringify(r.type)}`);
  });
}

async function readLimited(response: Response): Promise<string> {
  const reader = response.body?.getReader();
  if (!reader) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_RESPONSE_BYTES) {
      await reader.cancel();
      throw new Error(`answer larger than ${MAX_RESPONSE_BYTES} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** One timed batch evaluation; never throws (a failure is an answer the page shows). */
export async function evaluate(baseUrl: string, request: EvaluationRequest): Promise<Evaluation> {
  const started = performance.now();
  const elapsed = () => Math.round((performance.now() - started) * 100) / 100;
  try {
    const response = await fetch(`${baseUrl}/evaluate/v1/batch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({
        requests: request.flags.map((flagKey) => ({
          namespaceKey: request.namespace,
          flagKey,
          entityId: request.entityId,
          context: request.context,
        })),
      }),
      signal: AbortSignal.timeout(request.timeoutMs),
    });
    const text = await readLimited(response);
    const durationMs = elapsed();
    if (!response.ok) {
      return { ok: false, durationMs, error: `HTTP ${response.status}: ${text.slice(0, 200)}` };
    }
    return { ok: true, durationMs, answers: parseBatch(JSON.parse(text), request.flags) };
  } catch (err) {
    const error = err as Error;
    const message =
      error.name === 'TimeoutError' ? `no answer within ${request.timeoutMs} ms` : error.message;
    const cause = (error.cause as Error | undefined)?.message;
    return { ok: false, durationMs: elapsed(), error: cause ? `${message} (${cause})` : message };
  }
}
