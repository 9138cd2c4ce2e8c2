// The pure decisions of self-managed TLS (src/core/tls-rotation.ts): renewal point, the steps of a
// certificate's life, the bundle kept during an overlap, and what each replica serves.
import t from 'tap';
import {
  applyAction,
  checkAutoTiming,
  decide,
  desiredBundle,
  isReady,
  joinPem,
  MAX_BUNDLE_CAS,
  renewAt,
  SECRET_KEYS,
  shouldSwap,
  splitPem,
  STAGED_AT_ANNOTATION,
  type CertFacts,
  type StoredPair,
  type StoredTls,
} from '../../src/core/tls-rotation.ts';

const HOUR = 3_600_000;
const policy = { renewFraction: 2 / 3, promoteDelayMs: 30_000 };

let serial = 0;
function ca(notAfter: number, notBefore = 0): CertFacts {
  serial++;
  return {
    pem: `-----BEGIN CERTIFICATE-----\nCA${serial}\n-----END CERTIFICATE-----\n`,
    fingerprint: `ca-${serial}`,
    notBefore,
    notAfter,
  };
}
function pair(
  issuer: CertFacts,
  notBefore: number,
  notAfter: number,
  extra: Partial<StoredPair> = {},
): StoredPair {
  serial++;
  return {
    cert: {
      pem: `-----BEGIN CERTIFICATE-----\nLEAF${serial}\n-----END CERTIFICATE-----\n`,
      fingerprint: `leaf-${serial}`,
      notBefore,
      notAfter,
    },
    key: `key-${serial}`,
    issuer: issuer.fingerprint,
    keyMatches: true,
    coversNames: true,
    ...extra,
  };
}
function state(current: StoredPair | undefined, bundle: CertFacts[], next?: StoredTls['next']): StoredTls {
  return { resourceVersion: '1', current, next, bundle, problems: [] };
}

t.test('the renewal point is a fraction of the lifetime after notBefore', async (t) => {
  t.equal(renewAt({ notBefore: 0, notAfter: 90 * HOUR }, 2 / 3), 60 * HOUR);
  t.equal(renewAt({ notBefore: 1000, notAfter: 2000 }, 0.5), 1500);
});

t.test('decide: each step of a certificate life', async (t) => {
  const ca1 = ca(90 * HOUR);
  const current = pair(ca1, 0, 90 * HOUR);
  t.equal(decide(undefined, 0, policy).kind, 'create', 'no Secret: create');
  t.equal(decide(state(current, [ca1]), 10 * HOUR, policy).kind, 'none', 'young: nothing');
  t.equal(decide(state(current, [ca1]), 60 * HOUR - 1, policy).kind, 'none', 'just before the renewal point');
  t.equal(decide(state(current, [ca1]), 60 * HOUR, policy).kind, 'stage', 'at the renewal point: stage');
  const ca2 = ca(150 * HOUR, 60 * HOUR);
  const staged = { ...pair(ca2, 60 * HOUR, 150 * HOUR), stagedAt: 60 * HOUR };
  const both = state(current, [ca1, ca2], staged);
  t.equal(decide(both, 60 * HOUR + 29_999, policy).kind, 'none', 'staged, waiting for its delay');
  t.equal(decide(both, 60 * HOUR + 30_000, policy).kind, 'promote', 'after the delay: promote');
  t.equal(
    decide(both, 60 * HOUR + 30_000, policy, new Set([ca1.fingerprint])).kind,
    'none',
    'not while the webhook configuration lacks the new CA',
  );
  t.equal(
    decide(both, 60 * HOUR + 30_000, policy, new Set([ca1.fingerprint, ca2.fingerprint])).kind,
    'promote',
  );
  // After promotion the old CA stays until it expires, then is pruned.
  const promoted = state(staged, [ca1, ca2]);
  t.equal(decide(promoted, 61 * HOUR, policy).kind, 'none', 'old CA kept while its certificate is valid');
  t.equal(decide(promoted, 90 * HOUR, policy).kind, 'prune', 'old CA leaves once expired');
});

t.test('decide: an unusable current certificate is replaced, an unusable staged one restaged', async (t) => {
  const ca1 = ca(90 * HOUR);
  const cases: [string, StoredPair | undefined, CertFacts[], number][] = [
    ['missing', undefined, [ca1], 0],
    ['expired', pair(ca1, 0, 90 * HOUR), [ca1], 90 * HOUR],
    ['wrong key', pair(ca1, 0, 90 * HOUR, { keyMatches: false }), [ca1], 0],
    ['names changed', pair(ca1, 0, 90 * HOUR, { coversNames: false }), [ca1], 0],
    ['issuer not in the bundle', pair(ca1, 0, 90 * HOUR), [], 0],
  ];
  for (const [name, current, bundle, now] of cases) {
    t.equal(decide(state(current, bundle), now, policy).kind, 'replace', name);
  }
  const ca2 = ca(150 * HOUR);
  const badNext = { ...pair(ca2, 0, 150 * HOUR, { keyMatches: false }), stagedAt: 0 };
  t.equal(decide(state(pair(ca1, 0, 90 * HOUR), [ca1, ca2], badNext), 1, policy).kind, 'stage');
});

t.test('applyAction: what the Secret holds after each step', async (t) => {
  const ca1 = ca(90 * HOUR);
  const made1 = { ca: ca1, ...(({ cert, key }) => ({ cert, key }))(pair(ca1, 0, 90 * HOUR)) };
  const created = applyAction(undefined, { kind: 'create', reason: '' }, 0, made1);
  t.equal(created.data[SECRET_KEYS.cert], made1.cert.pem);
  t.equal(created.data[SECRET_KEYS.key], made1.key);
  t.equal(created.data[SECRET_KEYS.bundle], ca1.pem, 'bundle = the new CA');
  t.same(created.annotations, {});
  t.throws(() => applyAction(undefined, { kind: 'create', reason: '' }, 0), /needs a generated certificate/);

  const current = { ...pair(ca1, 0, 90 * HOUR), cert: made1.cert, key: made1.key };
  const ca2 = ca(150 * HOUR, 60 * HOUR);
  const made2 = { ca: ca2, ...(({ cert, key }) => ({ cert, key }))(pair(ca2, 60 * HOUR, 150 * HOUR)) };
  const staged = applyAction(state(current, [ca1]), { kind: 'stage', reason: '' }, 60 * HOUR, made2);
  t.equal(staged.data[SECRET_KEYS.cert], made1.cert.pem, 'staging does not change what is served');
  t.equal(staged.data[SECRET_KEYS.nextCert], made2.cert.pem);
  t.equal(staged.data[SECRET_KEYS.bundle], joinPem([ca1.pem, ca2.pem]), 'bundle = old and new CA');
  t.equal(staged.annotations[STAGED_AT_ANNOTATION], new Date(60 * HOUR).toISOString());

  const next = { ...pair(ca2, 60 * HOUR, 150 * HOUR), cert: made2.cert, key: made2.key, stagedAt: 60 * HOUR };
  const promoted = applyAction(state(current, [ca1, ca2], next), { kind: 'promote', reason: '' }, 61 * HOUR);
  t.equal(promoted.data[SECRET_KEYS.cert], made2.cert.pem, 'the staged certificate is now served');
  t.notOk(promoted.data[SECRET_KEYS.nextCert], 'nothing staged');
  t.equal(promoted.data[SECRET_KEYS.bundle], joinPem([ca1.pem, ca2.pem]), 'the old CA stays for now');
  t.throws(() => applyAction(state(current, [ca1]), { kind: 'promote', reason: '' }, 0), /nothing staged/);

  const pruned = applyAction(state(next, [ca1, ca2]), { kind: 'prune', reason: '' }, 90 * HOUR);
  t.equal(pruned.data[SECRET_KEYS.bundle], ca2.pem, 'the expired CA is gone');
});

t.test('desiredBundle: once each, expired dropped unless required, bounded, stable order', async (t) => {
  const a = ca(10);
  const b = ca(20);
  const c = ca(30);
  t.same(
    desiredBundle([c, a, b, a], [], 0).map((x) => x.fingerprint),
    [a, b, c].map((x) => x.fingerprint),
    'deduplicated, ordered by expiry',
  );
  t.same(
    desiredBundle([a, b, c], [], 15).map((x) => x.fingerprint),
    [b.fingerprint, c.fingerprint],
  );
  t.same(
    desiredBundle([a, b], [a.fingerprint], 25).map((x) => x.fingerprint),
    [a.fingerprint],
    'a required CA stays even when expired',
  );
  const many = Array.from({ length: 20 }, (_, i) => ca(100 + i));
  const kept = desiredBundle([a, ...many], [a.fingerprint], 50);
  t.equal(kept.length, MAX_BUNDLE_CAS, 'bounded');
  t.ok(
    kept.some((x) => x.fingerprint === a.fingerprint),
    'the required CA is kept',
  );
  t.ok(
    kept.some((x) => x.notAfter === 119),
    'the latest-expiring others are kept',
  );
});

t.test('splitPem and joinPem normalise bundles', async (t) => {
  const one = '-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----';
  const two = '-----BEGIN CERTIFICATE-----\nBBB\n-----END CERTIFICATE-----';
  t.same(splitPem(`junk\n${one}\r\n\n${two}`), [`${one}\n`, `${two}\n`]);
  t.equal(joinPem([one, `${two}\n\n`]), `${one}\n${two}\n`);
  t.same(splitPem(''), []);
});

t.test('shouldSwap and isReady: serve the stored certificate only once its CA is published', async (t) => {
  const ca1 = ca(90 * HOUR);
  const stored = pair(ca1, 0, 90 * HOUR);
  t.notOk(shouldSwap(undefined, stored, new Set()), 'CA not published: keep serving');
  t.ok(shouldSwap(undefined, stored, new Set([ca1.fingerprint])), 'published: swap');
  t.notOk(shouldSwap(stored.cert, stored, new Set([ca1.fingerprint])), 'already served');
  t.notOk(shouldSwap(undefined, undefined, new Set([ca1.fingerprint])), 'nothing stored');
  const served = { notBefore: 0, notAfter: 90 * HOUR, issuer: ca1.fingerprint };
  t.ok(isReady(served, new Set([ca1.fingerprint]), HOUR));
  t.notOk(isReady(served, new Set(), HOUR), 'caBundle without its CA: not ready');
  t.notOk(isReady(served, new Set([ca1.fingerprint]), 90 * HOUR), 'expired: not ready');
  t.notOk(isReady(served, new Set([ca1.fingerprint]), -1), 'not yet valid: not ready');
  t.ok(isReady({ ...served, issuer: undefined }, undefined, HOUR), 'file mode: valid is enough');
  t.notOk(isReady(undefined, undefined, HOUR));
});

t.test('checkAutoTiming refuses a lifetime that could expire before its successor is served', async (t) => {
  t.equal(checkAutoTiming(2160 * HOUR, 2 / 3, 10_000), undefined);
  t.match(checkAutoTiming(60_000, 2 / 3, 10_000), /at least 60000 ms/);
  t.match(checkAutoTiming(HOUR, 1, 10_000), /between 0 and 1/);
  t.match(checkAutoTiming(HOUR, 0, 10_000), /between 0 and 1/);
});
