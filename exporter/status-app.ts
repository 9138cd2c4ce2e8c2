// The watch loop's status app: /healthz (the last export's result) and /metrics (Prometheus).
// A Fastify app that does not listen, so tests use inject(); main.ts opens the port.
import Fastify, { type FastifyInstance } from 'fastify';
import type { HealthState } from './health.ts';
import type { ExporterMetrics } from './metrics.ts';

export interface WatchServerDeps {
  metrics: ExporterMetrics;
  health: () => HealthState;
}

export function buildWatchServer(deps: WatchServerDeps): FastifyInstance {
  // Scrapes every few seconds would drown the export logs; the loop logs what matters.
  const app = Fastify({ logger: false });
  app.get('/healthz', async (_request, reply) => {
    const state = deps.health();
    // 503 until the first export succeeds and while exports fail: fit for a readiness probe and
    // alerts, not for a liveness probe (restarting the exporter does not repair a master).
    return reply.code(state.status === 'ok' ? 200 : 503).send(state);
  });
  app.get('/metrics', async (_request, reply) => {
    const body = await deps.metrics.registry.metrics();
    return reply.header('content-type', deps.metrics.registry.contentType).send(body);
  });
  return app;
}
