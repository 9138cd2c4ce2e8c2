import t from 'tap';
import { mutatingWebhookConfiguration } from '../../src/webhook/registration.ts';
import { loadKeyPair } from '../../src/tls.ts';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

t.test('two entries whose selectors never overlap', async (t) => {
  const config = mutatingWebhookConfiguration({
    caBundle: 'Q0E=',
    target: { service: { name: 'injector', namespace: 'flipt-system' } },
    injectorNamespace: 'flipt-system',
  });
  const [pod, namespace] = config.webhooks;
  t.equal(config.webhooks.length, 2);
  t.match(pod, {
    name: 'pod.inject.flipt.io',
    clientConfig: { service: { path: '/mutate', port: 443 }, caBundle: 'Q0E=' },
    objectSelector: { matchLabels: { 'flipt.io/inject': 'true' } },
    namespaceSelector: {
      matchExpressions: [{}, { key: 'flipt.io/inject', operator: 'NotIn', values: ['enabled', 'true'] }],
    },
  });
  t.match(namespace, {
    name: 'namespace.inject.flipt.io',
    clientConfig: { service: { path: '/mutate/namespace' } },
    objectSelector: { matchExpressions: [{ key: 'flipt.io/inject', operator: 'NotIn', values: ['false'] }] },
    namespaceSelector: {
      matchExpressions: [{}, { key: 'flipt.io/inject', operator: 'In', values: ['enabled', 'true'] }],
    },
  });
  for (const webhook of config.webhooks) {
    t.match(webhook, {
      sideEffects: 'None',
      failurePolicy: 'Fail',
      reinvocationPolicy: 'IfNeeded',
      admissionReviewVersions: ['v1'],
      rules: [{ operations: ['CREATE'], resources: ['pods'] }],
    });
    t.same(webhook.namespaceSelector.matchExpressions[0], {
      key: 'kubernetes.io/metadata.name',
      operator: 'NotIn',
      values: ['kube-system', 'kube-public', 'kube-node-lease', 'flipt-system'],
    });
  }
  t.equal(config.metadata.labels['app.kubernetes.io/name'], 'flipt-sidecar-injector');
});

t.test('loadKeyPair names the file that is not PEM', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'flipt-pem-'));
  await writeFile(join(dir, 'cert'), 'not a certificate');
  await writeFile(join(dir, 'key'), '-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n');
  await t.rejects(loadKeyPair(join(dir, 'cert'), join(dir, 'key')), {
    message: `${join(dir, 'cert')} is not a PEM certificate`,
  });
});
