// Loopback ports for the servers tests start.
import { createServer } from 'node:net';

/** A port free on 127.0.0.1 right now (the kernel picks it). */
export function freePort() {
  return new Promise((ok, fail) => {
    const probe = createServer().once('error', fail);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => ok(port));
    });
  });
}

/** Resolves when `port` on 127.0.0.1 can be listened on; rejects while something holds it. */
export function assertPortFree(port) {
  return new Promise((ok, fail) => {
    const probe = createServer().once('error', fail);
    probe.listen(port, '127.0.0.1', () => probe.close(() => ok()));
  });
}
