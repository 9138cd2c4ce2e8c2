// Says whether deploy.sh can keep the certificates in a directory (ca.crt, ca.key, tls.crt,
// tls.key, as `flipt-injector certs` writes them) or must make new ones. Prints one word:
//   keep     CA and serving certificate valid for at least --min-days, key pairs match, the
//            serving certificate is signed by the CA and covers every wanted DNS name and IP
//   reissue  the CA is fine, the serving certificate is not: sign a new one with the same CA, so
//            the caBundle the API server trusts does not change
//   new      no usable CA: make a new CA and serving certificate
// and the reason on stderr. Exit 0 in all three cases, 2 on bad usage.
//
//   node scripts/cert-status.ts --dir certs --dns-name NAME... [--ip ADDR]... [--min-days 30]
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

export type CertVerdict = { status: 'keep' | 'reissue' | 'new'; reason: string };

export interface CertWanted {
  dnsNames: string[];
  ipAddresses: string[];
  /** Certificates expiring sooner than this are replaced. */
  minDays: number;
  now?: Date;
}

function read(dir: string, file: string): string | undefined {
  try {
    return readFileSync(join(dir, file), 'utf8');
  } catch {
    return undefined;
  }
}

/** Parses a certificate and checks its key; undefined with a reason when unusable. */
function load(certPem: string | undefined, keyPem: string | undefined, name: string) {
  if (certPem === undefined || keyPem === undefined) return { problem: `${name} or its key is missing` };
  try {
    const cert = new X509Certificate(certPem);
    if (!cert.checkPrivateKey(createPrivateKey(keyPem))) return { problem: `${name} does not match its key` };
    return { cert };
  } catch (err) {
    return { problem: `${name} cannot be read: ${(err as Error).message}` };
  }
}

function expiresWithin(cert: X509Certificate, days: number, now: Date): boolean {
  return (
    Date.parse(cert.validTo) - now.getTime() < days * 86_400_000 || Date.parse(cert.validFrom) > now.getTime()
  );
}

/** The decision for the certificates in `dir`. */
export function certStatus(dir: string, wanted: CertWanted): CertVerdict {
  const now = wanted.now ?? new Date();
  const ca = load(read(dir, 'ca.crt'), read(dir, 'ca.key'), 'ca.crt');
  if (!ca.cert) return { status: 'new', reason: ca.problem };
  if (!ca.cert.ca) return { status: 'new', reason: 'ca.crt is not a CA certificate' };
  if (expiresWithin(ca.cert, wanted.minDays, now))
    return { status: 'new', reason: `the CA expires within ${wanted.minDays} days (${ca.cert.validTo})` };
  const serving = load(read(dir, 'tls.crt'), read(dir, 'tls.key'), 'tls.crt');
  if (!serving.cert) return { status: 'reissue', reason: serving.problem };
  if (!serving.cert.verify(ca.cert.publicKey))
    return { status: 'reissue', reason: 'tls.crt is not signed by ca.crt' };
  if (expiresWithin(serving.cert, wanted.minDays, now))
    return {
      status: 'reissue',
      reason: `tls.crt expires within ${wanted.minDays} days (${serving.cert.validTo})`,
    };
  const sans = new Set((serving.cert.subjectAltName ?? '').split(', ').filter(Boolean));
  const missing = [
    ...wanted.dnsNames.map((name) => `DNS:${name}`),
    ...wanted.ipAddresses.map((ip) => `IP Address:${ip}`),
  ].filter((san) => !sans.has(san));
  if (missing.length > 0) return { status: 'reissue', reason: `tls.crt lacks ${missing.join(', ')}` };
  return { status: 'keep', reason: `valid until ${serving.cert.validTo} (CA until ${ca.cert.validTo})` };
}

if (import.meta.main) {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        dir: { type: 'string' },
        'dns-name': { type: 'string', multiple: true, default: [] },
        ip: { type: 'string', multiple: true, default: [] },
        'min-days': { type: 'string', default: '30' },
      },
    }));
  } catch (err) {
    console.error(`cert-status: ${(err as Error).message}`);
    process.exit(2);
  }
  const minDays = Number(values['min-days']);
  if (!values.dir || !Number.isInteger(minDays) || minDays < 0) {
    console.error('usage: cert-status.ts --dir DIR [--dns-name NAME]... [--ip ADDR]... [--min-days N]');
    process.exit(2);
  }
  const verdict = certStatus(values.dir, { dnsNames: values['dns-name'], ipAddresses: values.ip, minDays });
  console.error(`cert-status: ${verdict.status}: ${verdict.reason}`);
  console.log(verdict.status);
}
