// The sample app's HTTP face (built, not listening: tests use it on port 0, main.ts listens).
//   GET /             the comparison page (HTML)
//   GET /api/compare  the same as JSON
//   GET /healthz      the app itself is up (not whether either Flipt answers: that is the page's job)
import Fastify, { type FastifyInstance } from 'fastify';
import type { SampleAppConfig } from './config.ts';
import { evaluate as realEvaluate, type Evaluation, type EvaluationRequest } from './flipt.ts';
import { agree, renderPage, type Comparison } from './page.ts';

export interface SampleAppDeps {
  evaluate?: (baseUrl: string, request: EvaluationRequest) => Promise<Evaluation>;
  logger?: boolean;
}

/** Context properties the demo segments use; anything else in the query is ignored. */
export const CONTEXT_KEYS = ['plan', 'region', 'orders'] as const;
const MAX_VALUE = 100;

const querySchema = {
  type: 'object',
  properties: {
    entity: { type: 'string', maxLength: MAX_VALUE },
    ...Object.fromEntries(CONTEXT_KEYS.map((k) => [k, { type: 'string', maxLength: MAX_VALUE }])),
  },
} as const;

type Query = Partial<Record<'entity' | (typeof CONTEXT_KEYS)[number], string>>;

export function buildSampleApp(config: SampleAppConfig, deps: SampleAppDeps = {}): FastifyInstance {
  const evaluate = deps.evaluate ?? realEvaluate;
  const app = Fastify({ logger: deps.logger ?? false });

  async function compare(query: Query): Promise<Comparison> {
    const entityId = query.entity?.trim() || 'demo-user';
    const context: Record<string, string> = {};
    for (const key of CONTEXT_KEYS) {
      const value = query[key]?.trim();
      if (value) context[key] = value;
    }
    const request = {
      namespace: config.namespace,
      flags: config.flags,
      entityId,
      context,
      timeoutMs: config.timeoutMs,
    };
    // One after the other, so that neither request competes with the other for this process.
    const sidecar = await evaluate(config.sidecarUrl, request);
    const master = await evaluate(config.masterUrl, request);
    return {
      namespace: config.namespace,
      entityId,
      context,
      sidecar: { ...sidecar, url: config.sidecarUrl },
      master: { ...master, url: config.masterUrl },
    };
  }

  app.get<{ Querystring: Query }>('/', { schema: { querystring: querySchema } }, async (request, reply) => {
    const comparison = await compare(request.query);
    return reply.type('text/html; charset=utf-8').send(renderPage(comparison, config.flags));
  });
  app.get<{ Querystring: Query }>(
    '/api/compare',
    { schema: { querystring: querySchema } },
    async (request) => {
      const comparison = await compare(request.query);
      return { ...comparison, flags: config.flags, agree: agree(comparison) ?? null };
    },
  );
  app.get('/healthz', async () => ({ status: 'ok' }));
  return app;
}
