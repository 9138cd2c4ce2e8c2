// The golden cases through the webhook door, over real HTTPS: every pod (template) of NAME.yaml is
// posted as an AdmissionReview by a client that trusts only our selfsigned CA; the returned patch,
// applied with fast-json-patch, must give the pod in NAME.injected.yaml (or the denial must carry
// NAME.error.txt's errors). The patched pod must satisfy the Kubernetes OpenAPI schema, and posting
// it again must yield no patch (reinvocation changes nothing).
import fastJsonPatch from 'fast-json-patch';
import { Pod as PodModel } from 'kubernetes-models/v1';
import t from 'tap';
import { parseAllDocuments } from 'yaml';
import { loadConfig } from '../src/config-file.ts';
import type { Pod } from '../src/core/k8s.ts';
import { findPodTemplates } from '../src/manifest.ts';
import { MUTATE_NAMESPACE_PATH, MUTATE_PATH } from '../src/webhook/paths.ts';
import { goldenCases } from './support/golden.ts';
import { admissionReview, startTestWebhook, type TestWebhook } from './support/webhook.ts';
import { readFileSync } from 'node:fs';

function templatesOf(text: string) {
  return parseAllDocuments(text).flatMap((doc) => findPodTemplates(doc.toJS()));
}

/** A Pod as the API server would present it to the webhook: the template, in its namespace. */
function asPod(template: Pod, namespace: string): Pod {
  const pod = structuredClone(template);
  return { apiVersion: 'v1', kind: 'Pod', ...pod, metadata: { ...pod.metadata, namespace } };
}

interface Answer {
  response: {
    uid: string;
    allowed: boolean;
    patchType?: string;
    patch?: string;
    status?: { message: string };
  };
}

const webhooks = new Map<string | undefined, TestWebhook>();
async function webhookFor(configFile: string | undefined): Promise<TestWebhook> {
  let webhook = webhooks.get(configFile);
  if (!webhook) {
    webhook = await startTestWebhook(await loadConfig(configFile, {}));
    webhooks.set(configFile, webhook);
  }
  return webhook;
}
t.teardown(async () => {
  for (const webhook of webhooks.values()) await webhook.close();
});

async function review(webhook: TestWebhook, path: string, pod: Pod, namespace: string) {
  const body = admissionReview(pod, namespace);
  const answer = await webhook.post(path, body);
  const json = answer.json() as Answer;
  return { status: answer.status, uid: body.request.uid, response: json.response, review: json };
}

for (const goldenCase of goldenCases()) {
  t.test(goldenCase.name, async (t) => {
    const webhook = await webhookFor(goldenCase.configFile);
    const path = goldenCase.namespaceEnabled ? MUTATE_NAMESPACE_PATH : MUTATE_PATH;
    const inputs = templatesOf(goldenCase.input);
    t.ok(inputs.length > 0, 'the case has pods to post');
    const expectedText = readFileSync(goldenCase.expectedFile, 'utf8');
    const outputs = goldenCase.kind === 'injected' ? templatesOf(expectedText) : [];

    for (const [i, input] of inputs.entries()) {
      const namespace = input.namespace ?? 'default';
      const pod = asPod(input.template, namespace);
      const answer = await review(webhook, path, pod, namespace);
      t.equal(answer.status, 200, `${input.subject}: HTTP 200`);
      t.match(answer.review, { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' });
      t.equal(answer.response.uid, answer.uid, 'the response carries the request uid');

      if (goldenCase.kind === 'error') {
        t.equal(answer.response.allowed, false, 'the pod is refused');
        // The CLI names the workload, the webhook the pod; the errors after the subject are identical.
        const cliErrors = expectedText.trim().replace(/^flipt-sidecar-injector refused [^:]+: /, '');
        const message = answer.response.status?.message ?? '';
        t.equal(
          message.replace(/^flipt-sidecar-injector refused [^:]+: /, ''),
          cliErrors,
          'same errors as the CLI',
        );
        t.match(message, `refused pod ${namespace}/`);
        continue;
      }

      t.equal(answer.response.allowed, true, 'the pod is allowed');
      let patched = pod;
      if (answer.response.patch !== undefined) {
        t.equal(answer.response.patchType, 'JSONPatch');
        const operations = JSON.parse(Buffer.from(answer.response.patch, 'base64').toString('utf8'));
        patched = fastJsonPatch.applyPatch(structuredClone(pod), operations, true, false).newDocument;
      }
      const want = asPod(outputs[i]?.template as Pod, namespace);
      t.same(patched, want, 'the patched pod equals the golden output');
      t.doesNotThrow(
        () => new PodModel(patched as never).validate(),
        'the patched pod satisfies the Pod schema',
      );

      // Reinvocation: the API server sends the patched pod again; nothing more may change.
      const again = await review(webhook, path, patched, namespace);
      t.equal(again.response.allowed, true);
      t.equal(again.response.patch, undefined, 'a second invocation returns no patch');
    }
  });
}
