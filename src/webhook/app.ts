// The webhook as a Fastify app factory: it never listens itself (tests use inject() or port 0; the
// CLI's serve command listens). One handler serves both webhook entries; the path says whether the
// API server matched the namespace entry.
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { pino } from 'pino';
import type { SecureContextOptions } from 'node:tls';
import type { InjectorConfig } from '../core/config.ts';
import { injectPod } from '../core/inject.ts';
import { podDisplayName } from '../core/k8s.ts';
import { sidecarCacheFor } from '../core/sidecar-cache.ts';
import { admissionAnswer, ERROR_RESPONSE, parseAdmissionReview } from './admission.ts';
import { AdmissionLog } from './admission-log.ts';
import {
  createMetrics,
  recordDuration,
  recordRequest,
  recordResult,
  type WebhookMetrics,
} from './metrics.ts';
import { MUTATE_NAMESPACE_PATH, MUTATE_PATH } from './paths.ts';

// The API server accepts request bodies up to 3 MiB (MaxRequestBodyBytes in k8s.io/apiserver) and
// etcd stores objects up to 1.5 MiB by default: an AdmissionReview is the pod plus an envelope of a
// few KiB, so every pod that can be stored fits. Bigger bodies get 413 before they are parsed.
export const BODY_LIMIT_BYTES = 3 * 1024 * 1024;

const JSON_TYPE = 'application/json; charset=utf-8';

export interface AppOptions {
  config: InjectorConfig;
  /** TLS key and certificate (PEM). Without them the app speaks plain HTTP, for app.inject() in tests only. */
  tls?: { key: string | Buffer; cert: string | Buffer };
  /**
   * Where the webhook's lines go (a pino logger); none without it. Fastify's own logger stays off:
   * with one, Fastify builds a child logger and attaches response listeners on every request, ~4 µs
   * of each admission in the server's profile (issue 11), for lines it would not write (request
   * logging is ours, src/webhook/admission-log.ts). Lines about a request carry its reqId.
   */
  log?: FastifyBaseLogger;
  metrics?: WebhookMetrics;
  /** How long a TLS handshake may take before the connection is dropped (tests shorten it). */
  handshakeTimeoutMs?: number;
}

/**
 * A client must finish its TLS handshake within this time. Node's default is 120 s, so a connection
 * that never sends a ClientHello held a socket for two minutes; the API server sends one at once.
 */
export const HANDSHAKE_TIMEOUT_MS = 10_000;

export function tlsOptions(tls: { key: string | Buffer; cert: string | Buffer }): SecureContextOptions {
  return { key: tls.key, cert: tls.cert, minVersion: 'TLSv1.2' };
}

export function buildApp(options: AppOptions): FastifyInstance {
  const metrics = options.metrics ?? createMetrics();
  const log = options.log ?? pino({ enabled: false });
  const app = Fastify({
    logger: false,
    bodyLimit: BODY_LIMIT_BYTES,
    // Shutdown is drained by src/webhook/drain.ts: requests that still arrive on open keep-alive
    // connections are answered (with Connection: close), not refused with 503 or reset.
    forceCloseConnections: false,
    return503OnClosing: false,
    // The API server's timeout for a webhook is at most 30s; never hold a request longer.
    requestTimeout: 30_000,
    ...(options.tls
      ? {
          https: {
            ...tlsOptions(options.tls),
            handshakeTimeout: options.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS,
          },
        }
      : {}),
  }) as unknown as FastifyInstance;

  // AdmissionReviews are JSON; anything else is refused with 415 rather than parsed as text.
  app.removeContentTypeParser('text/plain');

  app.setErrorHandler((error: Error & { statusCode?: number; code?: string }, request, reply) => {
    const status = error.statusCode && error.statusCode >= 400 ? error.statusCode : 500;
    if (status >= 500) {
      metrics.errors.inc({ kind: 'internal' });
      log.error({ reqId: request.id, err: error }, 'request failed');
      return reply
        .code(status)
        .send({ error: 'Internal Server Error', message: 'internal error', statusCode: status });
    }
    metrics.errors.inc({ kind: 'bad-request' });
    log.info({ reqId: request.id, code: error.code, reason: error.message }, 'bad request');
    return reply.code(status).send({ error: 'Bad Request', message: error.message, statusCode: status });
  });

  // Sidecars built and serialized once per distinct settings (src/core/sidecar-cache.ts), owned by
  // this config: a new config starts an empty cache.
  const sidecars = sidecarCacheFor(options.config);
  const admissionLog = new AdmissionLog(log, {
    everyAdmission: ['debug', 'trace'].includes(log.level),
  });
  // Repeats counted when the server stops are written, not lost.
  app.addHook('onClose', async () => admissionLog.flush());
  const handle = (path: string, namespaceEnabled: boolean) =>
    // Not async: an async handler costs a promise, and returning the reply (a thenable) another turn.
    app.post(path, { schema: { response: { '4xx': ERROR_RESPONSE } } }, (request, reply) => {
      const start = performance.now();
      recordRequest(metrics, path);
      const parsed = parseAdmissionReview(request.body);
      if (!parsed.ok) {
        metrics.errors.inc({ kind: 'bad-request' });
        recordDuration(metrics, 'bad-request', start);
        log.info({ reqId: request.id, reason: parsed.message }, 'malformed AdmissionReview');
        reply.code(400).send({ error: 'Bad Request', message: parsed.message, statusCode: 400 });
        return;
      }
      const { request: admission, pod } = parsed.value;
      const result = injectPod(pod ?? {}, {
        config: options.config,
        namespace: admission.namespace,
        namespaceEnabled,
        kind: admission.kind.kind,
        operation: admission.operation,
        sidecars,
      });
      const name = podDisplayName(pod ?? {}, admission.namespace);
      recordResult(metrics, result);
      recordDuration(metrics, result.outcome, start);
      const dryRun = admission.dryRun ?? false;
      // Refusals always have their own line; injections and skips only the first of their workload
      // in each window (src/webhook/admission-log.ts).
      if (
        result.outcome === 'rejected' ||
        admissionLog.first(name, result.outcome, result.decision.reason, dryRun, result.decision.message)
      ) {
        log.info(
          {
            reqId: request.id,
            uid: admission.uid,
            pod: name,
            dryRun,
            outcome: result.outcome,
            reason: result.outcome === 'rejected' ? result.reason : result.decision.reason,
            ...(result.outcome === 'rejected' ? { errors: result.errors } : {}),
            ...(result.outcome === 'injected' ? { operations: result.patch.length } : {}),
          },
          // Each result describes itself: a refused pod never logs the labelled-pod sentence.
          result.outcome === 'rejected' ? result.message : result.decision.message,
        );
      }
      // Already JSON text (admissionAnswer): sent as is, with the header Fastify's serializer would set.
      reply.type(JSON_TYPE).send(admissionAnswer(admission.uid, result, name));
    });
  handle(MUTATE_PATH, false);
  handle(MUTATE_NAMESPACE_PATH, true);

  app.get('/healthz', async () => ({ status: 'ok' }));
  // Ready once routes are loaded; Fastify answers 503 on its own while closing (return503OnClosing).
  app.get('/readyz', async () => ({ status: 'ready' }));
  app.get('/metrics', async (_request, reply) => {
    reply.type(metrics.registry.contentType);
    return metrics.registry.metrics();
  });
  return app;
}
