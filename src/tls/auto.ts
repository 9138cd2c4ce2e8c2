// One reconcile pass of self-managed TLS (`serve --tls-auto`): bring the Secret one step along its
// life (src/core/tls-rotation.ts decides), then make the webhook configuration's caBundle equal the
// Secret's bundle. Several replicas run this at once without a leader: every write is conditional
// on a resourceVersion, and a replica that loses re-reads and continues from the winner's state.
//
// Why the configuration is read BEFORE the Secret in each attempt: a replica with an old view of
// the Secret must never overwrite a newer bundle. Its patch carries the configuration's
// resourceVersion from before its Secret read, so if the writer of a newer Secret has patched the
// configuration since, the stale patch fails with a Conflict and the pass starts again.
import {
  applyAction,
  decide,
  SECRET_KEYS,
  splitPem,
  STAGED_AT_ANNOTATION,
  type GeneratedPair,
  type RotationPolicy,
  type StoredTls,
} from '../core/tls-rotation.ts';
import {
  ConflictError,
  type RawSecret,
  type SecretStore,
  type WebhookBundles,
  type WebhookTarget,
} from './store.ts';
import { certFacts, certsFacts, pairFacts, type Names } from './x509.ts';

export interface AutoLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface ReconcileDeps {
  secret: SecretStore;
  webhook: WebhookTarget;
  names: Names;
  policy: RotationPolicy;
  /** Makes a new CA and a serving certificate it signed, for `names`. */
  generate: () => Promise<GeneratedPair>;
  now?: () => number;
  log?: AutoLogger;
  /** Attempts per pass before giving up until the next check (conflicts, concurrent writers). */
  maxAttempts?: number;
}

export interface ReconcileResult {
  state: StoredTls;
  /** Fingerprints of the CAs every webhook entry trusts; undefined when the configuration is missing. */
  published: ReadonlySet<string> | undefined;
  /** What this pass wrote: create, replace, stage, promote, prune; plus `bundle` for a patch. */
  wrote: string[];
  /** Writes this replica lost to another one. */
  conflicts: number;
}

/** Parses what is stored; unreadable parts become problems, never exceptions. */
export function parseStored(raw: RawSecret, names: Names): StoredTls {
  const problems: string[] = [];
  const bundle = certsFacts(splitPem(raw.data[SECRET_KEYS.bundle] ?? ''), problems, SECRET_KEYS.bundle);
  const current = pairFacts(
    raw.data[SECRET_KEYS.cert],
    raw.data[SECRET_KEYS.key],
    bundle,
    names,
    problems,
    SECRET_KEYS.cert,
  );
  let next: StoredTls['next'];
  if (raw.data[SECRET_KEYS.nextCert] !== undefined) {
    const pair = pairFacts(
      raw.data[SECRET_KEYS.nextCert],
      raw.data[SECRET_KEYS.nextKey],
      bundle,
      names,
      problems,
      SECRET_KEYS.nextCert,
    );
    const stagedAt = Date.parse(raw.annotations[STAGED_AT_ANNOTATION] ?? '');
    // A staged certificate without a readable time is restaged (unusable issuer), never served early.
    if (pair) next = { ...pair, stagedAt: Number.isNaN(stagedAt) ? Number.POSITIVE_INFINITY : stagedAt };
  }
  return { resourceVersion: raw.resourceVersion, current, next, bundle, problems };
}

/** The CA fingerprints present in every entry's caBundle. */
export function publishedCas(webhook: WebhookBundles | undefined): ReadonlySet<string> | undefined {
  if (!webhook) return undefined;
  let common: Set<string> | undefined;
  for (const entry of webhook.entries) {
    const here = new Set<string>();
    for (const pem of splitPem(entry.caBundle)) {
      try {
        here.add(certFacts(pem).fingerprint);
      } catch {
        // an unparseable block trusts nothing
      }
    }
    common = common ? new Set([...common].filter((f) => here.has(f))) : here;
  }
  return common ?? new Set();
}

export async function reconcileOnce(deps: ReconcileDeps): Promise<ReconcileResult> {
  const now = deps.now ?? Date.now;
  const maxAttempts = deps.maxAttempts ?? 6;
  const wrote: string[] = [];
  let conflicts = 0;
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    const webhook = await deps.webhook.read();
    const raw = await deps.secret.read();
    const state = raw ? parseStored(raw, deps.names) : undefined;
    const action = decide(state, now(), deps.policy, publishedCas(webhook));
    try {
      if (action.kind !== 'none') {
        const needsNew = action.kind === 'create' || action.kind === 'replace' || action.kind === 'stage';
        const generated = needsNew ? await deps.generate() : undefined;
        const content = applyAction(state, action, now(), generated);
        if (state) await deps.secret.update(state.resourceVersion, content);
        else await deps.secret.create(content);
        wrote.push(action.kind);
        deps.log?.info({ action: action.kind, reason: action.reason }, `TLS Secret: ${action.kind}`);
        continue; // read back what is stored now, through the same path as everyone else
      }
      const bundleText = state?.bundle.map((ca) => ca.pem).join('') ?? '';
      if (webhook && !webhook.entries.every((entry) => sameBundle(entry.caBundle, bundleText))) {
        await deps.webhook.patchBundle(webhook, bundleText);
        wrote.push('bundle');
        deps.log?.info({ cas: state?.bundle.length ?? 0 }, 'webhook caBundle updated');
        continue;
      }
      if (!state) throw new Error('unreachable: no Secret after a successful create');
      return { state, published: publishedCas(webhook), wrote, conflicts };
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err;
      conflicts++;
      deps.log?.info({ attempt, err: err.message }, 'another replica wrote first; re-reading');
    }
  }
  throw new Error(`TLS reconcile did not settle in ${maxAttempts} attempts (concurrent writers)`);
}

function sameBundle(a: string, b: string): boolean {
  return splitPem(a).join('') === splitPem(b).join('');
}
