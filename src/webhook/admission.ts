// AdmissionReview (admission.k8s.io/v1) in and out: a body is checked once here, so the core only
// ever sees a well-formed Pod, and every answer is a well-formed AdmissionReview.
import { Type, type Static } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import type { InjectionResult } from '../core/inject.ts';
import { rejectionMessage } from '../core/refusal.ts';
import { encodePatch } from '../core/sidecar-cache.ts';
import type { Pod } from '../core/k8s.ts';
import { podShapeProblem, shapeMessage } from '../core/pod-shape.ts';

const RequestShape = Type.Object({
  uid: Type.String({ minLength: 1 }),
  kind: Type.Object({ kind: Type.String() }),
  operation: Type.String(),
  namespace: Type.Optional(Type.String()),
  name: Type.Optional(Type.String()),
  dryRun: Type.Optional(Type.Boolean()),
  object: Type.Optional(Type.Unknown()),
});

export type AdmissionRequest = Static<typeof RequestShape>;

// Compiled once: checking every admission request is on the hot path.
const requestCheck = TypeCompiler.Compile(RequestShape);

export interface ParsedRequest {
  request: AdmissionRequest;
  /** The Pod to consider; undefined when the request is not a Pod CREATE (then nothing is read from it). */
  pod: Pod | undefined;
}

export type ParseResult = { ok: true; value: ParsedRequest } | { ok: false; message: string };

function firstError(check: typeof requestCheck, value: unknown, root: string): string {
  const error = check.Errors(value).First();
  return error
    ? `${root}${error.path.replaceAll('/', '.')}: ${error.message.toLowerCase()}`
    : `${root} is invalid`;
}

/** Validates a request body as an admission.k8s.io/v1 AdmissionReview carrying a request. */
export function parseAdmissionReview(body: unknown): ParseResult {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return { ok: false, message: 'the body must be a JSON object (an admission.k8s.io/v1 AdmissionReview)' };
  }
  const review = body as Record<string, unknown>;
  if (review.kind !== 'AdmissionReview') {
    return { ok: false, message: `kind must be AdmissionReview (got ${JSON.stringify(review.kind)})` };
  }
  if (review.apiVersion !== 'admission.k8s.io/v1') {
    return {
      ok: false,
      message: `apiVersion must be admission.k8s.io/v1 (got ${JSON.stringify(review.apiVersion)}); register the webhook with admissionReviewVersions: ["v1"]`,
    };
  }
  if (!requestCheck.Check(review.request)) {
    return { ok: false, message: firstError(requestCheck, review.request, 'request') };
  }
  const request = review.request;
  if (request.kind.kind !== 'Pod' || request.operation !== 'CREATE')
    return { ok: true, value: { request, pod: undefined } };
  if (request.object === undefined || request.object === null) {
    return { ok: false, message: 'request.object is missing: a Pod CREATE must carry the pod' };
  }
  // The same check the CLI runs on every pod template (src/core/pod-shape.ts).
  const problem = podShapeProblem(request.object);
  if (problem) return { ok: false, message: shapeMessage(problem, 'request.object') };
  return { ok: true, value: { request, pod: request.object as Pod } };
}

/**
 * The answer's shape: a type only. No runtime schema: the answer is built here, never parsed, and a
 * compiled serializer's escape check is slower than JSON.stringify on its one large field (the
 * base64 patch).
 */
export interface AdmissionReview {
  apiVersion: 'admission.k8s.io/v1';
  kind: 'AdmissionReview';
  response: {
    uid: string;
    allowed: boolean;
    patchType?: 'JSONPatch';
    patch?: string;
    status?: { code: number; message: string; reason?: string };
  };
}

/** A 4xx answer to a request that is not a usable AdmissionReview. */
export const ERROR_RESPONSE = Type.Object({
  error: Type.String(),
  message: Type.String(),
  statusCode: Type.Integer(),
});

/** The AdmissionReview answering `uid` with the core's result (or with "allowed, nothing to do"). */
export function admissionResponse(
  uid: string,
  result: InjectionResult | undefined,
  podName: string,
): AdmissionReview {
  const review: AdmissionReview = {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    response: { uid, allowed: true },
  };
  if (result?.outcome === 'rejected') {
    review.response.allowed = false;
    review.response.status = {
      code: 400,
      reason: 'BadRequest',
      message: rejectionMessage(`pod ${podName}`, result.errors),
    };
  } else if (result?.outcome === 'injected' && result.patch.length > 0) {
    review.response.patchType = 'JSONPatch';
    review.response.patch = Buffer.from(JSON.stringify(result.patch)).toString('base64');
  }
  return review;
}

/**
 * JSON.stringify(text): the text in quotes when nothing in it is escaped, as in every UID the API
 * server sends (JSON.stringify cost ~1 µs per admission in the server, the scan a few ns per char).
 */
function jsonString(text: string): string {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    // Escaped by JSON.stringify: control characters, '"', '\\' and lone surrogates (any surrogate sends
    // the text there).
    if (c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0xd800 && c <= 0xdfff)) return JSON.stringify(text);
  }
  return `"${text}"`;
}

/**
 * The JSON text of admissionResponse(uid, result, podName), byte for byte, written without
 * serializing objects for the common answer (a patch): the patch comes from encodePatch, which
 * reuses the bytes of a cached sidecar, and the envelope around it is fixed text. Test:
 * test/webhook/answer-cache.test.ts compares both for every golden case.
 * Text, not a Buffer assembled from kept bytes (tried in issue 11): Node writes a string answer and
 * its headers to TLS as one piece from the stack, a Buffer as a second piece joined in malloc'd
 * memory after a pooled allocation; with both builds sharing one core, the text answer served 5-6 %
 * more admissions (8 paired rounds of 8 s, every round), with the same p99.
 */
export function admissionAnswer(uid: string, result: InjectionResult | undefined, podName: string): string {
  if (result?.outcome === 'injected' && result.patch.length > 0) {
    // base64 needs no escaping in a JSON string; the uid may.
    return `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":${jsonString(uid)},"allowed":true,"patchType":"JSONPatch","patch":"${encodePatch(result.patch)}"}}`;
  }
  return JSON.stringify(admissionResponse(uid, result, podName));
}
