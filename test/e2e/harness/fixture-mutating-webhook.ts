// Test fixture: a second, unrelated mutating admission webhook (like a policy engine or another
// injector in a real cluster). It adds one label to the pods it is sent, and is registered with
// reinvocationPolicy IfNeeded, so the API server re-invokes the webhooks that ran before it: our
// injector must then leave the pod with exactly one sidecar.
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createCa, issueServingCert } from '../../../src/tls.ts';

export const FIXTURE_SELECTOR_LABEL = 'e2e.flipt.io/fixture';
export const FIXTURE_ADDED_LABEL = 'e2e.flipt.io/fixture-mutated';

/** What the fixture saw in one call. */
export interface FixtureCall {
  uid: string;
  namespace: string;
  /** Names of the pod's init containers and containers as they reached the fixture. */
  initContainers: string[];
  containers: string[];
}

export interface FixtureWebhook {
  /** https://127.0.0.1:PORT/mutate */
  url: string;
  /** Base64 PEM of the CA that signed the fixture's certificate. */
  caBundle: string;
  readonly calls: FixtureCall[];
  /** A MutatingWebhookConfiguration for pods labelled e2e.flipt.io/fixture=on. */
  configuration(name: string): object;
  close(): Promise<void>;
}

interface PodLike {
  metadata?: { labels?: Record<string, string> };
  spec?: { containers?: { name: string }[]; initContainers?: { name: string }[] };
}

interface AdmissionRequestBody {
  request?: { uid?: string; namespace?: string; object?: PodLike };
}

/** JSON Pointer escaping of one reference token (RFC 6901). */
const escapeToken = (token: string) => token.replace(/~/g, '~0').replace(/\//g, '~1');

function patchFor(pod: PodLike): object[] {
  if (pod.metadata?.labels?.[FIXTURE_ADDED_LABEL] === 'true') return []; // idempotent, like any good webhook
  if (!pod.metadata?.labels)
    return [{ op: 'add', path: '/metadata/labels', value: { [FIXTURE_ADDED_LABEL]: 'true' } }];
  return [{ op: 'add', path: `/metadata/labels/${escapeToken(FIXTURE_ADDED_LABEL)}`, value: 'true' }];
}

export async function startFixtureWebhook(): Promise<FixtureWebhook> {
  const ca = await createCa({ commonName: 'flipt-e2e-fixture-webhook-ca', days: 1 });
  const serving = await issueServingCert(ca, { commonName: '127.0.0.1', ipAddresses: ['127.0.0.1'] });
  const calls: FixtureCall[] = [];

  const server: Server = createServer({ cert: serving.cert, key: serving.key }, (req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      let review: AdmissionRequestBody;
      try {
        review = JSON.parse(body) as AdmissionRequestBody;
      } catch {
        res.writeHead(400).end('not JSON');
        return;
      }
      const request = review.request ?? {};
      const pod = request.object ?? {};
      calls.push({
        uid: request.uid ?? '',
        namespace: request.namespace ?? '',
        initContainers: (pod.spec?.initContainers ?? []).map((c) => c.name),
        containers: (pod.spec?.containers ?? []).map((c) => c.name),
      });
      const patch = patchFor(pod);
      const response = {
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        response: {
          uid: request.uid ?? '',
          allowed: true,
          ...(patch.length > 0
            ? { patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(patch)).toString('base64') }
            : {}),
        },
      };
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(response));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const url = `https://127.0.0.1:${port}/mutate`;
  const caBundle = Buffer.from(ca.cert).toString('base64');

  return {
    url,
    caBundle,
    calls,
    configuration: (name: string) => ({
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'MutatingWebhookConfiguration',
      metadata: { name },
      webhooks: [
        {
          name: 'fixture.e2e.flipt.io',
          clientConfig: { url, caBundle },
          objectSelector: { matchLabels: { [FIXTURE_SELECTOR_LABEL]: 'on' } },
          rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'] }],
          admissionReviewVersions: ['v1'],
          sideEffects: 'None',
          failurePolicy: 'Fail',
          reinvocationPolicy: 'IfNeeded',
          timeoutSeconds: 5,
        },
      ],
    }),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
