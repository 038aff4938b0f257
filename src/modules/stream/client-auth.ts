import type { IncomingMessage } from 'node:http';
import { EngineError } from '../../protocol/errors';
import type { Json } from '../../protocol/messages';
import type { ModuleHost } from '../../engine/module';

export type AuthOutcome = { ok: true; context: Json } | { ok: false; reason: string };

/**
 * Calls `auth_function` for a client upgrade with `{headers, path, query_params, addr}`
 * (iii-modules.md §9.4). Its `{context}` goes to the join/leave handlers. Ours: a result of
 * exactly `false`, or a failing auth function, refuses the upgrade (the original cannot reject
 * and lets the client in without context); any other result is accepted.
 */
export async function authenticate(
  host: ModuleHost,
  functionId: string,
  request: IncomingMessage,
  path: string,
  query: string,
): Promise<AuthOutcome> {
  const input = {
    headers: headersOf(request),
    path,
    query_params: queryParams(query),
    addr: `${request.socket.remoteAddress ?? ''}:${request.socket.remotePort ?? ''}`,
  };
  let result: Json | undefined;
  try {
    ({ result } = await host.invoke({ functionId, data: input }));
  } catch (err) {
    const cause = EngineError.from(err);
    return { ok: false, reason: `The stream auth function ${functionId} failed: ${cause.code}: ${cause.message}` };
  }
  if (result === false) return { ok: false, reason: `The stream auth function ${functionId} refused this connection.` };
  const context =
    typeof result === 'object' && result !== null && !Array.isArray(result) ? result['context'] : undefined;
  return { ok: true, context: context ?? null };
}

/** Header names lower-case (as Node gives them); repeated headers joined with ", ". */
function headersOf(request: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    if (value !== undefined) out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

function queryParams(query: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [key, value] of new URLSearchParams(query)) (out[key] ??= []).push(value);
  return out;
}
