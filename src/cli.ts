#!/usr/bin/env node
// flipt-injector: the composition root. serve | inject | check | certs | webhook-config.
// Reads files, flags and the environment, calls the core and the shells, and maps results to exit codes.
import { once } from 'node:events';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConfigError, loadConfig } from './config-file.ts';
import type { InjectorConfig } from './core/config.ts';
import { parseGoDuration } from '../common/go-duration.ts';
import { logFormat } from '../common/log-format.ts';
import { checkAutoTiming, DEFAULT_RENEW_FRACTION } from './core/tls-rotation.ts';
import { loadKeyPair } from './tls.ts';
import type { TlsSource } from './tls/serving.ts';

// Each command loads only what it needs: `serve` runs for months and should not carry the YAML
// library, the manifest code or the certificate generator in its memory.

const USAGE = `Usage: flipt-injector <command> [options]

Commands:
  serve           run the HTTPS mutating admission webhook
                    --tls-cert FILE --tls-key FILE [--config FILE] [--port 8443] [--host 0.0.0.0]
                    [--tls-check-interval 10s] [--tls-expiry-warning 336h]
                  or, self-managed TLS (a CA and certificate in a Secret, caBundle patched):
                    --tls-auto --dns-name NAME... [--ip ADDR]... [--tls-secret flipt-sidecar-injector-tls]
                    [--tls-secret-namespace NS] [--webhook-configuration flipt-sidecar-injector]
                    [--tls-lifetime 2160h] [--tls-renew-fraction 0.667] [--tls-check-interval 10s]
  inject          inject into manifests offline, write YAML to stdout
                    -f FILE|- [--config FILE] [--namespace-enabled]
  check           explain, per pod template, whether and why it would be injected
                    -f FILE|- [--config FILE] [--namespace-enabled]
  certs           generate a CA and a serving certificate (ca.crt, ca.key, tls.crt, tls.key)
                    --out-dir DIR [--dns-name NAME]... [--ip ADDR]... [--days 365]
                    [--ca-cert FILE --ca-key FILE]  (sign with this CA instead of a new one)
  webhook-config  print the MutatingWebhookConfiguration as YAML
                    --ca-file FILE (--url https://HOST:PORT | --service NAME --service-namespace NS [--service-port 443])
                    [--injector-namespace NS] [--failure-policy Fail|Ignore]

Configuration: --config FILE (YAML), overridden by FLIPT_INJECTOR_* environment variables (see README).
`;

export interface Io {
  /** Writes to stdout; a promise means "wait before writing more" (a slow pipe reader). */
  stdout: (text: string) => void | Promise<void>;
  stderr: (text: string) => void;
  readStdin: () => Promise<string>;
  env: Record<string, string | undefined>;
}

class UsageError extends Error {}

const OPTIONS = {
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  'tls-auto': { type: 'boolean' },
  'tls-secret': { type: 'string' },
  'tls-secret-namespace': { type: 'string' },
  'webhook-configuration': { type: 'string' },
  'tls-lifetime': { type: 'string' },
  'tls-renew-fraction': { type: 'string' },
  'tls-check-interval': { type: 'string' },
  'tls-expiry-warning': { type: 'string' },
  config: { type: 'string' },
  port: { type: 'string' },
  host: { type: 'string' },
  file: { type: 'string', short: 'f' },
  'namespace-enabled': { type: 'boolean' },
  'out-dir': { type: 'string' },
  'dns-name': { type: 'string', multiple: true },
  ip: { type: 'string', multiple: true },
  days: { type: 'string' },
  'ca-cert': { type: 'string' },
  'ca-key': { type: 'string' },
  'ca-file': { type: 'string' },
  url: { type: 'string' },
  service: { type: 'string' },
  'service-namespace': { type: 'string' },
  'service-port': { type: 'string' },
  'injector-namespace': { type: 'string' },
  'failure-policy': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} satisfies ParseArgsConfig['options'];

type Flags = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

function required(flags: Flags, name: keyof Flags): string {
  const value = flags[name];
  if (typeof value !== 'string' || value === '') throw new UsageError(`--${name} is required`);
  return value;
}

function integerFlag(flags: Flags, name: keyof Flags, fallback: number, min: number, max: number): number {
  const value = flags[name];
  if (value === undefined) return fallback;
  const number = Number(value);
  if (typeof value !== 'string' || !/^\d+$/.test(value) || number < min || number > max) {
    throw new UsageError(`--${name} must be an integer from ${min} to ${max} (got ${JSON.stringify(value)})`);
  }
  return number;
}

async function readInput(flags: Flags, io: Io): Promise<string> {
  const file = required(flags, 'file');
  return file === '-' ? io.readStdin() : readFile(file, 'utf8');
}

async function manifestCommand(flags: Flags, io: Io, mode: 'inject' | 'check'): Promise<number> {
  const config = await loadConfig(flags.config, io.env);
  const [{ injectManifests }, { openSpool }] = await Promise.all([
    import('./manifest.ts'),
    import('./spool.ts'),
  ]);
  const text = await readInput(flags, io);
  // Documents are written to the spool as they are done and reach stdout only if none was refused.
  const spool = mode === 'inject' ? openSpool() : undefined;
  try {
    const result = injectManifests(
      text,
      { config, namespaceEnabled: flags['namespace-enabled'] ?? false },
      spool ? (chunk) => spool.write(chunk) : () => {},
    );
    if (mode === 'check') {
      for (const { subject, verb, reason, detail } of result.reports) {
        io.stdout(`${subject}: ${verb} [${reason}] ${detail}\n`);
      }
      if (result.reports.length === 0) io.stdout('no pods or pod templates found\n');
    }
    for (const error of result.errors) io.stderr(`${error}\n`);
    if (result.errors.length > 0) return 1;
    await spool?.copyTo(io.stdout);
    return 0;
  } finally {
    spool?.close();
  }
}

function durationFlag(flags: Flags, name: keyof Flags, fallback: string, minMs: number): number {
  const value = flags[name] ?? fallback;
  const ms = typeof value === 'string' ? parseGoDuration(value) : undefined;
  if (ms === undefined || ms < minMs) {
    throw new UsageError(
      `--${name} must be a Go duration of at least ${minMs} ms, such as 10s or 720h (got ${JSON.stringify(value)})`,
    );
  }
  return ms;
}

async function tlsSource(flags: Flags, config: InjectorConfig): Promise<TlsSource> {
  if (!flags['tls-auto']) {
    return {
      kind: 'file',
      certFile: required(flags, 'tls-cert'),
      keyFile: required(flags, 'tls-key'),
      expiryWarningMs: durationFlag(flags, 'tls-expiry-warning', '336h', 0),
    };
  }
  if (flags['tls-cert'] !== undefined || flags['tls-key'] !== undefined) {
    throw new UsageError('--tls-auto manages its own certificate: leave out --tls-cert and --tls-key');
  }
  const names = { dnsNames: flags['dns-name'] ?? [], ipAddresses: flags.ip ?? [] };
  if (names.dnsNames.length + names.ipAddresses.length === 0) {
    throw new UsageError('--tls-auto needs the names the API server calls: --dns-name NAME (or --ip ADDR)');
  }
  const fractionText = flags['tls-renew-fraction'];
  const renewFraction = fractionText === undefined ? DEFAULT_RENEW_FRACTION : Number(fractionText);
  const lifetimeMs = durationFlag(flags, 'tls-lifetime', '2160h', 1_000);
  const checkIntervalMs = durationFlag(flags, 'tls-check-interval', '10s', 100);
  const problem = Number.isFinite(renewFraction)
    ? checkAutoTiming(lifetimeMs, renewFraction, checkIntervalMs)
    : `--tls-renew-fraction must be a number between 0 and 1 (got ${JSON.stringify(fractionText)})`;
  if (problem) throw new UsageError(problem);
  const { kubeSecretStore, kubeWebhookTarget, loadKubeConfig } = await import('./tls/kube.ts');
  const kubeConfig = loadKubeConfig();
  return {
    kind: 'auto',
    secret: kubeSecretStore(
      kubeConfig,
      flags['tls-secret-namespace'] ?? config.injector.namespace,
      flags['tls-secret'] ?? 'flipt-sidecar-injector-tls',
    ),
    webhook: kubeWebhookTarget(kubeConfig, flags['webhook-configuration'] ?? 'flipt-sidecar-injector'),
    names,
    lifetimeMs,
    renewFraction,
  };
}

async function serve(flags: Flags, io: Io): Promise<number> {
  const config = await loadConfig(flags.config, io.env);
  const source = await tlsSource(flags, config);
  const checkIntervalMs = durationFlag(flags, 'tls-check-interval', '10s', 100);
  const [{ startInjectorServer }, { startServingCertificate }, { pino }] = await Promise.all([
    import('./server.ts'),
    import('./tls/serving.ts'),
    import('pino'),
  ]);
  // The certificate is loaded before the server exists, so it has a logger of its own (same stream).
  const log = pino(
    { level: config.injector.logLevel, ...logFormat() },
    pino.destination({ dest: 1, sync: false }),
  );
  const serving = await startServingCertificate({ source, checkIntervalMs, log });
  const server = await startInjectorServer({
    config,
    tls: serving.current,
    port: integerFlag(flags, 'port', 8443, 0, 65535),
    host: flags.host ?? '0.0.0.0',
    ready: () => serving.ready(),
    registerMetrics: (registry) => serving.registerMetrics(registry),
  });
  serving.onChange((pair) => server.reloadTls(pair));
  serving.start();
  server.log.info(
    { url: server.url, namespace: config.injector.namespace, tls: source.kind },
    'flipt-sidecar-injector listening',
  );

  return new Promise((resolve) => {
    const stop = (signal: string) => {
      server.log.info({ signal }, 'shutting down: finishing in-flight requests');
      serving.stop();
      server.close().then(
        () => {
          log.flush();
          resolve(0);
        },
        (err: Error) => {
          server.log.error({ err }, 'shutdown failed');
          resolve(1);
        },
      );
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}

async function certs(flags: Flags, io: Io): Promise<number> {
  const outDir = required(flags, 'out-dir');
  const { generateCertificates, issueServingCert } = await import('./tls.ts');
  const options = {
    dnsNames: flags['dns-name'] ?? ['localhost'],
    ipAddresses: flags.ip ?? [],
    days: integerFlag(flags, 'days', 365, 1, 3650),
  };
  let set;
  if (flags['ca-cert'] !== undefined || flags['ca-key'] !== undefined) {
    // Re-issuing with a kept CA: the caBundle the API server already trusts stays valid (deploy.sh).
    const ca = await loadKeyPair(required(flags, 'ca-cert'), required(flags, 'ca-key'));
    const serving = await issueServingCert(ca, options);
    set = { caCert: ca.cert, caKey: ca.key, cert: serving.cert, key: serving.key };
  } else set = await generateCertificates(options);
  await mkdir(outDir, { recursive: true });
  await writeFile(join(outDir, 'ca.crt'), set.caCert);
  await writeFile(join(outDir, 'ca.key'), set.caKey, { mode: 0o600 });
  await writeFile(join(outDir, 'tls.crt'), set.cert);
  await writeFile(join(outDir, 'tls.key'), set.key, { mode: 0o600 });
  io.stdout(`wrote ${['ca.crt', 'ca.key', 'tls.crt', 'tls.key'].map((f) => join(outDir, f)).join(', ')}\n`);
  return 0;
}

async function webhookConfig(flags: Flags, io: Io): Promise<number> {
  const caBundle = Buffer.from(await readFile(required(flags, 'ca-file'))).toString('base64');
  const policy = flags['failure-policy'] ?? 'Fail';
  if (policy !== 'Fail' && policy !== 'Ignore')
    throw new UsageError(`--failure-policy must be Fail or Ignore (got ${policy})`);
  let config: InjectorConfig | undefined;
  if (flags['injector-namespace'] === undefined) config = await loadConfig(flags.config, io.env);
  const injectorNamespace = flags['injector-namespace'] ?? (config as InjectorConfig).injector.namespace;
  let target;
  if (flags.url !== undefined) target = { url: flags.url };
  else if (flags.service !== undefined) {
    target = {
      service: {
        name: flags.service,
        namespace: flags['service-namespace'] ?? injectorNamespace,
        port: integerFlag(flags, 'service-port', 443, 1, 65535),
      },
    };
  } else throw new UsageError('one of --url or --service is required');
  const [{ stringify }, { mutatingWebhookConfiguration }] = await Promise.all([
    import('yaml'),
    import('./webhook/registration.ts'),
  ]);
  io.stdout(
    stringify(mutatingWebhookConfiguration({ caBundle, target, injectorNamespace, failurePolicy: policy })),
  );
  return 0;
}

/** Runs the CLI; returns the exit code. Never throws for user errors. */
export async function main(argv: string[], io: Io): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    io.stderr(`${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const [command, ...rest] = parsed.positionals;
  if (parsed.values.help || command === undefined || command === 'help') {
    io.stdout(USAGE);
    return command === undefined && !parsed.values.help ? 2 : 0;
  }
  if (rest.length > 0) {
    io.stderr(`unexpected arguments: ${rest.join(' ')}\n\n${USAGE}`);
    return 2;
  }
  const commands: Record<string, (flags: Flags, io: Io) => Promise<number>> = {
    serve,
    inject: (f, i) => manifestCommand(f, i, 'inject'),
    check: (f, i) => manifestCommand(f, i, 'check'),
    certs,
    'webhook-config': webhookConfig,
  };
  const run = commands[command];
  if (!run) {
    io.stderr(`unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
    return 2;
  }
  try {
    return await run(parsed.values, io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr(`${err.message}\n\n${USAGE}`);
      return 2;
    }
    io.stderr(`${err instanceof ConfigError ? err.message : `error: ${(err as Error).message}`}\n`);
    return 1;
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

if (import.meta.main) {
  const code = await main(process.argv.slice(2), {
    stdout: (t) => (process.stdout.write(t) ? undefined : once(process.stdout, 'drain').then(() => {})),
    stderr: (t) => process.stderr.write(t),
    readStdin,
    env: process.env,
  });
  process.exitCode = code;
}
