import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ErrorCode } from '../protocol/errors';

/** Why a worker or telemetry socket may not upgrade (the listener's token or protected mode). */
export interface UpgradeRefusal {
  status: 401 | 403;
  code: typeof ErrorCode.unauthorized | typeof ErrorCode.forbidden;
  message: string;
  headers: Record<string, string>;
}

/** Answers an upgrade request with a plain-text HTTP error on the raw socket and closes it. */
export function rejectUpgrade(socket: Duplex, status: number, message: string): void {
  writeRefusal(socket, status, 'text/plain; charset=utf-8', Buffer.from(message, 'utf8'), {});
}

/** Answers an upgrade request with `{"error":{code, message}}` and closes it (401, 403, 429...). */
export function refuseUpgrade(
  socket: Duplex,
  status: number,
  code: string,
  message: string,
  headers: Record<string, string> = {},
): void {
  writeRefusal(
    socket,
    status,
    'application/json',
    Buffer.from(JSON.stringify({ error: { code, message } }), 'utf8'),
    headers,
  );
}

function writeRefusal(
  socket: Duplex,
  status: number,
  contentType: string,
  body: Buffer,
  headers: Record<string, string>,
): void {
  // A client that hangs up first must not turn into an unhandled 'error'.
  socket.on('error', () => undefined);
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const extra = Object.entries(headers)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('');
  const head =
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n` +
    `Connection: close\r\n${extra}` +
    `Content-Type: ${contentType}\r\n` +
    `Content-Length: ${body.length}\r\n\r\n`;
  socket.once('finish', () => socket.destroy());
  socket.end(Buffer.concat([Buffer.from(head, 'latin1'), body]));
}
