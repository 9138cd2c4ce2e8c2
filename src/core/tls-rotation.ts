// Self-managed TLS (`serve --tls-auto`), the decisions only: when to create, stage, promote or
// prune certificates, and which CAs the webhook's caBundle must hold. No I/O and no crypto: the
// shells (src/tls/*) parse certificates into the facts below and talk to the API server.
//
// The life of a certificate, shared by every replica through one Secret (see docs/deploy.md):
//   1. create   no Secret: a new CA and a serving certificate it signed; the bundle is that CA.
//   2. stage    the current certificate reached its renewal point (a fraction of its lifetime):
//               a new CA + certificate go into `next`, and the new CA into the bundle. Nobody
//               serves it yet: the webhook configuration must carry the new CA first.
//   3. promote  `promoteDelayMs` after staging (several check periods, so that every replica has
//               published the bundle and the API server has picked it up), next becomes current;
//               each replica swaps at its next check.
//   4. prune    a CA leaves the bundle only when it has expired: until then some replica may still
//               serve the certificate it signed (CA and certificate share one lifetime).
// Writes are conditional on the Secret's resourceVersion, so replicas never disagree on the CA: a
// replica whose write conflicts re-reads the Secret and decides again from the winner's state.

/** A certificate's validity, in epoch milliseconds, and its SHA-256 fingerprint. */
export interface CertFacts {
  pem: string;
  fingerprint: string;
  notBefore: number;
  notAfter: number;
}

/** A serving certificate and its key, as stored, with what the shell found out about them. */
export interface StoredPair {
  cert: CertFacts;
  key: string;
  /** Fingerprint of the bundle CA that signed the certificate; undefined when none did. */
  issuer: string | undefined;
  /** The key belongs to the certificate. */
  keyMatches: boolean;
  /** The certificate covers every DNS name and IP address asked for. */
  coversNames: boolean;
}

export interface StoredTls {
  resourceVersion: string;
  current: StoredPair | undefined;
  /** A staged certificate, and when it was staged (epoch ms). */
  next: (StoredPair & { stagedAt: number }) | undefined;
  /** The CAs the webhook configuration must trust (the Secret's ca.crt). */
  bundle: CertFacts[];
  /** Parts of the Secret that could not be read, for the log. */
  problems: string[];
}

export interface RotationPolicy {
  /** Renew at this fraction of the certificate's lifetime (0 < f < 1; default 2/3). */
  renewFraction: number;
  /** How long a staged certificate waits before it is served. */
  promoteDelayMs: number;
}

export const DEFAULT_RENEW_FRACTION = 2 / 3;
/** More CAs than this in a bundle means something keeps rotating; the oldest others are dropped. */
export const MAX_BUNDLE_CAS = 8;

export type TlsAction =
  | { kind: 'create'; reason: string }
  | { kind: 'replace'; reason: string }
  | { kind: 'stage'; reason: string }
  | { kind: 'promote'; reason: string }
  | { kind: 'prune'; reason: string }
  | { kind: 'none' };

/** How long a staged certificate waits before it is served: three check periods (docs/deploy.md). */
export function promoteDelayMs(checkIntervalMs: number): number {
  return 3 * checkIntervalMs;
}

/**
 * Refuses settings under which a certificate could expire before its successor is served: the
 * time from the renewal point to expiry must hold the promotion delay twice.
 */
export function checkAutoTiming(
  lifetimeMs: number,
  renewFraction: number,
  checkIntervalMs: number,
): string | undefined {
  if (!(renewFraction > 0 && renewFraction < 1))
    return `the renew fraction must be between 0 and 1 (got ${renewFraction})`;
  const window = lifetimeMs * (1 - renewFraction);
  const needed = 2 * promoteDelayMs(checkIntervalMs);
  if (window < needed) {
    return `a lifetime of ${lifetimeMs} ms renewed at ${renewFraction} leaves ${Math.round(window)} ms before expiry; at least ${needed} ms (6 check intervals) are needed`;
  }
  return undefined;
}

/** When a certificate is due for renewal. */
export function renewAt(cert: Pick<CertFacts, 'notBefore' | 'notAfter'>, fraction: number): number {
  return cert.notBefore + Math.floor((cert.notAfter - cert.notBefore) * fraction);
}

/** Why a stored pair cannot be served at `now`, or undefined when it can. */
export function unusableReason(pair: StoredPair, bundle: CertFacts[], now: number): string | undefined {
  if (!pair.keyMatches) return 'the key does not belong to the certificate';
  if (!pair.coversNames) return 'the certificate does not cover every name asked for';
  if (pair.issuer === undefined || !bundle.some((ca) => ca.fingerprint === pair.issuer)) {
    return 'no CA in the bundle signed the certificate';
  }
  if (now >= pair.cert.notAfter) return 'the certificate has expired';
  return undefined;
}

/**
 * The one next step for the stored state (undefined: there is no Secret yet). `published` (the CAs
 * the webhook configuration trusts, when it exists) holds a promotion back until the staged
 * certificate's CA is among them, whatever the delay.
 */
export function decide(
  state: StoredTls | undefined,
  now: number,
  policy: RotationPolicy,
  published?: ReadonlySet<string>,
): TlsAction {
  if (!state) return { kind: 'create', reason: 'no certificate Secret yet' };
  if (!state.current) {
    return { kind: 'replace', reason: `no usable certificate in the Secret (${state.problems.join('; ')})` };
  }
  const currentProblem = unusableReason(state.current, state.bundle, now);
  if (currentProblem) return { kind: 'replace', reason: currentProblem };
  if (state.next) {
    const nextProblem = unusableReason(state.next, state.bundle, now);
    if (nextProblem) return { kind: 'stage', reason: `the staged certificate is unusable: ${nextProblem}` };
    const trusted =
      published === undefined || (state.next.issuer !== undefined && published.has(state.next.issuer));
    if (now >= state.next.stagedAt + policy.promoteDelayMs && trusted) {
      return { kind: 'promote', reason: 'the staged certificate has waited its promotion delay' };
    }
  } else if (now >= renewAt(state.current.cert, policy.renewFraction)) {
    return { kind: 'stage', reason: 'the certificate reached its renewal point' };
  }
  const bundle = desiredBundle(state.bundle, requiredCas(state), now);
  if (!sameCas(bundle, state.bundle)) return { kind: 'prune', reason: 'expired CAs leave the bundle' };
  return { kind: 'none' };
}

/** A new CA and serving certificate made by the shell for create, replace and stage. */
export interface GeneratedPair {
  ca: CertFacts;
  cert: CertFacts;
  key: string;
}

/** The Secret's contents after `action` (stringData-style: PEM text; annotations). */
export interface TlsSecretContent {
  data: Record<string, string>;
  annotations: Record<string, string>;
}

export const SECRET_KEYS = {
  cert: 'tls.crt',
  key: 'tls.key',
  bundle: 'ca.crt',
  nextCert: 'next.crt',
  nextKey: 'next.key',
} as const;
/** When the certificate in next.crt was staged (RFC 3339). */
export const STAGED_AT_ANNOTATION = 'flipt.io/tls-next-staged-at';

/** What to write for `action`; `generated` is required for create, replace and stage. */
export function applyAction(
  state: StoredTls | undefined,
  action: TlsAction,
  now: number,
  generated?: GeneratedPair,
): TlsSecretContent {
  type Slot = { cert: CertFacts; key: string; issuer: string | undefined };
  const fresh = (): Slot & { ca: CertFacts } => {
    if (!generated) throw new Error(`${action.kind} needs a generated certificate`);
    return { cert: generated.cert, key: generated.key, issuer: generated.ca.fingerprint, ca: generated.ca };
  };
  let current: Slot | undefined = state?.current;
  let next: (Slot & { stagedAt: number }) | undefined = state?.next;
  let bundle = state?.bundle ?? [];
  switch (action.kind) {
    case 'create':
    case 'replace': {
      const made = fresh();
      current = made;
      next = undefined;
      bundle = [...bundle, made.ca];
      break;
    }
    case 'stage': {
      const made = fresh();
      next = { ...made, stagedAt: now };
      bundle = [...bundle, made.ca];
      break;
    }
    case 'promote':
      if (!next) throw new Error('nothing staged to promote');
      current = next;
      next = undefined;
      break;
    case 'prune':
    case 'none':
      break;
  }
  if (!current) throw new Error(`${action.kind} leaves no current certificate`);
  const required = [current.issuer, next?.issuer].filter((f): f is string => f !== undefined);
  const data: Record<string, string> = {
    [SECRET_KEYS.cert]: current.cert.pem,
    [SECRET_KEYS.key]: current.key,
    [SECRET_KEYS.bundle]: joinPem(desiredBundle(bundle, required, now).map((ca) => ca.pem)),
  };
  const annotations: Record<string, string> = {};
  if (next) {
    data[SECRET_KEYS.nextCert] = next.cert.pem;
    data[SECRET_KEYS.nextKey] = next.key;
    annotations[STAGED_AT_ANNOTATION] = new Date(next.stagedAt).toISOString();
  }
  return { data, annotations };
}

/** The CAs that must stay in the bundle whatever their age: the issuers of current and next. */
function requiredCas(state: StoredTls): string[] {
  return [state.current?.issuer, state.next?.issuer].filter((f): f is string => f !== undefined);
}

/**
 * The bundle to publish: each CA once, expired ones dropped unless required, at most
 * MAX_BUNDLE_CAS (required ones first, then the latest-expiring), ordered by expiry then fingerprint
 * so that every replica computes the same text.
 */
export function desiredBundle(cas: CertFacts[], required: string[], now: number): CertFacts[] {
  const unique = new Map<string, CertFacts>();
  for (const ca of cas) if (!unique.has(ca.fingerprint)) unique.set(ca.fingerprint, ca);
  const isRequired = (ca: CertFacts) => required.includes(ca.fingerprint);
  const live = [...unique.values()].filter((ca) => isRequired(ca) || ca.notAfter > now);
  const kept = [
    ...live.filter(isRequired),
    ...live.filter((ca) => !isRequired(ca)).sort((a, b) => b.notAfter - a.notAfter),
  ].slice(0, Math.max(MAX_BUNDLE_CAS, required.length));
  return kept.sort((a, b) => a.notAfter - b.notAfter || a.fingerprint.localeCompare(b.fingerprint));
}

export function sameCas(a: CertFacts[], b: CertFacts[]): boolean {
  return a.length === b.length && a.every((ca, i) => ca.fingerprint === b[i]?.fingerprint);
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/** The PEM certificates in a text, each normalised to end in a newline (caBundle, ca.crt). */
export function splitPem(text: string): string[] {
  return (text.match(PEM_CERTIFICATE) ?? []).map((block) => `${block.trim()}\n`);
}

export function joinPem(blocks: string[]): string {
  return blocks.map((block) => `${block.trim()}\n`).join('');
}

/**
 * Which certificate a replica serves: the stored current one as soon as the webhook configuration
 * trusts its CA (`published`: fingerprints of the CAs in every entry's caBundle), else what it
 * already serves. Returns true when it should swap to `stored`.
 */
export function shouldSwap(
  served: { fingerprint: string } | undefined,
  stored: StoredPair | undefined,
  published: ReadonlySet<string>,
): boolean {
  if (!stored || stored.issuer === undefined) return false;
  if (served?.fingerprint === stored.cert.fingerprint) return false;
  return published.has(stored.issuer);
}

/** Ready: the served certificate is valid now and the API server is told to trust its CA. */
export function isReady(
  served: { notBefore: number; notAfter: number; issuer: string | undefined } | undefined,
  published: ReadonlySet<string> | undefined,
  now: number,
): boolean {
  if (!served || now < served.notBefore || now >= served.notAfter) return false;
  if (published === undefined) return true; // file mode: the caBundle is not ours to see
  return served.issuer !== undefined && published.has(served.issuer);
}
