import os from 'node:os';

/** Hosts that mean "every interface": not an address another node can dial. */
const WILDCARD_HOSTS = new Set(['0.0.0.0', '::', '']);

/**
 * The worker URL other nodes use to reach this node: the configured advertise host, else the
 * listener's own host when it is a real address, else this machine's first non-internal IPv4
 * address (a pod IP in Kubernetes), else loopback. `wss://` when the listener has TLS: the
 * other nodes then check its certificate, which must name that host (III_ADVERTISE_HOST).
 */
export function advertisedUrl(
  listenerHost: string,
  port: number,
  configured: string | undefined,
  tls: boolean,
): string {
  const host = configured ?? (WILDCARD_HOSTS.has(listenerHost) ? (firstExternalIPv4() ?? '127.0.0.1') : listenerHost);
  return `${tls ? 'wss' : 'ws'}://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/**
 * The worker URL a process on this machine uses to reach a listener bound to `listenerHost`:
 * loopback when it listens on every interface (`protected_mode` lets loopback peers in).
 */
export function localUrl(listenerHost: string, port: number, tls: boolean): string {
  return advertisedUrl(listenerHost, port, WILDCARD_HOSTS.has(listenerHost) ? '127.0.0.1' : undefined, tls);
}

function firstExternalIPv4(): string | undefined {
  for (const addresses of Object.values(os.networkInterfaces())) {
    for (const address of addresses ?? []) if (address.family === 'IPv4' && !address.internal) return address.address;
  }
  return undefined;
}
