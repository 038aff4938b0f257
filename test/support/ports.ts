import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';

/**
 * Ports are handed out below the kernel's ephemeral range (ip_local_port_range), where no
 * outgoing connection takes a port by itself: a port the OS picks for `listen(0)` comes from that
 * range, and between the test's asking and the child's listening, a client socket of any process
 * could take it as its local port (a three-node test once failed with EADDRINUSE so). The range
 * below is split into slices, one per jest worker (or process), so parallel test files do not
 * race for the same port either; a port is checked free on all addresses before it is given.
 */
const LOWEST = 10_000;
const SLICES = 16;
const given = new Set<number>();
let cursor = -1;

function ephemeralLow(): number {
  try {
    const low = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) ? low : 0;
  } catch {
    return 0;
  }
}

const slice = ((): { start: number; size: number } | undefined => {
  const size = Math.floor((ephemeralLow() - LOWEST) / SLICES);
  if (size < 100) return undefined; // an unusual range: let the OS pick
  const owner = Number(process.env.JEST_WORKER_ID ?? process.pid);
  return { start: LOWEST + (owner % SLICES) * size, size };
})();

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host: '0.0.0.0', exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** A port free at the time of asking, not given before by this process, on every address. */
export async function freePort(): Promise<number> {
  if (slice === undefined) return osPort();
  if (cursor < 0) cursor = Math.floor(Math.random() * slice.size);
  for (let tried = 0; tried < slice.size; tried++) {
    const port = slice.start + (cursor++ % slice.size);
    if (given.has(port)) continue;
    given.add(port);
    if (await bindable(port)) return port;
  }
  throw new Error(`no free port left in ${slice.start}-${slice.start + slice.size - 1}`);
}

/** A loopback port the OS picks. */
function osPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Waits until `proc` (named `what` in errors) accepts connections on loopback `port`; fails if it exits first or `timeoutMs` passes. */
export async function waitForPort(port: number, proc: ChildProcess, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.exitCode !== null)
      throw new Error(`${what} exited with code ${proc.exitCode} before listening on ${port}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`${what} did not listen on ${port} within ${timeoutMs / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
