import type { Json } from '../../protocol/messages';
import type { Logger } from '../../observability/logger';
import type { ModuleHost } from '../../engine/module';

/** Global middleware entries run only in this phase (others are skipped, as in the original). */
export const PRE_HANDLER = 'preHandler';

export interface GlobalMiddleware {
  functionId: string;
  priority: number;
}

/** The part of the request a middleware sees: no body, no channels. */
export interface MiddlewareRequest {
  path_params: Record<string, string>;
  query_params: Record<string, string>;
  headers: Record<string, string>;
  method: string;
}

export type MiddlewareOutcome = { action: 'continue' } | { action: 'respond'; response: Json | undefined };

/** The `middleware` config list: preHandler entries by ascending priority (stable for ties). */
export function globalMiddleware(entries: unknown): GlobalMiddleware[] {
  const list = Array.isArray(entries)
    ? (entries as Array<{ function_id: string; phase?: string; priority?: number }>)
    : [];
  return list
    .filter((entry) => (entry.phase ?? PRE_HANDLER) === PRE_HANDLER)
    .map((entry) => ({ functionId: entry.function_id, priority: entry.priority ?? 0 }))
    .sort((a, b) => a.priority - b.priority);
}

/**
 * Calls one middleware with `{phase, request, context}`. `{action:"respond"}` ends the request
 * with its response; anything else (including no result) lets it continue. Errors reject.
 */
export async function callMiddleware(
  host: ModuleHost,
  log: Logger,
  functionId: string,
  request: MiddlewareRequest,
  timeoutMs: number,
): Promise<MiddlewareOutcome> {
  const { result } = await host.invoke({
    functionId,
    data: { phase: PRE_HANDLER, request: { ...request }, context: {} },
    timeoutMs,
  });
  const action = result !== null && typeof result === 'object' && !Array.isArray(result) ? result.action : undefined;
  if (action === 'respond') return { action: 'respond', response: (result as Record<string, Json>).response };
  if (action !== 'continue')
    log.warn({ middleware: functionId, action }, 'middleware result is neither continue nor respond; continuing');
  return { action: 'continue' };
}
