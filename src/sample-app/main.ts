#!/usr/bin/env node
// sample-app: the demo's application container. Shows, for the demo flags, what the injected Flipt
// sidecar on localhost answers and what flipt-master answers, with both latencies.
// Configuration: SAMPLE_APP_* environment variables (see config.ts), validated once at start-up.
import { parseSampleAppConfig } from './config.ts';
import { buildSampleApp } from './app.ts';

const parsed = parseSampleAppConfig(process.env);
if (!parsed.ok) {
  console.error(`sample-app: invalid configuration:\n  - ${parsed.errors.join('\n  - ')}`);
  process.exit(2);
}
const { config } = parsed;
const app = buildSampleApp(config, { logger: true });
await app.listen({ host: config.host, port: config.port });
app.log.info(
  { sidecar: config.sidecarUrl, master: config.masterUrl, flags: config.flags },
  'sample-app ready',
);

const stop = (signal: string) => {
  app.log.info({ signal }, 'shutting down');
  app.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.once('SIGTERM', () => stop('SIGTERM'));
process.once('SIGINT', () => stop('SIGINT'));
