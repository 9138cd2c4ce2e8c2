// Certificates for the webhook: a CA and a serving certificate it signs, generated with selfsigned
// (tests, `flipt-injector certs`, bootstrapping a cluster), and loading PEM files from disk.
import { readFile } from 'node:fs/promises';

export interface CertificateSet {
  caCert: string;
  caKey: string;
  cert: string;
  key: string;
}

export interface CertificateOptions {
  /** DNS names for the serving certificate, e.g. flipt-sidecar-injector.flipt-system.svc. */
  dnsNames?: string[];
  ipAddresses?: string[];
  /** Validity in days (CA and serving certificate). */
  days?: number;
  commonName?: string;
}

const DAY_MS = 24 * 60 * 60 * 1000;

/** A fresh CA and a serving certificate for the given names (EC P-256, SHA-256). */
export async function generateCertificates(options: CertificateOptions = {}): Promise<CertificateSet> {
  // Loaded on demand: the serving process only reads certificates from disk.
  const { generate } = await import('selfsigned');
  const dnsNames = options.dnsNames ?? ['localhost'];
  const ipAddresses = options.ipAddresses ?? ['127.0.0.1'];
  const notBeforeDate = new Date(Date.now() - 60_000); // tolerate small clock skew
  const notAfterDate = new Date(Date.now() + (options.days ?? 365) * DAY_MS);
  const common = {
    keyType: 'ec' as const,
    curve: 'P-256' as const,
    algorithm: 'sha256',
    notBeforeDate,
    notAfterDate,
  };

  const ca = await generate([{ name: 'commonName', value: 'flipt-sidecar-injector CA' }], {
    ...common,
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    ],
  });
  const serving = await generate(
    [{ name: 'commonName', value: options.commonName ?? dnsNames[0] ?? 'flipt-sidecar-injector' }],
    {
      ...common,
      ca: { key: ca.private, cert: ca.cert },
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
  return { caCert: ca.cert, caKey: ca.private, cert: serving.cert, key: serving.private };
}

/** Reads a PEM certificate and key, failing with the file that is missing or not PEM. */
export async function loadKeyPair(certFile: string, keyFile: string): Promise<{ cert: string; key: string }> {
  const [cert, key] = await Promise.all([readPem(certFile, 'CERTIFICATE'), readPem(keyFile, 'PRIVATE KEY')]);
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
