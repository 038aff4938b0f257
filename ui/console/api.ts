/** The console server's API (src/console/server.ts): one call endpoint, a session, a live feed. */

export interface Session {
  node_id: string;
  read_only: boolean;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly traceId?: string,
  ) {
    super(message);
  }
}

export async function session(): Promise<Session> {
  const res = await fetch('/api/session', { credentials: 'same-origin' });
  if (!res.ok) throw new ApiError(res.status, 'session', `${res.status}: sign in again`);
  return (await res.json()) as Session;
}

/** Calls one of the engine's functions through the console; rejects with the engine's error. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function call<T = any>(functionId: string, payload: unknown = {}): Promise<T> {
  return (await callTraced<T>(functionId, payload)).result;
}

/** Like `call`, with the trace id the server gave the call (a change is traced; reads are not). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function callTraced<T = any>(
  functionId: string,
  payload: unknown = {},
): Promise<{ result: T; traceId?: string }> {
  const res = await fetch('/api/call', {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ function_id: functionId, payload }),
  });
  const body = (await res.json().catch(() => ({}))) as {
    result?: T;
    trace_id?: string;
    error?: { code: string; message: string };
  };
  if (!res.ok || body.error)
    throw new ApiError(
      res.status,
      body.error?.code ?? String(res.status),
      body.error?.message ?? res.statusText,
      body.trace_id,
    );
  return { result: body.result as T, ...(body.trace_id === undefined ? {} : { traceId: body.trace_id }) };
}
