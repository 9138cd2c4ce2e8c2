#!/usr/bin/env node
// flipt-exporter: the composition root. Parses the configuration once, wires the Flipt client, the
// S3 store, the schema check and the logger, then runs one export (a CronJob tick) or the watch
// loop. Exit codes: 0 uploaded or unchanged, 1 export failed or refused, 2 invalid usage.
import { wait } from '../common/wait.ts';
import { logFormat } from '../common/log-format.ts';
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pino, type Logger } from 'pino';
import { parseConfig, usage, type ExporterConfig } from './config.ts';
import { NamespaceChangeTracker } from './changes.ts';
import {
  runExport,
  type ExportChangeTracker,
  type ExportDeps,
  type ExportOptions,
  type ExportOutcome,
} from './export.ts';
import { createFliptClient } from './flipt-client.ts';
import { HealthTracker } from './health.ts';
import { createMetrics } from './metrics.ts';
import { createNotifier, createNotifyMetrics, type Notifier, type NotifyMetrics } from './notify.ts';
import { createS3Store } from './s3.ts';
import { createDocumentValidator } from './schema.ts';

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

/** The package version, found from here in the source tree and in dist/ alike. */
function packageVersion(): string {
  for (let dir = import.meta.dirname; ; dir = dirname(dir)) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'flipt-sidecar-injector') return pkg.version ?? 'unknown';
    }
    if (dirname(dir) === dir) return 'unknown';
  }
}

export function logOutcome(logger: Logger, outcome: ExportOutcome, object: string): void {
  const durationMs = Math.round(outcome.durationMs);
  if (outcome.status === 'failed') {
    logger.error(
      {
        result: 'failed',
        stage: outcome.stage,
        problems: outcome.problems.length > 0 ? outcome.problems.slice(0, 50) : undefined,
        fliptRequests: outcome.fliptRequests,
        durationMs,
        object,
      },
      outcome.message,
    );
    return;
  }
  const { status, namespaces, flags, segments, documents, bytes, sha256, fliptRequests, rewrites } = outcome;
  if (status === 'uploaded' && rewrites.length > 0) {
    // Once per upload, not per unchanged watch tick: the same rewrite would repeat forever.
    logger.info(
      {
        rewrites: rewrites
          .slice(0, 50)
          .map((r) => `${r.namespace}/${r.segment} ${r.property}: ${r.from} → ${r.to}`),
        count: rewrites.length,
      },
      `wrote ${rewrites.length} "lt" constraint(s) as the exactly equivalent "lte" (Flipt v1.61.1 sidecars cannot read "lt")`,
    );
  }
  logger.info(
    {
      result: status,
      namespaces,
      flags,
      segments,
      documents,
      bytes,
      sha256,
      previousFlags: status === 'uploaded' ? outcome.previousFlags : undefined,
      fliptRequests,
      namespacesRead: outcome.namespacesRead,
      rewrittenConstraints: rewrites.length,
      durationMs,
      object,
    },
    status === 'uploaded' ? 'export uploaded' : 'export unchanged, nothing uploaded',
  );
}

function exportOptions(config: ExporterConfig, signal: AbortSignal): ExportOptions {
  return {
    namespaces: config.namespaces,
    concurrency: config.concurrency,
    shrink: { allowShrink: config.allowShrink, maxShrink: config.maxShrink },
    flagsPerDocument: config.flagsPerDocument,
    markerNamespace: config.markerNamespace,
    deadlineMs: config.deadlineMs,
    signal,
  };
}

/** The cache push (exporter/notify.ts), built with the metrics it counts into; undefined: no push. */
type NotifierFactory = (metrics?: NotifyMetrics) => Notifier;

async function watch(
  config: ExporterConfig,
  deps: ExportDeps,
  logger: Logger,
  object: string,
  signal: AbortSignal,
  notifierFor: NotifierFactory | undefined,
): Promise<number> {
  const metrics = createMetrics();
  const notifier = notifierFor?.(createNotifyMetrics(metrics.registry));
  const health = new HealthTracker();
  // Loaded only here: a one-shot run (a CronJob tick) never pays for Fastify.
  const { buildWatchServer } = await import('./status-app.ts');
  const app = buildWatchServer({ metrics, health: () => health.state });
  try {
    await app.listen({ host: config.listen.host, port: config.listen.port });
  } catch (err) {
    logger.error({ err }, `cannot listen on ${config.listen.host}:${config.listen.port}`);
    return EXIT_FAILED;
  }
  logger.info(
    { listen: app.addresses(), intervalMs: config.intervalMs },
    'watching: serving /healthz and /metrics',
  );
  const changes: ExportChangeTracker = new NamespaceChangeTracker();
  while (!signal.aborted) {
    const started = Date.now();
    // Each tick has its own deadline; one that runs over fails alone and the loop goes on.
    const outcome = await runExport(deps, { ...exportOptions(config, signal), changes });
    if (signal.aborted) break;
    metrics.record(outcome, Date.now() / 1000);
    health.record(outcome, new Date());
    logOutcome(logger, outcome, object);
    // Only after a changed object; a failed push is logged and counted, and the loop goes on.
    if (outcome.status === 'uploaded' && notifier) await notifier.notify(object);
    // The interval runs from the start of one export to the start of the next.
    await wait(Math.max(0, config.intervalMs - (Date.now() - started)), signal);
  }
  await app.close();
  logger.info('stopped');
  return EXIT_OK;
}

export async function main(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  signal: AbortSignal,
): Promise<number> {
  const parsed = parseConfig(argv, env);
  if (parsed.kind === 'help') {
    process.stdout.write(usage());
    return EXIT_OK;
  }
  if (parsed.kind === 'version') {
    process.stdout.write(`flipt-exporter ${packageVersion()}\n`);
    return EXIT_OK;
  }
  const logger = pino(
    {
      name: 'flipt-exporter',
      level: parsed.kind === 'run' ? parsed.config.logLevel : 'info',
      ...logFormat(),
    },
    // Synchronous: a CronJob pod exits right after the last line and must not lose it.
    pino.destination({ dest: 1, sync: true }),
  );
  if (parsed.kind === 'invalid') {
    logger.error(
      { errors: parsed.errors },
      `invalid configuration (see --help): ${parsed.errors.join('; ')}`,
    );
    return EXIT_USAGE;
  }
  const { config } = parsed;
  for (const warning of parsed.warnings) logger.warn(warning);

  const object = `s3://${config.bucket}/${config.objectKey}`;
  const flipt = createFliptClient({
    baseUrl: config.fliptUrl,
    token: config.fliptToken,
    timeoutMs: config.timeoutMs,
    retries: config.fliptRetries,
    maxPages: config.maxPages,
    maxResponseBytes: config.maxResponseBytes,
    // Per-flag calls plus the flag and segment lists read side by side.
    maxSockets: config.concurrency + 2,
  });
  const store = createS3Store({
    bucket: config.bucket,
    key: config.objectKey,
    endpoint: config.endpoint,
    region: config.region,
    pathStyle: config.pathStyle,
    timeoutMs: config.timeoutMs,
    retries: config.s3Retries,
    baseMs: 250,
    maxMs: 8_000,
    onRetry: ({ operation, attempt, delayMs, error }) =>
      logger.warn({ operation, attempt, delayMs, object }, `S3 request failed, retrying: ${error.message}`),
  });
  let notifierFor: NotifierFactory | undefined;
  if (config.notifyUrls.length > 0) {
    const { notifyToken, notifyTokenFile } = config;
    if (notifyTokenFile !== undefined) {
      // Checked once at start (bad usage), then re-read before each push: a rotated Secret applies.
      try {
        readFileSync(notifyTokenFile, 'utf8');
      } catch (err) {
        logger.error({ err }, `--notify-token-file: cannot read ${notifyTokenFile}`);
        return EXIT_USAGE;
      }
    }
    notifierFor = (metrics) =>
      createNotifier({
        urls: config.notifyUrls.map((u) => new URL(u)),
        token: async () => notifyToken ?? (await readFile(notifyTokenFile as string, 'utf8')),
        timeoutMs: config.notifyTimeoutMs,
        logger,
        metrics,
      });
  }
  const deps: ExportDeps = {
    flipt,
    store,
    validate: config.schemaCheck ? createDocumentValidator() : undefined,
  };
  if (!config.schemaCheck) logger.warn("Flipt's schema check is off (--skip-schema-check)");
  logger.debug(
    {
      config: {
        ...config,
        fliptToken: config.fliptToken ? '(set)' : undefined,
        notifyToken: config.notifyToken ? '(set)' : undefined,
      },
    },
    'configuration',
  );

  try {
    if (config.watch) return await watch(config, deps, logger, object, signal, notifierFor);
    const outcome = await runExport(deps, exportOptions(config, signal));
    logOutcome(logger, outcome, object);
    // The push never changes the exit code: the cache's interval refresh is the fallback.
    if (outcome.status === 'uploaded' && notifierFor) await notifierFor().notify(object);
    return outcome.status === 'failed' ? EXIT_FAILED : EXIT_OK;
  } finally {
    store.destroy();
    flipt.close();
  }
}

if (import.meta.main) {
  const controller = new AbortController();
  for (const name of ['SIGTERM', 'SIGINT'] as const)
    process.once(name, () => controller.abort(new Error(name)));
  const code = await main(process.argv.slice(2), process.env, controller.signal);
  process.exitCode = code;
  // Idle keep-alive sockets must not hold a finished CronJob pod open.
  setTimeout(() => process.exit(code), 1_000).unref();
}
