// Running the webhook: HTTPS only (TLS >= 1.2), certificate swap without restart (which certificate
// and when: src/tls/serving.ts), readiness, and a graceful stop that lets in-flight admission
// requests finish and closes keep-alive connections cleanly.
import type { FastifyInstance } from 'fastify';
import { destination, pino, type Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Server as HttpsServer } from 'node:https';
import type { InjectorConfig } from './core/config.ts';
import { buildApp, tlsOptions } from './webhook/app.ts';
import { gracefulClose } from './webhook/drain.ts';
import { createMetrics } from './webhook/metrics.ts';
import { logFormat } from '../common/log-format.ts';

export interface InjectorServerOptions {
  host?: string;
  port: number;
  tls: { cert: string; key: string };
  config: InjectorConfig;
  /** pino log level; false silences logging (tests). Defaults to the config's injector.logLevel. */
  logLevel?: string | false;
  /** TLS handshake timeout (default HANDSHAKE_TIMEOUT_MS); tests shorten it. */
  handshakeTimeoutMs?: number;
  /** How long a stop lets open keep-alive connections bring requests (default DRAIN_MS). */
  drainMs?: number;
  /** /readyz answers 503 while this returns false (no valid certificate, caBundle not patched yet). */
  ready?: () => boolean;
  /** Adds metrics of other parts (the certificate's expiry) to the app's registry. */
  registerMetrics?: (registry: Registry) => void;
}

export interface InjectorServer {
  app: FastifyInstance;
  /** The webhook's logger (Fastify's own is off, see src/webhook/app.ts). */
  log: Logger;
  /** https://host:port as listened on. */
  url: string;
  /** Swaps the serving certificate for new connections (rotation without restart). */
  reloadTls(tls: { cert: string; key: string }): void;
  close(): Promise<void>;
}

export async function startInjectorServer(options: InjectorServerOptions): Promise<InjectorServer> {
  const level = options.logLevel ?? options.config.injector.logLevel;
  // Logs are written in 4 KiB batches, flushed at least every 500 ms and on close: a synchronous
  // write per admission request cost more CPU than the injection itself.
  const stdout =
    level === false ? undefined : destination({ dest: 1, sync: false, minLength: 4096, periodicFlush: 500 });
  const log = stdout ? pino({ level: level as string, ...logFormat() }, stdout) : pino({ enabled: false });
  const metrics = createMetrics();
  options.registerMetrics?.(metrics.registry);
  const app = buildApp({
    config: options.config,
    tls: options.tls,
    metrics,
    log,
    ...(options.handshakeTimeoutMs === undefined ? {} : { handshakeTimeoutMs: options.handshakeTimeoutMs }),
  });
  const ready = options.ready;
  if (ready) {
    // Callback style, as in src/webhook/drain.ts: it runs on every admission request.
    app.addHook('onRequest', (request, reply, done) => {
      if (request.url === '/readyz' && !ready()) {
        reply.code(503).send({ status: 'no trusted certificate yet' });
        return;
      }
      done();
    });
  }
  gracefulClose(app, options.drainMs);
  if (stdout) app.addHook('onClose', async () => stdout.flushSync());
  const host = options.host ?? '0.0.0.0';
  await app.listen({ host, port: options.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  const urlHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  return {
    app,
    log,
    url: `https://${urlHost.includes(':') ? `[${urlHost}]` : urlHost}:${port}`,
    reloadTls: (tls) => (app.server as HttpsServer).setSecureContext(tlsOptions(tls)),
    close: () => app.close(),
  };
}
