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
  const res = await fetch('/api/call', {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ function_id: functionId, payload }),
  });
  const body = (await res.json().catch(() => ({}))) as { result?: T; error?: { code: string; message: string } };
  if (!res.ok || body.error) throw new ApiError(res.status, body.error?.code ?? String(res.status), body.error?.message ?? res.statusText);
  return body.result as T;
}
