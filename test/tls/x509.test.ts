// What the rotation decisions learn from real certificates (src/tls/x509.ts, parseStored): a
// stored Secret that is damaged in any part is reported, never thrown, and leads to a replacement.
import t from 'tap';
import { decide, joinPem } from '../../src/core/tls-rotation.ts';
import { createCa, generateCertificates, issueServingCert } from '../../src/tls.ts';
import { parseStored, publishedCas } from '../../src/tls/auto.ts';
import { certFacts, pairFacts } from '../../src/tls/x509.ts';

const names = { dnsNames: ['svc.ns.svc'], ipAddresses: ['127.0.0.1'] };
const policy = { renewFraction: 2 / 3, promoteDelayMs: 30_000 };

t.test('pairFacts: issuer, key, names', async (t) => {
  const ca = await createCa({ days: 1 });
  const other = await createCa({ days: 1 });
  const pair = await issueServingCert(ca, { ...names, days: 1 });
  const bundle = [certFacts(ca.cert), certFacts(other.cert)];
  const problems: string[] = [];
  const good = pairFacts(pair.cert, pair.key, bundle, names, problems, 'tls.crt');
  t.equal(good?.issuer, certFacts(ca.cert).fingerprint, 'the CA that signed it');
  t.ok(good?.keyMatches && good.coversNames);
  t.same(problems, []);
  const foreignKey = await issueServingCert(ca, { ...names, days: 1 });
  t.equal(
    pairFacts(pair.cert, foreignKey.key, bundle, names, problems, 'x')?.keyMatches,
    false,
    'another key',
  );
  t.equal(pairFacts(pair.cert, 'not a key', bundle, names, problems, 'x')?.keyMatches, false, 'no key');
  t.equal(
    pairFacts(pair.cert, pair.key, bundle, { dnsNames: ['other.ns.svc'], ipAddresses: [] }, problems, 'x')
      ?.coversNames,
    false,
    'a name it does not cover',
  );
  t.equal(
    pairFacts(pair.cert, pair.key, bundle, { dnsNames: [], ipAddresses: ['10.0.0.1'] }, problems, 'x')
      ?.coversNames,
    false,
    'an address it does not cover',
  );
  t.equal(pairFacts(pair.cert, pair.key, [certFacts(other.cert)], names, problems, 'x')?.issuer, undefined);
  t.equal(pairFacts(undefined, pair.key, bundle, names, problems, 'next.crt'), undefined);
  t.equal(pairFacts('garbage', pair.key, bundle, names, problems, 'tls.crt'), undefined);
  t.match(problems, [/next\.crt: certificate or key missing/, /tls\.crt: the certificate cannot be parsed/]);
});

t.test('parseStored: a damaged Secret becomes problems and a replacement, never an exception', async (t) => {
  const set = await generateCertificates({ ...names, days: 1 });
  const stored = parseStored(
    {
      resourceVersion: '7',
      data: {
        'tls.crt': set.cert,
        'tls.key': set.key,
        'ca.crt': joinPem([
          set.caCert,
          '-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----',
        ]),
        'next.crt': set.cert,
        'next.key': set.key,
      },
      annotations: {},
    },
    names,
  );
  t.equal(stored.bundle.length, 1, 'the unparseable CA is left out');
  t.match(stored.problems, [/ca\.crt: a certificate cannot be parsed/]);
  t.equal(stored.next?.stagedAt, Number.POSITIVE_INFINITY, 'no staging time: never promoted early');
  const empty = parseStored({ resourceVersion: '1', data: {}, annotations: {} }, names);
  t.equal(empty.current, undefined);
  t.match(decide(empty, Date.now(), policy), { kind: 'replace', reason: /certificate or key missing/ });
});

t.test('publishedCas: only CAs that every entry trusts', async (t) => {
  const a = await createCa({ days: 1 });
  const b = await createCa({ days: 1 });
  const published = publishedCas({
    resourceVersion: '1',
    entries: [
      { name: 'pod', caBundle: joinPem([a.cert, b.cert]) },
      {
        name: 'namespace',
        caBundle: joinPem([a.cert, '-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----']),
      },
    ],
  });
  t.same([...(published ?? [])], [certFacts(a.cert).fingerprint]);
  t.equal(publishedCas(undefined), undefined, 'no configuration');
  t.same([...(publishedCas({ resourceVersion: '1', entries: [] }) ?? [])], []);
});

t.test('describeApiError names the status and the API server message, or the cause', async (t) => {
  const { ApiException } = await import('@kubernetes/client-node');
  const { describeApiError } = await import('../../src/tls/store.ts');
  const forbidden = new ApiException(
    403,
    'Forbidden',
    JSON.stringify({
      kind: 'Status',
      message: 'secrets "x" is forbidden: User "system:serviceaccount:a:b" cannot get',
    }),
    {},
  );
  t.equal(
    describeApiError(forbidden),
    'HTTP 403: secrets "x" is forbidden: User "system:serviceaccount:a:b" cannot get',
  );
  t.equal(describeApiError(new ApiException(500, 'x', 'plain text', {})), 'HTTP 500: plain text');
  t.equal(
    describeApiError(new Error('fetch failed', { cause: new Error('connect ECONNREFUSED 127.0.0.1:6443') })),
    'fetch failed: connect ECONNREFUSED 127.0.0.1:6443',
  );
  t.equal(describeApiError('odd'), 'odd');
});
