import { EngineError } from '../../protocol/errors';
import type { Json } from '../../protocol/messages';
import { Input } from '../input';
import type { ModuleHost } from '../../engine/module';
import type { StateAdapter } from './adapters';
import { StateErrorCode } from './errors';
import type { StateTriggers } from './triggers';

const MODULE = 'iii-state';

export interface StateFunctionDeps {
  host: ModuleHost;
  adapter: StateAdapter;
  triggers: StateTriggers;
  maxValueBytes: number | undefined;
}

/** Registers `state::set|get|delete|update|list|list_groups` (iii-modules.md §8.2). */
export function registerStateFunctions({ host, adapter, triggers, maxValueBytes }: StateFunctionDeps): void {
  const fn = (
    id: string,
    description: string,
    errorCode: string,
    handler: (input: Input, data: Json) => Promise<Json>,
  ) =>
    host.registerFunction(MODULE, { id, description }, (data) =>
      storage(errorCode, () => handler(new Input(id, data), data)),
    );

  fn(
    'state::set',
    'Store a value under scope/key; returns {old_value, new_value}',
    StateErrorCode.set,
    async (input, data) => {
      const scope = input.string('scope');
      const key = input.string('key');
      const value = valueField(input, data);
      const old = await adapter.set(scope, key, value, maxValueBytes);
      triggers.dispatch({
        event_type: old === undefined ? 'state:created' : 'state:updated',
        scope,
        key,
        old_value: old ?? null,
        new_value: value,
      });
      return { old_value: old ?? null, new_value: value };
    },
  );

  fn('state::get', 'Read the value under scope/key, or null', StateErrorCode.get, async (input) => {
    return (await adapter.get(input.string('scope'), input.string('key'))) ?? null;
  });

  fn('state::delete', 'Remove scope/key; returns the removed value, or null', StateErrorCode.delete, async (input) => {
    const scope = input.string('scope');
    const key = input.string('key');
    const old = await adapter.delete(scope, key);
    // Ours: nothing removed, nothing to tell (the original fired state:deleted anyway).
    if (old !== undefined)
      triggers.dispatch({ event_type: 'state:deleted', scope, key, old_value: old, new_value: null });
    return old ?? null;
  });

  fn(
    'state::update',
    'Apply update ops to scope/key atomically; returns {old_value, new_value, errors?}',
    StateErrorCode.update,
    async (input) => {
      const scope = input.string('scope');
      const key = input.string('key');
      const ops = input.raw('ops');
      if (ops === undefined) throw input.fail('missing field `ops`');
      const { old_value, new_value, errors } = await adapter.update(scope, key, ops, maxValueBytes);
      triggers.dispatch({
        event_type: old_value === undefined ? 'state:created' : 'state:updated',
        scope,
        key,
        old_value: old_value ?? null,
        new_value,
      });
      const result: Record<string, Json> = { old_value: old_value ?? null, new_value };
      if (errors.length > 0) result['errors'] = errors as unknown as Json[];
      return result;
    },
  );

  fn('state::list', 'The values of a scope, in insertion order', StateErrorCode.list, async (input) =>
    adapter.list(input.string('scope')),
  );

  fn('state::list_groups', 'The scopes that hold values, sorted', StateErrorCode.listGroups, async () => ({
    groups: [...new Set(await adapter.listGroups())].sort(),
  }));
}

/** `value`, or its alias `data`; an explicit null is a value. */
function valueField(input: Input, data: Json): Json {
  const fields = data as Record<string, Json | undefined>;
  const value = fields['value'] !== undefined ? fields['value'] : fields['data'];
  if (value === undefined) throw input.fail('missing field `value` (or its alias `data`)');
  return value;
}

/** Our own errors pass through; a storage failure is reported under the function's code. */
async function storage(code: string, work: () => Promise<Json>): Promise<Json> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof EngineError) throw err;
    throw new EngineError(code, `State storage failed: ${err instanceof Error ? err.message : String(err)}`);
  }
}
