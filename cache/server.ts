// The cache's HTTP face: the read-only S3 slice for the one configured bucket and prefix, served
// from the in-memory snapshot, plus /healthz, /readyz, /metrics and the authenticated push
// (POST /-/refresh). Builds the app without listening, so tests and main.ts choose the port.
//
// Requests from sidecars carry SigV4 signatures made with placeholder keys: they are not checked.
// The cache serves only flag state meant for every workload of the cluster; who may reach it is a
// network question (see docs/bucket-cache.md and the chart's NetworkPolicy option).
import { createHash, timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { CacheMetrics } from './metrics.ts';
import {
  accessDenied,
  errorXml,
  etagMatches,
  httpDate,
  listObjectsXml,
  methodNotAllowed,
  noSuchBucket,
  noSuchKey,
  parseListParams,
  parseS3Target,
  serviceUnavailable,
  type S3Error,
} from './s3-api.ts';
import { versionLabel } from './snapshot.ts';
import type { BucketCache } from './state.ts';

export interface CacheServerDeps {
  cache: BucketCache;
  bucket: string;
  prefix: string;
  metrics: CacheMetrics;
  /** Bearer token for POST /-/refresh; undefined disables the push. */
  refreshToken: string | undefined;
  /** Longest a push waits for its refresh before answering 202. */
  pushWaitMs: number;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

export function buildCacheServer(deps: CacheServerDeps): FastifyInstance {
  const { cache, bucket, prefix, metrics } = deps;
  // Per-request logs at thousands of polls a second would cost more than serving them.
  const app = Fastify({ logger: false, routerOptions: { maxParamLength: 1024 } });
  let requestCounter = 0;
  const tokenDigest = deps.refreshToken === undefined ? undefined : digest(deps.refreshToken);

  function fail(reply: FastifyReply, request: FastifyRequest, error: S3Error) {
    metrics.served(error.status === 404 ? 'not_found' : 'error');
    const path = request.url.split('?', 1)[0] ?? '/';
    reply.code(error.status).header('content-type', 'application/xml');
    return reply.send(errorXml(error, path, (++requestCounter).toString(16).toUpperCase()));
  }

  function serveS3(request: FastifyRequest, reply: FastifyReply) {
    const target = parseS3Target(request.url);
    if (target.kind === 'bad') return fail(reply, request, target.error);
    if (target.bucket !== bucket) return fail(reply, request, noSuchBucket(target.bucket));
    const snapshot = cache.snapshot;
    if (!snapshot)
      return fail(reply, request, serviceUnavailable('the cache has no valid snapshot of the bucket yet'));
    if (target.kind === 'list') {
      const params = parseListParams(target.query);
      if ('code' in params) return fail(reply, request, params);
      if (!params.prefix.startsWith(prefix)) {
        return fail(reply, request, accessDenied(`this cache serves only keys under "${prefix}"`));
      }
      metrics.served('list');
      return reply
        .header('content-type', 'application/xml')
        .send(listObjectsXml(bucket, snapshot.sorted, params));
    }
    if (!target.key.startsWith(prefix)) {
      return fail(reply, request, accessDenied(`this cache serves only keys under "${prefix}"`));
    }
    const object = snapshot.objects.get(target.key);
    if (!object) return fail(reply, request, noSuchKey(bucket, target.key));
    reply.header('etag', object.etag).header('last-modified', httpDate(object.lastModified));
    if (etagMatches(request.headers['if-none-match'] as string | undefined, object.etag)) {
      metrics.served('not_modified');
      return reply.code(304).send();
    }
    reply.header('content-type', object.contentType);
    // HEAD runs this GET handler (Fastify's exposed HEAD route) and drops the body, keeping its length.
    metrics.served(request.method === 'HEAD' ? 'head' : 'get');
    return reply.send(object.body);
  }

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    const s = cache.snapshot;
    const last = cache.lastOutcome;
    const body = {
      ready: s !== undefined,
      version: s ? versionLabel(s) : undefined,
      objects: s?.sorted.length,
      flags: s?.flags,
      confirmedAt:
        cache.confirmedAt !== undefined ? new Date(cache.confirmedAt * 1000).toISOString() : undefined,
      lastRefresh: last
        ? { result: last.result, message: last.message, problems: last.problems?.slice(0, 20) }
        : undefined,
    };
    // Ready from the first good snapshot on, and stays ready while the bucket is unreachable:
    // serving the last good state is the point. Alert on flipt_bucket_cache_snapshot_age_seconds.
    return reply.code(s ? 200 : 503).send(body);
  });
  app.get('/metrics', async (_request, reply) => {
    const body = await metrics.registry.metrics();
    return reply.header('content-type', metrics.registry.contentType).send(body);
  });
  app.post('/-/refresh', { bodyLimit: 1024 }, async (request, reply) => {
    if (!tokenDigest) {
      return reply.code(403).send({ error: 'push is disabled: set FLIPT_CACHE_REFRESH_TOKEN to enable it' });
    }
    const header = request.headers.authorization ?? '';
    const given = header.startsWith('Bearer ') ? header.slice(7) : '';
    if (!timingSafeEqual(digest(given), tokenDigest)) {
      return reply
        .code(401)
        .header('www-authenticate', 'Bearer')
        .send({ error: 'missing or wrong bearer token' });
    }
    const refresh = cache.refresh('push');
    // Bounded: a slow bucket answers 202 and the refresh goes on.
    let timer: NodeJS.Timeout | undefined;
    const waited = await Promise.race([
      refresh,
      new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), deps.pushWaitMs))),
    ]);
    clearTimeout(timer);
    if (!waited) return reply.code(202).send({ result: 'pending' });
    return reply.code(waited.result === 'updated' || waited.result === 'unchanged' ? 200 : 502).send(waited);
  });
  app.get('/*', serveS3);
  app.setNotFoundHandler((request, reply) => fail(reply, request, methodNotAllowed(request.method)));
  return app;
}
