#!/usr/bin/env node
// flipt-bucket-cache: the composition root. Parses the configuration once, wires the S3 client,
// the document check, the snapshot holder, the metrics and the HTTP server, reads the bucket once,
// then refreshes on an interval until SIGTERM. Exit codes: 0 stopped, 1 cannot listen, 2 invalid
// configuration. Not ready (/readyz 503) until a first valid snapshot; never exits for a bad bucket.
import { pino } from 'pino';
import { logFormat } from '../common/log-format.ts';
import { buildS3Client } from '../exporter/s3.ts';
import { createDocumentValidator } from '../exporter/schema.ts';
import { parseCacheConfig, usage } from './config.ts';
import { createCacheMetrics } from './metrics.ts';
import { buildCacheServer } from './server.ts';
import { BucketCache } from './state.ts';

export async function main(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  signal: AbortSignal,
): Promise<number> {
  const parsed = parseCacheConfig(argv, env);
  if (parsed.kind === 'help') {
    process.stdout.write(usage());
    return 0;
  }
  if (parsed.kind === 'version') {
    process.stdout.write('flipt-bucket-cache 0.1.0\n');
    return 0;
  }
  const logger = pino({
    name: 'flipt-bucket-cache',
    level: parsed.kind === 'run' ? parsed.config.logLevel : 'info',
    ...logFormat(),
  });
  if (parsed.kind === 'invalid') {
    logger.error(
      { errors: parsed.errors },
      `invalid configuration (see --help): ${parsed.errors.join('; ')}`,
    );
    return 2;
  }
  const { config } = parsed;
  if (!config.schemaCheck) logger.warn("Flipt's schema check is off (FLIPT_CACHE_SKIP_SCHEMA_CHECK)");
  const client = buildS3Client({
    endpoint: config.endpoint,
    region: config.region,
    pathStyle: config.pathStyle,
    timeoutMs: config.timeoutMs,
  });
  // The gauge reads the cache when scraped, after it exists.
  const metrics = createCacheMetrics({ confirmedAt: () => cache.confirmedAt });
  const cache = new BucketCache({
    upstream: {
      client,
      bucket: config.bucket,
      prefix: config.prefix,
      timeoutMs: config.timeoutMs,
      maxObjects: config.maxObjects,
      maxObjectBytes: config.maxObjectBytes,
      maxTotalBytes: config.maxTotalBytes,
      onRequest: (operation, result) => metrics.upstream(operation, result),
    },
    validate: config.schemaCheck ? createDocumentValidator() : undefined,
    metrics,
    log: logger,
    // One refresh may page and fetch several objects, each with its own timeout.
    refreshDeadlineMs: Math.max(config.timeoutMs * 3, config.intervalMs),
  });
  const app = buildCacheServer({
    cache,
    bucket: config.bucket,
    prefix: config.prefix,
    metrics,
    refreshToken: config.refreshToken,
    pushWaitMs: config.pushWaitMs,
  });
  try {
    await app.listen({ host: config.host, port: config.port });
  } catch (err) {
    logger.error({ err }, `cannot listen on ${config.host}:${config.port}`);
    client.destroy();
    return 1;
  }
  logger.info(
    {
      listen: app.addresses(),
      bucket: config.bucket,
      prefix: config.prefix,
      endpoint: config.endpoint,
      intervalMs: config.intervalMs,
      push: config.refreshToken !== undefined,
    },
    'serving the bucket from memory; not ready until the first valid snapshot',
  );
  await cache.loop(config.intervalMs, signal);
  await app.close();
  client.destroy();
  logger.info('stopped');
  return 0;
}

if (import.meta.main) {
  const controller = new AbortController();
  for (const name of ['SIGTERM', 'SIGINT'] as const)
    process.once(name, () => controller.abort(new Error(name)));
  process.exitCode = await main(process.argv.slice(2), process.env, controller.signal);
}
