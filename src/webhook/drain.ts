// A graceful stop for the listening server. Node's server.close() destroys idle keep-alive
// connections at once, so a client that has just written its next request on one gets ECONNRESET
// (one per connection, reproduced in test/webhook/hostile.test.ts). Instead: stop accepting, answer
// whatever still arrives on open connections with `Connection: close` (the client then closes it
// cleanly), and only after `drainMs` close the connections that stayed idle all along.
import type { FastifyInstance } from 'fastify';
import type { Server } from 'node:http';

/** How long open keep-alive connections may still bring requests after a stop begins. */
export const DRAIN_MS = 2_000;

export function gracefulClose(app: FastifyInstance, drainMs = DRAIN_MS): void {
  let draining = false;
  // Not ready while draining (Fastify's own 503-while-closing is off, so that admission requests on
  // open connections are still answered): the kubelet stops sending new traffic.
  // Callback-style hooks: they run on every admission request, and an async hook costs a promise
  // and a microtask turn each time (issue 11's profile).
  app.addHook('onRequest', (request, reply, done) => {
    if (draining && request.url === '/readyz') {
      reply.code(503).send({ status: 'shutting down' });
      return;
    }
    done();
  });
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (draining) reply.header('connection', 'close');
    done(null, payload);
  });
  // preClose runs before Fastify calls server.close(); it must not wait, or new connections would
  // still be accepted meanwhile.
  app.addHook('preClose', async () => {
    draining = true;
    const server = app.server as Server;
    const closeIdle = server.closeIdleConnections.bind(server);
    server.closeIdleConnections = () => {};
    const reap = () => closeIdle();
    let sweep: NodeJS.Timeout | undefined;
    const start = setTimeout(() => {
      reap();
      // A request that was already being answered when the stop began may leave its connection
      // idle later: keep closing such connections until the server is closed.
      sweep = setInterval(reap, 250);
    }, drainMs);
    server.once('close', () => {
      clearTimeout(start);
      clearInterval(sweep);
    });
  });
}
