import type { IncomingMessage } from 'node:http';
import type WebSocket from 'ws';
import type { RawData } from 'ws';
import type { WorkerListenerConfig } from '../../config/types';
import { LogLimiter } from '../../observability/log-limiter';
import type { Logger } from '../../observability/logger';
import { encode } from '../../protocol/codec';
import { EngineError, ErrorCode } from '../../protocol/errors';
import { CloseCode } from '../../transport/connection';
import { authenticate } from './authenticate';
import { FrameHold, MAX_HELD_FRAMES } from './frame-hold';
import type { CallFunction } from './hooks';
import { SessionAccess } from './session-access';

/** What admission needs from its node. */
export interface AdmissionHost {
  readonly logger: Logger;
  readonly maxMessageBytes: number;
  readonly callFunction: CallFunction;
  /** Whether the node takes workers now (an auth function may answer after the drain began). */
  ready(): boolean;
}

/** A socket let in, with the frames it sent while its auth function decided. */
export type Admitted = (access: SessionAccess, held: Array<[RawData, boolean]>) => void;

/**
 * Lets new worker and telemetry sockets in: at once on a port without an RBAC auth function;
 * otherwise once the auth function (called through the router, deadline `handshake_timeout_ms`)
 * has allowed it. Until then the connection is nobody (no worker id, no registry entry) and its
 * frames are held (at most MAX_HELD_FRAMES frames and `max_message_bytes` bytes, else it is
 * closed 1008). A refusal is the original's `{"type":"error","error":{"code":"AUTH_ERROR",...}}`
 * frame, then a close (1008).
 */
export class Admission {
  /** Auth-function refusals and warnings, at most one line per listener and peer a minute (SDKs reconnect forever). */
  private readonly authLog = new LogLimiter();

  constructor(private readonly host: AdmissionHost) {}

  admit(socket: WebSocket, request: IncomingMessage, listener: WorkerListenerConfig, admitted: Admitted): void {
    const { logger, maxMessageBytes } = this.host;
    socket.on('error', (err) => logger.debug({ err, listener: listener.instanceId }, 'worker socket error'));
    const authFunctionId = listener.rbac?.auth_function_id;
    if (authFunctionId === undefined) return admitted(SessionAccess.permissive(listener), []);
    const hold = new FrameHold(maxMessageBytes);
    const onHeld = (data: RawData, isBinary: boolean): void => {
      if (!hold.push(data, isBinary))
        socket.close(CloseCode.policy, `over ${MAX_HELD_FRAMES} frames or ${maxMessageBytes} bytes before auth`);
    };
    socket.on('message', onHeld);
    const peer = request.socket.remoteAddress;
    authenticate(listener, authFunctionId, request, this.host.callFunction).then(
      (access) => {
        socket.off('message', onHeld);
        if (socket.readyState !== socket.OPEN) return;
        if (!this.host.ready()) return socket.close(CloseCode.serviceRestart, 'engine not ready');
        for (const id of access.forbiddenInfrastructure()) {
          this.authLog.warn(
            logger,
            `infra:${listener.instanceId}:${id}`,
            { listener: listener.instanceId, peer, functionId: id },
            'the auth function forbids an infrastructure function the SDKs call on their own',
          );
        }
        admitted(access, hold.take());
      },
      (err: unknown) => {
        socket.off('message', onHeld);
        const message = EngineError.from(err).message;
        this.authLog.warn(
          logger,
          `refused:${listener.instanceId}:${peer ?? ''}`,
          { listener: listener.instanceId, peer, reason: message },
          'worker connection refused by the auth function',
        );
        if (socket.readyState !== socket.OPEN) return;
        socket.send(encode({ type: 'error', error: { code: ErrorCode.authError, message } }));
        socket.close(CloseCode.policy, 'authentication failed');
      },
    );
  }
}
