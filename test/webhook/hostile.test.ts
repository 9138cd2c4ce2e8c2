// Hostile input against the real HTTPS server (issue 9): a pod that costs the webhook work must not
// delay the others, a connection that never says hello is dropped, and a stop closes idle keep-alive
// connections without resetting them. The time bounds here are bounds on work, set far above what the
// bounded code needs and far below what the unbounded code took (10.7 s for the 16-pod attack).
import { readFileSync } from 'node:fs';
import { request as httpsRequest, Agent } from 'node:https';
import { connect as tcpConnect, type Socket } from 'node:net';
import t from 'tap';
import { defaultConfig } from '../../src/core/config.ts';
import { MAX_MESSAGE_CHARS } from '../../src/core/bounded.ts';
import type { Pod } from '../../src/core/k8s.ts';
import { startInjectorServer } from '../../src/server.ts';
import { BODY_LIMIT_BYTES } from '../../src/webhook/app.ts';
import {
  admissionReview,
  httpsCall,
  spawnServe,
  testCertificates,
  type HttpAnswer,
} from '../support/webhook.ts';

const config = defaultConfig();
// Real server processes and multi-megabyte bodies: more than tap's default 30 s on a busy machine.
t.setTimeout(300_000);

const normalPod = (): Pod => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { generateName: 'web-', namespace: 'shop', labels: { 'flipt.io/inject': 'true' } },
  spec: { containers: [{ name: 'app', image: 'nginx' }] },
});

/**
 * A pod at Kubernetes' own limits: annotation keys are at most 63 characters after the prefix, and
 * all annotations together at most 256 KiB. `count` keys of 72 characters (flipt.io/ + 63), no values.
 */
function unknownKeysPod(count: number, seed: string): Pod {
  const annotations: Record<string, string> = {};
  for (let i = 0; i < count; i++) {
    const name = `${seed}-${String(i).padStart(6, '0')}-`.padEnd(63, 'x');
    annotations[`flipt.io/${name}`] = '';
  }
  return { ...normalPod(), metadata: { ...normalPod().metadata, name: `bad-${seed}`, annotations } };
}

interface Answer {
  response: { allowed: boolean; patch?: string; status?: { message: string } };
}

t.test('16 pods full of unknown flipt.io keys at once leave a normal pod answered promptly', async (t) => {
  // The server in its own process, as deployed: the test's own TLS work does not share its thread.
  const serve = await spawnServe();
  t.teardown(() => {
    serve.child.kill('SIGKILL');
  });
  const certs = await testCertificates();
  const server = { url: serve.url };
  // One connection per request, as the API server's concurrent calls would arrive.
  const agent = new Agent({ ca: certs.caCert, keepAlive: true, maxSockets: 32 });
  t.teardown(() => agent.destroy());
  const post = (body: string) => httpsCall(`${server.url}/mutate`, { method: 'POST', agent, body });

  const bodies = Array.from({ length: 16 }, (_, i) =>
    admissionReview(unknownKeysPod(3_640, `k${i}`), 'shop'),
  );
  t.ok(JSON.stringify(bodies[0]?.request.object.metadata?.annotations).length >= 256_000, '≈256 KiB each');
  // Open the connections first, so that the handshakes are not part of what is measured.
  await Promise.all(
    Array.from({ length: 17 }, () => httpsCall(`${server.url}/healthz`, { method: 'GET', agent })),
  );

  // Warm up (the first requests of a fresh process run unoptimised code), then measure.
  await post(JSON.stringify(admissionReview(unknownKeysPod(3_640, 'warm'), 'shop')));
  await post(JSON.stringify(admissionReview(normalPod(), 'shop')));
  const texts = bodies.map((body) => JSON.stringify(body));
  const normalText = JSON.stringify(admissionReview(normalPod(), 'shop'));
  // Five rounds, judged by the best: a bound on the server's work, not on how busy the machine is.
  const times: number[] = [];
  const cpu: number[] = [];
  let answers: HttpAnswer[] = [];
  for (let round = 0; round < 5; round++) {
    const cpuBefore = cpuSeconds(serve.child.pid as number);
    const bad = texts.map((text) => post(text));
    const started = performance.now();
    const normal = await post(normalText);
    times.push(performance.now() - started);
    answers = await Promise.all(bad);
    cpu.push(cpuSeconds(serve.child.pid as number) - cpuBefore);
    t.ok((normal.json() as Answer).response.patch, 'the normal pod is injected');
  }
  // What the 16 pods cost the server, whatever else runs on the machine (the old code: 10.7 s).
  t.ok(
    Math.min(...cpu) < 1,
    `the server spends under 1 s of CPU on the 17 pods (rounds: ${cpu.map((s) => s.toFixed(2)).join(', ')} s)`,
  );
  const best = Math.min(...times);
  t.ok(
    best < 1_000,
    `the normal pod is answered in under 1 s (rounds: ${times.map((ms) => ms.toFixed(0)).join(', ')} ms)`,
  );
  for (const answer of answers) {
    const { response } = answer.json() as Answer;
    t.equal(response.allowed, false, 'each bad pod is refused');
    const message = response.status?.message ?? '';
    t.ok(message.length <= MAX_MESSAGE_CHARS, `the denial is capped (${message.length} characters)`);
    t.match(message, /annotation flipt\.io\/k\d+-000000-x+ is not recognised/, 'names the first unknown key');
    t.match(message, /and 3630 more/, 'says how many more there are');
    t.ok(answer.text.length < 8_192, `the whole answer is small (${answer.text.length} bytes)`);
  }
});

t.test('a 3 MB body of unknown keys costs bounded time and memory', async (t) => {
  const serve = await spawnServe({ env: { FLIPT_INJECTOR_LOG_LEVEL: 'info' } });
  t.teardown(() => {
    serve.child.kill('SIGKILL');
  });
  const certs = await testCertificates();
  const agent = new Agent({ ca: certs.caCert, keepAlive: true });
  t.teardown(() => agent.destroy());
  // Short keys make the most of them: about 110k unknown keys in one body just under the limit.
  const annotations: Record<string, string> = {};
  const review = admissionReview(normalPod(), 'shop');
  // Each key adds `"flipt.io/KEY":"",` to the body.
  let size = JSON.stringify(review).length + '"annotations":{},'.length;
  for (let i = 0; size < BODY_LIMIT_BYTES - 64; i++) {
    const key = `flipt.io/${i.toString(36)}`;
    annotations[key] = '';
    size += key.length + 6;
  }
  (review.request.object as Pod).metadata = { ...normalPod().metadata, annotations };
  const body = JSON.stringify(review);
  t.ok(body.length > 3_000_000 && body.length <= BODY_LIMIT_BYTES, `${body.length} bytes`);

  const pid = serve.child.pid as number;
  const rssBefore = peakRss(pid);
  const times: number[] = [];
  const cpu: number[] = [];
  for (let round = 0; round < 2; round++) {
    const cpuBefore = cpuSeconds(pid);
    const started = performance.now();
    const answer = await httpsCall(`${serve.url}/mutate`, { method: 'POST', agent, body });
    times.push(performance.now() - started);
    cpu.push(cpuSeconds(pid) - cpuBefore);
    const { response } = answer.json() as Answer;
    t.equal(response.allowed, false);
    t.ok((response.status?.message ?? '').length <= MAX_MESSAGE_CHARS, 'the denial is capped');
  }
  // The unbounded code spent about 10 s of CPU on this body. CPU time, not wall time, is compared:
  // it does not grow with how many other processes share the machine.
  t.ok(
    Math.min(...cpu) < 2,
    `the server spends under 2 s of CPU on it (CPU: ${cpu.map((s) => s.toFixed(2)).join(', ')} s; wall: ${times.map((ms) => (ms / 1000).toFixed(2)).join(', ')} s)`,
  );
  const rssAfter = peakRss(pid);
  t.ok(
    rssAfter < 300 * 1024 * 1024,
    `peak RSS stays under 300 MiB (${mib(rssBefore)} before, ${mib(rssAfter)} after)`,
  );
  const normal = await httpsCall(`${serve.url}/mutate`, {
    method: 'POST',
    agent,
    body: JSON.stringify(admissionReview(normalPod(), 'shop')),
  });
  t.ok((normal.json() as Answer).response.patch, 'still serving');
  // The log line for the refusal is capped like the answer.
  serve.child.kill('SIGTERM');
  await serve.exited;
  const line = serve
    .output()
    .split('\n')
    .find((l) => l.includes('"outcome":"rejected"'));
  t.ok(line, 'the refusal is logged');
  t.ok((line ?? '').length < 8_192, `the log line is capped (${(line ?? '').length} characters)`);
});

/** User + system CPU seconds of a process so far (/proc/PID/stat fields 14 and 15, in clock ticks). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  // After "pid (comm) ", field 3 (state) is index 0: utime is field 14, stime field 15.
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function peakRss(pid: number): number {
  // VmHWM: the process's peak resident set size, from the kernel.
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
  return kib * 1024;
}
const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MiB`;

t.test('a connection that never sends a ClientHello is closed after the handshake timeout', async (t) => {
  const certs = await testCertificates();
  const server = await startInjectorServer({
    config,
    tls: certs,
    host: '127.0.0.1',
    port: 0,
    logLevel: false,
    handshakeTimeoutMs: 1_000,
  });
  t.teardown(() => server.close());
  const { port } = new URL(server.url);
  const socket = tcpConnect({ host: '127.0.0.1', port: Number(port) });
  socket.on('error', () => {});
  await new Promise((resolve) => socket.once('connect', resolve));
  const started = performance.now();
  const closed = await Promise.race([
    new Promise<number>((resolve) => socket.once('close', () => resolve(performance.now() - started))),
    new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 10_000).unref()),
  ]);
  socket.destroy();
  t.ok(closed !== undefined, `the server closed the silent connection (after ${closed?.toFixed(0)} ms)`);
  t.ok((closed ?? 0) >= 900, 'not before the timeout');
});

t.test('SIGTERM: keep-alive clients see their answers and clean closes, never ECONNRESET', async (t) => {
  const serve = await spawnServe();
  t.teardown(() => {
    serve.child.kill('SIGKILL');
  });
  const certs = await testCertificates();
  // Busy clients: eight keep-alive connections, each sending its next request as soon as the last
  // is answered (as the API server does under load).
  const busy = new Agent({ ca: certs.caCert, keepAlive: true, maxSockets: 8 });
  // Idle clients: four keep-alive connections used once, then left open in the pool.
  const idle = new Agent({ ca: certs.caCert, keepAlive: true, maxSockets: 4 });
  t.teardown(() => {
    busy.destroy();
    idle.destroy();
  });
  const errors: string[] = [];
  const idleSockets = new Set<Socket>();
  await Promise.all(
    Array.from(
      { length: 4 },
      () =>
        new Promise<void>((resolve, reject) => {
          const req = httpsRequest(`${serve.url}/healthz`, { agent: idle }, (res) => {
            res.resume();
            res.on('end', resolve);
          });
          req.on('socket', (socket: Socket) => {
            idleSockets.add(socket);
            socket.on('error', (err: NodeJS.ErrnoException) => errors.push(`idle: ${err.code}`));
          });
          req.on('error', reject);
          req.end();
        }),
    ),
  );
  const body = JSON.stringify(admissionReview(normalPod(), 'shop'));
  let answered = 0;
  let stopping = false;
  const loops = Array.from({ length: 8 }, async () => {
    for (;;) {
      try {
        const answer = await httpsCall(`${serve.url}/mutate`, { method: 'POST', agent: busy, body });
        if (answer.status === 200) answered++;
        else errors.push(`HTTP ${answer.status}`);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? String(err);
        // Once the listener is gone a new connection is refused: that is how the loop ends.
        if (code === 'ECONNREFUSED' && stopping) return;
        errors.push(code);
        return;
      }
    }
  });
  const closed = [...idleSockets].map((s) => new Promise((resolve) => s.once('close', resolve)));
  await new Promise((resolve) => setTimeout(resolve, 300));
  stopping = true;
  serve.child.kill('SIGTERM');
  t.equal(await serve.exited, 0, 'exits 0');
  await Promise.all(loops);
  await Promise.all(closed);
  t.ok(answered > 0, `requests were answered (${answered})`);
  t.same(errors, [], 'no client saw an error: no ECONNRESET, no 503');
});

t.test(
  'while draining: admission requests on open connections are answered, readiness says no',
  async (t) => {
    const certs = await testCertificates();
    const server = await startInjectorServer({
      config,
      tls: certs,
      host: '127.0.0.1',
      port: 0,
      logLevel: false,
      drainMs: 500,
    });
    const agent = new Agent({ ca: certs.caCert, keepAlive: true, maxSockets: 1 });
    t.teardown(() => agent.destroy());
    t.equal((await httpsCall(`${server.url}/readyz`, { method: 'GET', agent })).status, 200, 'ready');
    const closing = server.close();
    const ready = await httpsCall(`${server.url}/readyz`, { method: 'GET', agent });
    t.equal(ready.status, 503, 'not ready once the stop began');
    t.equal(ready.headers.connection, 'close', 'and the connection is closed after the answer');
    await closing;
    await t.rejects(httpsCall(`${server.url}/healthz`, { method: 'GET', agent }), /ECONNREFUSED/);
  },
);
