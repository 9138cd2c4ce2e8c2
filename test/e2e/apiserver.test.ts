// Self-test of the end-to-end harness: a real etcd + kube-apiserver start, accept objects the way
// a cluster without controllers does, work with kubectl, stop cleanly, and start again.
import t from 'tap';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CoreV1Api } from '@kubernetes/client-node';
import { startControlPlane, useControlPlane } from './harness/apiserver.ts';
import { apiErrorMessage, createNamespace, createPod, statusCode } from './harness/kube.ts';
import { helm, kubectl } from '../support/kube-tools.ts';

const started = Date.now();
// tap's default of 30 s per file is too tight for a real control plane on a busy 2-core machine.
t.setTimeout(180_000);
const plane = await useControlPlane(t);
t.comment(`control plane ready in ${Date.now() - started} ms at ${plane.url} (dir ${plane.dir})`);
const core = plane.kubeConfig.makeApiClient(CoreV1Api);

const plainPod = (name: string) => ({
  metadata: { name },
  spec: { containers: [{ name: 'app', image: 'registry.example/app:1' }] },
});

t.test('system namespaces exist and have their default ServiceAccount', async (t) => {
  for (const namespace of ['default', 'kube-system']) {
    const sa = await core.readNamespacedServiceAccount({ namespace, name: 'default' });
    t.equal(sa.metadata?.name, 'default', namespace);
  }
});

t.test('createNamespace makes a namespace ready for pods; a plain pod stays Pending', async (t) => {
  await createNamespace(plane, 'selftest', { team: 'e2e' });
  const ns = await core.readNamespace({ name: 'selftest' });
  t.equal(ns.metadata?.labels?.team, 'e2e');
  const sa = await core.readNamespacedServiceAccount({ namespace: 'selftest', name: 'default' });
  t.equal(sa.metadata?.name, 'default');

  const created = await createPod(plane.kubeConfig, 'selftest', plainPod('plain'));
  const stored = await core.readNamespacedPod({ namespace: 'selftest', name: 'plain' });
  t.equal(stored.metadata?.uid, created.metadata?.uid);
  t.equal(stored.status?.phase, 'Pending', 'no kubelet: the pod is never scheduled');
  t.equal(stored.spec?.serviceAccountName, 'default', 'ServiceAccount admission ran');
  t.ok(
    stored.spec?.volumes?.some((v) => v.name.startsWith('kube-api-access-')),
    'ServiceAccount admission added the projected token volume',
  );
});

t.test(
  'without its default ServiceAccount a namespace refuses pods (why createNamespace adds it)',
  async (t) => {
    await core.createNamespace({ body: { metadata: { name: 'selftest-no-sa' } } });
    const err = await createPod(plane.kubeConfig, 'selftest-no-sa', plainPod('refused')).then(
      () => undefined,
      (e: unknown) => e,
    );
    t.equal(statusCode(err), 403);
    t.match(apiErrorMessage(err), /serviceaccount "default" not found/i);
  },
);

t.test('the audit log records pod creations', async (t) => {
  const events = await plane.auditEvents();
  const create = events.find(
    (e) => e.verb === 'create' && e.objectRef?.namespace === 'selftest' && e.objectRef.name === 'plain',
  );
  t.ok(create, 'audit event for the plain pod');
  t.equal(create?.responseStatus?.code, 201);
});

t.test('kubectl apply --dry-run=server -f FILE works and stores nothing', async (t) => {
  const file = join(plane.dir, 'dry-run.yaml');
  await writeFile(
    file,
    [
      'apiVersion: v1',
      'kind: ConfigMap',
      'metadata: {name: dry-config, namespace: selftest}',
      'data: {key: value}',
      '---',
      'apiVersion: v1',
      'kind: Pod',
      'metadata: {name: dry-pod, namespace: selftest}',
      'spec:',
      '  containers: [{name: app, image: registry.example/app:1}]',
      '',
    ].join('\n'),
  );
  const result = await kubectl(['apply', '--dry-run=server', '-f', file], {
    kubeconfig: plane.kubeconfigPath,
  });
  t.equal(result.code, 0, result.stderr);
  t.match(result.stdout, /configmap\/dry-config created \(server dry run\)/);
  t.match(result.stdout, /pod\/dry-pod created \(server dry run\)/);
  for (const read of [
    () => core.readNamespacedConfigMap({ namespace: 'selftest', name: 'dry-config' }),
    () => core.readNamespacedPod({ namespace: 'selftest', name: 'dry-pod' }),
  ]) {
    t.equal(await read().then(() => 200, statusCode), 404, 'nothing stored');
  }

  const invalid = await kubectl(['apply', '--dry-run=server', '-f', '-'], {
    kubeconfig: plane.kubeconfigPath,
    input: 'apiVersion: v1\nkind: Pod\nmetadata: {name: bad, namespace: selftest}\nspec: {containers: []}\n',
  });
  t.not(invalid.code, 0, 'the server validates dry runs');
  t.match(invalid.stderr, /spec\.containers: Required value/);
});

t.test('helm runs (for the chart suite)', async (t) => {
  const result = await helm(['version', '--short'], { kubeconfig: plane.kubeconfigPath });
  t.equal(result.code, 0, result.stderr);
  t.match(result.stdout, /^v\d+\.\d+/);
});

t.test('a second control plane starts in the same run, and stop() cleans up', async (t) => {
  const second = await startControlPlane({ name: 'flipt-e2e-second' });
  let stopped = false;
  t.teardown(() => (stopped ? undefined : second.stop()));
  t.not(second.url, plane.url);
  const secondCore = second.kubeConfig.makeApiClient(CoreV1Api);
  const namespaces = await secondCore.listNamespace();
  t.notOk(
    namespaces.items.some((ns) => ns.metadata?.name === 'selftest'),
    'its own etcd: none of the first plane objects',
  );

  await second.stop();
  stopped = true;
  t.notOk(existsSync(second.dir), 'directory removed');
  const after = await fetch(`${second.etcdUrl}/health`).then(
    () => 'answered',
    () => 'refused',
  );
  t.equal(after, 'refused', 'etcd is gone');
  const apiAfter = await secondCore.listNamespace().then(
    () => 'answered',
    () => 'refused',
  );
  t.equal(apiAfter, 'refused', 'kube-apiserver is gone');
  await second.stop(); // idempotent
});
