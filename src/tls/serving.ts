// The serving certificate, in one place: where it comes from (mounted files, or the Secret of
// self-managed TLS), when it changes (a check every interval), the swap (the HTTPS server's
// setSecureContext: new connections get the new certificate, open ones and requests in flight keep
// theirs), readiness, the expiry metric and the expiry log lines.
//
// File mode polls the files' contents: mounted Secrets change by an atomic symlink swap, which file
// watchers miss. Nothing can renew a mounted certificate, so it warns when less than
// `expiryWarningMs` remains.
import { Gauge, type Registry } from 'prom-client';
import {
  isReady,
  promoteDelayMs,
  shouldSwap,
  type GeneratedPair,
  type RotationPolicy,
} from '../core/tls-rotation.ts';
import { createCa, generateCertificates, issueServingCert, loadKeyPair, type KeyPair } from '../tls.ts';
import { reconcileOnce, type AutoLogger } from './auto.ts';
import { describeApiError, type SecretStore, type WebhookTarget } from './store.ts';
import { certFacts, type Names } from './x509.ts';

export interface ServingLogger extends AutoLogger {
  error(obj: object, msg: string): void;
}

export type TlsSource =
  | { kind: 'file'; certFile: string; keyFile: string; expiryWarningMs: number }
  | {
      kind: 'auto';
      secret: SecretStore;
      webhook: WebhookTarget;
      names: Names;
      lifetimeMs: number;
      renewFraction: number;
    };

export interface ServingCertificateOptions {
  source: TlsSource;
  checkIntervalMs: number;
  log: ServingLogger;
  now?: () => number;
}

export interface ServingCertificate {
  /** The pair to serve now. */
  readonly current: KeyPair;
  /** Called with each new pair (the server's setSecureContext). */
  onChange(swap: (pair: KeyPair) => void): void;
  /** A valid certificate is served and (auto mode) the webhook configuration trusts its CA. */
  ready(): boolean;
  /** Registers flipt_injector_tls_certificate_expiry_timestamp_seconds. */
  registerMetrics(registry: Registry): void;
  /** Starts the periodic check. */
  start(): void;
  /** One check now (the timer calls this; tests too). Never throws. */
  check(): Promise<void>;
  stop(): void;
}

type Served = KeyPair & {
  fingerprint: string;
  notBefore: number;
  notAfter: number;
  issuer: string | undefined;
};

function describe(pair: KeyPair, issuer?: string): Served {
  const facts = certFacts(pair.cert);
  return {
    ...pair,
    fingerprint: facts.fingerprint,
    notBefore: facts.notBefore,
    notAfter: facts.notAfter,
    issuer,
  };
}

/** Loads the first certificate (file mode fails start-up on a bad file; auto mode never does). */
export async function startServingCertificate(
  options: ServingCertificateOptions,
): Promise<ServingCertificate> {
  const now = options.now ?? Date.now;
  const { source, log } = options;
  const listeners: ((pair: KeyPair) => void)[] = [];
  let served: Served;
  let published: ReadonlySet<string> | undefined;
  let lastWarning = 0;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let gauge: Gauge | undefined;

  const announce = () => {
    const hoursLeft = Math.round((served.notAfter - now()) / 3_600_000);
    gauge?.set(served.notAfter / 1000);
    log.info(
      { fingerprint: served.fingerprint, notAfter: new Date(served.notAfter).toISOString(), hoursLeft },
      'serving certificate in use',
    );
  };
  let swaps = 0;
  const swap = (next: Served) => {
    // The server first: a pair it refuses (a key that does not match, half-replaced files) throws
    // here and is retried at the next check, never recorded as served.
    for (const listener of listeners) listener({ cert: next.cert, key: next.key });
    swaps++;
    served = next;
    announce();
  };

  const policy: RotationPolicy | undefined =
    source.kind === 'auto'
      ? { renewFraction: source.renewFraction, promoteDelayMs: promoteDelayMs(options.checkIntervalMs) }
      : undefined;
  const generate = async (): Promise<GeneratedPair> => {
    if (source.kind !== 'auto') throw new Error('file mode generates nothing');
    const ca = await createCa({ validityMs: source.lifetimeMs });
    const pair = await issueServingCert(ca, { ...source.names, validityMs: source.lifetimeMs });
    return { ca: certFacts(ca.cert), cert: certFacts(pair.cert), key: pair.key };
  };

  async function checkFiles(): Promise<void> {
    if (source.kind !== 'file') return;
    const next = await loadKeyPair(source.certFile, source.keyFile);
    if (next.cert !== served.cert || next.key !== served.key) {
      swap(describe(next));
      log.info({ certFile: source.certFile }, 'serving certificate reloaded');
    }
    const left = served.notAfter - now();
    // Once an hour at most: the check runs every few seconds.
    if (left < source.expiryWarningMs && now() - lastWarning >= 3_600_000) {
      lastWarning = now();
      log.warn(
        {
          certFile: source.certFile,
          notAfter: new Date(served.notAfter).toISOString(),
          hoursLeft: Math.round(left / 3_600_000),
        },
        left <= 0
          ? 'the serving certificate has expired: replace the mounted files'
          : 'the serving certificate expires soon and nothing renews mounted files: replace them',
      );
    }
  }

  async function checkAuto(): Promise<void> {
    if (source.kind !== 'auto' || !policy) return;
    const result = await reconcileOnce({
      secret: source.secret,
      webhook: source.webhook,
      names: source.names,
      policy,
      generate,
      now,
      log,
    });
    published = result.published ?? new Set();
    if (result.published === undefined) {
      log.warn({}, 'the webhook configuration does not exist (yet): not ready');
    }
    const current = result.state.current;
    if (current && shouldSwap(served, current, published)) {
      swap(describe({ cert: current.cert.pem, key: current.key }, current.issuer));
    } else if (current && current.cert.fingerprint === served.fingerprint && served.issuer === undefined) {
      served = { ...served, issuer: current.issuer };
    }
  }

  if (source.kind === 'file') {
    served = describe(await loadKeyPair(source.certFile, source.keyFile));
  } else {
    // Until the Secret is read, a throw-away certificate keeps /healthz answering; not ready.
    const placeholder = await generateCertificates({ ...source.names, validityMs: 24 * 3_600_000 });
    served = describe({ cert: placeholder.cert, key: placeholder.key });
    published = new Set();
  }

  const check = async () => {
    // One check at a time: a slow API server must not pile passes up.
    if (running) return running;
    running = (source.kind === 'file' ? checkFiles() : checkAuto())
      .catch((err: unknown) =>
        log.warn(
          { err: describeApiError(err) },
          source.kind === 'file'
            ? 'certificate reload failed; keeping the current one'
            : 'TLS reconcile failed; keeping the current certificate, retrying at the next check',
        ),
      )
      .finally(() => {
        running = undefined;
      });
    return running;
  };

  const swapsBefore = swaps;
  if (source.kind === 'auto') await check();
  else await checkFiles().catch(() => undefined);
  if (swaps === swapsBefore) announce(); // a swap has announced it already

  return {
    get current() {
      return { cert: served.cert, key: served.key };
    },
    onChange: (listener) => void listeners.push(listener),
    ready: () => isReady(served, source.kind === 'auto' ? published : undefined, now()),
    registerMetrics(registry) {
      gauge = new Gauge({
        name: 'flipt_injector_tls_certificate_expiry_timestamp_seconds',
        help: 'When the served certificate expires (Unix time, seconds)',
        registers: [registry],
      });
      gauge.set(served.notAfter / 1000);
    },
    start() {
      if (timer) return;
      timer = setInterval(() => void check(), options.checkIntervalMs);
      timer.unref();
    },
    check,
    stop() {
      clearInterval(timer);
      timer = undefined;
    },
  };
}
