// Certificates for the webhook: a CA and a serving certificate it signs, generated with selfsigned
// (tests, `flipt-injector certs`, `serve --tls-auto`), and loading PEM files from disk. Which
// certificate is served, and when it changes, is src/tls/serving.ts's job.
import { readFile } from 'node:fs/promises';

export interface CertificateSet {
  caCert: string;
  caKey: string;
  cert: string;
  key: string;
}

/** A PEM certificate and its private key. */
export interface KeyPair {
  cert: string;
  key: string;
}

export interface CertificateOptions {
  /** DNS names for the serving certificate, e.g. flipt-sidecar-injector.flipt-system.svc. */
  dnsNames?: string[];
  ipAddresses?: string[];
  /** Validity in days (CA and serving certificate). */
  days?: number;
  /** Validity in milliseconds; wins over `days` (self-managed TLS: short lifetimes in tests). */
  validityMs?: number;
  commonName?: string;
}

const DAY_MS = 24 * 60 * 60 * 1000;

/** Backdating: an hour, or a tenth of a short lifetime (whose renewal point it would otherwise move). */
export function backdateMs(validityMs: number): number {
  return Math.min(60 * 60_000, Math.floor(validityMs / 10));
}

// EC P-256 with SHA-256: fast to generate, accepted by the API server and every TLS client.
async function generate(
  commonName: string,
  validityMs: number,
  extra: Record<string, unknown>,
): Promise<KeyPair> {
  // Loaded on demand: a `serve` with mounted files never generates anything.
  const selfsigned = await import('selfsigned');
  const now = Date.now();
  const pems = await selfsigned.generate([{ name: 'commonName', value: commonName }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    // Backdated, so that clock differences between machines never make it "not yet valid".
    notBeforeDate: new Date(now - backdateMs(validityMs)),
    notAfterDate: new Date(now + validityMs),
    ...extra,
  });
  return { cert: pems.cert, key: pems.private };
}

function validity(options: { days?: number; validityMs?: number }): number {
  return options.validityMs ?? (options.days ?? 365) * DAY_MS;
}

/** A new self-signed CA. */
export function createCa(
  options: { commonName?: string; days?: number; validityMs?: number } = {},
): Promise<KeyPair> {
  return generate(options.commonName ?? 'flipt-sidecar-injector CA', validity(options), {
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    ],
  });
}

/** A TLS serving certificate signed by `ca` for the given DNS names and IP addresses. */
export function issueServingCert(ca: KeyPair, options: CertificateOptions = {}): Promise<KeyPair> {
  const dnsNames = options.dnsNames ?? [];
  const ipAddresses = options.ipAddresses ?? [];
  return generate(
    options.commonName ?? dnsNames[0] ?? ipAddresses[0] ?? 'flipt-sidecar-injector',
    validity(options),
    {
      ca: { key: ca.key, cert: ca.cert },
      extensions: [
        { name: 'basicConstraints', cA: false },
        { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
        { name: 'extKeyUsage', serverAuth: true },
        {
          name: 'subjectAltName',
          altNames: [
            ...dnsNames.map((value) => ({ type: 2 as const, value })),
            ...ipAddresses.map((ip) => ({ type: 7 as const, ip })),
          ],
        },
      ],
    },
  );
}

/** A fresh CA and a serving certificate it signed (default: localhost and 127.0.0.1). */
export async function generateCertificates(options: CertificateOptions = {}): Promise<CertificateSet> {
  const ca = await createCa({
    ...(options.days === undefined ? {} : { days: options.days }),
    ...(options.validityMs === undefined ? {} : { validityMs: options.validityMs }),
  });
  const serving = await issueServingCert(ca, {
    ...options,
    dnsNames: options.dnsNames ?? ['localhost'],
    ipAddresses: options.ipAddresses ?? ['127.0.0.1'],
  });
  return { caCert: ca.cert, caKey: ca.key, cert: serving.cert, key: serving.key };
}

/** Reads a PEM certificate and key, failing with the file that is missing or not PEM. */
export async function loadKeyPair(certFile: string, keyFile: string): Promise<{ cert: string; key: string }> {
  // One after the other, so that the error names the first missing file, always the same one.
  const cert = await readPem(certFile, 'CERTIFICATE');
  const key = await readPem(keyFile, 'PRIVATE KEY');
  return { cert, key };
}

async function readPem(file: string, kind: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new Error(`cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  if (!text.includes(`-----BEGIN`) || !text.includes(kind)) {
    throw new Error(`${file} is not a PEM ${kind.toLowerCase()}`);
  }
  return text;
}
