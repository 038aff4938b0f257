import type { IncomingMessage } from 'node:http';
import type { WorkerListenerConfig } from '../../config/types';
import { EngineError, ErrorCode } from '../../protocol/errors';
import type { Json } from '../../protocol/messages';
import { authInput } from './auth-input';
import { AuthResultError, parseAuthResult } from './auth-result';
import type { CallFunction } from './hooks';
import { SessionAccess } from './session-access';

/**
 * Runs a listener's RBAC auth function for one upgrade request, through the router (so the
 * function may live on any port or node), with the listener's `handshake_timeout_ms` as its
 * deadline: a hung auth function cannot hold a connection open forever. Rejects with an
 * EngineError `AUTH_ERROR` whose message is the reason the connection is refused.
 */
export function authenticate(
  listener: WorkerListenerConfig,
  authFunctionId: string,
  request: IncomingMessage,
  call: CallFunction,
): Promise<SessionAccess> {
  return authenticateInput(listener, authFunctionId, authInput(request, listener.authToken !== undefined), call);
}

/** As authenticate, with the auth function's input given (the console builds its own: console/sign-in.ts). */
export async function authenticateInput(
  listener: WorkerListenerConfig,
  authFunctionId: string,
  input: Json,
  call: CallFunction,
): Promise<SessionAccess> {
  const timeoutMs = listener.handshakeTimeoutMs;
  let result;
  try {
    result = (await call(authFunctionId, input, timeoutMs)).result;
  } catch (err) {
    const error = EngineError.from(err);
    const reason =
      error.code === ErrorCode.timeout
        ? `auth function ${authFunctionId} did not answer within ${timeoutMs} ms (handshake_timeout_ms)`
        : error.message;
    throw new EngineError(ErrorCode.authError, reason);
  }
  try {
    return new SessionAccess(listener, parseAuthResult(result));
  } catch (err) {
    if (err instanceof AuthResultError) throw new EngineError(ErrorCode.authError, err.message);
    throw err;
  }
}
