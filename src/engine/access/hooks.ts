import { describeValue, isPlainObject } from '../../config/formats';
import { EngineError } from '../../protocol/errors';
import type { Json, RegisterFunction, RegisterTrigger, RegisterTriggerType } from '../../protocol/messages';
import type { CallOutcome } from '../../router/router';
import type { SessionAccess } from './session-access';

/**
 * The three RBAC registration hooks (iii-modules.md §4.4). Each is called, through the router,
 * with the registration's fields plus the session `context`; an object answer approves, and its
 * fields replace the registration's (strings for ids and descriptions, any JSON for `metadata`
 * and `config`). An error, a non-object answer, or no answer within the session's hook deadline
 * denies.
 */

/** Calls a function with an engine-side deadline in milliseconds (the router's `invoke`). */
export type CallFunction = (functionId: string, data: Json, timeoutMs: number) => Promise<CallOutcome>;

/** A registration the hook approved (possibly remapped), or why it was refused. */
export type HookVerdict<T> = { approved: T } | { denied: string };

export async function functionHook(
  access: SessionAccess,
  hookId: string,
  message: RegisterFunction,
  call: CallFunction,
): Promise<HookVerdict<RegisterFunction>> {
  const input = {
    function_id: message.id,
    description: message.description ?? null,
    metadata: message.metadata ?? null,
    context: access.context,
  };
  const answer = await runHook(access, hookId, input, call);
  if (typeof answer === 'string') return { denied: answer };
  const out = { ...message };
  if (typeof answer['function_id'] === 'string') out.id = answer['function_id'];
  if (typeof answer['description'] === 'string') out.description = answer['description'];
  if (answer['metadata'] !== undefined && answer['metadata'] !== null) out.metadata = answer['metadata'];
  return { approved: out };
}

export async function triggerHook(
  access: SessionAccess,
  hookId: string,
  message: RegisterTrigger,
  call: CallFunction,
): Promise<HookVerdict<RegisterTrigger>> {
  const input = {
    trigger_id: message.id,
    trigger_type: message.trigger_type,
    function_id: message.function_id,
    config: message.config,
    metadata: message.metadata ?? null,
    context: access.context,
  };
  const answer = await runHook(access, hookId, input, call);
  if (typeof answer === 'string') return { denied: answer };
  const out = { ...message };
  if (typeof answer['trigger_id'] === 'string') out.id = answer['trigger_id'];
  if (typeof answer['trigger_type'] === 'string') out.trigger_type = answer['trigger_type'];
  if (typeof answer['function_id'] === 'string') out.function_id = answer['function_id'];
  if (answer['config'] !== undefined) out.config = answer['config'];
  if (answer['metadata'] !== undefined && answer['metadata'] !== null) out.metadata = answer['metadata'];
  return { approved: out };
}

export async function triggerTypeHook(
  access: SessionAccess,
  hookId: string,
  message: RegisterTriggerType,
  call: CallFunction,
): Promise<HookVerdict<RegisterTriggerType>> {
  const input = { trigger_type_id: message.id, description: message.description, context: access.context };
  const answer = await runHook(access, hookId, input, call);
  if (typeof answer === 'string') return { denied: answer };
  const out = { ...message };
  if (typeof answer['trigger_type_id'] === 'string') out.id = answer['trigger_type_id'];
  if (typeof answer['description'] === 'string') out.description = answer['description'];
  return { approved: out };
}

/** The hook's object answer, or the reason it denies. */
async function runHook(
  access: SessionAccess,
  hookId: string,
  input: Json,
  call: CallFunction,
): Promise<Record<string, Json> | string> {
  let outcome: CallOutcome;
  try {
    outcome = await call(hookId, input, access.hookTimeoutMs);
  } catch (err) {
    const error = EngineError.from(err);
    return `hook ${hookId} failed (${error.code}: ${error.message})`;
  }
  const answer = outcome.result;
  if (!isPlainObject(answer)) return `hook ${hookId} denied it (answered ${describeValue(answer)}, an object approves)`;
  return answer;
}
