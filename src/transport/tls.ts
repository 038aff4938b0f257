import http from 'node:http';
import https from 'node:https';
import type { TlsMaterial } from '../config/types';
import type { Logger } from '../observability/logger';

/**
 * TLS for the engine's listeners (worker, HTTP, stream): each listener is an https server
 * (wss:// for WebSocket upgrades) with the material read at config load
 * (src/config/tls-files.ts) or, without TLS, a plain http one.
 */

/**
 * How long a client has to finish the TLS handshake, in milliseconds (Node's default is 120 s,
 * long enough for idle half-open connections to pile up).
 */
export const TLS_HANDSHAKE_TIMEOUT_MS = 10_000;

export interface ListenerServerOptions {
  /** Passed to Node's http/https server (e.g. `maxHeaderSize`). */
  server?: http.ServerOptions;
  /** TLS handshake deadline, in milliseconds (default TLS_HANDSHAKE_TIMEOUT_MS). */
  handshakeTimeoutMs?: number;
  /** Logs failed TLS handshakes (a plain ws:// or http:// client, an untrusted certificate) at debug level. */
  logger: Logger;
}

/**
 * The listener's server: https with `tls`, else http. A client that fails the handshake (plain
 * text on a TLS port, a TLS version below `minVersion`) has its socket destroyed; nothing else
 * is affected.
 */
export function createListenerServer(
  tls: TlsMaterial | undefined,
  options: ListenerServerOptions,
  handler: http.RequestListener,
): http.Server {
  if (tls === undefined) return http.createServer(options.server ?? {}, handler);
  const server = https.createServer(
    {
      ...options.server,
      cert: tls.cert,
      key: tls.key,
      minVersion: tls.minVersion,
      handshakeTimeout: options.handshakeTimeoutMs ?? TLS_HANDSHAKE_TIMEOUT_MS,
    },
    handler,
  );
  server.on('tlsClientError', (err, socket) => {
    options.logger.debug({ err, remote: socket.remoteAddress }, 'TLS handshake failed');
    socket.destroy();
  });
  return server;
}
