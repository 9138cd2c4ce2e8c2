// What the rotation decisions need to know about PEM certificates and keys (src/core/tls-rotation.ts
// takes facts, not crypto): validity, fingerprint, which CA signed a certificate, whether a key
// belongs to it and whether it covers the names asked for.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import type { CertFacts, StoredPair } from '../core/tls-rotation.ts';

export function certFacts(pem: string): CertFacts {
  const cert = new X509Certificate(pem);
  return {
    pem,
    fingerprint: cert.fingerprint256,
    notBefore: Date.parse(cert.validFrom),
    notAfter: Date.parse(cert.validTo),
  };
}

/** Facts of each parseable certificate; the others are reported, not thrown. */
export function certsFacts(pems: string[], problems: string[], what: string): CertFacts[] {
  const facts: CertFacts[] = [];
  for (const pem of pems) {
    try {
      facts.push(certFacts(pem));
    } catch (err) {
      problems.push(`${what}: a certificate cannot be parsed (${(err as Error).message})`);
    }
  }
  return facts;
}

export interface Names {
  dnsNames: string[];
  ipAddresses: string[];
}

/** The stored pair with its facts, or undefined (and a problem) when it cannot be parsed. */
export function pairFacts(
  certPem: string | undefined,
  keyPem: string | undefined,
  bundle: CertFacts[],
  names: Names | undefined,
  problems: string[],
  what: string,
): StoredPair | undefined {
  if (!certPem || !keyPem) {
    problems.push(`${what}: certificate or key missing`);
    return undefined;
  }
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch (err) {
    problems.push(`${what}: the certificate cannot be parsed (${(err as Error).message})`);
    return undefined;
  }
  let keyMatches: boolean;
  try {
    keyMatches = cert.checkPrivateKey(createPrivateKey(keyPem));
  } catch {
    keyMatches = false;
  }
  const issuer = bundle.find((ca) => {
    try {
      const caCert = new X509Certificate(ca.pem);
      return cert.checkIssued(caCert) && cert.verify(caCert.publicKey);
    } catch {
      return false;
    }
  });
  const coversNames =
    !names ||
    (names.dnsNames.every((name) => cert.checkHost(name, { wildcards: false }) === name) &&
      names.ipAddresses.every((ip) => cert.checkIP(ip) !== undefined));
  return {
    cert: certFacts(certPem),
    key: keyPem,
    issuer: issuer?.fingerprint,
    keyMatches,
    coversNames,
  };
}
