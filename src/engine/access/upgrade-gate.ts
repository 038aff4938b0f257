import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import type { WorkerListenerConfig } from '../../config/types';
import { ErrorCode } from '../../protocol/errors';
import { unmappedAddress } from '../../transport/address-limit';
import type { UpgradeRefusal } from '../../transport/reject-upgrade';
import { tokenMatches } from './shared-token';

/**
 * Who may open a worker (`/`) or telemetry (`/otel`) socket on a listener, decided on the HTTP
 * upgrade request, before any WebSocket exists:
 *
 * - With a shared token (`auth_token` / `III_WORKER_TOKEN`), a request without the right one is
 *   refused with 401.
 * - Protected mode (like Redis's): a listener bound to a non-loopback address with neither a
 *   token nor an RBAC auth function accepts loopback peers only; others get 403 saying how to
 *   open it. `protected_mode: false` turns this off.
 *
 * Data-channel paths are not gated here: their access key authenticates them.
 */

export function checkUpgrade(listener: WorkerListenerConfig, request: IncomingMessage): UpgradeRefusal | undefined {
  if (listener.authToken !== undefined) {
    if (tokenMatches(request, listener.authToken)) return undefined;
    return {
      status: 401,
      code: ErrorCode.unauthorized,
      message: `${listener.instanceId} requires the worker token: send "Authorization: Bearer <token>" or add ?token=<token> to the URL (missing or wrong token)`,
      headers: { 'WWW-Authenticate': 'Bearer' },
    };
  }
  if (!isProtected(listener) || isLoopbackAddress(request.socket.remoteAddress ?? '')) return undefined;
  return {
    status: 403,
    code: ErrorCode.forbidden,
    message:
      `${listener.instanceId} is in protected mode: it listens on ${listener.host} without a worker token or an RBAC auth function, ` +
      `so it accepts connections from loopback only. To accept other peers set III_WORKER_TOKEN (or auth_token in this ` +
      `iii-worker-manager block), configure rbac.auth_function_id, or set protected_mode: false in the block.`,
    headers: {},
  };
}

/** Whether the listener refuses non-loopback peers (protected mode applies). */
export function isProtected(listener: WorkerListenerConfig): boolean {
  return listener.protectedMode && !isOpenedByAuth(listener) && !isLoopbackHost(listener.host);
}

/** A startup warning for a listener reachable from other hosts without any authentication. */
export function openListenerWarning(listener: WorkerListenerConfig): string | undefined {
  if (isOpenedByAuth(listener) || isLoopbackHost(listener.host)) return undefined;
  if (listener.protectedMode) {
    return `${listener.instanceId} listens on ${listener.host} without a worker token or RBAC auth function: protected mode accepts loopback peers only (set III_WORKER_TOKEN, rbac.auth_function_id, or protected_mode: false)`;
  }
  return `${listener.instanceId} listens on ${listener.host} without a worker token or RBAC auth function and protected_mode is false: anyone who can reach the port can register and call functions`;
}

function isOpenedByAuth(listener: WorkerListenerConfig): boolean {
  return listener.authToken !== undefined || listener.rbac?.auth_function_id !== undefined;
}

/** `127.0.0.0/8`, `::1` and their IPv4-mapped forms. */
export function isLoopbackAddress(address: string): boolean {
  const v4 = unmappedAddress(address);
  if (isIP(v4) === 4) return v4.startsWith('127.');
  return address === '::1' || address === '0:0:0:0:0:0:0:1';
}

/** A bind address that only loopback peers can reach. */
function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || isLoopbackAddress(host);
}
