// The benchmark's baseline: a bare Fastify HTTPS route with the webhook's TLS settings and body
// limit that parses the JSON body and returns a constant "allowed" AdmissionReview.
import Fastify from 'fastify';
import { readFileSync } from 'node:fs';
import { BODY_LIMIT_BYTES, tlsOptions } from '../src/webhook/app.ts';

const [certFile, keyFile] = process.argv.slice(2) as [string, string];
const app = Fastify({
  logger: false,
  bodyLimit: BODY_LIMIT_BYTES,
  https: tlsOptions({ cert: readFileSync(certFile), key: readFileSync(keyFile) }),
});
const allowed = {
  apiVersion: 'admission.k8s.io/v1',
  kind: 'AdmissionReview',
  response: { uid: 'constant', allowed: true },
};
app.post('/mutate', async () => allowed);
await app.listen({ host: '127.0.0.1', port: 0 });
const address = app.server.address();
process.stdout.write(
  `${JSON.stringify({ url: `https://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}` })}\n`,
);
process.once('SIGTERM', () => void app.close());
