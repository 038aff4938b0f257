import type { Json } from '../protocol/messages';
import type { ModuleHost } from '../engine/module';

/**
 * The `condition_function_id` contract shared by the trigger types (iii-modules.md, conventions):
 * the condition is called with the payload the handler would get, and only a result of exactly
 * `false` skips the handler. An error from the condition rejects (the caller decides what a failed
 * condition means: HTTP answers 500, the queue counts a failed attempt, the others skip).
 */
export async function conditionPasses(
  host: ModuleHost,
  conditionFunctionId: string | undefined,
  payload: Json,
  metadata?: Json,
): Promise<boolean> {
  if (conditionFunctionId === undefined) return true;
  const request =
    metadata === undefined
      ? { functionId: conditionFunctionId, data: payload }
      : { functionId: conditionFunctionId, data: payload, metadata };
  const { result } = await host.invoke(request);
  return result !== false;
}
