// Certificates for the end-to-end control plane and test webhooks, made with `selfsigned` (the same
// library the injector uses): a throw-away CA per run and leaf certificates it signs.
import { generate } from 'selfsigned';

export interface CertificateAuthority {
  cert: string;
  key: string;
}

export interface IssuedCertificate {
  cert: string;
  key: string;
}

const validity = () => {
  // Backdated a little so that a clock step between processes never makes a fresh cert "not yet valid".
  const notBeforeDate = new Date(Date.now() - 60 * 60_000);
  const notAfterDate = new Date(Date.now() + 24 * 60 * 60_000);
  return { notBeforeDate, notAfterDate };
};

/** A new self-signed CA (EC P-256: key generation is fast on a busy 2-core machine). */
export async function createCa(commonName: string): Promise<CertificateAuthority> {
  const pems = await generate([{ name: 'commonName', value: commonName }], {
    keyType: 'ec',
    algorithm: 'sha256',
    ...validity(),
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    ],
  });
  return { cert: pems.cert, key: pems.private };
}

/** A TLS server certificate signed by `ca` for the given DNS names and IP addresses. */
export async function issueServingCert(
  ca: CertificateAuthority,
  {
    commonName,
    dnsNames = [],
    ipAddresses = [],
  }: { commonName: string; dnsNames?: string[]; ipAddresses?: string[] },
): Promise<IssuedCertificate> {
  const pems = await generate([{ name: 'commonName', value: commonName }], {
    keyType: 'ec',
    algorithm: 'sha256',
    ...validity(),
    ca: { cert: ca.cert, key: ca.key },
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
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
  });
  return { cert: pems.cert, key: pems.private };
}
